"""altinn-proxy: legacy Altinn 2 SOAP/REST clients on the Altinn 3 APIs."""

from pathlib import Path

__version__ = "0.1.0"

#: The mapping files shipped as package data (the repository's ``mappings/``, which
#: ``proxy/shipped_mappings`` links to in the source tree): used when the settings name no
#: ``mappings_dir``, so an installed proxy and its sandbox need no checkout beside them.
SHIPPED_MAPPINGS_DIR = Path(__file__).resolve().parent / "shipped_mappings"
