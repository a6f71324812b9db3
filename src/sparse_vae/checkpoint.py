"""A pack's training checkpoint: what a killed job needs to finish bit-for-bit as if never stopped.

The checkpoint holds the stacked model (only the members still training), every member's kept
weights, the optimiser's moments, each seed's stopping book, history and time, and the state of
every per-seed generator (batch order and draws); the file is written under a temporary name and
renamed into place. It resumes only the pack that wrote it, under the same code: `fingerprint_of`
identifies the specs, the data, the TRAIN version and the normalised training code hash, so a job
killed before an edit and rerun after it starts afresh instead of mixing two code versions.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparse_vae.atomic import atomic_open
from sparse_vae.codehash import stage_record
from sparse_vae.config import canonical_json
from sparse_vae.data.io import array_checksum
from sparse_vae.grid import CandidateBook

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 5          # part of the fingerprint: checkpoints of an older layout are not resumed


def fingerprint_of(specs: dict[str, Any] | list[dict[str, Any]], x_train: np.ndarray, x_test: np.ndarray) -> str:
    """Identifies (settings of every member run, data, training code): a checkpoint only resumes the
    pack that wrote it, under the same TRAIN version and normalised code hash.

    The one place that builds the key; a single spec is a pack of one."""
    specs = [specs] if isinstance(specs, dict) else list(specs)
    digest = hashlib.sha256(f"checkpoint format {CHECKPOINT_FORMAT}".encode())
    digest.update(canonical_json(stage_record("train")).encode())
    digest.update(canonical_json(specs if len(specs) > 1 else specs[0]).encode())
    digest.update(array_checksum(x_train, x_test).encode())
    return digest.hexdigest()


def save_checkpoint(trainer: Any) -> None:
    """Write the trainer's whole state to its checkpoint path (atomically)."""
    state = {
        "fingerprint": trainer.fingerprint,
        "code": stage_record("train"),
        "state": asdict(trainer.state),
        "books": [asdict(book) for book in trainer.books],
        "model": trainer.model.state_dict(),
        "best_model": trainer.best_weights,
        "optimizer": trainer.optimizer.state_dict(),
        "draws": [g.get_state() for g in trainer.draws],
        "batch_order": [g.get_state() for g in trainer.batch_order],
    }
    with atomic_open(trainer.checkpoint_path) as fh:
        torch.save(state, fh)


def load_checkpoint(path: Path | None, fingerprint: str, device: torch.device, who: str) -> dict[str, Any] | None:
    """The checkpoint at `path` when it exists, reads and was written by these specs and data; else None
    (a checkpoint is a cache: unreadable or foreign means start afresh, and it is replaced)."""
    if path is None or not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:
        print(f"[{who}] ignoring unreadable checkpoint {path}: {error}", flush=True)
        return None
    if not isinstance(ckpt, dict):
        print(f"[{who}] ignoring checkpoint {path}: not a training checkpoint; starting afresh", flush=True)
        return None
    code, now = ckpt.get("code"), stage_record("train")
    if code != now:
        print(f"[{who}] discarding checkpoint {path}: written by training code {code and code.get('version')}/"
              f"{code and code.get('code_hash')}, this is {now['version']}/{now['code_hash']} (TRAIN version/"
              f"code hash); starting afresh", flush=True)
        return None
    if ckpt.get("fingerprint") != fingerprint:
        print(f"[{who}] checkpoint {path} is from other settings; starting afresh", flush=True)
        return None
    return ckpt


def restore(trainer: Any, ckpt: dict[str, Any]) -> None:
    """Put a loaded checkpoint's state into the trainer (the inverse of `save_checkpoint`)."""
    trainer.state = type(trainer.state)(**ckpt["state"])
    trainer.books = [CandidateBook(**book) for book in ckpt["books"]]
    trainer.relayout()
    trainer.model.set_candidate_weights(ckpt["model"])   # the members still training
    trainer.best_weights = ckpt["best_model"]
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    # generator states are host byte tensors, whatever map_location did to them
    for generator, saved in zip(trainer.draws, ckpt["draws"]):
        generator.set_state(saved.cpu())
    for generator, saved in zip(trainer.batch_order, ckpt["batch_order"]):
        generator.set_state(saved.cpu())
