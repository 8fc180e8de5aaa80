"""The credentials file: hashing, validation with located errors, and reload on change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from proxy.errors import ConfigurationError
from proxy.identity.credentials import CredentialStore, load_credentials, parse_credentials
from proxy.identity.passwords import PasswordHash, hash_api_key, hash_password, verify_password
from proxy.identity.principal import CallerKind, OrgGrant
from tests.identity.conftest import ORG_A, ORG_B, SERVICE_OWNER_ORG, cheap_hash, credentials_document


def test_password_hash_round_trips_and_verifies() -> None:
    stored = hash_password("correct horse", n=16, r=1, p=1)
    parsed = PasswordHash.parse(stored.encode())
    assert parsed == stored
    assert stored.encode().startswith("scrypt$16$1$1$")
    assert verify_password(parsed, "correct horse")
    assert not verify_password(parsed, "correct horsE")
    assert repr(parsed) == "PasswordHash(n=16, r=1, p=1)"


def test_same_password_gets_a_fresh_salt_each_time() -> None:
    assert cheap_hash("same") != cheap_hash("same")


@pytest.mark.parametrize(
    "text",
    ["plain", "scrypt$16$1$1$c2FsdA", "scrypt$15$1$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "scrypt$x$1$1$a$b"],
)
def test_malformed_hashes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"scrypt|n must|integers|salt"):
        PasswordHash.parse(text)


def test_loader_builds_principals() -> None:
    book = parse_credentials(credentials_document(), source="creds.yaml")
    eus = book.caller("eus")
    assert eus is not None
    assert eus.principal.kind is CallerKind.END_USER_SYSTEM
    assert dict(eus.principal.orgs) == {ORG_A: OrgGrant(ORG_A, "customer-a")}
    so = book.caller("so")
    assert so is not None
    assert (so.principal.service_owner, so.principal.org, so.principal.scopes) == (
        "ttd",
        SERVICE_OWNER_ORG,
        ("altinn:serviceowner",),
    )
    cert_only = book.caller("cert-only")
    assert cert_only is not None
    assert cert_only.password_hash is None
    assert book.caller("nobody") is None


def test_numeric_yaml_keys_and_values_are_read_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text(
        f"callers:\n  12345:\n    password_hash: '{cheap_hash('pw')}'\n    kind: end_user_system\n"
        f"    orgs: [{{org: {ORG_B}}}]\n"
    )
    entry = load_credentials(path).caller("12345")
    assert entry is not None
    assert entry.principal.grant_for(ORG_B) == OrgGrant(ORG_B)


def test_api_keys_are_found_by_hash_only() -> None:
    book = parse_credentials(
        credentials_document(api_keys=[{"name": "app", "key_hash": hash_api_key("k-123")}])
    )
    assert book.api_key_name("k-123") == "app"
    assert book.api_key_name("k-124") is None


@pytest.mark.parametrize(
    ("change", "location", "message"),
    [
        (
            lambda d: d["callers"]["eus"]["orgs"].append({"org": "310000018"}),
            "callers.eus.orgs.1.org",
            "check digit",
        ),
        (lambda d: d["callers"]["eus"].update(colour="blue"), "callers.eus.colour", "Extra inputs"),
        (lambda d: d["callers"]["so"].pop("scopes"), "callers.so", "needs 'scopes'"),
        (lambda d: d["callers"]["eus"].update(orgs=[]), "callers.eus", "at least one"),
        (
            lambda d: d["callers"]["eus"].update(password_hash="md5$abc"),
            "callers.eus.password_hash",
            "scrypt",
        ),
        (lambda d: d["certificates"].append({"caller": "ghost", "org": ORG_A}), "", "certificates[1].caller"),
        (lambda d: d["certificates"].append({"caller": "eus"}), "certificates.1", "'org', 'fingerprint'"),
        (
            lambda d: d.update(api_keys=[{"name": "a", "key_hash": "sha256$00"}]),
            "api_keys.0.key_hash",
            "sha256",
        ),
        (lambda d: d.update(version=2), "version", "1"),
    ],
)
def test_validation_errors_name_file_and_key(change, location: str, message: str) -> None:  # type: ignore[no-untyped-def]
    document = credentials_document()
    change(document)
    with pytest.raises(ConfigurationError) as caught:
        parse_credentials(document, source="creds.yaml")
    assert caught.value.location == (f"creds.yaml: {location}" if location else "creds.yaml")
    assert message in caught.value.message
    assert document["callers"]["so"]["password_hash"] not in caught.value.message  # type: ignore[index]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text("callers:\n  eus: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"credentials\.yaml:\d+: not valid YAML"):
        load_credentials(path)


def _write(path: Path, document: object, mtime: int) -> None:
    path.write_text(yaml.safe_dump(document))
    os.utime(path, (mtime, mtime))


def _reloads(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("altinn_proxy_identity_credential_reloads_total", {"outcome": outcome})
        or 0.0
    )


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_store_reloads_a_changed_file_after_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    _write(path, credentials_document(), 1_700_000_000)
    clock = FakeClock()
    store = CredentialStore(path, clock=clock, check_interval=5.0)
    assert (await store.current()).caller("new") is None

    document = credentials_document()
    document["callers"]["new"] = {
        "password_hash": cheap_hash("pw"),
        "kind": "end_user_system",
        "orgs": [{"org": ORG_B}],
    }  # type: ignore[index]
    _write(path, document, 1_700_000_100)
    clock.now += 4.0
    assert (await store.current()).caller("new") is None, "checked before the interval passed"

    loaded = _reloads("loaded")
    clock.now += 1.0
    assert (await store.current()).caller("new") is not None
    assert _reloads("loaded") == loaded + 1


async def test_a_broken_new_file_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    _write(path, credentials_document(), 1_700_000_000)
    clock = FakeClock()
    store = CredentialStore(path, clock=clock, check_interval=1.0)
    before = await store.current()

    broken = credentials_document()
    broken["callers"]["eus"]["orgs"] = [{"org": "123"}]  # type: ignore[index]
    _write(path, broken, 1_700_000_200)
    refused = _reloads("refused")
    clock.now += 1.0
    assert await store.current() is before
    clock.now += 1.0
    assert await store.current() is before
    assert _reloads("refused") == refused + 1, "a broken file is refused once, not on every check"

    _write(path, credentials_document(), 1_700_000_300)
    clock.now += 1.0
    assert await store.current() is not before


def test_a_broken_file_at_start_up_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text("callers: 3\n")
    with pytest.raises(ConfigurationError, match=r"credentials\.yaml: callers"):
        CredentialStore(path)
