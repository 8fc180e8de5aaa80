"""No log line, exception text, repr or metric ever carries a token, an assertion, a key or a password."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from prometheus_client import REGISTRY, generate_latest

from proxy.errors import TokenError
from proxy.maskinporten.client import MaskinportenClient
from proxy.maskinporten.config import SigningMaterial, Timeouts, load_pkcs12
from tests.maskinporten.conftest import Keys
from tests.maskinporten.helpers import CUSTOMER, World, system_user_request

PASSWORD = "s3cret-pkcs12-password"


async def token_operations(world: World, keys: Keys, tmp_path: Path) -> tuple[list[str], list[str]]:
    """Every kind of outcome once; returns (tokens handed out, texts of everything raised)."""
    tokens: list[str] = []
    raised: list[str] = []

    async def attempt(coroutine: object) -> None:
        try:
            tokens.append(await coroutine)  # type: ignore[misc]
        except TokenError as error:
            raised.extend([str(error), repr(error), error.extended or "", repr(error.args)])

    provider = world.provider()
    await provider.start()
    await attempt(provider.token(system_user_request()))
    await attempt(provider.token(system_user_request(exchange=True)))
    await attempt(provider.token(system_user_request("310000027", external_ref="ref")))
    provider.invalidate(system_user_request(), tokens[0])
    await attempt(provider.token(system_user_request()))
    world.fake.system_users.clear()
    world.clock.advance(61)
    await attempt(provider.token(system_user_request()))
    for _ in range(20):
        await asyncio.sleep(0)
    await provider.drain()
    raised.append(repr(provider._entries))
    await provider.close()

    wrong = world.provider(
        world.config(signing=SigningMaterial(private_key=keys.wrong.private_key, kid=keys.client.kid))
    )
    await attempt(wrong.token(system_user_request()))
    reused_config = world.config()
    reused = world.provider(
        reused_config,
        client=MaskinportenClient(reused_config, world.session, world.clock, jti_factory=lambda: "j"),
    )
    world.fake.add_system_user("991825827_smartcloud", CUSTOMER)
    await attempt(reused.token(system_user_request()))
    reused.invalidate(system_user_request(), tokens[-1] if tokens else "")
    await attempt(reused.token(system_user_request(external_ref=None, exchange=True)))
    await attempt(reused.token(system_user_request(exchange=True)))

    slow = world.provider(world.config(timeouts=Timeouts(connect=1.0, total=0.3)))
    release = world.fake.hold(CUSTOMER)
    await attempt(slow.token(system_user_request()))
    release.set()

    bundle = pkcs12.serialize_key_and_certificates(
        b"v",
        keys.client.private_key,
        keys.leaf_certificate,
        [],
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    (tmp_path / "v.p12").write_bytes(bundle)
    (tmp_path / "pw").write_text("not-the-password")
    try:
        load_pkcs12(tmp_path / "v.p12", password_file=tmp_path / "pw")
    except Exception as error:
        raised.extend([str(error), repr(error)])
    (tmp_path / "pw").write_text(PASSWORD)
    raised.append(repr(load_pkcs12(tmp_path / "v.p12", password_file=tmp_path / "pw")))
    raised.append(repr(world.config()))
    for provider_ in (wrong, reused, slow):
        await provider_.close()
    return tokens, raised


def fragments(secret: str, size: int = 24, step: int = 8) -> list[str]:
    """Overlapping pieces, so that a leak of any 32 consecutive characters of a secret is caught."""
    if len(secret) <= size:
        return [secret]
    return [secret[start : start + size] for start in range(0, len(secret) - size + 1, step)]


def secrets_of(world: World, keys: Keys, tokens: list[str]) -> list[str]:
    numbers = keys.client.private_key.private_numbers()
    pem = keys.client.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pem_lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    d_b64 = base64.urlsafe_b64encode(numbers.d.to_bytes(256, "big")).decode().rstrip("=")
    secrets = [
        *tokens,
        *world.fake.assertions_seen,
        *world.fake.tokens_issued,
        PASSWORD,
        str(numbers.d),
        d_b64[:40],
    ]
    secrets += pem_lines[1:-1]
    # any signature part of a JWT is a secret-bearing value too
    secrets += [token.rsplit(".", 1)[-1] for token in (*tokens, *world.fake.assertions_seen) if token]
    return [secret for secret in secrets if secret]


async def test_no_secret_reaches_logs_errors_reprs_or_metrics(
    world: World,
    keys: Keys,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        tokens, raised = await token_operations(world, keys, tmp_path)
    secrets = secrets_of(world, keys, tokens)
    assert len(tokens) >= 3
    assert len(world.fake.assertions_seen) >= 6
    assert {entry["event"] for entry in logs} >= {"token_fetched", "token_fetch_failed", "token_invalidated"}
    captured = capsys.readouterr()
    haystacks = {
        "structlog": "\n".join(repr(entry) for entry in logs),
        "logging": "\n".join(record.getMessage() + repr(record.args) for record in caplog.records),
        "output": captured.out + captured.err,
        "exceptions": "\n".join(raised),
        "metrics": generate_latest(REGISTRY).decode(),
    }
    for where, text in haystacks.items():
        assert "eyJ" not in text, f"something JWT-shaped in {where}"
        leaked = sum(1 for secret in secrets for piece in fragments(secret) if piece in text)
        assert leaked == 0, f"{leaked} fragments of secrets in {where}"  # never print the pieces themselves
