"""Deployment routing: which Altinn 3 target a legacy ServiceCode + ServiceEdition stands for.

The table comes from the settings file (never from mapping files); expressions reach it through
``route(service_code, service_edition)``. An unrouted pair raises :class:`proxy.errors.UnknownService`,
the fault a legacy client got from Altinn 2 for a service that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from proxy.errors import UnknownService


@dataclass(frozen=True)
class FormRoute:
    """A form a legacy form service accepts (DataFormatId/DataFormatVersion) and its app data type."""

    data_format_id: str
    data_format_version: str
    data_type: str


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
    #: The main form's DataFormatId/DataFormatVersion (any, when unset).
    data_format_id: str | None = None
    data_format_version: str | None = None
    sub_forms: tuple[FormRoute, ...] = ()
    #: AttachmentTypeName → app data type, and the data type of an attachment without one (or None).
    attachment_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_attachment_type: str | None = None

    def form_type(self, data_format_id: object, data_format_version: object) -> str | None:
        """The app data type of a form with this DataFormatId/DataFormatVersion, or None if refused."""
        wanted = (_text(data_format_id), _text(data_format_version))
        if self.data_type is not None and (
            self.data_format_id is None
            or wanted
            == (
                self.data_format_id,
                self.data_format_version or wanted[1],
            )
        ):
            return self.data_type
        for sub in self.sub_forms:
            if wanted == (sub.data_format_id, sub.data_format_version):
                return sub.data_type
        return None

    @property
    def app_id(self) -> str | None:
        """``org/app`` of an app route, else None."""
        return None if self.org is None or self.app is None else f"{self.org}/{self.app}"

    def form_format(self, data_type: object) -> dict[str, str | None] | None:
        """The DataFormatId/DataFormatVersion of a form data type (``data_format_id``,
        ``data_format_version``), or None when the data type takes no form."""
        name = _text(data_type)
        if name and name == self.data_type:
            return {"data_format_id": self.data_format_id, "data_format_version": self.data_format_version}
        for sub in self.sub_forms:
            if sub.data_type == name:
                return {"data_format_id": sub.data_format_id, "data_format_version": sub.data_format_version}
        return None

    def attachment_type_name(self, data_type: object) -> str | None:
        """The AttachmentTypeName an attachment data type was routed from (None for the default)."""
        name = _text(data_type)
        return next(
            (type_name for type_name, target in self.attachment_types.items() if target == name), None
        )

    def attachment_type(self, type_name: object) -> str | None:
        """The app data type of an attachment with this AttachmentTypeName (the default data type for
        one without a name), or None if refused."""
        name = _text(type_name)
        return self.attachment_types.get(name) if name else self.default_attachment_type


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


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

    def find(self, service_code: object, service_edition: object) -> Route | None:
        """The route, or None for an unrouted pair (for answers that report it themselves)."""
        return self.routes.get((_text(service_code), _text(service_edition)))

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

    def app_routes(self, owner: object, service_code: object = None) -> tuple[Route, ...]:
        """The app routes of service owner ``owner`` (of one ServiceCode when given, any edition)."""
        code = _text(service_code)
        return tuple(
            route
            for key, route in self.routes.items()
            if route.app_id is not None and route.org == _text(owner) and (not code or key[0] == code)
        )

    def by_app(self, app_id: object) -> Route | None:
        """The first route to app ``org/app``, or None (an app no legacy service is routed to)."""
        wanted = _text(app_id)
        return next((route for route in self.routes.values() if route.app_id == wanted), None)

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
