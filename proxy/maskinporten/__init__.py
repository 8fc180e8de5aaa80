"""Maskinporten system-user tokens and the Altinn token exchange.

* :mod:`.request`: ``TokenRequest`` (the cache key) and the ``TokenSource`` protocol callers use.
* :mod:`.config`: frozen settings and the key-file loaders.
* :mod:`.provider`: ``TokenProvider``, the cache with single-flight fetches and background refresh.
* :mod:`.client`: the grant and exchange HTTP calls; :mod:`.grant`: the JWT grant itself.
* :mod:`.refusals`: ``MP-nnn`` answers as operator-readable ``TokenRefused`` errors.
* :mod:`.metrics`: Prometheus metrics; :mod:`.clock`: the injected clock.

Nothing is re-exported here, so importing ``.request`` stays free of side effects (metrics).
"""
