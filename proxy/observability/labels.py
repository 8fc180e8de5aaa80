"""Closed label sets, created at zero when the process starts.

``prometheus_client`` creates a labelled child only when it is first used, so without this the first
sample Prometheus scrapes of a series already counts the first event, and ``increase()`` over that
series never sees it: an alert on "the first refused token" would stay silent. So every metric whose
labels take their values from a closed set declares that set with :func:`closed`, next to its
definition, and the app calls :func:`precreate` once at start, which creates each child at zero.

A label set is either static (a sequence of label-value tuples, e.g. ``product(KINDS, OUTCOMES)``)
or derived from what the process has loaded (a function of :class:`Known`, e.g. the Altinn 3 API names
of the mapping set, or organisations named in the settings). Values a caller chooses are never
declared. To declare a new closed set, call :func:`closed` where the metric is defined; to derive
sets from more of what was loaded, add a field to :class:`Known` and fill it where the app calls
:func:`precreate`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)


@dataclass(frozen=True)
class Known:
    """What the process has loaded that closed label sets may be derived from."""

    #: Altinn 3 API names the active mapping set calls (``correspondence``, ``broker``...).
    apis: frozenset[str] = frozenset()


LabelSets = Sequence[Sequence[str]] | Callable[[Known], Iterable[Sequence[str]]]
_DECLARED: list[tuple[MetricWrapperBase, LabelSets]] = []


def product(*axes: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Every combination of the axes' values, in label order."""
    return tuple(itertools.product(*axes))


def closed(metric: M, label_sets: LabelSets) -> M:
    """Declare ``metric``'s closed label sets (created by :func:`precreate`); returns ``metric``."""
    _DECLARED.append((metric, label_sets))
    return metric


def precreate(known: Known = Known()) -> int:
    """Create every declared child at zero (idempotent); the number of label sets declared."""
    created = 0
    for metric, label_sets in _DECLARED:
        for values in label_sets(known) if callable(label_sets) else label_sets:
            metric.labels(*values)
            created += 1
    return created


def declared() -> list[tuple[Any, LabelSets]]:
    """The declarations, for tests: ``(metric, label sets)``."""
    return list(_DECLARED)
