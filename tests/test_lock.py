"""The lock file: every dependency pyproject.toml names is pinned to one version inside its range,
the rules' conda environment pins the same set, and CI installs from it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            out[canonicalize_name(name)] = version
    return out


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = _pins((REPO / "requirements.lock").read_text().splitlines())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    for text in declared:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock (rerun .ci/lock)"
        assert req.specifier.contains(Version(pins[name])), f"{req.name}=={pins[name]} outside {req.specifier}"
    assert "sparse-vae" not in pins  # the package itself is installed editable, not locked


def test_the_conda_environment_pins_the_lock_and_ci_installs_it():
    pins = _pins((REPO / "requirements.lock").read_text().splitlines())
    env = yaml.safe_load((REPO / "envs" / "sparse-vae.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip) == pins
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install -r requirements.lock" in ci and '-e ".[test]" --no-deps' in ci
