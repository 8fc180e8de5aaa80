"""Per-organisation onboarding state from live traffic: token outcomes and Altinn 3 refusals.

The monitor sits on two seams of the outbound path and never changes what flows through them:

* :class:`ObservedTokens` wraps the token provider: a system-user token issued means the organisation
  has a system user; Maskinporten's MP-303 means it has none (or deleted it).
* :meth:`OnboardingMonitor.observe_answer` sees every Altinn 3 answer to a system-user call: a 403 means
  the system user lacks the right for that API's resource (withdrawn or never given), a success that it
  has it. Rights are tracked per API family, so a withdrawn broker right does not hide behind a working
  correspondence call.

Invariants: state changes are O(1) and in memory (no I/O on the hot path); the metric children of each
configured organisation exist from the start; what the legacy caller is told (:meth:`explain`) names
the organisation, the system, the request's date and confirm URL, never a token or key.
The per-request :class:`Touched` (a context variable) tells the SOAP handler which organisation the
current call's refusal was about, across the executor's fan-out tasks.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from proxy.errors import TokenRefused
from proxy.maskinporten.request import TokenRequest, TokenSource
from proxy.onboarding import metrics
from proxy.onboarding.memory import SentRequest
from proxy.onboarding.states import State

#: Altinn 3 API families whose refusal means a missing right, and the routing table they serve.
API_TABLES: Mapping[str, str] = {
    "broker": "broker",
    "correspondence": "correspondence",
    "dialogporten": "correspondence",
    "apps": "apps",
    "storage": "apps",
}
MAX_ERROR_TEXT = 300


@dataclass
class OrgState:
    """What live traffic says about one organisation."""

    org: str
    state: State = State.UNKNOWN
    since: float | None = None
    #: Routing tables (``broker``, ``correspondence``, ``apps``) whose calls Altinn 3 refused with 403.
    refused_tables: set[str] = field(default_factory=set)
    last_token: str | None = None
    last_token_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    #: The system-user request last sent to the organisation, as ``system request``/``status`` saw it.
    request: SentRequest | None = None


@dataclass
class Touched:
    """The organisations whose onboarding state the current legacy call changed for the worse."""

    orgs: list[str] = field(default_factory=list)


_TOUCHED: contextvars.ContextVar[Touched | None] = contextvars.ContextVar("onboarding_touched", default=None)


def watch_call() -> Touched:
    """Start collecting, for the current task and its children, the organisations a refusal hit."""
    touched = Touched()
    _TOUCHED.set(touched)
    return touched


class OnboardingMonitor:
    """The onboarding state of every configured customer organisation, updated by live traffic."""

    def __init__(
        self,
        orgs: Iterable[str],
        *,
        system_id: str | None,
        resources: Mapping[str, tuple[str, ...]],
        load_requests: Callable[[], Awaitable[Mapping[str, SentRequest]]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.system_id = system_id
        self._load_requests = load_requests
        self._resources = resources
        self._clock = clock
        self.orgs: dict[str, OrgState] = {org: OrgState(org) for org in sorted(set(orgs))}
        metrics.precreate(self.orgs)

    def state_of(self, org: str) -> OrgState:
        """The state of ``org`` (created at ``unknown`` for an organisation not configured at start)."""
        found = self.orgs.get(org)
        if found is None:
            found = self.orgs[org] = OrgState(org)
            metrics.precreate([org])
        return found

    def _move(self, entry: OrgState, state: State) -> None:
        if entry.state is not state:
            entry.state = state
            entry.since = self._clock()
            metrics.show(entry.org, state)

    @staticmethod
    def _touch(org: str) -> None:
        touched = _TOUCHED.get()
        if touched is not None and org not in touched.orgs:
            touched.orgs.append(org)

    def _settle(self, entry: OrgState) -> None:
        self._move(entry, State.RIGHTS_MISSING if entry.refused_tables else State.READY)

    # -- what traffic reports -------------------------------------------------------------------------

    def token_issued(self, org: str) -> None:
        """Maskinporten issued a system-user token for ``org``: it has a system user."""
        entry = self.state_of(org)
        entry.last_token, entry.last_token_at = "ok", self._clock()
        if entry.state is not State.RIGHTS_MISSING:
            self._settle(entry)

    def token_refused(self, org: str, error: TokenRefused) -> None:
        """Maskinporten (or the exchange) refused ``org``'s grant."""
        entry = self.state_of(org)
        now = self._clock()
        entry.last_token, entry.last_token_at = f"refused {error.code or error.kind}", now
        entry.last_error, entry.last_error_at = error.message[:MAX_ERROR_TEXT], now
        if error.code == "MP-303":
            entry.refused_tables.clear()
            self._move(
                entry, _WITHOUT_USER.get(entry.request.status if entry.request else "", State.NO_SYSTEM_USER)
            )
            self._touch(org)

    def observe_answer(self, token: TokenRequest, api: str, status: int) -> None:
        """Altinn 3 answered ``status`` to a call made with ``token`` to ``api``."""
        org = token.system_user_org
        table = API_TABLES.get(api)
        if org is None or table is None:
            return
        entry = self.state_of(org)
        if status == 403:
            entry.refused_tables.add(table)
            entry.last_error = f"Altinn 3 ({api}) refused the system user (HTTP 403)"
            entry.last_error_at = self._clock()
            self._settle(entry)
            self._touch(org)
        elif status < 400:
            entry.refused_tables.discard(table)
            self._settle(entry)

    def remember(self, requests: Mapping[str, SentRequest]) -> None:
        """Take in the requests the ``system`` commands sent (from their file in the data directory).

        An organisation without a system user (or not yet seen) whose request is open reads ``pending``;
        one whose request was rejected or timed out reads so.
        """
        for org, request in requests.items():
            entry = self.orgs.get(org)
            if entry is None:
                continue
            entry.request = request
            if entry.state in _WAITING:
                self._move(entry, _WITHOUT_USER.get(request.status, entry.state))

    async def refresh(self) -> None:
        """Read the requests the ``system`` commands remembered (a small file, read off the loop)."""
        if self._load_requests is not None:
            self.remember(await self._load_requests())

    async def approved_since(self, org: str) -> bool:
        """Whether ``org``'s request reads ``Accepted`` now (``system status`` saw the approval)."""
        await self.refresh()
        entry = self.orgs.get(org)
        return entry is not None and entry.request is not None and entry.request.status == "Accepted"

    # -- what the legacy caller is told ---------------------------------------------------------------

    def explain(self, org: str) -> str | None:
        """The fault text for a call refused because ``org`` is not onboarded, or None."""
        entry = self.orgs.get(org)
        if entry is None:
            return None
        system = f"system {self.system_id}" if self.system_id else "this system"
        request = entry.request
        if entry.state is State.PENDING and request is not None:
            return (
                f"organisation {org} has not approved this system's access: ask it to approve the request "
                f"sent on {request.created[:10]} at {request.confirm_url}"
            )
        if entry.state in (State.REJECTED, State.EXPIRED) and request is not None:
            what = "rejected" if entry.state is State.REJECTED else "did not answer"
            return (
                f"organisation {org} {what} the access request for {system} sent on {request.created[:10]}: "
                f"send a new one (altinn-proxy system request --org {org}) once it agrees"
            )
        if entry.state is State.NO_SYSTEM_USER:
            return (
                f"Altinn 3 has no system user for this organisation ({org}) and {system}: send it a request "
                f"(altinn-proxy system request --org {org}) or ask it to create one in the Altinn portal"
            )
        if entry.state is State.RIGHTS_MISSING:
            resources = sorted(r for table in entry.refused_tables for r in self._resources.get(table, ()))
            return (
                f"organisation {org} has withdrawn (or never gave) the system user of {system} the right to "
                f"{', '.join(resources) or 'this service'} in Altinn: ask it to give the right back"
            )
        return None


#: Altinn's request status -> the state of an organisation that has no system user.
_WITHOUT_USER: Mapping[str, State] = {
    "New": State.PENDING,
    "Rejected": State.REJECTED,
    "Denied": State.REJECTED,
    "Timedout": State.EXPIRED,
}
#: States in which a remembered request decides what the organisation is waiting for.
_WAITING = frozenset({State.UNKNOWN, State.NO_SYSTEM_USER, State.PENDING, State.REJECTED, State.EXPIRED})


class ObservedTokens:
    """A :class:`TokenSource` that reports each system-user token outcome to the monitor."""

    def __init__(self, inner: TokenSource, monitor: OnboardingMonitor) -> None:
        self._inner = inner
        self._monitor = monitor
        #: Organisations whose remembered refusal was dropped once after an approval, until a token comes.
        self._retried: set[str] = set()

    async def token(self, request: TokenRequest) -> str:
        """The inner source's token; its outcome is reported for system-user tokens.

        A remembered MP-303 for an organisation whose request has since been approved is dropped and
        the grant sent again, once per refusal: the approval then takes effect at the next call instead
        of when the refusal lapses, and a system user deleted after approval cannot cause a grant flood.
        """
        org = request.system_user_org
        try:
            token = await self._inner.token(request)
        except TokenRefused as error:
            if org is None:
                raise
            if (
                error.code == "MP-303"
                and org not in self._retried
                and await self._monitor.approved_since(org)
            ):
                self._retried.add(org)
                self._inner.invalidate(request, "")
                return await self.token(request)
            self._monitor.token_refused(org, error)
            raise
        if org is not None:
            self._retried.discard(org)
            self._monitor.token_issued(org)
        return token

    def invalidate(self, request: TokenRequest, token: str) -> None:
        """Forget ``token`` in the inner source."""
        self._inner.invalidate(request, token)
