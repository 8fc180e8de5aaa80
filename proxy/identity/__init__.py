"""Legacy identity: who is calling, and for which organisation it may act.

* :mod:`~proxy.identity.principal`: the value types at the seam (``LegacyCredentials``, ``Principal``).
* :mod:`~proxy.identity.credentials`: the credentials file, its validation and hot reload.
* :mod:`~proxy.identity.authenticator`: system user name/password and REST ApiKey checks, with
  brute-force protection from :mod:`~proxy.identity.lockout`.
* :mod:`~proxy.identity.certificates`: enterprise client certificates (mutual TLS or trusted ingress).
* :mod:`~proxy.identity.reportee`: reportee validation and the "may act for" decision.
* :mod:`~proxy.identity.person`: person-level fields and operations that need a person's signature.
* :mod:`~proxy.identity.cli`: ``altinn-proxy credentials add|hash``.
"""
