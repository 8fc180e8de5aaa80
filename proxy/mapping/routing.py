"""Deployment routing: which Altinn 3 target a legacy ServiceCode + ServiceEdition stands for.

The table comes from the settings file (never from mapping files); expressions reach it through
``route(service_code, service_edition)``. An unrouted pair raises :class:`proxy.errors.UnknownService`,
the fault a legacy client got from Altinn 2 for a service that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from proxy.errors import UnknownService


@dataclass(frozen=True)
class Route:
    """The Altinn 3 target(s) of one legacy service; only the fields a service uses are set."""

    service_code: str
    service_edition: str
    #: Correspondence (or generic) resource id, e.g. ``skd-migratedcorrespondence-5229-1``.
    resource_id: str | None = None
    #: Broker resource id.
    broker_resource: str | None = None
    #: Inject ``manifest.xml`` into broker downloads (Altinn 3's manifest shim).
    manifest_shim: bool = False
    #: Broker uploads must be ZIP archives; anything else is refused before it is uploaded.
    require_zip: bool = False
    #: App owner and name (``{org}/{app}``) and the data type of the main form.
    org: str | None = None
    app: str | None = None
    data_type: str | None = None


@dataclass(frozen=True)
class RoutingTable:
    """All routes of a deployment, looked up by (ServiceCode, ServiceEdition) as strings."""

    routes: Mapping[tuple[str, str], Route] = field(default_factory=dict)

    @classmethod
    def of(cls, routes: Iterable[Route]) -> RoutingTable:
        """A table from a list of routes (a later duplicate wins; the settings loader refuses those)."""
        return cls({(r.service_code, r.service_edition): r for r in routes})

    @property
    def requires_zip(self) -> bool:
        """Whether any route requires ZIP uploads (lets a mapping skip the look-up when none does)."""
        return any(route.require_zip for route in self.routes.values())

    def lookup(self, service_code: object, service_edition: object) -> Route:
        """The route, or :class:`UnknownService` naming the pair (no secrets can be in it)."""
        code = "" if service_code is None else str(service_code).strip()
        edition = "" if service_edition is None else str(service_edition).strip()
        found = self.routes.get((code, edition))
        if found is None:
            raise UnknownService(
                f"The service with ServiceCode {code[:20]!r} and ServiceEdition {edition[:20]!r} "
                "is not available through this proxy"
            )
        return found

    def by_resource(self, resource_id: object) -> Route | None:
        """The route whose correspondence ``resource_id`` (or broker resource) this is, or None.

        The reverse of :meth:`lookup`, for answers that must show a legacy ServiceCode/ServiceEdition
        for an Altinn 3 item; the first matching route wins when several share a resource.
        """
        wanted = "" if resource_id is None else str(resource_id).strip()
        for route in self.routes.values():
            if wanted and wanted in (route.resource_id, route.broker_resource):
                return route
        return None

    def for_codes(self, service_codes: object) -> tuple[Route, ...]:
        """Every route of the legacy ServiceCode(s), whatever the edition (search filters have none).

        Takes one code or a list of codes; unrouted codes simply match nothing.
        """
        if service_codes is None:
            return ()
        items: Iterable[object] = (
            [service_codes]
            if isinstance(service_codes, str | int) or not isinstance(service_codes, Iterable)
            else service_codes
        )
        codes = {str(code).strip() for code in items if code is not None}
        return tuple(route for key, route in self.routes.items() if key[0] in codes)
