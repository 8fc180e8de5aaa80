"""The ``uuid5`` filter is the standard library's version-5 UUID, built without a ``UUID`` object."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from proxy.mapping.expressions import PROXY_UUID_NAMESPACE, uuid5


@given(st.text())
def test_uuid5_is_the_standard_library_s(name: str) -> None:
    assert uuid5(name) == str(uuid.uuid5(PROXY_UUID_NAMESPACE, name))


def test_none_is_the_empty_name_and_other_values_their_text() -> None:
    assert uuid5(None) == str(uuid.uuid5(PROXY_UUID_NAMESPACE, ""))
    assert uuid5(42) == str(uuid.uuid5(PROXY_UUID_NAMESPACE, "42"))
