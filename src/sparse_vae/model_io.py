"""A model on disk: `model.pt` written atomically, read back with a one-line error naming the file,
and candidate k of a stacked model exported as the plain VAE its run folder holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sparse_vae.atomic import atomic_open
from sparse_vae.model import VAE, build_model

__all__ = ["export_candidate", "load_model", "save_model"]

_CHECKPOINT_KEYS = ("spec", "input_dim", "state_dict")


def export_candidate(model: VAE, k: int, spec: dict) -> VAE:
    """Candidate k of a K-candidate model as a plain VAE of `spec` (what model.pt holds), on the
    K-candidate model's device."""
    plain = build_model(spec, model.input_dim).to(next(model.parameters()).device)
    shapes = {name: value.shape for name, value in plain.state_dict().items()}
    plain.load_state_dict({
        name: value[k].reshape(shapes[name]) if value.dim() > len(shapes[name]) else value
        for name, value in model.state_dict().items()
    })
    return plain


def save_model(path: str | os.PathLike, model: VAE, spec: dict, extra: dict[str, Any] | None = None) -> None:
    """Write `{"spec", "input_dim", "state_dict", **extra}` atomically (same-folder temp file + os.replace)."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_CHECKPOINT_KEYS))
    if clash:
        raise ValueError(f"extra must not redefine {', '.join(clash)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"spec": spec, "input_dim": model.input_dim, "state_dict": model.state_dict(), **extra}
    with atomic_open(path) as fh:
        torch.save(checkpoint, fh)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[VAE, dict]:
    """Rebuild the model saved by `save_model`; returns (model in eval mode, the checkpoint dict).

    Loads with `weights_only=True`: `extra` may hold tensors and plain Python data (dicts, lists,
    strings, numbers), not arbitrary objects.
    """
    import pickle  # noqa: PLC0415 (kept inside: only this function's body is this edit's to change)

    from sparse_vae.errors import SparseVAEError  # noqa: PLC0415

    def unreadable(why: str) -> SparseVAEError:
        """One line naming the file and what to do: a truncated or foreign model.pt cannot be repaired."""
        return SparseVAEError(f"{path}: {why}; retrain this run: snakemake --forcerun {path} (with the study's "
                              "--configfile and --cores), or delete the file and rerun the study")

    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
        # torch's own message for a cut-off file is its zip reader's (or EINVAL), without the path
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise unreadable(f"cannot be read as a model checkpoint, truncated or corrupt? ({reason})") from None
    missing = [k for k in ("spec", "input_dim", "state_dict") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise unreadable(f"not a sparse-vae model checkpoint (lacks {', '.join(missing)})")
    model = build_model(checkpoint["spec"], checkpoint["input_dim"])
    model.load_state_dict(checkpoint["state_dict"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval(), checkpoint
