"""The training loop: whole dataset on the device, slice batches, resumable bit-for-bit.

Why no DataLoader: the datasets are small dense arrays, so one tensor on the device and batches cut
from a per-epoch permutation remove all per-sample Python work (see bench/). Why the careful state
handling: a job killed by the cluster and rerun must finish with exactly the weights an
uninterrupted run would have, so checkpoints carry model, optimiser and every RNG state, and every
file is written under a temporary name and renamed into place.

A run trains every learning rate of `train.lr` (a number, or a list: a grid) at once as one batched
model (`grid`), each candidate under the stopping rule there, and keeps the candidate with the best
validation IWAE at its own kept epoch. Nothing else chooses: the test split is scored once, on the
kept weights, and never decides anything.

Guards on what a run returns:
* validation: a fixed 10% of the train split (the same examples for every prior and seed: a seed-0
  permutation) is held out of training and scored every epoch by the `val_iwae_samples`-draw IWAE
  bound, which is finite for every posterior family (the single-draw ELBO under a Cauchy posterior is
  not: see `model.VAE.iwae_bound`); so every family is selected and stopped on the same quantity.
* common random numbers: the seed alone fixes the batch order, the validation split and the initial
  weights (built in the same order whatever the prior, so every layer whose shape does not depend on
  the prior starts equal): seed s of two priors is a paired comparison.
* divergence: a loss that is NaN/inf, or an epoch whose median batch loss exceeds
  `DIVERGENCE_FACTOR` x (|loss at initialisation| + input dimension) in absolute value, stops the
  candidate with one line naming run, epoch, step and term; a grid drops that candidate and goes on,
  and the run fails (no model.pt) only when every candidate has. The median, not the mean: with a
  Cauchy posterior a single far-tail sample makes one batch's loss enormous, which is not divergence;
  a run that explodes has most batches beyond. One nat per pixel in the margin keeps the rule
  meaningful when the initial loss is near 0.
* evaluation noise: validation and test scores draw from their own RNG stream (reseeded each
  epoch), so every epoch is scored on the same noise and evaluating does not change training.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparse_vae import provenance
from sparse_vae.atomic import atomic_open, write_text
from sparse_vae.config import canonical_json
from sparse_vae.data.io import array_checksum, load_dataset
from sparse_vae.errors import TrainingDiverged
from sparse_vae.grid import (
    DIVERGENCE_FACTOR,
    LOSS_TERMS,
    CandidateAdam,
    CandidateBook,
    divergence,
    restart_candidates,
)
from sparse_vae.model import VAE, build_model, export_candidate, prior_family_and_posterior, save_model

HISTORY_COLUMNS = [
    "epoch", "candidate", "lr", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl",
    "val_iwae", "seconds", "samples_per_s",
]
EVAL_TERMS = ("loss", "recon", "kl", "iwae")
EVAL_BATCH = 1024
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 4          # part of the fingerprint: checkpoints of an older layout are not resumed
VALIDATION_FRACTION = 0.1      # share of the train split held out to choose and stop
VALIDATION_SEED = 0            # fixed, so every prior and training seed holds out the same examples
EVAL_SEED = 12345              # RNG stream of the validation/test scores (common to all epochs)
LOG_LINES = 10                 # progress lines per run (plus the first and last epoch)
SELECTION = "best_validation_iwae"
#: what a spec built outside the workflow (tests, benchmarks) gets for the stopping keys the config
#: schema requires: no early stopping, no warm-up, 16-draw validation IWAE
TRAIN_DEFAULTS = {"patience": None, "min_delta": 0.0, "val_iwae_samples": 16, "kl_warmup": 0}


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


@dataclass
class TrainState:
    """Everything that must survive a kill for the resumed run to be identical."""

    epoch: int
    history: list[dict[str, float]]
    elapsed: float
    book: dict[str, Any]


class Trainer:
    """Trains one run's grid of candidates; `fit` resumes from a matching checkpoint when one exists."""

    def __init__(self, spec: dict[str, Any], x_train: torch.Tensor, x_test: torch.Tensor,
                 device: torch.device, fingerprint: str, checkpoint_path: Path | None) -> None:
        self.spec, self.train = spec, {**TRAIN_DEFAULTS, **spec["train"]}
        self.device = device
        self.fingerprint = fingerprint
        self.checkpoint_path = checkpoint_path
        train_idx, val_idx = validation_split(x_train.shape[0])
        self.x_train = x_train[torch.from_numpy(train_idx)].to(device)
        self.x_val = x_train[torch.from_numpy(val_idx)].to(device)
        self.x_test = x_test.to(device)
        self.lrs = learning_rates(self.train)
        self.batched = len(self.lrs) > 1
        torch.manual_seed(spec["seed"])
        obs_sd = data_obs_sd(self.x_train)
        self.model = build_model(spec, input_dim=x_train.shape[1],
                                 candidates=len(self.lrs) if self.batched else None, obs_sd_init=obs_sd).to(device)
        if self.batched:
            restart_candidates(self.model, spec, obs_sd)
        if self.batched:
            self.optimizer: Any = CandidateAdam(list(self.model.parameters()), self.lrs)
        else:  # fused: one kernel over all parameters (~30% faster steps on a CPU core, see bench/)
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lrs[0], fused=True)
        self.rows = list(range(len(self.lrs)))   # the candidates the (batched) model still holds, in order
        self.batch_order = torch.Generator().manual_seed(spec["seed"])
        self.book = CandidateBook(self.lrs, self.train["patience"], float(self.train["min_delta"]),
                                  self.train["kl_warmup"])
        self.state = TrainState(epoch=0, history=[], elapsed=0.0, book={})
        self.best_weights = self._weights()

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        assert self.checkpoint_path is not None
        self.state.book = asdict(self.book)
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
        self.state = TrainState(**ckpt["state"])
        self.book = CandidateBook(**self.state.book)
        if self.batched:   # the model holds only the candidates still training (`_compact`)
            self.model.set_candidate_weights(ckpt["model"])
            self.rows = self.book.active()
        else:
            self.model.load_state_dict(ckpt["model"])
        self.best_weights = ckpt["best_model"]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        # RNG states are host byte tensors, whatever map_location did to them
        torch.set_rng_state(ckpt["torch_rng"].cpu())
        if ckpt["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all([state.cpu() for state in ckpt["cuda_rng"]])
        self.batch_order.set_state(ckpt["batch_order"].cpu())
        print(f"[{run_name(self.spec)}] resumed from {path} after epoch {self.state.epoch}", flush=True)
        return True

    def _weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _keep(self, candidates: list[int]) -> None:
        """Copy these candidates' current weights into the kept (best) weights."""
        if not candidates:
            return
        if not self.batched:
            self.best_weights = self._weights()
            return
        rows = [self.rows.index(k) for k in candidates]
        for name, value in self.model.named_parameters():
            self.best_weights[name][candidates] = value.detach()[rows]

    def _compact(self) -> None:
        """Drop stopped candidates (converged, diverged) from the batched model and its optimiser, so
        the epochs after them cost only the candidates still training. Their kept weights stay in
        `best_weights`; the others' steps are unchanged (data batches and draws are shared)."""
        active = self.book.active()
        if not self.batched or not active or active == self.rows:
            return
        rows = [self.rows.index(k) for k in active]
        self.model.set_candidate_weights({name: value.detach()[rows] for name, value in self.model.named_parameters()})
        self.optimizer.keep(rows)
        self.rows = active

    def _by_candidate(self, values: torch.Tensor) -> torch.Tensor:
        """Rows of the model's candidates placed on the full grid (NaN for candidates it no longer holds)."""
        full = torch.full((len(self.lrs), *values.shape[1:]), math.nan, dtype=values.dtype)
        full[self.rows] = values
        return full

    # -- the loop ---------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over a fresh permutation: the epoch's mean loss terms, (K, 3), on the host (NaN
        for candidates no longer trained)."""
        n = self.x_train.shape[0]
        batch_size = self.train["batch_size"]
        order = torch.randperm(n, generator=self.batch_order).to(self.device)
        n_steps = (n + batch_size - 1) // batch_size
        k = len(self.rows)
        step_terms = torch.empty(n_steps, k, len(LOSS_TERMS), device=self.device)
        ramp = self.train["kl_warmup"] * n_steps
        self.model.train()
        for step in range(n_steps):
            batch = self.x_train.index_select(0, order[step * batch_size:(step + 1) * batch_size])
            done = (epoch - 1) * n_steps + step + 1
            terms = self.model(batch, kl_weight=min(1.0, done / ramp) if ramp else 1.0)
            self.optimizer.zero_grad()
            terms.loss.sum().backward()
            self.optimizer.step()
            step_terms[step] = torch.stack(terms[:3], -1).detach().reshape(k, len(LOSS_TERMS))
        step_terms = step_terms.cpu()
        if self.book.initial_loss is None:
            self.book.initial_loss = step_terms[0, :, 0].tolist()   # the first batch, before any update
        self.check_divergence(step_terms, epoch)
        sizes = torch.full((n_steps,), float(batch_size))
        sizes[-1] = n - batch_size * (n_steps - 1)
        return self._by_candidate((step_terms * sizes[:, None, None]).sum(0) / n)

    def divergence_limit(self, k: int = 0) -> float:
        """|epoch median batch loss| above this (nats/example) is divergence: see the module docstring."""
        assert self.book.initial_loss is not None
        return DIVERGENCE_FACTOR * (abs(self.book.initial_loss[k]) + self.x_train.shape[1])

    def check_divergence(self, step_terms: torch.Tensor, epoch: int) -> None:
        """Drop each candidate (model row) whose epoch has a non-finite term or exploded; checked once
        an epoch to avoid per-step syncs. Raises when no candidate is left."""
        for row, k in enumerate(self.rows):
            problem = divergence(step_terms[:, row], self.divergence_limit(k), self.book.initial_loss[k],
                                 self.x_train.shape[1])
            if problem is not None:
                self._drop(k, f"{problem[0]} at epoch {epoch}, step {problem[1]} ({problem[2]})")

    def _drop(self, k: int, what: str) -> None:
        who = f"run {run_name(self.spec)}" + (f" (candidate {k}, lr {self.lrs[k]:g})" if self.batched else "")
        message = f"{who}: {what}"
        self.book.drop(k, message)
        if not self.book.active() and not any(s in ("converged", "cap") for s in self.book.status):
            raise TrainingDiverged("; ".join(self.book.reason))
        print(f"[{run_name(self.spec)}] dropped grid candidate: {message}", flush=True)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, model: VAE | None = None) -> torch.Tensor:
        """(K, 4) mean -ELBO, recon, kl and IWAE bound over `x` with `val_iwae_samples` draws each
        (K = the candidates the model holds, 1 for a plain model), from the evaluation RNG stream (the
        training stream is untouched)."""
        model = self.model if model is None else model
        model.eval()
        n_samples = self.train["val_iwae_samples"]
        totals = torch.zeros(model.candidates or 1, len(EVAL_TERMS), device=self.device, dtype=torch.float64)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(EVAL_SEED)
            for start in range(0, x.shape[0], EVAL_BATCH):
                batch = x[start:start + EVAL_BATCH]
                log_lik, log_ratio = model.log_weights(batch, model.posterior(batch), n_samples)
                log_lik, log_ratio = log_lik.double(), log_ratio.double().sum(-1)
                iwae = torch.logsumexp(log_lik - log_ratio, 0) - math.log(n_samples)
                terms = torch.stack([(log_ratio - log_lik).mean(0), -log_lik.mean(0), log_ratio.mean(0), iwae], -1)
                totals += terms.reshape(totals.shape[0], -1, len(EVAL_TERMS)).sum(1)
        return (totals / x.shape[0]).cpu()

    def fit(self) -> None:
        epochs = self.train["epochs"]
        every = self.train["checkpoint_every"]
        log_every = max(1, math.ceil(epochs / LOG_LINES))
        self.try_resume()
        n = self.x_train.shape[0]
        started, first = time.perf_counter(), self.state.epoch + 1
        for epoch in range(first, epochs + 1):
            active = self.book.active()
            start = time.perf_counter()
            train = self.train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            val = self._by_candidate(self.evaluate(self.x_val))
            for k in self.book.active():
                if not math.isfinite(float(val[k, 3])):
                    self._drop(k, f"non-finite validation IWAE after epoch {epoch}")
            self.state.history += [self.row(epoch, k, train[k], val[k], seconds, n) for k in active]
            improved, _ = self.book.update(epoch, val[:, 3].tolist())
            self._keep(improved)
            self._compact()
            self.state.epoch, self.state.elapsed = epoch, self.state.elapsed + seconds
            done = not self.book.active()
            if epoch == 1 or epoch % log_every == 0 or epoch == epochs or done:
                self.log(epoch, epochs, val, (time.perf_counter() - started) / (epoch - first + 1) * (epochs - epoch))
            if done:
                break
            if self.checkpoint_path is not None and epoch % every == 0 and epoch < epochs:
                self.save_checkpoint()
        self.book.close(epochs)

    def row(self, epoch: int, k: int, train: torch.Tensor, val: torch.Tensor, seconds: float,
            n: int) -> dict[str, float]:
        return {"epoch": epoch, "candidate": k, "lr": self.lrs[k],
                **{f"train_{t}": float(v) for t, v in zip(LOSS_TERMS, train)},
                **{f"val_{t}": float(v) for t, v in zip(EVAL_TERMS, val)},
                "seconds": seconds, "samples_per_s": n / seconds}

    def kept_model(self) -> tuple[int, VAE]:
        """(winning candidate, its kept weights as a plain VAE of the spec)."""
        winner = self.book.winner()
        if not self.batched:
            self.model.load_state_dict(self.best_weights)
            return winner, self.model
        self.model.set_candidate_weights(self.best_weights)
        self.rows = list(range(len(self.lrs)))
        return winner, export_candidate(self.model, winner, self.spec)

    def log(self, epoch: int, epochs: int, val: torch.Tensor, eta: float) -> None:
        shown = "  ".join(f"lr {self.lrs[k]:g}: " + (f"{float(val[k, 3]):.3f}" if s == "training" else
                                                     f"{self.book.best_val_iwae[k]:.3f} kept ({s})")
                          for k, s in enumerate(self.book.status))
        print(f"[{run_name(self.spec)}] epoch {epoch}/{epochs}  validation IWAE in nats/example: {shown}  "
              f"ETA {format_duration(eta)} at most", flush=True)


def fingerprint_of(spec: dict[str, Any], x_train: np.ndarray, x_test: np.ndarray) -> str:
    """Identifies (settings, data): a checkpoint only resumes the run that wrote it."""
    digest = hashlib.sha256(f"checkpoint format {CHECKPOINT_FORMAT}".encode())
    digest.update(canonical_json(spec).encode())
    digest.update(array_checksum(x_train, x_test).encode())
    return digest.hexdigest()


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
    trainer = Trainer(spec, torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.x_test), dev,
                      fingerprint_of(spec, dataset.x_train, dataset.x_test), checkpoint)
    trainer.fit()
    winner, model = trainer.kept_model()
    book = trainer.book
    print(f"[{run_name(spec)}] kept candidate {winner} (lr {trainer.lrs[winner]:g}) at epoch "
          f"{book.best_epoch[winner]}/{spec['train']['epochs']}: {book.status[winner]}, validation IWAE "
          f"{book.best_val_iwae[winner]:.3f} nats/example; full history in history.csv", flush=True)
    test = trainer.evaluate(trainer.x_test, model)[0]   # the kept weights, scored once

    family, posterior = prior_family_and_posterior(spec["prior"])
    save_model(run_dir / "model.pt", model.cpu(), spec,
               {"image_shape": list(dataset.image_shape), "selected_epoch": book.best_epoch[winner],
                "selection": SELECTION, "candidate": winner, "lr": trainer.lrs[winner],
                "family": family, "posterior": posterior})
    write_history(run_dir / "history.csv", trainer.state.history)
    summary = run_summary(trainer, winner, test, dataset, dev, threads, family, posterior)
    write_text(run_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    checkpoint.unlink(missing_ok=True)
    return summary


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    lines = [",".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append(",".join(str(row[c]) if c in ("epoch", "candidate") else repr(float(row[c]))
                              for c in HISTORY_COLUMNS))
    write_text(path, "\n".join(lines) + "\n")


def run_summary(trainer: Trainer, winner: int, test: torch.Tensor, dataset: Any, dev: torch.device,
                threads: int, family: str, posterior: str) -> dict[str, Any]:
    """train.json: the spec, the kept candidate and epoch, the stopping rule's verdict, every candidate."""
    spec, book, state = trainer.spec, trainer.book, trainer.state
    rows = [r for r in state.history if r["candidate"] == winner]
    kept = next(r for r in rows if r["epoch"] == book.best_epoch[winner])
    n_train = trainer.x_train.shape[0]
    scores = ("train_loss", "val_loss", "val_iwae")
    return {
        "spec": spec,
        "prior": spec["prior"]["name"],   # the prior entry's name: the run's identity
        "family": family,                 # the prior's distribution family
        "posterior": posterior,           # the posterior family (gaussian | cauchy)
        "objective": spec["prior"].get("objective", "elbo"),
        "source": dataset.metadata.get("source"),
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "threads": threads,
        "versions": provenance.versions(),   # every package behind the numbers, commit, CPU/BLAS/CUDA
        "epochs": state.epoch,            # epochs trained (the cap, or fewer when every candidate stopped)
        "duration_s": state.elapsed,
        "samples_per_s": n_train * state.epoch / state.elapsed if state.elapsed else None,
        # model.pt holds the winning candidate's weights of `selected_epoch`
        "selection": SELECTION,
        "selected_epoch": book.best_epoch[winner],
        "candidate": winner,
        "lr": trainer.lrs[winner],
        "converged": book.status[winner] == "converged",
        "stopping": {"status": book.status[winner], "reason": book.reason[winner],
                     "rule": f"stop a candidate after {book.patience} epochs without a validation IWAE gain of "
                             f"more than {book.min_delta:g} nats/example (counted after {book.warmup} epochs of "
                             f"KL warm-up); cap {spec['train']['epochs']} epochs",
                     "val_iwae_samples": trainer.train["val_iwae_samples"],
                     "kl_warmup": trainer.train["kl_warmup"]},
        "candidates": book.records(),
        "validation": {
            "split": "train", "n_validation": int(trainer.x_val.shape[0]), "n_train_used": int(n_train),
            "rule": f"a fixed random {VALIDATION_FRACTION:.0%} of the train split (permutation with seed "
                    f"{VALIDATION_SEED}), held out of training; the test split is never used to choose",
        },
        "divergence_limit": trainer.divergence_limit(winner),
        "first_epoch": {k: rows[0][k] for k in scores},
        "selected": {**{k: kept[k] for k in scores},
                     **{f"test_{t}": float(v) for t, v in zip(EVAL_TERMS, test)}},
        "final": {k: rows[-1][k] for k in scores},
    }
