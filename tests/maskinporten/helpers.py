"""Test helpers: a fake clock, key material made at test time, and a loopback world of fakes."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from proxy.maskinporten.client import MaskinportenClient
from proxy.maskinporten.clock import Clock
from proxy.maskinporten.config import MaskinportenConfig, RefreshPolicy, SigningMaterial, Timeouts
from proxy.maskinporten.provider import TokenProvider
from proxy.maskinporten.request import TokenRequest
from proxy.sandbox.maskinporten import FakeMaskinporten

VENDOR_ORG = "991825827"
SERVICE_OWNER_ORG = "974760673"
CLIENT_ID = "b590f149-d0ba-4fca-b367-bccd9e444a00"
SO_CLIENT_ID = "4a1c9a57-2f45-4c39-9a8a-1d2d6c3f8e11"
SYSTEM_ID = f"{VENDOR_ORG}_smartcloud"
SCOPES = frozenset({"altinn:broker.read", "altinn:broker.write"})
CUSTOMER = "310000019"
START_WALL = 1_760_000_000.0


class FakeClock:
    """Monotonic and wall time that move only when a test calls :meth:`advance`."""

    def __init__(self, wall: float = START_WALL) -> None:
        self._elapsed = 0.0
        self._wall0 = wall
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()

    def monotonic(self) -> float:
        return 1000.0 + self._elapsed

    def wall(self) -> float:
        return self._wall0 + self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.monotonic() + seconds, next(self._sequence), future))
        await future

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self.monotonic():
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


@dataclass(frozen=True)
class SkewedClock:
    """Another clock's time, with the wall clock off by ``skew`` seconds (a host with a bad clock)."""

    base: FakeClock
    skew: float

    def monotonic(self) -> float:
        return self.base.monotonic()

    def wall(self) -> float:
        return self.base.wall() + self.skew

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)


def make_ca_and_leaf(
    org: str, key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey
) -> tuple[x509.Certificate, x509.Certificate]:
    """A CA and a business certificate for ``org`` (serialNumber = org number) over ``key``."""
    not_before = datetime.fromtimestamp(START_WALL, UTC) - timedelta(days=30)
    not_after = not_before + timedelta(days=3650)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Business CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vendor AS"),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, org),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(ca_key, hashes.SHA256())
    )
    return ca, leaf


def system_user_request(
    org: str = CUSTOMER, *, external_ref: str | None = None, exchange: bool = False
) -> TokenRequest:
    """A system-user token request for ``org`` with the standard scopes."""
    return TokenRequest(scopes=SCOPES, system_user_org=org, external_ref=external_ref, exchange=exchange)


@dataclass
class World:
    """The fakes on loopback, and what a provider needs to reach them."""

    clock: FakeClock
    fake: FakeMaskinporten
    maskinporten_url: str
    platform_url: str
    session: aiohttp.ClientSession
    signing: SigningMaterial
    altinn_issuer: str

    def config(
        self,
        *,
        signing: SigningMaterial | None = None,
        client_id: str = CLIENT_ID,
        timeouts: Timeouts | None = None,
        refresh: RefreshPolicy | None = None,
        well_known_url: str | None = None,
    ) -> MaskinportenConfig:
        return MaskinportenConfig(
            client_id=client_id,
            signing=signing or self.signing,
            platform_url=self.platform_url,
            well_known_url=well_known_url
            or self.maskinporten_url + "/.well-known/oauth-authorization-server",
            environment="sandbox",
            system_id=SYSTEM_ID,
            # Generous: these tests are about caching and refusals, not deadlines (the deadline tests
            # set their own), and fifty grants at once must not time out on a starved shared machine.
            timeouts=timeouts or Timeouts(connect=30.0, total=60.0),
            refresh=refresh or RefreshPolicy(),
        )

    def provider(
        self,
        config: MaskinportenConfig | None = None,
        *,
        clock: Clock | None = None,
        client: MaskinportenClient | None = None,
    ) -> TokenProvider:
        return TokenProvider(config or self.config(), self.session, clock or self.clock, client=client)
