"""The GPU path without a GPU: the whole dataset goes to the device once, and a training step moves
nothing from the host.

A host-to-device transfer needs a Python-level call: `Tensor.to`/`.cuda`/`.copy_` of a host tensor,
or a tensor built from host data (`torch.tensor`, `torch.as_tensor`, `torch.from_numpy`). The tests
record every such call while the Trainer runs on the CPU ("host" = a CPU tensor) and check that
their number per epoch does not grow with the number of steps. On a machine with CUDA, one more
test counts the real host-to-device copies in the CUDA profiler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

from sparse_vae.train import Trainer

N_TRAIN, N_TEST, D = 480, 96, 12


def spec(batch_size: int) -> dict[str, Any]:
    return {
        "dataset": "d", "latent": 3, "seed": 0,
        "prior": {"name": "laplace", "family": "laplace", "posterior": "gaussian", "scale": 1.0,
                  "kl": "monte_carlo", "kl_samples": 1},
        "model": {"hidden": [8], "decoder": "mlp", "likelihood": "bernoulli", "obs_scale": "learned"},
        "train": {"epochs": 1, "batch_size": batch_size, "lr": 1e-3, "checkpoint_every": 1},
    }


def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(N_TRAIN, D, generator=generator), torch.rand(N_TEST, D, generator=generator)


@contextmanager
def host_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[int, ...]]]]:
    """Record (call, shape) for every call that would copy host memory to a device."""
    calls: list[tuple[str, tuple[int, ...]]] = []

    def watch(owner: Any, name: str, from_host: Callable[..., bool]) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if from_host(*args, **kwargs):
                first = args[0]
                calls.append((name, tuple(first.shape) if isinstance(first, torch.Tensor) else ()))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    on_host = lambda tensor, *_, **__: tensor.device.type == "cpu"  # noqa: E731
    watch(torch.Tensor, "to", on_host)
    watch(torch.Tensor, "cuda", on_host)
    watch(torch.Tensor, "copy_", lambda dst, src, *_, **__: src.device.type == "cpu")
    for name in ("tensor", "as_tensor", "from_numpy"):
        watch(torch, name, lambda *_, **__: True)
    yield calls
    monkeypatch.undo()


def test_whole_dataset_moves_to_the_device_once(monkeypatch: pytest.MonkeyPatch) -> None:
    x_train, x_test = data()
    device = torch.device("cpu")
    with host_transfers(monkeypatch) as calls:
        trainer = Trainer(spec(32), x_train, x_test, device, "fingerprint", checkpoint_path=None)
    moved = [shape for name, shape in calls if name == "to"]
    splits = (trainer.x_train, trainer.x_val, trainer.x_test)
    # The train and validation parts of x_train, and x_test: every example, each split in one call
    # (the other calls move the model's parameters).
    assert sum(split.shape[0] for split in splits) == N_TRAIN + N_TEST
    for split in splits:
        assert split.device == device
        assert tuple(split.shape) in moved, calls


def test_training_step_moves_nothing_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-epoch host transfers (the batch permutation) must not grow with the number of steps."""
    x_train, x_test = data()
    per_epoch = []
    for batch_size in (120, 16):  # 4 and 27 steps
        trainer = Trainer(spec(batch_size), x_train, x_test, torch.device("cpu"), "fp", checkpoint_path=None)
        steps = -(-trainer.x_train.shape[0] // batch_size)
        with host_transfers(monkeypatch) as calls:
            trainer.train_epoch(1)
        per_epoch.append((steps, list(calls)))
    (few_steps, few), (many_steps, many) = per_epoch
    assert many_steps >= 5 * few_steps
    assert len(many) == len(few), (few, many)
    assert [name for name, _ in many] == ["to"], many  # the epoch's permutation, uploaded once


def test_the_detector_sees_a_per_step_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: the textbook loop (`batch.to(device)` every step) is counted once per step."""
    x_train, _ = data()
    with host_transfers(monkeypatch) as calls:
        for start in range(0, N_TRAIN, 48):
            x_train[start:start + 48].to(torch.device("cpu"))
    assert len(calls) == N_TRAIN // 48


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the profiler check needs one")
def test_cuda_epoch_copies_no_batches_from_the_host() -> None:
    """On a GPU: the number of host-to-device memcpys per epoch does not grow with the steps."""
    from torch.profiler import ProfilerActivity, profile

    x_train, x_test = data()
    counts = []
    for batch_size in (120, 16):
        trainer = Trainer(spec(batch_size), x_train, x_test, torch.device("cuda"), "fp", checkpoint_path=None)
        trainer.train_epoch(0)  # warm-up: optimizer state, kernels
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            trainer.train_epoch(1)
            torch.cuda.synchronize()
        counts.append(sum(1 for event in prof.events() if "Memcpy HtoD" in event.name))
    assert counts[0] == counts[1] <= 2, counts
