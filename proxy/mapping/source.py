"""YAML reading that remembers where every value came from, so errors can say ``file:line``.

``read_yaml`` returns plain Python values plus a :class:`Positions` map from a value's path (the
tuple of keys and list indexes pydantic also uses as an error ``loc``) to its 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a mapping file, located by file and line."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class Positions:
    """Lines of the values of one YAML document, by path."""

    file: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest recorded ancestor."""
        for end in range(len(loc), -1, -1):
            found = self.lines.get(tuple(loc[:end]))
            if found is not None:
                return found
        return None

    def problem(self, loc: Loc, message: str) -> Problem:
        """A :class:`Problem` located at ``loc``."""
        return Problem(self.file, self.line(loc), message)


class Located(Exception):
    """A problem of a mapping file at ``loc`` (a YAML path), which becomes ``file:line`` in a :class:`Problem`."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class YamlError(Exception):
    """The text is not YAML this loader accepts (syntax error, duplicate or non-string key)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def read_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document safely; anchors and tags beyond the safe set are refused."""
    positions = Positions(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        raise YamlError(str(error.problem or error), mark.line + 1 if mark else None) from None
    if node is None:
        return None, positions
    return _convert(node, (), positions), positions


_SCALARS = yaml.SafeLoader("")  # a constructor for scalar tags (int, bool, null, float)


def _convert(node: yaml.Node, loc: Loc, positions: Positions) -> Any:
    positions.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise YamlError("mapping keys must be plain strings", key_node.start_mark.line + 1)
            key = key_node.value
            if key in result:
                raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            positions.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, (*loc, key), positions)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, index), positions) for index, item in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)
