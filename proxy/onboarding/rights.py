"""The rights the proxy's system needs, derived from the configured routing and the mappings.

Pure. A mapped operation that acts as a *system user* reaches Altinn 3 with the Maskinporten scopes it
declares; each scope family names the routing table whose resources it touches:

* ``altinn:correspondence.*`` (and Dialogporten, which shows correspondence dialogs): every routed
  correspondence resource;
* ``altinn:broker.*``: every routed broker resource;
* ``altinn:instances.*`` (apps): every routed app, as resource ``app_{org}_{app}``.

Service-owner operations use the service owner's own token and need no system user, so they add no
right. Altinn's system register takes one resource per right ("only one resource per Right"), and it
matches a request's rights against the system's by resource, so a right here is a resource id; the
actions (read, write) are kept for the operator's listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from proxy.settings import Settings

RESOURCE_ATTRIBUTE = "urn:altinn:resource"
SYSTEM_USER = "system_user"

#: Scope -> (routing table, action).
_SCOPE_FAMILIES: Mapping[str, tuple[str, str]] = {
    "altinn:correspondence.read": ("correspondence", "read"),
    "altinn:correspondence.write": ("correspondence", "write"),
    "altinn:broker.read": ("broker", "read"),
    "altinn:broker.write": ("broker", "write"),
    "altinn:instances.read": ("apps", "read"),
    "altinn:instances.write": ("apps", "write"),
}


@dataclass(frozen=True, order=True)
class Right:
    """One single-resource right, with the actions and legacy operations that need it."""

    resource_id: str
    actions: frozenset[str] = field(default=frozenset(), compare=False)
    operations: frozenset[str] = field(default=frozenset(), compare=False)

    def as_altinn(self) -> dict[str, object]:
        """The ``Right`` JSON of Altinn's system register and system-user requests."""
        return {"resource": [{"id": RESOURCE_ATTRIBUTE, "value": self.resource_id}]}


@dataclass(frozen=True)
class OperationNeed:
    """What one mapped operation declares: its name, whom it acts as and its scopes."""

    name: str
    acts_as: str
    scopes: frozenset[str]


def routed_resources(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The resource ids of each routing table (``correspondence``, ``broker``, ``apps``)."""
    routing = settings.routing
    return {
        "correspondence": tuple(route.resource_id for route in routing.correspondence),
        "broker": tuple(route.resource_id for route in routing.broker),
        "apps": tuple(f"app_{route.org}_{route.app}" for route in routing.apps),
    }


def derive_rights(resources: Mapping[str, Iterable[str]], operations: Iterable[OperationNeed]) -> list[Right]:
    """The rights a system user needs for ``operations`` over the routed ``resources``, sorted."""
    actions: dict[str, set[str]] = {}
    users: dict[str, set[str]] = {}
    for operation in operations:
        if operation.acts_as != SYSTEM_USER:
            continue
        for scope in operation.scopes:
            family = _SCOPE_FAMILIES.get(scope)
            if family is None:
                continue
            table, action = family
            for resource_id in resources.get(table, ()):
                actions.setdefault(resource_id, set()).add(action)
                users.setdefault(resource_id, set()).add(operation.name)
    return sorted(
        Right(resource_id, frozenset(actions[resource_id]), frozenset(users[resource_id]))
        for resource_id in actions
    )


def rights_key(rights: Iterable[Mapping[str, object]]) -> frozenset[str]:
    """The resource ids of Altinn ``Right`` JSON values (how Altinn compares rights)."""
    found: set[str] = set()
    for right in rights:
        resource = right.get("resource")
        if not isinstance(resource, list):
            continue
        for attribute in resource:
            if isinstance(attribute, Mapping) and attribute.get("id") == RESOURCE_ATTRIBUTE:
                found.add(str(attribute.get("value")))
            elif isinstance(attribute, Mapping) and attribute.get("id") == "urn:altinn:app":
                org = next(
                    (
                        a.get("value")
                        for a in resource
                        if isinstance(a, Mapping) and a.get("id") == "urn:altinn:org"
                    ),
                    None,
                )
                found.add(f"app_{org}_{attribute.get('value')}")
    return frozenset(found)
