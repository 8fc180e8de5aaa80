"""How many legacy calls the process serves at once.

Beyond ``limits.max_in_flight`` a call is refused at once with :class:`~proxy.errors.Overloaded`
(a Server fault of the caller's SOAP version, or the legacy REST error with 503), instead of joining
a backlog that grows memory without bound while the proxy is starved of CPU or its neighbours are
slow. Refused calls have sent nothing to Altinn 3, so a legacy client may resend them as they are.
Health, metrics and WSDL requests are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter

from proxy.errors import Overloaded

OVERLOAD_REFUSALS = Counter(
    "altinn_proxy_http_overload_refusals_total",
    "Legacy calls refused at once because the process was serving limits.max_in_flight calls",
)


class Admission:
    """A non-blocking counter of the calls being served; the ``limit + 1``-th is refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.serving = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Count one call for the duration of the block; raise ``Overloaded`` when at the limit."""
        if self.serving >= self.limit:
            OVERLOAD_REFUSALS.inc()
            raise Overloaded(
                f"The proxy is serving as many calls as it is set to (limits.max_in_flight = {self.limit}); "
                "nothing was sent to Altinn 3: retry in a moment"
            )
        self.serving += 1
        try:
            yield
        finally:
            self.serving -= 1
