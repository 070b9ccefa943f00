"""The project's own hygiene: packaging, command line, notebooks committed clean, lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in ("test", "site"):
        wanted |= {_name(r) for r in project["optional-dependencies"][extra]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    named = {_name(r) for r in pip_section if not r.startswith("-")}
    assert named == wanted, f"only in pyproject: {wanted - named}; only in env: {named - wanted}"
    assert "python=3.11" in env["dependencies"]
    assert any(r.startswith("-e .") for r in pip_section), "environment.yml must install minis2l"


def test_version_ranges_admit_the_locked_versions():
    """The recorded exact set (requirements-lock.txt) must satisfy pyproject's ranges."""
    from packaging.requirements import Requirement

    locked = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            locked[_name(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["test"] + extras["site"]
    checked = 0
    for text in reqs:
        req = Requirement(text)
        if _name(req.name) in locked:
            assert req.specifier.contains(locked[_name(req.name)], prereleases=True), (
                f"{req.name}=={locked[_name(req.name)]} is outside {req.specifier}"
            )
            checked += 1
    assert checked >= len(reqs) - 1  # all but torch, which the lock leaves to pyproject


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minis2l", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_help_lists_every_subcommand():
    result = _cli("--help")
    assert result.returncode == 0
    for name in ("data", "pretrain", "probe", "demo", "assignments"):
        assert re.search(rf"^\s+{name}\b", result.stdout, re.M), name


def test_every_subcommand_has_a_module_and_no_command_prints_help(capsys):
    from minis2l import cli

    assert cli._SUBCOMMANDS.keys() == cli._IMPLEMENTED.keys()
    assert cli.main([]) == cli.EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().out


def test_every_subcommand_has_help():
    for name in ("data", "pretrain", "probe", "demo", "assignments"):
        result = _cli(name, "--help")
        assert result.returncode == 0, result.stderr
        assert "--fast" in result.stdout


def test_fast_flag_sets_fast_mode(monkeypatch):
    from minis2l import config

    monkeypatch.delenv(config.FAST_ENV, raising=False)
    assert not config.fast_mode()
    assert config.pick(10, 1) == 10
    monkeypatch.setenv(config.FAST_ENV, "1")
    assert config.fast_mode()
    assert config.pick(10, 1) == 1


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path: Path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} of {path.name} holds outputs"
            assert cell.get("execution_count") is None, f"cell {i} of {path.name} was executed"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name} stores widget state"


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
