"""The sandbox's fixed demo world, documented in the README so that examples can be copy-pasted.

One Maskinporten client, owned by the service owner ``ttd`` (organisation 310000035), which is also
the vendor of the system whose system users the two demo end-user systems act through. All
organisation numbers carry valid check digits.
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_ID = "5b0b1c2e-7a3d-4a57-9f0e-2f6c7d8e9a10"
CLIENT_KID = "altinn-proxy-sandbox"
VENDOR_ORG = "310000035"
SYSTEM_ID = f"{VENDOR_ORG}_altinn_proxy"  # {vendor}_{SYSTEM_NAME}
SERVICE_OWNER_CODE = "ttd"
SERVICE_OWNER_ORG = VENDOR_ORG

CORRESPONDENCE_SERVICE = ("4711", "1")
CORRESPONDENCE_RESOURCE = "ttd-migratedcorrespondence-4711-1"
BROKER_SERVICE = ("4712", "1")
BROKER_RESOURCE = "ttd-broker-4712"

#: Altinn 3 access management: the parties a system user (or a person, for a service owner) may act for.
AUTHORIZED_PARTIES_SCOPE = "altinn:accessmanagement/authorizedparties"
AUTHORIZED_PARTIES_RESOURCE_OWNER_SCOPE = "altinn:accessmanagement/authorizedparties.resourceowner"
#: SubmitFormTask: the legacy form service, its app, the data types and the accepted data format.
FORM_SERVICE = ("4713", "1")
FORM_APP = ("ttd", "legacy-form-4713")
#: The app as a resource in Altinn's resource register (every app is one: ``app_{org}_{app}``).
FORM_APP_RESOURCE = "app_{}_{}".format(*FORM_APP)
FORM_DATA_TYPE = "skjema"
FORM_DATA_FORMAT = ("5703", "41235")
FORM_ROOT_ELEMENT = "Skjema"
ATTACHMENT_DATA_TYPE = "vedlegg"
#: The attachment data type's ``maxSize`` (MB) in the app's metadata.
ATTACHMENT_MAX_MB = 10

END_USER_SCOPES = (
    AUTHORIZED_PARTIES_SCOPE,
    "altinn:correspondence.read",
    "altinn:broker.read",
    "altinn:broker.write",
    "digdir:dialogporten",
    "altinn:instances.read",
    "altinn:instances.write",
)
SERVICE_OWNER_SCOPES = (
    AUTHORIZED_PARTIES_RESOURCE_OWNER_SCOPE,
    "altinn:serviceowner",
    "altinn:correspondence.read",
    "altinn:correspondence.write",
    "altinn:broker.read",
    "altinn:broker.write",
    "altinn:serviceowner/instances.read",
    "altinn:serviceowner/instances.write",
)
#: The scopes of the ``system`` commands (system register and system-user requests).
ONBOARDING_SCOPES = (
    "altinn:authentication/systemregister.write",
    "altinn:authentication/systemuser.request.read",
    "altinn:authentication/systemuser.request.write",
)
#: Every scope registered on the sandbox's Maskinporten client.
CLIENT_SCOPES = tuple(sorted({*END_USER_SCOPES, *SERVICE_OWNER_SCOPES, *ONBOARDING_SCOPES}))


@dataclass(frozen=True)
class DemoCaller:
    """A legacy credential of the sandbox."""

    username: str
    password: str
    orgs: tuple[str, ...] = ()
    service_owner: str | None = None
    org: str | None = None


DEMO_CALLERS = (
    DemoCaller("demo-eus", "demo-eus-password", orgs=("310000019",)),
    DemoCaller("demo-eus2", "demo-eus2-password", orgs=("310000027",)),
    DemoCaller("demo-so", "demo-so-password", service_owner=SERVICE_OWNER_CODE, org=SERVICE_OWNER_ORG),
    DemoCaller("demo-eus3", "demo-eus3-password", orgs=("310000043",)),
)
#: Organisations that have approved a system user for the sandbox's system.
SYSTEM_USER_ORGS = ("310000019", "310000027")
#: The customer still to be onboarded: no system user until its request is approved (MP-303 until then).
ONBOARDING_ORG = "310000043"
#: Every customer organisation of the demo world (senders and recipients of the broker service).
CUSTOMER_ORGS = (*SYSTEM_USER_ORGS, ONBOARDING_ORG)
#: The system's name in the system register (its id is ``SYSTEM_ID``).
SYSTEM_NAME = "altinn_proxy"


@dataclass(frozen=True)
class DemoParty:
    """An Altinn 3 party of the sandbox (what access management's authorized parties list)."""

    name: str
    party_id: int
    party_uuid: str
    organization_number: str | None = None
    person_id: str | None = None
    unit_type: str | None = None


DEMO_PARTIES = (
    DemoParty(
        "SANDBOX REGNSKAP AS", 50100019, "0e9b2c4a-1f3d-4c55-8a6e-310000019000", "310000019", unit_type="AS"
    ),
    DemoParty(
        "SANDBOX LOGISTIKK AS", 50100027, "0e9b2c4a-1f3d-4c55-8a6e-310000027000", "310000027", unit_type="AS"
    ),
    DemoParty(
        "TESTDEPARTEMENTET", 50100035, "0e9b2c4a-1f3d-4c55-8a6e-310000035000", "310000035", unit_type="STAT"
    ),
    DemoParty("KARI SANDBOX", 50200001, "0e9b2c4a-1f3d-4c55-8a6e-010170121810", person_id="01017012181"),
)
#: The register's party ids of the demo organisations (what Altinn 3 names instance owners by): the
#: same parties as :data:`DEMO_PARTIES`, so an instance owner and an authorized party agree.
PARTY_IDS = {party.organization_number: party.party_id for party in DEMO_PARTIES if party.organization_number}
#: A person, and the organisations (by number) she may act for besides herself.
DEMO_PERSON = "01017012181"
DEMO_PERSON_ORGS = ("310000019", "310000027")

#: The legacy REST front of the sandbox: its ApiKey, and the organisation of the demo enterprise
#: certificate the sandbox issues (``.sandbox/tls/eus-310000019.pem``), which authenticates as ``demo-eus``.
REST_API_KEY = "demo-apikey"
REST_CERTIFICATES = (("demo-eus", "310000019"), ("demo-eus2", "310000027"), ("demo-so", SERVICE_OWNER_ORG))
