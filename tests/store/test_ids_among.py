"""Resolving a legacy id among several organisations of one caller, on both backends."""

from __future__ import annotations

import uuid

import pytest

from proxy.errors import InvalidField, NotFound
from proxy.store import Store

ORG_A = "310000019"
ORG_B = "310000027"
ORG_C = "310000035"


async def test_the_owning_org_among_the_callers_orgs_is_found(store: Store) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    of_a = await store.allocate_id("correspondence", first, ORG_A)
    of_b = await store.allocate_id("correspondence", second, ORG_B)

    assert await store.resolve_id_among("correspondence", of_a, [ORG_B, ORG_A]) == (first, ORG_A)
    assert await store.resolve_id_among("correspondence", of_b, (ORG_A, ORG_B)) == (second, ORG_B)
    assert await store.resolve_id_among("correspondence", of_b, [ORG_B]) == (second, ORG_B)


async def test_an_id_of_an_org_outside_the_list_is_exactly_an_unknown_id(store: Store) -> None:
    legacy_id = await store.allocate_id("correspondence", str(uuid.uuid4()), ORG_C)
    unused = legacy_id + 1000

    with pytest.raises(NotFound) as foreign:
        await store.resolve_id_among("correspondence", legacy_id, [ORG_A, ORG_B])
    with pytest.raises(NotFound) as missing:
        await store.resolve_id_among("correspondence", unused, [ORG_A, ORG_B])
    with pytest.raises(NotFound) as plain:
        await store.resolve_id("correspondence", legacy_id, ORG_A)

    assert str(foreign.value) == str(missing.value).replace(str(unused), str(legacy_id)) == str(plain.value)
    with pytest.raises(NotFound):
        await store.resolve_id_among("receipt", legacy_id, [ORG_C])  # right org, wrong kind
    with pytest.raises(NotFound):
        await store.resolve_id_among("correspondence", legacy_id, [])  # a caller without orgs owns nothing


async def test_invalid_orgs_are_refused_before_the_database(store: Store) -> None:
    with pytest.raises(InvalidField):
        await store.resolve_id_among("correspondence", 1, [ORG_A, " "])
