"""The migration board: a read-only page on the metrics port listing each legacy caller and
organisation with its onboarding state, pending confirm URLs, the legacy operations it used recently
and the last error.

Server-rendered HTML with inline CSS: no script, no external asset, so it works offline and behind any
proxy. Every value is escaped by the template (Jinja2 autoescape). Nothing secret is on it: caller ids,
organisation numbers, operation names, confirm URLs and error texts that never hold a token.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jinja2
from aiohttp import web

from proxy.onboarding.monitor import OrgState
from proxy.onboarding.states import NOT_READY, State
from proxy.onboarding.usage import OperationUse

#: What each state is called on the board.
STATE_TEXT = {
    State.READY: "Ready",
    State.PENDING: "Waiting for approval",
    State.REJECTED: "Request rejected",
    State.EXPIRED: "Request expired",
    State.NO_SYSTEM_USER: "No system user",
    State.RIGHTS_MISSING: "Rights withdrawn",
    State.UNKNOWN: "Not seen yet",
}


@dataclass(frozen=True)
class CallerRow:
    """One legacy caller and one organisation it acts for (``org`` None: a service owner)."""

    caller: str
    org: str | None
    state: OrgState | None
    missing: tuple[str, ...] = ()
    operations: tuple[OperationUse, ...] = ()


@dataclass(frozen=True)
class Board:
    """Everything the page shows."""

    system_id: str | None
    rows: Sequence[CallerRow]
    untranslated_strangers: Sequence[OperationUse] = field(default=())
    now: float = field(default_factory=time.time)


BoardSource = Callable[[], Awaitable[Board | None]]

_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>altinn-proxy migration board</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .2rem}
p.meta{color:#555;margin:0 0 1rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #ccc;padding:.45rem .6rem;vertical-align:top;text-align:left}
th{background:#eee}
.state{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;font-weight:600;white-space:nowrap}
.ready{background:#d7f5dd;color:#0a5c1c}
.pending{background:#fff1c2;color:#6b4b00}
.bad{background:#fbd3d3;color:#8a0f0f}
.unknown{background:#e4e4e4;color:#333}
ul{margin:0;padding-left:1.1rem}
.untranslated{color:#8a0f0f}
small{color:#555}
</style></head>
<body>
<h1>Migration board</h1>
<p class="meta">System {{ board.system_id or "(no system configured)" }} &middot; {{ rows|length }} caller/organisation pairs,
{{ not_ready }} not ready &middot; generated {{ stamp(board.now) }} UTC. Reload the page to refresh.</p>
<table>
<thead><tr><th>Caller</th><th>Organisation</th><th>State</th><th>What to do</th><th>Legacy operations (last {{ days }} days)</th><th>Last error</th></tr></thead>
<tbody>
{% for row in rows %}
<tr id="row-{{ row.caller }}-{{ row.org or 'owner' }}" data-state="{{ row.state.state if row.state else 'service_owner' }}">
<td>{{ row.caller }}</td>
<td>{{ row.org or "service owner (own token)" }}</td>
<td>{% if row.state %}<span class="state {{ css(row.state.state) }}">{{ text(row.state.state) }}</span>
{% if row.state.since %}<br><small>since {{ stamp(row.state.since) }}</small>{% endif %}
{% if row.state.last_token %}<br><small>last token: {{ row.state.last_token }}</small>{% endif %}
{% else %}<span class="state ready">No system user needed</span>{% endif %}</td>
<td>{% if row.state and row.state.state == "pending" and row.state.request %}Ask {{ row.org }} to approve the request sent {{ row.state.request.created[:10] }}:
<br><a class="confirm" href="{{ row.state.request.confirm_url }}">{{ row.state.request.confirm_url }}</a>
{% elif row.state and row.state.state == "rights_missing" %}Ask {{ row.org }} to give back the right to {{ row.missing|join(", ") }}
{% elif row.state and row.state.state in ("no_system_user", "rejected", "expired") %}Send a request: <code>altinn-proxy system request --org {{ row.org }}</code>
{% else %}&mdash;{% endif %}</td>
<td>{% if row.operations %}<ul>{% for use in row.operations %}
<li class="{{ 'translated' if use.translated else 'untranslated' }}">{{ use.service }} / {{ use.operation }}:
{{ use.calls }} call{{ "s" if use.calls != 1 }}{% if use.faults %}, {{ use.faults }} failed{% endif %}{% if not use.translated %} (not translated){% endif %}
<small>last {{ stamp(use.last_seen) }}</small></li>{% endfor %}</ul>{% else %}<small>none</small>{% endif %}</td>
<td>{% if row.state and row.state.last_error %}{{ row.state.last_error }}<br><small>{{ stamp(row.state.last_error_at) }}</small>{% else %}&mdash;{% endif %}</td>
</tr>
{% endfor %}
</tbody></table>
{% if board.untranslated_strangers %}<h2>Untranslated operations called without valid credentials</h2><ul>
{% for use in board.untranslated_strangers %}<li class="untranslated">{{ use.service }} / {{ use.operation }}: {{ use.calls }} calls</li>{% endfor %}
</ul>{% endif %}
</body></html>
"""
)


def _css(state: State) -> str:
    if state is State.READY:
        return "ready"
    if state is State.PENDING:
        return "pending"
    return "bad" if state in NOT_READY else "unknown"


def _stamp(moment: float | None) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M") if moment else ""


def render_board(board: Board, *, days: int = 7) -> str:
    """The page's HTML."""
    rows = list(board.rows)
    return _TEMPLATE.render(
        board=board,
        rows=rows,
        days=days,
        not_ready=sum(1 for row in rows if row.state is not None and row.state.state in NOT_READY),
        css=_css,
        text=lambda state: STATE_TEXT[State(state)],
        stamp=_stamp,
    )


def add_board_routes(app: web.Application, source: BoardSource) -> None:
    """Serve the board at ``/`` and ``/board`` of ``app`` (the metrics port)."""

    async def board(_: web.Request) -> web.Response:
        found = await source()
        if found is None:
            return web.Response(status=503, text="the proxy is starting; reload in a moment")
        return web.Response(
            text=render_board(found),
            content_type="text/html",
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    app.router.add_get("/board", board)
    app.router.add_get("/", board)
