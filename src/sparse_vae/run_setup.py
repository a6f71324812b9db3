"""What a run needs before its first step: the device and threads, the validation split, the
learning-rate grid and the data's own pixel sd (used by `train`, and by benchmarks and tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

VALIDATION_FRACTION = 0.1      # share of the train split held out to choose and stop
VALIDATION_SEED = 0            # fixed, so every prior and training seed holds out the same examples


def learning_rates(train: dict[str, Any]) -> list[float]:
    """`train.lr` as the list of grid candidates (a number is a one-candidate grid)."""
    lr = train["lr"]
    return [float(v) for v in lr] if isinstance(lr, (list, tuple)) else [float(lr)]


def data_obs_sd(x: torch.Tensor) -> float:
    """The data's own pixel sd (root mean per-pixel variance): where a learned pixel sd starts.

    A fixed start (0.1) is 20x the synthetic data's sd; the likelihood's gradient then barely
    reaches the decoder until the sd has shrunk, and the priors that need a sharper start lost
    (issue 20). The data's sd is what a decoder that predicts the mean image would learn first.
    """
    return float(x.var(dim=0).mean().sqrt())


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but torch sees no CUDA device")
    return torch.device(device)


def set_threads(threads: int) -> None:
    """Pin torch to the rule's thread count (oversubscribed cores slow small models 5-10x), and
    flush denormals to zero: Adam's second moments of tiny gradients fall below 1e-38, where each
    arithmetic operation takes a slow microcode path (the candidates' Adam step ran 3x slower);
    values that small change nothing a run reports."""
    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already fixed earlier in this process
        pass


def run_name(spec: dict[str, Any]) -> str:
    return f"{spec['dataset']}/{spec['prior']['name']}/z{spec['latent']}/seed{spec['seed']}"


def validation_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of an n-example train split: a fixed random 10%, sorted."""
    if n < 2:
        raise ValueError(f"the train split needs at least 2 examples to hold out a validation set, has {n}")
    n_val = max(1, round(VALIDATION_FRACTION * n))
    order = np.random.default_rng(VALIDATION_SEED).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
