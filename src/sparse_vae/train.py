"""The training loop: whole dataset on the device, slice batches, resumable bit-for-bit.

Why no DataLoader: the datasets are small dense arrays, so one tensor on the device and batches cut
from a per-epoch permutation remove all per-sample Python work (see bench/). Why the careful state
handling: a job killed by the cluster and rerun must finish with exactly the weights an
uninterrupted run would have, so checkpoints carry model, optimiser and every RNG state, and every
file is written under a temporary name and renamed into place.

Three guards on what a run returns:
* validation: a fixed 10% of the train split (the same examples for every prior and seed: a seed-0
  permutation) is held out of training; the weights saved are those of the epoch with the lowest
  validation loss, so one far-tail batch late in training (a Cauchy sample) cannot decide the model.
  The test split is only reported, never used to choose.
* divergence: a loss that is NaN/inf, or an epoch whose median batch loss exceeds
  `DIVERGENCE_FACTOR` x (|loss at initialisation| + input dimension) in absolute value, stops the
  run with one line naming run, epoch, step and term; no model.pt is written. The median, not the
  mean: with a Cauchy posterior a single far-tail sample makes one batch's loss enormous (its
  expectation is infinite), which is not divergence; a run that explodes has most batches beyond. One nat per pixel in the margin keeps the rule
  meaningful when the initial loss is near 0; a Gaussian likelihood with its sd floor cannot go
  below about -6 nats per pixel, so no converging run comes near the limit.
* evaluation noise: the validation and test losses are single-sample estimates drawn from their own
  RNG stream (reseeded each epoch), so every epoch is scored on the same noise and evaluating does
  not change the training randomness.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparse_vae.atomic import atomic_open, write_text
from sparse_vae.config import canonical_json
from sparse_vae.data.io import array_checksum, load_dataset
from sparse_vae.errors import TrainingDiverged
from sparse_vae.model import LossTerms, build_model, prior_family_and_posterior, save_model

HISTORY_COLUMNS = [
    "epoch", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl",
    "test_loss", "test_recon", "test_kl", "seconds", "samples_per_s",
]
LOSS_TERMS = ("loss", "recon", "kl")
EVAL_BATCH = 4096
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 2          # part of the fingerprint: checkpoints of an older layout are not resumed
VALIDATION_FRACTION = 0.1      # share of the train split held out to choose the epoch whose weights are kept
VALIDATION_SEED = 0            # fixed, so every prior and training seed holds out the same examples
EVAL_SEED = 12345              # RNG stream of the validation/test loss estimates (common to all epochs)
DIVERGENCE_FACTOR = 10.0       # see the module docstring
LOG_LINES = 10                 # progress lines per run (plus the first and last epoch)
SELECTION = "best_validation_loss"


def stack_terms(terms: LossTerms) -> torch.Tensor:
    """The scalar loss terms as one tensor, in LOSS_TERMS order."""
    return torch.stack([getattr(terms, name) for name in LOSS_TERMS])


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but torch sees no CUDA device")
    return torch.device(device)


def set_threads(threads: int) -> None:
    """Pin torch to the rule's thread count: oversubscribed cores slow small models 5-10x."""
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


@dataclass
class TrainState:
    """Everything that must survive a kill for the resumed run to be identical."""

    epoch: int
    history: list[dict[str, float]]
    elapsed: float
    initial_loss: float | None = None   # loss of the first batch at initialisation (divergence rule)
    best_epoch: int = 0                 # epoch with the lowest validation loss so far
    best_val_loss: float = math.inf


class Trainer:
    """Trains one model on one dataset; `fit` resumes from a matching checkpoint when one exists."""

    def __init__(self, spec: dict[str, Any], x_train: torch.Tensor, x_test: torch.Tensor,
                 device: torch.device, fingerprint: str, checkpoint_path: Path | None) -> None:
        self.spec = spec
        self.device = device
        self.fingerprint = fingerprint
        self.checkpoint_path = checkpoint_path
        train_idx, val_idx = validation_split(x_train.shape[0])
        self.x_train = x_train[torch.from_numpy(train_idx)].to(device)
        self.x_val = x_train[torch.from_numpy(val_idx)].to(device)
        self.x_test = x_test.to(device)
        torch.manual_seed(spec["seed"])
        self.model = build_model(spec, input_dim=x_train.shape[1]).to(device)
        # fused: one kernel over all parameters instead of several passes each (~30% faster steps
        # for the 784-400-20 model on a CPU core, see bench/).
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec["train"]["lr"], fused=True)
        self.batch_order = torch.Generator().manual_seed(spec["seed"])
        self.state = TrainState(epoch=0, history=[], elapsed=0.0)
        self.best_weights = self._weights()

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        assert self.checkpoint_path is not None
        state = {
            "fingerprint": self.fingerprint,
            "state": self.state.__dict__,
            "model": self.model.state_dict(),
            "best_model": self.best_weights,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "batch_order": self.batch_order.get_state(),
        }
        with atomic_open(self.checkpoint_path) as fh:
            torch.save(state, fh)

    def try_resume(self) -> bool:
        """Restore a checkpoint made by this exact spec and data; ignore (and replace) any other."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as error:  # a checkpoint is a cache: unreadable means start afresh
            print(f"[{run_name(self.spec)}] ignoring unreadable checkpoint {path}: {error}", flush=True)
            return False
        if ckpt.get("fingerprint") != self.fingerprint:
            print(f"[{run_name(self.spec)}] checkpoint {path} is from other settings; starting afresh",
                  flush=True)
            return False
        self.model.load_state_dict(ckpt["model"])
        self.best_weights = ckpt["best_model"]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        self.batch_order.set_state(ckpt["batch_order"])
        self.state = TrainState(**ckpt["state"])
        print(f"[{run_name(self.spec)}] resumed from {path} after epoch {self.state.epoch}", flush=True)
        return True

    def _weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # -- the loop ---------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over a fresh permutation; loss terms stay on the device until the epoch ends."""
        n = self.x_train.shape[0]
        batch_size = self.spec["train"]["batch_size"]
        order = torch.randperm(n, generator=self.batch_order).to(self.device)
        n_steps = (n + batch_size - 1) // batch_size
        step_terms = torch.empty(n_steps, len(LOSS_TERMS), device=self.device)
        self.model.train()
        for step in range(n_steps):
            batch = self.x_train.index_select(0, order[step * batch_size:(step + 1) * batch_size])
            terms = self.model(batch)
            self.optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            self.optimizer.step()
            step_terms[step] = stack_terms(terms).detach()
        self.check_finite(step_terms, epoch)
        if self.state.initial_loss is None:
            self.state.initial_loss = float(step_terms[0, 0])   # the first batch, before any update
        sizes = torch.full((n_steps,), float(batch_size), device=self.device)
        sizes[-1] = n - batch_size * (n_steps - 1)
        means = (step_terms * sizes[:, None]).sum(0) / n
        self.check_bounded(step_terms, epoch)
        return dict(zip(LOSS_TERMS, means.tolist()))

    def _diverged(self, epoch: int, step: int, values: dict[str, float], what: str) -> TrainingDiverged:
        shown = ", ".join(f"{name}={v:.4g}" for name, v in values.items())
        return TrainingDiverged(f"run {run_name(self.spec)}: {what} at epoch {epoch}, step {step} ({shown})")

    def check_finite(self, step_terms: torch.Tensor, epoch: int) -> None:
        """Stop with the run, epoch, step and term named; checked once an epoch to avoid per-step syncs."""
        bad = ~torch.isfinite(step_terms)
        if bool(bad.any()):
            step = int(bad.any(dim=1).nonzero()[0])
            values = dict(zip(LOSS_TERMS, step_terms[step].tolist()))
            culprits = [t for t in LOSS_TERMS[1:] if not np.isfinite(values[t])] or ["loss"]
            raise self._diverged(epoch, step, values, f"non-finite {' and '.join(culprits)}")

    def divergence_limit(self) -> float:
        """|epoch median batch loss| above this (nats/example) is divergence: see the module docstring."""
        assert self.state.initial_loss is not None
        return DIVERGENCE_FACTOR * (abs(self.state.initial_loss) + self.x_train.shape[1])

    def check_bounded(self, step_terms: torch.Tensor, epoch: int) -> None:
        """Stop a finite explosion: names the first step (and term) beyond the limit."""
        limit = self.divergence_limit()
        median_loss = float(step_terms[:, 0].median())
        if abs(median_loss) <= limit:
            return
        beyond = step_terms.abs() > limit                      # the median exceeds it, so some step does
        step = int(beyond.any(dim=1).nonzero()[0])
        values = dict(zip(LOSS_TERMS, step_terms[step].tolist()))
        culprits = [t for t in LOSS_TERMS[1:] if abs(values[t]) > limit] or ["loss"]
        raise self._diverged(
            epoch, step, values,
            f"{' and '.join(culprits)} diverged (epoch median batch loss {median_loss:.4g} nats/example, limit "
            f"{DIVERGENCE_FACTOR:g} x (|initial loss {self.state.initial_loss:.4g}| + {self.x_train.shape[1]} "
            f"pixels) = {limit:.4g})",
        )

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, split: str) -> dict[str, float]:
        """Mean loss terms over `x`, from the evaluation RNG stream (the training stream is untouched)."""
        self.model.eval()
        totals = torch.zeros(len(LOSS_TERMS), device=self.device)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(EVAL_SEED)
            for start in range(0, x.shape[0], EVAL_BATCH):
                batch = x[start:start + EVAL_BATCH]
                totals += stack_terms(self.model(batch)) * batch.shape[0]
        means = (totals / x.shape[0]).tolist()
        if not all(np.isfinite(means)):
            raise TrainingDiverged(f"run {run_name(self.spec)}: non-finite {split} loss after epoch "
                                   f"{self.state.epoch + 1} ({dict(zip(LOSS_TERMS, means))})")
        return dict(zip(LOSS_TERMS, means))

    def fit(self) -> None:
        epochs = self.spec["train"]["epochs"]
        every = self.spec["train"]["checkpoint_every"]
        log_every = max(1, math.ceil(epochs / LOG_LINES))
        self.try_resume()
        n = self.x_train.shape[0]
        started, first = time.perf_counter(), self.state.epoch + 1
        for epoch in range(first, epochs + 1):
            start = time.perf_counter()
            train = self.train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            val = self.evaluate(self.x_val, "validation")
            test = self.evaluate(self.x_test, "test")
            row = {
                "epoch": epoch,
                **{f"train_{k}": v for k, v in train.items()},
                **{f"val_{k}": v for k, v in val.items()},
                **{f"test_{k}": v for k, v in test.items()},
                "seconds": seconds,
                "samples_per_s": n / seconds,
            }
            self.state.history.append(row)
            self.state.epoch = epoch
            self.state.elapsed += seconds
            if val["loss"] < self.state.best_val_loss:
                self.state.best_epoch, self.state.best_val_loss = epoch, val["loss"]
                self.best_weights = self._weights()
            if epoch == 1 or epoch % log_every == 0 or epoch == epochs:
                eta = (time.perf_counter() - started) / (epoch - first + 1) * (epochs - epoch)
                self.log(row, epochs, eta)
            if self.checkpoint_path is not None and epoch % every == 0 and epoch < epochs:
                self.save_checkpoint()
        self.model.load_state_dict(self.best_weights)
        print(f"[{run_name(self.spec)}] kept the weights of epoch {self.state.best_epoch}/{epochs} "
              f"(lowest validation loss, {self.state.best_val_loss:.3f} nats/example); "
              f"full history in history.csv", flush=True)

    def log(self, row: dict[str, float], epochs: int, eta: float) -> None:
        print(
            f"[{run_name(self.spec)}] epoch {row['epoch']}/{epochs}  -ELBO in nats/example: "
            f"train {row['train_loss']:.3f} (recon {row['train_recon']:.3f} + kl {row['train_kl']:.3f}), "
            f"val {row['val_loss']:.3f}, test {row['test_loss']:.3f}  "
            f"{row['samples_per_s']:,.0f} samples/s  ETA {format_duration(eta)}",
            flush=True,
        )


def fingerprint_of(spec: dict[str, Any], x_train: np.ndarray, x_test: np.ndarray) -> str:
    """Identifies (settings, data): a checkpoint only resumes the run that wrote it."""
    digest = hashlib.sha256(f"checkpoint format {CHECKPOINT_FORMAT}".encode())
    digest.update(canonical_json(spec).encode())
    digest.update(array_checksum(x_train, x_test).encode())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    import sparse_vae

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "sparse_vae": sparse_vae.__version__}


def train_run(data_path: Path, spec: dict[str, Any], run_dir: Path, threads: int = 1,
              device: str = "auto") -> dict[str, Any]:
    """Train the run described by `spec` and write model.pt, history.csv and train.json to `run_dir`.

    Outputs appear only when training has finished; until then the folder holds at most a
    checkpoint, which a rerun resumes from.
    """
    set_threads(threads)
    dev = resolve_device(device)
    if dev.type == "cuda":  # CPU kernels are deterministic already; the call imports torch._dynamo (~2 s a job)
        torch.use_deterministic_algorithms(True, warn_only=True)
    dataset = load_dataset(data_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / CHECKPOINT_NAME
    trainer = Trainer(
        spec,
        torch.from_numpy(dataset.x_train),
        torch.from_numpy(dataset.x_test),
        dev,
        fingerprint_of(spec, dataset.x_train, dataset.x_test),
        checkpoint,
    )
    trainer.fit()
    history, state = trainer.state.history, trainer.state
    selected = history[state.best_epoch - 1]

    family, posterior = prior_family_and_posterior(spec["prior"])
    save_model(run_dir / "model.pt", trainer.model.cpu(), spec,
               {"image_shape": list(dataset.image_shape), "selected_epoch": state.best_epoch,
                "selection": SELECTION, "family": family, "posterior": posterior})
    lines = [",".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append(",".join(repr(float(row[c])) if c != "epoch" else str(row[c]) for c in HISTORY_COLUMNS))
    write_text(run_dir / "history.csv", "\n".join(lines) + "\n")
    n_train = trainer.x_train.shape[0]
    summary = {
        "spec": spec,
        "prior": spec["prior"]["name"],   # the prior entry's name: the run's identity
        "family": family,                 # the prior's distribution family
        "posterior": posterior,           # the posterior family (gaussian | cauchy)
        "source": dataset.metadata.get("source"),
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "threads": threads,
        "versions": versions(),
        "epochs": len(history),
        "duration_s": state.elapsed,
        "samples_per_s": n_train * len(history) / state.elapsed if state.elapsed else None,
        # model.pt holds the weights of `selected_epoch`; `final` is the last epoch's, for reference
        "selection": SELECTION,
        "selected_epoch": state.best_epoch,
        "validation": {
            "split": "train", "n_validation": int(trainer.x_val.shape[0]), "n_train_used": int(n_train),
            "rule": f"a fixed random {VALIDATION_FRACTION:.0%} of the train split (permutation with seed "
                    f"{VALIDATION_SEED}), held out of training; the test split is never used to choose",
        },
        "divergence_limit": trainer.divergence_limit(),
        "first_epoch": {k: history[0][k] for k in ("train_loss", "val_loss", "test_loss")},
        "selected": {k: selected[k] for k in ("train_loss", "val_loss", "test_loss", "test_recon", "test_kl")},
        "final": {k: history[-1][k] for k in ("train_loss", "val_loss", "test_loss", "test_recon", "test_kl")},
    }
    write_text(run_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    checkpoint.unlink(missing_ok=True)
    return summary

