"""The package rules of DESIGN.md that an import or a call can break, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PROXY = Path(__file__).resolve().parents[1] / "proxy"
#: Calls that read or write files, sockets or processes.
_IO_CALLS = frozenset(
    {"open", "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "rglob", "glob"}
)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _calls(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            function = node.func
            names.add(function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", ""))
    return names


def test_the_mapping_package_does_no_io() -> None:
    for path in sorted((PROXY / "mapping").glob("*.py")):
        imports = _imports(path)
        assert not {name for name in imports if name.split(".")[0] in {"aiohttp", "socket", "subprocess"}}, (
            path
        )
        assert not {
            name for name in imports if name.startswith(("proxy.altinn3", "proxy.pipeline", "proxy.web"))
        }, path
        assert not (_calls(path) & _IO_CALLS), f"{path.name} reads or writes files"


def test_explain_does_not_import_the_wiring() -> None:
    assert "proxy.app" not in _imports(PROXY / "explain.py")


def test_the_soap_package_imports_no_aiohttp() -> None:
    for path in sorted((PROXY / "soap").glob("*.py")):
        assert not {name for name in _imports(path) if name.split(".")[0] == "aiohttp"}, path
