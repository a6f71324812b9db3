"""Fixtures shared by the test files: no network, and a tiny prepared dataset to train or analyse on."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

TINY_SYNTHETIC: dict[str, Any] = {
    "image_size": 5, "n_templates": 4, "templates": "bars", "weights": "laplace", "weight_scale": 1.0,
    "active_prob": 0.3, "noise_std": 0.1, "n_train": 256, "n_test": 64, "seed": 0,
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every name lookup and connection fail at once, as on an offline cluster node."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def synthetic_params() -> dict[str, Any]:
    """`prepare:` params of a tiny 5x5 bars dataset (a fresh copy: tests may edit it)."""
    return dict(TINY_SYNTHETIC)


@pytest.fixture
def synthetic_npz(tmp_path: Path, synthetic_params: dict[str, Any]) -> Path:
    """A prepared tiny synthetic dataset file (256 train / 64 test 5x5 images, 4 bar templates)."""
    from sparse_vae.data import prepare

    out = tmp_path / "data" / "synthetic.npz"
    prepare("synthetic", synthetic_params, tmp_path / "raw", out)
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slurm` run only when asked: as root they apt-get install slurm-wlm and munge
    and start daemons, and plain `pytest` must touch nothing outside the checkout."""
    if os.environ.get("SPARSE_VAE_SLURM") == "1":
        return
    skip = pytest.mark.skip(
        reason="needs a local Slurm cluster (installs packages, starts daemons as root); "
        "set SPARSE_VAE_SLURM=1 to run it"
    )
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)
