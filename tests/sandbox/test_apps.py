"""The fake Altinn 3 app and Storage, over real sockets, judged by Altinn's published App and Storage
contracts (every request through ``observing_middleware``, every JSON answer by ``check_response``)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from proxy.sandbox import fixtures
from proxy.sandbox.apps import FakeApps, install_apps
from proxy.sandbox.apps_model import PDF_DATA_TYPE
from proxy.sandbox.observe import RequestObserver, observing_middleware
from proxy.sandbox.tokens import SigningKey, TokenVerifier, mint_access_token
from proxy.sandbox.world import sandbox_apps

MASKINPORTEN = "https://test.maskinporten.no/"
ALTINN = "https://platform.tt02.altinn.no/authentication/api/v1/openid/"
VENDOR = "991825827"
REPORTEE = "310000019"
OTHER = "310000027"
APP = "/apps/ttd/ttd/legacy-form-4713"
STORAGE = "/storage/api/v1"
WRITE = "altinn:instances.write altinn:instances.read"
SO = "altinn:serviceowner/instances.read altinn:serviceowner/instances.write"
FORM = b'<Skjema xmlns="urn:test"><Navn>Test AS</Navn><Beloep>100</Beloep></Skjema>'


@dataclass
class Clock:
    now: float = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def keys() -> tuple[SigningKey, SigningKey]:
    return SigningKey.generate("mp"), SigningKey.generate("altinn")


@dataclass
class Apps:
    client: TestClient[web.Request, web.Application]
    fake: FakeApps
    keys: tuple[SigningKey, SigningKey]
    contract: Any
    clock: Clock
    checked: list[str] = field(default_factory=list)

    def token(self, org: str = REPORTEE, scopes: str = WRITE, *, exchanged: bool = True) -> str:
        key, issuer = (self.keys[1], ALTINN) if exchanged else (self.keys[0], MASKINPORTEN)
        token = mint_access_token(key, issuer=issuer, consumer_org=VENDOR, scopes=scopes, system_user_org=org)
        return f"Bearer {token}"

    def owner_token(self, scopes: str = SO) -> str:
        token = mint_access_token(
            self.keys[1],
            issuer=ALTINN,
            consumer_org=fixtures.SERVICE_OWNER_ORG,
            scopes=scopes,
            extra={"urn:altinn:org": "ttd"},
        )
        return f"Bearer {token}"

    async def call(
        self, method: str, path: str, token: str | None, *, check: bool = True, **kwargs: Any
    ) -> tuple[int, Any, Mapping[str, str]]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = token
        async with self.client.request(method, path, headers=headers, **kwargs) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "").split(";")[0]
            if check and content_type == "application/json" and response.status < 400:
                url = str(response.url)
                if url.split("//", 1)[1].split("/", 1)[1].startswith("apps/"):
                    _host, rest = url.split("/apps/", 1)
                    org, path_rest = rest.split("/", 1)
                    url = f"http://{org}.apps.local/{path_rest}"
                problems = self.contract.check_response(method, url, response.status, raw, content_type)
                assert problems == [], f"{method} {path} -> {response.status}: {problems}"
                self.checked.append(path)
            document = json.loads(raw) if raw and content_type == "application/json" else raw
            return response.status, document, response.headers

    async def create(self, form: bytes = FORM, org: str = REPORTEE, **values: str) -> dict[str, Any]:
        with aiohttp.MultipartWriter("form-data") as writer:
            instance = writer.append_json(
                {"instanceOwner": {"organisationNumber": org}, "dataValues": values}
            )
            instance.set_content_disposition("form-data", name="instance")
            part = writer.append(form, {"Content-Type": "application/xml"})
            part.set_content_disposition("form-data", name="skjema", filename="skjema.xml")
        status, document, _ = await self.call("POST", f"{APP}/instances", self.token(org), data=writer)
        assert status == 201, document
        return dict(document)

    async def attach(
        self,
        instance: Mapping[str, Any],
        data: bytes | io.BytesIO,
        *,
        name: str = "a.pdf",
        content_type: str = "application/pdf",
    ) -> tuple[int, Any]:
        status, document, _ = await self.call(
            "POST",
            f"{APP}/instances/{instance['id']}/data",
            self.token(),
            params={"dataType": "vedlegg"},
            data=data,
            headers={"Content-Type": content_type, "Content-Disposition": f'attachment; filename="{name}"'},
        )
        return status, document


@pytest.fixture
async def apps(
    aiohttp_client: Callable[..., Any],
    altinn3_contract: RequestObserver,
    _contract_module: Any,
    keys: tuple[SigningKey, SigningKey],
    tmp_path: Path,
) -> Apps:
    clock = Clock()
    verifier = TokenVerifier(MASKINPORTEN, keys[0], ALTINN, keys[1], clock=clock)
    app = web.Application(middlewares=[observing_middleware(altinn3_contract)], client_max_size=1 << 30)
    fake = install_apps(
        app,
        verifier=verifier,
        apps=sandbox_apps(),
        parties=fixtures.PARTY_IDS,
        storage_dir=tmp_path / "apps",
        clock=clock,
    )
    client = await aiohttp_client(app)
    return Apps(client, fake, keys, _contract_module, clock)


async def test_metadata_lists_the_data_types_with_their_limits(apps: Apps) -> None:
    status, metadata, _ = await apps.call("GET", f"{APP}/api/v1/applicationmetadata", None)
    assert status == 200
    types = {t["id"]: t for t in metadata["dataTypes"]}
    assert types["skjema"]["maxCount"] == 1
    assert types["skjema"]["appLogic"]["classRef"].endswith("Skjema")
    assert types["vedlegg"]["maxSize"] == fixtures.ATTACHMENT_MAX_MB
    assert "application/pdf" in types["vedlegg"]["allowedContentTypes"]


async def test_submit_flow_creates_uploads_and_ends_with_a_pdf(apps: Apps) -> None:
    instance = await apps.create(ref="abc")
    assert instance["instanceOwner"]["partyId"] == str(fixtures.PARTY_IDS[REPORTEE])
    assert instance["dataValues"] == {"ref": "abc"}
    assert [d["dataType"] for d in instance["data"]] == ["skjema"]
    status, element = await apps.attach(instance, b"%PDF-1.4 hello")
    assert status == 201, element
    status, state, _ = await apps.call(
        "PUT", f"{APP}/instances/{instance['id']}/process/next", apps.token(), json={"action": "submit"}
    )
    assert status == 200, state
    assert state["ended"]
    assert state["endEvent"] == "EndEvent_1"
    status, stored, _ = await apps.call("GET", f"{STORAGE}/instances/{instance['id']}", apps.token())
    assert status == 200
    assert stored["status"]["isArchived"] is True
    assert sorted(d["dataType"] for d in stored["data"]) == sorted(["skjema", "vedlegg", PDF_DATA_TYPE])
    pdf = next(d for d in stored["data"] if d["dataType"] == PDF_DATA_TYPE)
    status, body, _headers = await apps.call(
        "GET", f"{STORAGE}/instances/{instance['id']}/data/{pdf['id']}", apps.owner_token()
    )
    assert status == 200
    assert body.startswith(b"%PDF")
    status, _, _ = await apps.call(
        "PUT", f"{APP}/instances/{instance['id']}/process/next", apps.token(), check=False
    )
    assert status == 409


async def test_form_whose_root_is_not_skjema_is_refused_and_no_instance_is_left(apps: Apps) -> None:
    with aiohttp.MultipartWriter("form-data") as writer:
        writer.append_json({"instanceOwner": {"organisationNumber": REPORTEE}}).set_content_disposition(
            "form-data", name="instance"
        )
        writer.append(b"<Annet/>", {"Content-Type": "application/xml"}).set_content_disposition(
            "form-data", name="skjema"
        )
    status, problem, _ = await apps.call("POST", f"{APP}/instances", apps.token(), data=writer)
    assert status == 400
    assert "Skjema" in problem["detail"]
    assert all(i.hard_deleted for i in apps.fake.instances.values())


async def test_validation_rule_gives_409_with_validation_issues(apps: Apps) -> None:
    instance = await apps.create(b"<Skjema><Beloep>-5</Beloep></Skjema>")
    status, problem, _ = await apps.call(
        "PUT", f"{APP}/instances/{instance['id']}/process/next", apps.token(), check=False
    )
    assert status == 409
    assert problem["title"] == "Validation failed for task"
    assert [i["description"] for i in problem["validationIssues"]] == ["Beløp kan ikke være negativt"]
    status, issues, _ = await apps.call("GET", f"{APP}/instances/{instance['id']}/validate", apps.token())
    assert status == 200
    assert issues[0]["code"] == "beloep.negativt"


async def test_data_element_limits(apps: Apps) -> None:
    instance = await apps.create()
    too_big = b"x" * (fixtures.ATTACHMENT_MAX_MB * 1024 * 1024 + 1)
    status, problem = await apps.attach(instance, io.BytesIO(too_big), name="big.pdf")
    assert status == 400
    assert "exceeds limit" in problem["uploadValidationIssues"][0]["description"]
    status, problem = await apps.attach(
        instance, b"MZ", name="x.exe", content_type="application/x-msdownload"
    )
    assert status == 400
    assert "Invalid content type" in problem["uploadValidationIssues"][0]["description"]
    for number in range(10):
        status, _ = await apps.attach(instance, b"%PDF", name=f"{number}.pdf")
        assert status == 201
    status, problem = await apps.attach(instance, b"%PDF", name="eleven.pdf")
    assert status == 409
    assert problem["title"] == "Max Count Exceeded"


async def test_access_rules(apps: Apps) -> None:
    instance = await apps.create()
    path = f"{APP}/instances/{instance['id']}"
    assert (await apps.call("GET", path, apps.token(OTHER), check=False))[0] == 403
    assert (await apps.call("GET", path, apps.token(exchanged=False), check=False))[0] == 401
    assert (await apps.call("GET", path, apps.token(scopes="altinn:broker.read"), check=False))[0] == 403
    assert (await apps.call("GET", path, apps.owner_token()))[0] == 200
    status, listed, _ = await apps.call(
        "GET",
        f"{STORAGE}/instances",
        apps.token(OTHER),
        headers={"X-Ai-InstanceOwnerIdentifier": f"organisation:{REPORTEE}"},
    )
    assert status == 200
    assert listed["instances"] == []
    status, _, _ = await apps.call("GET", f"{STORAGE}/instances", apps.token(), check=False)
    assert status == 400


async def test_storage_query_pages_oldest_first_and_hides_confirmed(apps: Apps) -> None:
    made = []
    for number in range(5):
        apps.clock.now += 1
        instance = await apps.create(n=str(number))
        await apps.call("PUT", f"{APP}/instances/{instance['id']}/process/next", apps.token())
        made.append(instance["id"])
    params = {
        "appId": "ttd/legacy-form-4713",
        "process.isComplete": "true",
        "excludeConfirmedBy": "ttd",
        "order": "asc:lastChanged",
        "size": "2",
    }
    seen: list[str] = []
    url: str | None = f"{STORAGE}/instances"
    query: dict[str, str] | None = params
    while url is not None:
        status, page, _ = await apps.call("GET", url, apps.owner_token(), params=query)
        assert status == 200
        assert page["count"] <= 2
        seen.extend(i["id"] for i in page["instances"])
        url, query = (
            (page["next"].split("//", 1)[1].split("/", 1)[1], None) if page.get("next") else (None, None)
        )
        url = "/" + url if url is not None else None
    assert seen == made
    status, _, _ = await apps.call("POST", f"{STORAGE}/instances/{made[0]}/complete", apps.owner_token())
    assert status == 200
    status, page, _ = await apps.call(
        "GET", f"{STORAGE}/instances", apps.owner_token(), params=params | {"size": "10"}
    )
    assert [i["id"] for i in page["instances"]] == made[1:]
    assert (await apps.call("POST", f"{STORAGE}/instances/{made[1]}/complete", apps.token(), check=False))[
        0
    ] == 403
