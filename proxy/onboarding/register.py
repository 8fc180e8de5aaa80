"""``system register``: our entry in Altinn's system register, as the settings say it should be.

The desired entry is built from the ``system`` settings, the Maskinporten client id and the derived
rights; :func:`differences` compares it with what Altinn holds, field by field, in words an operator
reads; :func:`register` creates or replaces the entry (a full replacement, as Altinn's PUT is) only
when something differs, so running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.errors import ConfigurationError
from proxy.onboarding.api import AuthenticationApi
from proxy.onboarding.rights import Right, rights_key
from proxy.settings import Settings, SystemRegistration


@dataclass(frozen=True)
class RegisterOutcome:
    """What ``system register`` found and did."""

    system_id: str
    changes: tuple[str, ...]
    #: ``created``, ``updated``, ``unchanged`` or ``pending`` (differences found, not applied).
    action: str

    def as_json(self) -> dict[str, Any]:
        """The outcome for ``--json``."""
        return {"systemId": self.system_id, "action": self.action, "changes": list(self.changes)}


def system_settings(settings: Settings) -> SystemRegistration:
    """The ``system`` section, or a configuration error naming what to add."""
    if settings.system is None:
        raise ConfigurationError(
            "the settings have no 'system' section (system.vendor_org and system.name make the system id)",
            location="system",
        )
    return settings.system


def desired_entry(settings: Settings, rights: Sequence[Right]) -> dict[str, Any]:
    """The ``RegisterSystemRequest`` the settings describe."""
    system = system_settings(settings)
    entry: dict[str, Any] = {
        "id": system.system_id,
        "vendor": {"ID": f"0192:{system.vendor_org}"},
        "name": dict(system.title),
        "description": dict(system.description),
        "rights": [right.as_altinn() for right in rights],
        "clientId": [settings.maskinporten.client_id],
        "isVisible": system.visible,
        "allowedRedirectUrls": list(system.allowed_redirect_urls),
    }
    if system.access_packages:
        # Only sent when named: the published contract of RegisterSystemRequest predates them.
        entry["accessPackages"] = [{"urn": urn} for urn in system.access_packages]
    return entry


def differences(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> list[str]:
    """What would change, one line each (``+`` added, ``-`` removed, ``~`` changed)."""
    if current is None:
        return (
            [f"+ system {desired['id']} (not registered yet)"]
            + [f"+ right {resource}" for resource in sorted(rights_key(desired["rights"]))]
            + [f"+ access package {urn}" for urn in _packages(desired)]
        )
    lines: list[str] = []
    for key in ("name", "description"):
        old, new = dict(current.get(key) or {}), dict(desired[key])
        for language in sorted(set(old) | set(new)):
            if old.get(language) != new.get(language):
                lines.append(f"~ {key}.{language}: {old.get(language)!r} -> {new.get(language)!r}")
    old_rights, new_rights = rights_key(current.get("rights") or ()), rights_key(desired["rights"])
    lines += [f"+ right {resource}" for resource in sorted(new_rights - old_rights)]
    lines += [f"- right {resource}" for resource in sorted(old_rights - new_rights)]
    old_packages, new_packages = set(_packages(current)), set(_packages(desired))
    lines += [f"+ access package {urn}" for urn in sorted(new_packages - old_packages)]
    lines += [f"- access package {urn}" for urn in sorted(old_packages - new_packages)]
    for client in sorted(set(desired["clientId"]) - set(current.get("clientId") or ())):
        lines.append(f"+ Maskinporten client {client}")
    if bool(current.get("isVisible", True)) != desired["isVisible"]:
        lines.append(f"~ isVisible: {current.get('isVisible')} -> {desired['isVisible']}")
    old_urls, new_urls = set(current.get("allowedRedirectUrls") or ()), set(desired["allowedRedirectUrls"])
    lines += [f"+ redirect URL {url}" for url in sorted(new_urls - old_urls)]
    lines += [f"- redirect URL {url}" for url in sorted(old_urls - new_urls)]
    return lines


def _packages(entry: Mapping[str, Any]) -> list[str]:
    return sorted(str(p.get("urn")) for p in entry.get("accessPackages") or () if isinstance(p, Mapping))


def merged_for_update(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The full replacement to PUT: ours, keeping client ids others added to the entry."""
    merged = dict(desired)
    clients = list(desired["clientId"])
    clients += [client for client in current.get("clientId") or () if client not in clients]
    merged["clientId"] = clients
    return merged


async def register(api: AuthenticationApi, entry: Mapping[str, Any], *, apply: bool) -> RegisterOutcome:
    """Compare ``entry`` with Altinn's and, with ``apply``, create or replace it."""
    system_id = str(entry["id"])
    current = await api.get_system(system_id)
    changes = tuple(differences(current, entry))
    if not changes:
        return RegisterOutcome(system_id, changes, "unchanged")
    if not apply:
        return RegisterOutcome(system_id, changes, "pending")
    if current is None:
        await api.create_system(entry)
        return RegisterOutcome(system_id, changes, "created")
    await api.replace_system(merged_for_update(current, entry))
    return RegisterOutcome(system_id, changes, "updated")
