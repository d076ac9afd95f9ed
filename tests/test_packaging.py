"""pyproject.toml, environment.yml, requirements.lock, Makefile, .ci/run and README agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> set[str]:
    project = _pyproject()
    extras = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    return {_name(r) for r in project["dependencies"] + extras}


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"requirements.lock: {line!r} is not an exact pin"
            pins[_norm(name)] = version
    return pins


def test_lock_pins_every_dependency_exactly():
    pins = _lock()
    assert not _declared() - set(pins), "requirements.lock misses dependencies of pyproject.toml"
    assert pins["torch"] == "2.13.0"
    assert "vaelib" not in pins and "torchvision" not in pins


def test_environment_yml_names_match_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    names, pip_reqs = set(), []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_reqs += dep["pip"]
        else:
            names.add(CONDA_TO_PIP.get(_name(dep), _name(dep)))
    assert "-e ." in pip_reqs
    names |= {_name(r) for r in pip_reqs if not r.startswith("-")}
    assert names - {"python", "pip"} == _declared()


def test_entry_points_and_commands():
    project = _pyproject()
    assert project["scripts"]["vae"] == "vaelib.cli:main"
    makefile = (ROOT / "Makefile").read_text()
    for target in ("report", "test", "smoke", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and ci.strip().splitlines()[-1] == "make test"
