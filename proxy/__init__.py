"""altinn-proxy: legacy Altinn 2 SOAP/REST clients on the Altinn 3 APIs."""

__version__ = "0.1.0"
