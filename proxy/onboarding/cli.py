"""``altinn-proxy system register|request|status``: onboarding customers from the command line.

Exit codes: 0 done (``status``: every organisation ready), 1 an error or (``status``) an organisation
that is not ready, 3 (``register`` without ``--apply``) the register entry differs from the settings.
Each command talks to Altinn with the proxy's own Maskinporten client, which needs the scopes in
:data:`proxy.onboarding.api.SCOPES`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import aiohttp

from proxy.errors import ConfigurationError
from proxy.observability.logging import configure_logging
from proxy.onboarding.api import AuthenticationApi
from proxy.onboarding.customers import (
    Customer,
    configured_customers,
    customer_statuses,
    request_body,
    send_request,
)
from proxy.onboarding.memory import read_requests, write_requests
from proxy.onboarding.register import desired_entry, register, system_settings
from proxy.onboarding.rights import (
    SYSTEM_USER,
    OperationNeed,
    Right,
    derive_rights,
    rights_key,
    routed_resources,
)
from proxy.settings import Settings, load_settings

CHANGES_PENDING = 3


@dataclass(frozen=True)
class Onboarding:
    """Everything a ``system`` command needs, loaded from the settings."""

    settings: Settings
    rights: list[Right]
    #: The scopes of every mapped operation that acts as a system user.
    system_user_scopes: frozenset[str]
    customers: list[Customer]


def load_onboarding(settings: Settings) -> Onboarding:
    """Read the mappings and credentials the settings name and derive the rights (blocking)."""
    from proxy.identity.credentials import load_credentials
    from proxy.pipeline.loading import load_mapping_set

    system_settings(settings)
    mappings = load_mapping_set(settings.mappings_dir)
    needs = [
        OperationNeed(op.legacy.operation, op.identity.acts_as, op.identity.scopes)
        for op in mappings.operations.values()
    ]
    scopes = frozenset(s for need in needs if need.acts_as == SYSTEM_USER for s in need.scopes)
    customers = configured_customers(load_credentials(settings.identity.credentials_file))
    return Onboarding(settings, derive_rights(routed_resources(settings), needs), scopes, customers)


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[tuple[AuthenticationApi, Any]]:
    """The authentication API client and the token provider, for one command."""
    from proxy.app import maskinporten_config, signing_material
    from proxy.maskinporten.provider import TokenProvider

    timeouts = settings.timeouts
    signing = await asyncio.to_thread(signing_material, settings)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
    ) as session:
        tokens = TokenProvider(maskinporten_config(settings, signing), session)
        try:
            yield AuthenticationApi(session, tokens, settings.altinn.platform), tokens
        finally:
            await tokens.close()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


async def _register(onboarding: Onboarding, apply: bool, as_json: bool) -> int:
    entry = desired_entry(onboarding.settings, onboarding.rights)
    async with connected(onboarding.settings) as (api, _):
        outcome = await register(api, entry, apply=apply)
    if as_json:
        _print_json({**outcome.as_json(), "rights": [_right_json(r) for r in onboarding.rights]})
    else:
        print(f"system {outcome.system_id}: {outcome.action}")
        for change in outcome.changes:
            print(f"  {change}")
        if outcome.action == "pending":
            print("  (run again with --apply to make these changes)")
    return CHANGES_PENDING if outcome.action == "pending" else 0


def _right_json(right: Right) -> dict[str, Any]:
    return {
        "resource": right.resource_id,
        "actions": sorted(right.actions),
        "operations": sorted(right.operations),
    }


async def _request(onboarding: Onboarding, args: argparse.Namespace) -> int:
    settings = onboarding.settings
    system = system_settings(settings)
    if args.all and (args.org or args.external_ref):
        raise ConfigurationError("--all takes no --org or --external-ref", location="--all")
    if not args.all and not args.org:
        raise ConfigurationError("give --org ORGNO or --all", location="--org")
    if args.org and not (len(args.org) == 9 and args.org.isdigit()):
        raise ConfigurationError(f"{args.org!r} is not an organisation number (9 digits)", location="--org")
    remembered = read_requests(settings.data_dir)
    sent = []
    async with connected(settings) as (api, _):
        if args.all:
            with_user = {
                (str(u.get("reporteeOrgNo")), str(u.get("externalRef")))
                for u in await api.system_users(system.system_id)
                if not u.get("isDeleted")
            }
            targets = [
                (c.org, c.external_ref)
                for c in onboarding.customers
                if (c.org, c.external_ref) not in with_user
            ]
        else:
            configured = {c.org: c.external_ref for c in onboarding.customers}
            targets = [(args.org, args.external_ref or configured.get(args.org) or args.org)]
        for org, external_ref in targets:
            body = request_body(
                system.system_id,
                org,
                onboarding.rights,
                system.access_packages,
                external_ref=None if external_ref == org else external_ref,
                redirect_url=args.redirect_url,
            )
            request = await send_request(api, body)
            remembered[org] = request
            sent.append(request)
            await asyncio.to_thread(
                write_requests, settings.data_dir, remembered
            )  # each, should a later fail
    if args.json:
        _print_json([asdict(request) for request in sent])
    elif not sent:
        print("every configured organisation has a system user: no request sent")
    for request in sent if not args.json else ():
        print(f"{request.org}: request {request.request_id} ({request.status})")
        print(f"  ask the organisation to approve it at: {request.confirm_url}")
    return 0


async def _status(onboarding: Onboarding, as_json: bool) -> int:
    settings = onboarding.settings
    system = system_settings(settings)
    remembered = read_requests(settings.data_dir)
    async with connected(settings) as (api, tokens):
        registered = await api.get_system(system.system_id)
        statuses = await customer_statuses(
            api,
            tokens,
            system_id=system.system_id,
            customers=onboarding.customers,
            needed=onboarding.rights,
            registered_rights=rights_key((registered or {}).get("rights") or ()),
            remembered=remembered,
            scopes=onboarding.system_user_scopes,
        )
    for status in statuses:
        if status.request is not None:
            remembered[status.customer.org] = status.request
    write_requests(settings.data_dir, remembered)
    if as_json:
        _print_json(
            {
                "systemId": system.system_id,
                "registered": registered is not None,
                "organisations": [s.as_json() for s in statuses],
            }
        )
    else:
        print(
            f"system {system.system_id}: {'registered' if registered else 'NOT registered (run system register --apply)'}"
        )
        for status in statuses:
            print(status.line())
    return 0 if registered and all(s.ready for s in statuses) else 1


def external_refs_from_system_users(config: Path, orgs: list[str]) -> dict[str, str]:
    """``org -> externalRef`` of our system's system user of each organisation (for ``credentials add``).

    An organisation with no system user, or with several (then the operator picks with ORG=REF), is a
    configuration error that says what to do.
    """
    settings = load_settings(config)
    system = system_settings(settings)

    async def lookup() -> list[dict[str, Any]]:
        async with connected(settings) as (api, _):
            return await api.system_users(system.system_id)

    users = [u for u in asyncio.run(lookup()) if not u.get("isDeleted")]
    found: dict[str, str] = {}
    for org in orgs:
        refs = sorted({str(u.get("externalRef") or org) for u in users if str(u.get("reporteeOrgNo")) == org})
        if not refs:
            raise ConfigurationError(
                f"organisation {org} has no system user of system {system.system_id}: send it a request "
                f"(altinn-proxy system request --org {org}) and add the caller once it is approved",
                location="--org",
            )
        if len(refs) > 1:
            raise ConfigurationError(
                f"organisation {org} has several system users of system {system.system_id} "
                f"(externalRef {', '.join(refs)}): pick one with --org {org}=EXTERNALREF",
                location="--org",
            )
        found[org] = refs[0]
    return found


class _CurrentStderr(io.TextIOBase):
    """A stream that writes to the current ``sys.stderr`` (which tests and shells may swap)."""

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def cmd_system(args: argparse.Namespace) -> int:
    """Dispatch ``system register|request|status``."""
    settings = load_settings(Path(args.config))
    # Logs go to whatever stderr is when written: stdout is the command's answer.
    configure_logging(settings.logging.format, settings.logging.level, stream=cast(TextIO, _CurrentStderr()))
    onboarding = load_onboarding(settings)
    if args.system_command == "register":
        return asyncio.run(_register(onboarding, args.apply, args.json))
    if args.system_command == "request":
        return asyncio.run(_request(onboarding, args))
    return asyncio.run(_status(onboarding, args.json))


def add_cli_commands(subparsers: Any) -> None:
    """Register ``system register|request|status`` on the top-level subparsers."""
    system = subparsers.add_parser(
        "system", help="register the system in Altinn and onboard customer organisations"
    )
    commands = system.add_subparsers(dest="system_command", required=True, metavar="COMMAND")

    register_ = commands.add_parser(
        "register", help="show (and with --apply make) changes to the system register entry"
    )
    register_.add_argument("--apply", action="store_true", help="create or update the entry")

    request = commands.add_parser("request", help="send a system-user request to a customer organisation")
    request.add_argument("--org", help="the customer's organisation number")
    request.add_argument(
        "--all", action="store_true", help="every configured organisation without a system user"
    )
    request.add_argument(
        "--external-ref", help="externalRef of the system user (default: the organisation number)"
    )
    request.add_argument(
        "--redirect-url",
        help="where Altinn sends the customer after approving (one of system.allowed_redirect_urls)",
    )

    status = commands.add_parser(
        "status", help="one line per configured organisation; exit 1 unless all are ready"
    )
    for command in (register_, request, status):
        command.add_argument("--config", required=True, help="settings YAML file")
        command.add_argument("--json", action="store_true", help="print JSON")
        command.set_defaults(func=cmd_system)
