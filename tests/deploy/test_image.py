"""The image's recipe (no Docker engine runs here: hadolint in `make check` lints it, and
test_package.py installs the wheel exactly as the recipe does and runs its commands)."""

from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import version

from packaging.requirements import Requirement

from tests.deploy.chart import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
LOCK = REPO / "requirements.lock"


def instruction(name: str) -> list[list[str]]:
    """The arguments of every ``NAME [...]`` JSON-form instruction."""
    return [json.loads(args) for args in re.findall(rf"^{name} (\[.*\])$", DOCKERFILE, flags=re.MULTILINE)]


def locked() -> dict[str, str]:
    """Package name -> the exact version the lock pins."""
    pins = re.findall(
        r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", LOCK.read_text(encoding="utf-8"), flags=re.MULTILINE
    )
    return {name.lower().replace("_", "-"): pinned for name, pinned in pins}


def test_the_entrypoint_is_the_command_line_and_serve_the_default() -> None:
    assert instruction("ENTRYPOINT") == [["altinn-proxy"]], "`docker run IMAGE version` must work"
    assert instruction("CMD")[-1][0] == "serve"


def test_the_image_sets_no_setting_by_environment() -> None:
    instructions = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "ALTINN_PROXY_" in line], (
        "an image setting would silently overrule the settings file"
    )
    deployment = (REPO / "helm" / "altinn-proxy" / "templates" / "deployment.yaml").read_text()
    assert "ALTINN_PROXY_" not in deployment


def test_the_image_installs_the_locked_dependencies_only() -> None:
    assert "--require-hashes" in DOCKERFILE
    assert "-r requirements.lock" in DOCKERFILE
    assert re.search(r"pip install [^\n]*--no-deps \.", DOCKERFILE), "the package adds no unlocked dependency"


def test_the_lock_pins_every_runtime_dependency_with_hashes_within_its_range() -> None:
    """The runtime dependencies and the ``speed`` extra (uvloop): the image serves on the loop benched."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    for spec in [*project["dependencies"], *project["optional-dependencies"]["speed"]]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {spec}"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8").split("\n\n")[-1])
    for block in blocks:
        if "==" in block:
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_the_suite_runs_on_the_locked_versions() -> None:
    """`make` installs the lock into .venv, so what the tests pass is what the image ships."""
    mismatched = {
        name: (pinned, version(name)) for name, pinned in locked().items() if version(name) != pinned
    }
    assert mismatched == {}, "run `make .venv/.installed` (or `make lock` after changing pyproject.toml)"


def test_the_build_context_is_small() -> None:
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("*")] == "*", "everything is left out unless named"
    assert {"!proxy/", "!mappings/", "!requirements.lock", "!pyproject.toml"} <= set(ignore)
    assert not any(line.startswith("!.venv") for line in ignore)
