"""Maskinporten down, through the real proxy process (``altinn-proxy serve`` on a real socket).

The fake Maskinporten issues tokens that live ``LIFETIME`` seconds (the real one: 120) and, while its
``outage_status`` is set, answers every grant with that status. Legacy callers are zeep clients of
the broker service, whose calls use Maskinporten's own tokens (no exchange). What must hold:

* calls keep working on the cached token while Maskinporten is down, without a new token;
* once that token is no longer usable, every call fails at once with a Server fault that says no
  token could be had, whose ErrorGuid leads the operator to the log line naming Maskinporten and
  its answer; each such call tries Maskinporten once and never reaches Altinn 3;
* the first call after Maskinporten is back succeeds, in the same process: an outage is never
  remembered; a grant Maskinporten *refused* during the outage is remembered only for
  ``maskinporten.refusal_cache_seconds``, after which calls recover by themselves;
* no fault text, log line or metric holds a secret (the deployment's own scan, and the faults').

Nothing asserts a duration: the test waits for what the proxy does. The one assumption is that the
call right after the token was fetched comes within ``LIFETIME`` minus its safety margin (18 s).
The ten-minute outage runs in ``bench/maskinporten_outage.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.errors import TokenError
from proxy.sandbox.world import SandboxKeys
from tests.e2e.chaos import until
from tests.e2e.conftest import fault_fields
from tests.e2e.leaks import known_secrets, leaks
from tests.e2e.test_altinn3_faults import Faulty, faulty_deployment
from tests.e2e.test_broker import RECIPIENT, _available

pytestmark = pytest.mark.slow

#: Seconds the fake's tokens live; the proxy hands one out until a quarter of it is left.
LIFETIME = 24
REFUSAL_SECONDS = 1.0
FAST_FAILURES = 5
POLL_SECONDS = 0.5


@pytest.fixture
async def outage(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, reference: os.PathLike[str]
) -> AsyncIterator[Faulty]:
    sections = {"maskinporten": {"refusal_cache_seconds": REFUSAL_SECONDS}}
    async with faulty_deployment(
        tmp_path, sandbox_keys, altinn3_contract, reference, sections=sections
    ) as deployed:
        deployed.fakes.maskinporten.token_lifetime = LIFETIME  # before the proxy's first grant
        yield deployed


async def _files(faulty: Faulty) -> Any:
    """The recipient's available files (a list), or the fault the proxy answered."""
    return await faulty.call(_available, faulty.basic, RECIPIENT)


async def _token_fault(faulty: Faulty, answer: Any, cause: str, faults: list[str]) -> None:
    """Check ``answer`` is the no-token fault, and the log line under its ErrorGuid names ``cause``.

    The fault's texts are added to ``faults`` (scanned for secrets at the end).
    """
    assert not isinstance(answer, list), "the call should have failed"
    fields = fault_fields(answer)
    faults.extend(fields.values())
    assert fields["ErrorID"] == str(TokenError.error_id)
    assert "could not obtain an Altinn 3 token" in fields["AltinnErrorMessage"]
    assert "ErrorGuid" in fields["AltinnExtendedErrorMessage"]

    def logged() -> list[dict[str, Any]]:
        return [
            line
            for line in faulty.proxy.lines
            if line.get("request_id") == fields["ErrorGuid"] and line.get("event") == "upstream.refused"
        ]

    await until(lambda: bool(logged()))  # the proxy's log is read as it comes
    reason = logged()[0]["reason"]
    assert "Maskinporten" in reason, reason
    assert cause in reason, reason


async def test_cached_tokens_carry_the_outage_then_calls_fail_fast_then_recover(outage: Faulty) -> None:
    maskinporten, chaos = outage.fakes.maskinporten, outage.chaos
    faults: list[str] = []
    assert await _files(outage) == []
    issued = len(maskinporten.tokens_issued)
    maskinporten.outage_status = 503

    # The cached token carries the calls until it is no longer usable.
    carried = 0
    while isinstance(answer := await _files(outage), list):
        carried += 1
        await asyncio.sleep(POLL_SECONDS)
    assert carried >= 1, "the call right after the token was fetched should have used it"
    assert len(maskinporten.tokens_issued) == issued, "no token can come from a Maskinporten that is down"
    await _token_fault(outage, answer, "answered HTTP 503", faults)

    # From now on each call tries Maskinporten once, fails at once, and never reaches Altinn 3.
    tried, upstream = maskinporten.outage_answers, len(chaos.requests)
    for _ in range(FAST_FAILURES):
        await _token_fault(outage, await _files(outage), "answered HTTP 503", faults)
    assert maskinporten.outage_answers - tried == FAST_FAILURES
    assert len(chaos.requests) == upstream

    # Back: the very next call gets a fresh token, in the same process.
    maskinporten.outage_status = None
    assert await _files(outage) == []
    assert len(maskinporten.tokens_issued) == issued + 1
    assert outage.proxy.process.returncode is None
    assert leaks(faults, known_secrets(outage.fakes, outage.workdir)) == []


async def test_a_refusal_during_the_outage_is_remembered_only_briefly(outage: Faulty) -> None:
    maskinporten = outage.fakes.maskinporten
    faults: list[str] = []
    maskinporten.outage_status = 400  # a broken Maskinporten answering a client error: a refusal
    await _token_fault(outage, await _files(outage), "refused", faults)
    assert maskinporten.outage_answers == 1
    maskinporten.outage_status = None

    # Remembered for refusal_cache_seconds (answered without asking Maskinporten), then forgotten.
    while not isinstance(answer := await _files(outage), list):
        await _token_fault(outage, answer, "refused", faults)
        await asyncio.sleep(POLL_SECONDS / 5)
    assert answer == []
    assert maskinporten.outage_answers == 1
    assert len(maskinporten.tokens_issued) == 1
    assert outage.proxy.process.returncode is None
    assert leaks(faults, known_secrets(outage.fakes, outage.workdir)) == []
