"""``xs_to_iso`` gives the instant ``datetime.astimezone(UTC)`` gives, Oslo time for a naive value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from proxy.mapping.expressions import LEGACY_ZONE, xs_to_iso


def reference(value: str) -> str:
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LEGACY_ZONE)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


MOMENTS = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 12, 30))
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(MOMENTS)
def test_a_naive_value_is_oslo_wall_time(moment: datetime) -> None:
    assert xs_to_iso(moment.isoformat()) == reference(moment.isoformat())


@given(MOMENTS, OFFSETS)
def test_a_value_with_an_offset_keeps_its_instant(moment: datetime, offset: timezone) -> None:
    text = moment.replace(tzinfo=offset).isoformat()
    assert xs_to_iso(text) == reference(text)


def test_the_hour_that_summer_time_skips_and_the_one_it_repeats_convert_as_the_standard_library() -> None:
    for text in [
        "2026-03-29T02:30:00",
        "2026-10-25T02:30:00",
        "2026-10-25T01:59:59.9995",
        " 2026-01-01T00:00:00Z ",
    ]:
        assert xs_to_iso(text) == reference(text)
