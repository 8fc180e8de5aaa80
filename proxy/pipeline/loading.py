"""Reading a mapping directory (the I/O the pure compiler leaves out), and ``altinn-proxy check``."""

from __future__ import annotations

from pathlib import Path

from proxy.mapping.compiler import MappingSources, compile_sources, problems_error
from proxy.mapping.engine import MappingSet
from proxy.mapping.source import Problem
from proxy.soap.catalogue import Catalogue


def read_sources(directory: Path) -> MappingSources:
    """Every file below ``directory`` (dot-files left out), by relative POSIX path; raises OSError."""
    files = {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }
    return MappingSources(str(directory), files)


def directory_digest(directory: Path) -> str:
    """The digest of the directory's content (what hot reload compares)."""
    return read_sources(directory).digest


def load_directory(
    directory: Path, catalogue: Catalogue | None = None
) -> tuple[MappingSet | None, list[Problem]]:
    """Read and compile ``directory``; (None, problems) when it is missing or anything in it is wrong."""
    if not directory.is_dir():
        return None, [Problem(str(directory), None, "mapping directory does not exist")]
    try:
        sources = read_sources(directory)
    except OSError as error:
        return None, [Problem(str(directory), None, f"cannot read: {error}")]
    return compile_sources(sources, catalogue)


def load_mapping_set(directory: Path) -> MappingSet:
    """Like :func:`load_directory`, raising :class:`proxy.errors.ConfigurationError` listing every problem."""
    mapping_set, problems = load_directory(directory)
    if mapping_set is None:
        raise problems_error(problems)
    return mapping_set


def check(directory: Path) -> list[Problem]:
    """Every problem of the mapping directory (``file:line: message``); [] when it loads.

    Routes are deployment data, checked by the settings loader; only the mapping files are judged.
    """
    _, problems = load_directory(directory)
    return problems
