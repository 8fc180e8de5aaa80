"""Wiring: settings in, a ready aiohttp application out.

Everything with a lifetime (the outbound HTTP session, the store, the token provider, the mapping
registry) is created in one cleanup context, in dependency order, and closed in reverse order after
in-flight requests have finished.
"""

from __future__ import annotations

from aiohttp import web

from proxy.settings import Settings
from proxy.web.health import Readiness, add_health_routes
from proxy.web.middleware import request_context

SETTINGS = web.AppKey("settings", Settings)


def create_app(settings: Settings, readiness: Readiness | None = None) -> web.Application:
    """The proxy's application for ``settings`` (not yet started)."""
    readiness = readiness or Readiness()
    app = web.Application(middlewares=[request_context], client_max_size=settings.limits.max_body_bytes)
    app[SETTINGS] = settings
    add_health_routes(app, readiness)
    return app
