"""Hashed legacy secrets: scrypt for passwords, SHA-256 for API keys.

A password hash is one self-describing string, ``scrypt$<n>$<r>$<p>$<salt>$<digest>`` (salt and
digest unpadded URL-safe base64), so the cost parameters can be raised later without breaking old
entries. Passwords are low-entropy and chosen by people, hence a memory-hard KDF with a per-entry
salt. API keys are random and long, so a plain SHA-256 (``sha256$<hex>``) is enough and lets the key
be found with one dictionary lookup instead of one scrypt run per configured key.

Verification is CPU- and memory-heavy by design (tens of milliseconds): callers on the event loop
run :func:`verify_password` in a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
DIGEST_BYTES = 32
SALT_BYTES = 16
# Bounds for hashes read from a file: a typo must not make every login allocate gigabytes.
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PasswordHash:
    """A parsed scrypt hash: cost parameters, salt and digest (the digest never reaches a repr)."""

    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Parse ``scrypt$n$r$p$salt$digest``; raises ValueError saying what is wrong (never echoing it)."""
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("expected 'scrypt$<n>$<r>$<p>$<salt>$<digest>'")
        try:
            n, r, p = (int(part) for part in parts[1:4])
            salt, digest = _b64decode(parts[4]), _b64decode(parts[5])
        except ValueError:
            raise ValueError("cost parameters must be integers and salt/digest base64") from None
        if n < 2 or n & (n - 1) or n > MAX_SCRYPT_N:
            raise ValueError(f"n must be a power of two between 2 and {MAX_SCRYPT_N}")
        if not 1 <= r <= MAX_SCRYPT_R or not 1 <= p <= MAX_SCRYPT_P:
            raise ValueError(f"r must be 1..{MAX_SCRYPT_R} and p 1..{MAX_SCRYPT_P}")
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("salt must be at least 8 bytes and digest at least 16 bytes")
        return cls(n, r, p, salt, digest)

    def encode(self) -> str:
        """The self-describing string form stored in the credentials file."""
        return f"scrypt${self.n}${self.r}${self.p}${_b64encode(self.salt)}${_b64encode(self.digest)}"

    def derive(self, password: str) -> bytes:
        """scrypt of ``password`` with this hash's salt and parameters (slow: run off the event loop)."""
        return hashlib.scrypt(
            password.encode("utf-8"),
            salt=self.salt,
            n=self.n,
            r=self.r,
            p=self.p,
            maxmem=2 * 128 * self.r * self.n * self.p + 1024 * 1024,
            dklen=len(self.digest),
        )


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> PasswordHash:
    """A new hash of ``password`` with a fresh random salt (slow: run off the event loop)."""
    template = PasswordHash(n, r, p, secrets.token_bytes(SALT_BYTES), bytes(DIGEST_BYTES))
    return PasswordHash(n, r, p, template.salt, template.derive(password))


def verify_password(stored: PasswordHash, password: str) -> bool:
    """True when ``password`` matches ``stored``; the comparison is constant-time."""
    return hmac.compare_digest(stored.derive(password), stored.digest)


def decoy_hash(like: PasswordHash | None = None) -> PasswordHash:
    """A hash no password matches, costing as much to check as ``like`` (default parameters if None).

    Checked instead of a real hash when the user name is unknown, so that an unknown user takes the
    same work, and hence time, as a known one with a wrong password.
    """
    n, r, p, length = (
        (like.n, like.r, like.p, len(like.digest)) if like else (SCRYPT_N, SCRYPT_R, SCRYPT_P, 32)
    )
    return PasswordHash(n, r, p, secrets.token_bytes(SALT_BYTES), secrets.token_bytes(length))


def hash_api_key(api_key: str) -> str:
    """``sha256$<hex>`` of an API key, as stored in the credentials file."""
    return "sha256$" + api_key_digest(api_key).hex()


def api_key_digest(api_key: str) -> bytes:
    """The SHA-256 digest an API key is looked up by."""
    return hashlib.sha256(api_key.encode("utf-8")).digest()


def parse_api_key_hash(text: str) -> bytes:
    """The digest of a stored ``sha256$<hex>`` API key hash; raises ValueError when malformed."""
    prefix, _, hex_digest = text.partition("$")
    if prefix != "sha256" or len(hex_digest) != 64:
        raise ValueError("expected 'sha256$<64 hex digits>'")
    try:
        return bytes.fromhex(hex_digest)
    except ValueError:
        raise ValueError("expected 'sha256$<64 hex digits>'") from None
