"""``altinn-proxy credentials …``: write hashed entries so nobody hashes a password by hand.

* ``credentials add FILE USERNAME --org 310000019[=externalRef] …`` (end-user system), or
  ``credentials add FILE USERNAME --service-owner ttd --org 991825827 --scope altinn:serviceowner …``
  adds a caller with a scrypt hash of a password read from a prompt (twice) or from stdin.
* ``credentials hash`` prints the scrypt hash of a password read from stdin (``--api-key``: the
  SHA-256 hash of an ApiKey instead).

Secrets are never taken from argv, where ``ps`` and shell history would show them. The file is
rewritten atomically with mode 0600 after the whole new document has been validated; YAML comments in
it are not preserved.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from proxy.errors import ConfigurationError
from proxy.identity.credentials import parse_credentials, read_credentials_document
from proxy.identity.passwords import hash_api_key, hash_password
from proxy.identity.principal import CallerKind

MIN_PASSWORD_LENGTH = 8


def read_secret(label: str, *, confirm: bool) -> str:
    """A secret from the terminal (asked twice when ``confirm``), or the first line of piped stdin."""
    if sys.stdin.isatty():
        secret = getpass.getpass(f"{label}: ")
        if confirm and getpass.getpass(f"{label} (again): ") != secret:
            raise ConfigurationError(f"the two {label.lower()}s differ", location="stdin")
    else:
        secret = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ConfigurationError(f"no {label.lower()} given", location="stdin")
    return secret


def _read_password() -> str:
    password = read_secret("Password", confirm=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", location="stdin"
        )
    return password


def _org_entries(values: list[str]) -> list[dict[str, str]]:
    entries = []
    for value in values:
        org, _, external_ref = value.partition("=")
        entry = {"org": org}
        if external_ref:
            entry["externalRef"] = external_ref
        entries.append(entry)
    return entries


def _caller_entry(args: argparse.Namespace, password_hash: str | None) -> dict[str, Any]:
    if args.service_owner:
        if len(args.org) != 1:
            raise ConfigurationError("a service owner takes exactly one --org (its own)", location="--org")
        return {
            "password_hash": password_hash,
            "kind": str(CallerKind.SERVICE_OWNER),
            "service_owner": args.service_owner,
            "org": args.org[0],
            "scopes": list(args.scope),
        }
    if args.scope:
        raise ConfigurationError("--scope is for service owners (--service-owner)", location="--scope")
    return {
        "password_hash": password_hash,
        "kind": str(CallerKind.END_USER_SYSTEM),
        "orgs": _org_entries(args.org),
    }


def write_credentials_document(path: Path, document: dict[str, Any]) -> None:
    """Validate ``document`` and replace ``path`` with it atomically (mode 0600)."""
    parse_credentials(document, source=str(path))
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_credentials_add(args: argparse.Namespace) -> int:
    """Add (or with ``--replace``, replace) a caller in the credentials file."""
    path = Path(args.file)
    document = read_credentials_document(path) if path.exists() else None
    document = dict(document or {"version": 1})
    callers = {str(key): value for key, value in (document.get("callers") or {}).items()}
    if args.username in callers and not args.replace:
        raise ConfigurationError(
            f"caller {args.username!r} exists already (use --replace to overwrite it)", location=str(path)
        )
    if not args.org:
        raise ConfigurationError("give at least one --org", location="--org")
    if args.from_system_user:
        args.org = _with_external_refs(args)
    # Validate everything but the password first, so a typo does not cost a password prompt.
    callers[args.username] = _caller_entry(args, None)
    parse_credentials({**document, "callers": callers}, source=str(path))
    callers[args.username] = _caller_entry(args, hash_password(_read_password()).encode())
    document["callers"] = callers
    write_credentials_document(path, document)
    print(f"{path}: caller {args.username!r} written")
    return 0


def _with_external_refs(args: argparse.Namespace) -> list[str]:
    """``--org`` values completed with the externalRef of each organisation's system user in Altinn."""
    if not args.config:
        raise ConfigurationError(
            "--from-system-user needs --config (the proxy's settings)", location="--config"
        )
    if args.service_owner:
        raise ConfigurationError("--from-system-user is for end-user systems", location="--from-system-user")
    from proxy.onboarding.cli import external_refs_from_system_users

    bare = [value for value in args.org if "=" not in value]
    found = external_refs_from_system_users(Path(args.config), bare)
    for org, ref in found.items():
        print(f"organisation {org}: system user with externalRef {ref}", file=sys.stderr)
    return [value if "=" in value else f"{value}={found[value]}" for value in args.org]


def cmd_credentials_hash(args: argparse.Namespace) -> int:
    """Print the hash of a password (or, with ``--api-key``, an ApiKey) read from stdin."""
    if args.api_key:
        print(hash_api_key(read_secret("ApiKey", confirm=False)))
    else:
        print(hash_password(_read_password()).encode())
    return 0


def add_cli_commands(subparsers: Any) -> None:
    """Register ``credentials add`` and ``credentials hash`` on the top-level subparsers."""
    credentials = subparsers.add_parser("credentials", help="manage the legacy credentials file")
    commands = credentials.add_subparsers(dest="credentials_command", required=True, metavar="COMMAND")

    add = commands.add_parser(
        "add", help="add a caller with a hashed password (password read from a prompt or stdin)"
    )
    add.add_argument("file", help="credentials YAML file (created if absent)")
    add.add_argument("username", help="systemUserName the legacy client sends")
    add.add_argument(
        "--org",
        action="append",
        default=[],
        help="organisation the system may act for, ORGNO or ORGNO=externalRef (repeatable); "
        "for a service owner its own organisation number",
    )
    add.add_argument("--service-owner", help="service-owner code (e.g. ttd): adds a service owner")
    add.add_argument("--scope", action="append", default=[], help="Maskinporten scope of a service owner")
    add.add_argument("--replace", action="store_true", help="overwrite an existing caller of that name")
    add.add_argument(
        "--from-system-user",
        action="store_true",
        help="take each --org's externalRef from its system user of our system in Altinn (needs --config)",
    )
    add.add_argument("--config", help="the proxy's settings (for --from-system-user)")
    add.set_defaults(func=cmd_credentials_add)

    hash_ = commands.add_parser("hash", help="print the hash of a secret read from stdin")
    hash_.add_argument(
        "--api-key", action="store_true", help="hash an ApiKey (SHA-256) instead of a password"
    )
    hash_.set_defaults(func=cmd_credentials_hash)
