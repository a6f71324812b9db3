"""Corrupt torch files stop with one line naming the file and what to do (retrain that run), never
with torch's zip-reader traceback: model.pt is the one torch file the analysis loads
(``model_io.load_model``; training's checkpoint.pt is a cache that an unreadable copy restarts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sparse_vae.data.io import Dataset, save_dataset
from sparse_vae.errors import SparseVAEError
from sparse_vae.model import build_model
from sparse_vae.model_io import load_model, save_model

SPEC = {
    "dataset": "synthetic", "prior": {"name": "laplace", "scale": 1.0, "kl": "closed_form", "kl_samples": 1},
    "latent": 2, "seed": 1, "model": {"hidden": [8], "decoder": "mlp", "likelihood": "gaussian", "obs_scale": "learned"},
    "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
}


def _saved(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "runs" / "synthetic" / "laplace" / "z2" / "seed1" / "model.pt"
    save_model(path, build_model(SPEC, 16), SPEC, {"image_shape": [4, 4]})
    return path


@pytest.mark.parametrize("damage", ["truncated", "tail_cut", "empty", "not_a_checkpoint", "foreign_dict"])
def test_a_damaged_model_file_names_itself_and_says_retrain(tmp_path, damage):
    path = _saved(tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "tail_cut":  # only the zip's central directory lost: torch raises OSError(EINVAL)
        path.write_bytes(data[:-200])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not_a_checkpoint":
        path.write_text("model weights were here\n")
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(SparseVAEError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"retrain this run: snakemake --forcerun {path}" in message
    if damage == "foreign_dict":
        assert "not a sparse-vae model checkpoint (lacks spec, input_dim, state_dict)" in message
    else:
        assert "cannot be read as a model checkpoint, truncated or corrupt?" in message


def test_analyze_of_a_truncated_model_is_one_line_not_a_traceback(tmp_path):
    path = _saved(tmp_path)
    rng = np.random.default_rng(0)
    data = tmp_path / "synthetic.npz"
    save_dataset(data, Dataset(x_train=rng.random((20, 16), dtype=np.float32),
                               x_test=rng.random((20, 16), dtype=np.float32), image_shape=(4, 4),
                               metadata={"source": "synthetic"}))
    path.write_bytes(path.read_bytes()[:-200])  # cut off the end: the zip's central directory
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "presets/tiny.yaml").read_text())["analysis"]
    proc = subprocess.run([sys.executable, "-m", "sparse_vae", "analyze", "--data", str(data), "--run-dir",
                           str(path.parent), "--params", json.dumps(params)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in lines[0] and "--forcerun" in lines[0]
    assert not (path.parent / "metrics.json").exists()
