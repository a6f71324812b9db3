"""The training loop of a pack: whole dataset on the device, slice batches, resumable bit-for-bit.

A job trains a pack (`pack`): every seed of one (dataset, prior, latent) times every learning rate
of `train.lr`, stacked as one batched model; one run (one seed) is a pack of one, trained the same
way. Each seed's run keeps its own folder and files (model.pt, history.csv, train.json:
`run_record`).

Why no DataLoader: the datasets are small dense arrays, so one tensor on the device and batches cut
from a per-epoch permutation remove all per-sample Python work (see bench/). Why the careful state
handling: a job killed by the cluster and rerun must finish with exactly the weights an
uninterrupted run would have, so checkpoints carry model, optimiser and every generator's state (`checkpoint`), and
every file is written under a temporary name and renamed into place.

A run trains every learning rate of `train.lr` (a number, or a list: a grid) at once as one batched
model (`grid`), each candidate under the stopping rule there, and keeps the candidate with the best
validation IWAE at its own kept epoch. Nothing else chooses: the test split is scored once, on the
kept weights, and never decides anything.

Guards on what a run returns:
* validation: a fixed 10% of the train split (the same examples for every prior and seed: a seed-0
  permutation) is held out of training and scored every epoch by the `val_iwae_samples`-draw IWAE
  bound, which is finite for every posterior family (the single-draw ELBO under a Cauchy posterior is
  not: see `model.VAE.iwae_bound`); so every family is selected and stopped on the same quantity.
* common random numbers: the seed alone fixes the batch order, the draws and the initial weights
  (built in the same order whatever the prior, so every layer whose shape does not depend on the
  prior starts equal), each from the seed's own generator, so packing changes none of them: seed s
  of two priors is a paired comparison, and the validation split is the same for every seed.
* divergence: a loss that is NaN/inf, or an epoch whose median batch loss exceeds
  `DIVERGENCE_FACTOR` x (|loss at initialisation| + input dimension) in absolute value, stops the
  candidate with one line naming run, epoch, step and term; a grid drops that candidate and goes on,
  and the run fails (no model.pt) only when every candidate has. The median, not the mean: with a
  Cauchy posterior a single far-tail sample makes one batch's loss enormous, which is not divergence;
  a run that explodes has most batches beyond. One nat per pixel in the margin keeps the rule
  meaningful when the initial loss is near 0.
* evaluation noise: validation and test scores draw from their own generator (seeded `scoring.EVAL_SEED`
  at every evaluation, the same for every seed), so every epoch is scored on the same noise and
  evaluating does not change training.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sparse_vae.checkpoint import CHECKPOINT_NAME, fingerprint_of, load_checkpoint, restore, save_checkpoint
from sparse_vae.data.io import load_dataset
from sparse_vae.errors import TrainingDiverged
from sparse_vae.grid import DIVERGENCE_FACTOR, LOSS_TERMS, CandidateAdam, CandidateBook, divergence
from sparse_vae.model import VAE
from sparse_vae.model_io import export_candidate
from sparse_vae.pack import Layout, build_pack, check_pack
from sparse_vae.run_setup import (  # noqa: F401  (resolve_device, set_threads: part of this module's interface)
    VALIDATION_FRACTION,
    VALIDATION_SEED,
    data_obs_sd,
    format_duration,
    learning_rates,
    resolve_device,
    run_name,
    set_threads,
    validation_split,
)
from sparse_vae.scoring import EVAL_TERMS, score

__all__ = ["CHECKPOINT_NAME", "Trainer", "fingerprint_of", "train_pack", "train_run"]

HISTORY_COLUMNS = [
    "epoch", "candidate", "lr", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl",
    "val_iwae", "seconds", "samples_per_s",
]
LOG_LINES = 10                 # progress lines per run (plus the first and last epoch)
SELECTION = "best_validation_iwae"
#: what a spec built outside the workflow (tests, benchmarks) gets for the stopping keys the config
#: schema requires: no early stopping, no warm-up, 16-draw validation IWAE
TRAIN_DEFAULTS = {"patience": None, "min_delta": 0.0, "val_iwae_samples": 16, "kl_warmup": 0}


@dataclass
class TrainState:
    """Everything besides tensors and books that must survive a kill, per seed of the pack: each
    run's history rows, its share of the training time (the pack's epoch time split evenly among
    the seeds still training, so summing runs gives the job's time) and the epochs it trained."""

    epoch: int = 0
    history: list[list[dict[str, float]]] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)


class Trainer:
    """Trains a pack (`pack`) of one or more seeds x the grid's learning rates; `fit` resumes from a
    matching checkpoint. `specs`: one run spec or a list differing only in seed."""

    def __init__(self, specs: dict[str, Any] | list[dict[str, Any]], x_train: torch.Tensor, x_test: torch.Tensor,
                 device: torch.device, fingerprint: str, checkpoint_path: Path | None) -> None:
        self.specs = [specs] if isinstance(specs, dict) else list(specs)
        check_pack(self.specs)
        self.train = {**TRAIN_DEFAULTS, **self.specs[0]["train"]}
        self.device, self.fingerprint, self.checkpoint_path = device, fingerprint, checkpoint_path
        train_idx, val_idx = validation_split(x_train.shape[0])
        self.x_train = x_train[torch.from_numpy(train_idx)].to(device)
        self.x_val = x_train[torch.from_numpy(val_idx)].to(device)
        self.x_test = x_test.to(device)
        self.lrs = learning_rates(self.train)
        seeds, k = [spec["seed"] for spec in self.specs], len(self.lrs)
        self.model, self.draws = build_pack(self.specs, k, x_train.shape[1], data_obs_sd(self.x_train), device)
        self.optimizer = CandidateAdam(list(self.model.parameters()), self.lrs * len(seeds))
        self.batch_order = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.eval_draws = torch.Generator(device=device)
        self.books = [CandidateBook(self.lrs, self.train["patience"], float(self.train["min_delta"]),
                                    self.train["kl_warmup"]) for _ in seeds]
        self.state = TrainState(0, [[] for _ in seeds], [0.0] * len(seeds), [0] * len(seeds))
        self.failed = [""] * len(seeds)             # why a seed's run failed (every candidate diverged)
        self.layout = Layout(list(range(len(seeds) * k)), k, device)
        self.best_weights = {name: value.detach().clone() for name, value in self.model.state_dict().items()}

    # -- members and the stack ---------------------------------------------------------------
    def active(self) -> list[int]:
        """Members still training, in stack order."""
        k = len(self.lrs)
        return [i * k + c for i, book in enumerate(self.books) for c in book.active()]

    def relayout(self) -> None:
        self.layout = Layout(self.active(), len(self.lrs), self.device)

    def _keep(self, members: list[int]) -> None:
        """Copy these members' current weights into the kept (best) weights."""
        if members:
            rows = [self.layout.rows.index(m) for m in members]
            for name, value in self.model.named_parameters():
                self.best_weights[name][members] = value.detach()[rows]

    def _compact(self) -> None:
        """Drop stopped members (converged, diverged) from the stacked model and its optimiser, so
        later epochs cost only the members still training; their kept weights stay in
        `best_weights`, and the others' steps are unchanged (each seed's batches and draws are its own)."""
        active = self.active()
        if not active or active == self.layout.rows:
            return
        rows = [self.layout.rows.index(m) for m in active]
        self.model.set_candidate_weights({n: v.detach()[rows] for n, v in self.model.named_parameters()})
        self.optimizer.keep(rows)
        self.relayout()

    def _by_member(self, values: torch.Tensor) -> torch.Tensor:
        """Rows of the stacked model placed on the whole pack (NaN for members it no longer holds)."""
        full = torch.full((len(self.books) * len(self.lrs), *values.shape[1:]), math.nan, dtype=values.dtype)
        full[self.layout.rows] = values
        return full

    # -- one epoch ---------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over each seed's fresh permutation: the epoch's mean loss terms per member,
        (members, 3), on the host (NaN for members no longer trained)."""
        n, batch_size, layout = self.x_train.shape[0], self.train["batch_size"], self.layout
        orders = torch.stack([torch.randperm(n, generator=self.batch_order[i]) for i in layout.seeds]).to(self.device)
        n_steps = (n + batch_size - 1) // batch_size
        step_terms = torch.empty(n_steps, len(layout.rows), len(LOSS_TERMS), device=self.device)
        ramp = self.train["kl_warmup"] * n_steps
        self.model.train()
        self.model.noise = layout.noise(self.draws)
        for step in range(n_steps):
            batch = layout.batch(self.x_train[orders[:, step * batch_size:(step + 1) * batch_size]])
            done = (epoch - 1) * n_steps + step + 1
            terms = self.model(batch, kl_weight=min(1.0, done / ramp) if ramp else 1.0)
            self.optimizer.zero_grad()
            terms.loss.sum().backward()
            self.optimizer.step()
            step_terms[step] = torch.stack(terms[:3], -1).detach().reshape(len(layout.rows), len(LOSS_TERMS))
        step_terms = step_terms.cpu()
        for i, book in enumerate(self.books):
            if book.initial_loss is None and i in layout.seeds:   # the first batch, before any update
                book.initial_loss = [float(step_terms[0, layout.rows.index(m), 0]) for m in self._members(i)]
        self.check_divergence(step_terms, epoch)
        sizes = torch.full((n_steps,), float(batch_size))
        sizes[-1] = n - batch_size * (n_steps - 1)
        return self._by_member((step_terms * sizes[:, None, None]).sum(0) / n)

    def _members(self, i: int) -> list[int]:
        return list(range(i * len(self.lrs), (i + 1) * len(self.lrs)))

    def divergence_limit(self, i: int = 0, k: int = 0) -> float:
        """|epoch median batch loss| above this (nats/example) is divergence: see the module docstring."""
        initial = self.books[i].initial_loss
        assert initial is not None
        return DIVERGENCE_FACTOR * (abs(initial[k]) + self.x_train.shape[1])

    def check_divergence(self, step_terms: torch.Tensor, epoch: int) -> None:
        """Drop each member whose epoch has a non-finite term or exploded; checked once an epoch to
        avoid per-step syncs."""
        for row, m in enumerate(self.layout.rows):
            i, k = divmod(m, len(self.lrs))
            problem = divergence(step_terms[:, row], self.divergence_limit(i, k), self.books[i].initial_loss[k],
                                 self.x_train.shape[1])
            if problem is not None:
                self._drop(i, k, f"{problem[0]} at epoch {epoch}, step {problem[1]} ({problem[2]})")

    def _drop(self, i: int, k: int, what: str) -> None:
        """Member (seed i, candidate k) diverged. A seed whose candidates all diverged has failed;
        the pack raises when every seed has (the others' runs are written before a failure is raised)."""
        name = run_name(self.specs[i])
        who = f"run {name}" + (f" (candidate {k}, lr {self.lrs[k]:g})" if len(self.lrs) > 1 else "")
        book = self.books[i]
        book.drop(k, f"{who}: {what}")
        if not book.active() and not any(s in ("converged", "cap") for s in book.status):
            self.failed[i] = "; ".join(book.reason)
            if all(self.failed):
                raise TrainingDiverged("; ".join(self.failed))
        print(f"[{name}] dropped grid candidate: {who}: {what}", flush=True)

    # -- the validation score ----------------------------------------------------------------
    def evaluate(self, x: torch.Tensor, model: VAE | None = None) -> torch.Tensor:
        """(K, 4) validation/test score of the stacked model (or `model`): `scoring.score`."""
        return score(self.model if model is None else model, x, self.train["val_iwae_samples"], self.eval_draws)

    # -- the stopping bookkeeping ------------------------------------------------------------
    def record_epoch(self, epoch: int, started: list[int], train: torch.Tensor, val: torch.Tensor,
                     seconds: float) -> None:
        """History rows of the members that started the epoch, then each seed's stopping rule, kept
        weights and time share; stopped members leave the stack."""
        k, n = len(self.lrs), self.x_train.shape[0]
        for m in self.active():
            if not math.isfinite(float(val[m, 3])):
                self._drop(m // k, m % k, f"non-finite validation IWAE after epoch {epoch}")
        seeds = sorted({m // k for m in started})
        share = seconds / len(seeds)
        for i in seeds:
            self.state.history[i] += [self.row(epoch, m % k, train[m], val[m], share, n)
                                      for m in started if m // k == i]
            improved, _ = self.books[i].update(epoch, val[i * k:(i + 1) * k, 3].tolist())
            self._keep([i * k + c for c in improved])
            self.state.elapsed[i] += share
            self.state.epochs[i] = epoch
        self._compact()
        self.state.epoch = epoch

    def row(self, epoch: int, k: int, train: torch.Tensor, val: torch.Tensor, seconds: float,
            n: int) -> dict[str, float]:
        return {"epoch": epoch, "candidate": k, "lr": self.lrs[k],
                **{f"train_{t}": float(v) for t, v in zip(LOSS_TERMS, train)},
                **{f"val_{t}": float(v) for t, v in zip(EVAL_TERMS, val)},
                "seconds": seconds, "samples_per_s": n / seconds}

    # -- the loop and the checkpoint ---------------------------------------------------------
    def fit(self) -> None:
        epochs, every = self.train["epochs"], self.train["checkpoint_every"]
        log_every = max(1, math.ceil(epochs / LOG_LINES))
        self.try_resume()
        started_at, first = time.perf_counter(), self.state.epoch + 1
        for epoch in range(first, epochs + 1):
            started, start = self.active(), time.perf_counter()
            if not started:
                break
            train = self.train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            val = self._by_member(self.evaluate(self.x_val))
            self.record_epoch(epoch, started, train, val, seconds)
            done = not self.active()
            if epoch == 1 or epoch % log_every == 0 or epoch == epochs or done:
                eta = (time.perf_counter() - started_at) / (epoch - first + 1) * (epochs - epoch)
                self.log(epoch, epochs, val, eta, sorted({m // len(self.lrs) for m in started}))
            if done:
                break
            if self.checkpoint_path is not None and epoch % every == 0 and epoch < epochs:
                self.save_checkpoint()
        for book in self.books:
            book.close(epochs)

    def save_checkpoint(self) -> None:
        assert self.checkpoint_path is not None
        save_checkpoint(self)

    def try_resume(self) -> bool:
        """Restore a checkpoint made by these exact specs and data; ignore (and replace) any other."""
        ckpt = load_checkpoint(self.checkpoint_path, self.fingerprint, self.device, self.name)
        if ckpt is None:
            return False
        restore(self, ckpt)
        print(f"[{self.name}] resumed from {self.checkpoint_path} after epoch {self.state.epoch}", flush=True)
        return True

    @property
    def name(self) -> str:
        """The pack in log lines: its one run's name, or the first run's with the seeds."""
        if len(self.specs) == 1:
            return run_name(self.specs[0])
        return f"{run_name(self.specs[0]).rsplit('/', 1)[0]}/seeds {','.join(str(s['seed']) for s in self.specs)}"

    def kept_models(self) -> list[tuple[int, VAE] | None]:
        """Per seed: (winning candidate, its kept weights as a plain VAE of the seed's spec), None
        for a seed whose run failed. Leaves the stacked model holding every member's kept weights."""
        self.model.set_candidate_weights(self.best_weights)
        self.layout = Layout(list(range(len(self.books) * len(self.lrs))), len(self.lrs), self.device)
        kept: list[tuple[int, VAE] | None] = []
        for i, (spec, book) in enumerate(zip(self.specs, self.books)):
            if self.failed[i]:
                kept.append(None)
                continue
            winner = book.winner()
            kept.append((winner, export_candidate(self.model, i * len(self.lrs) + winner, spec)))
        return kept

    def log(self, epoch: int, epochs: int, val: torch.Tensor, eta: float, seeds: list[int]) -> None:
        k = len(self.lrs)
        for i in seeds:
            book = self.books[i]
            shown = "  ".join(f"lr {self.lrs[c]:g}: " + (f"{float(val[i * k + c, 3]):.3f}" if s == "training" else
                                                         f"{book.best_val_iwae[c]:.3f} kept ({s})")
                              for c, s in enumerate(book.status))
            print(f"[{run_name(self.specs[i])}] epoch {epoch}/{epochs}  validation IWAE in nats/example: {shown}  "
                  f"ETA {format_duration(eta)} at most", flush=True)


def train_pack(data_path: Path, specs: list[dict[str, Any]], run_dirs: list[Path], threads: int = 1,
               device: str = "auto", checkpoint: Path | None = None) -> list[dict[str, Any] | None]:
    """Train a pack (specs differing only in seed) and write each run's model.pt, history.csv and
    train.json to its own folder in `run_dirs`; returns each run's train.json (None: failed).

    Outputs appear only when training has finished; until then the pack's checkpoint (default: in
    the first run's folder) is all there is, and a rerun resumes from it. A seed whose every
    candidate diverged gets no files, and TrainingDiverged is raised once the others are written.
    """
    from sparse_vae.run_record import write_run  # noqa: PLC0415 (run_record reads this module's constants)

    if len(specs) != len(run_dirs):
        raise ValueError(f"{len(specs)} specs but {len(run_dirs)} run folders")
    set_threads(threads)
    dev = resolve_device(device)
    if dev.type == "cuda":  # CPU kernels are deterministic already; the call imports torch._dynamo (~2 s a job)
        torch.use_deterministic_algorithms(True, warn_only=True)
    dataset = load_dataset(data_path)
    run_dirs = [Path(d) for d in run_dirs]
    for run_dir in run_dirs:
        run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dirs[0] / CHECKPOINT_NAME if checkpoint is None else Path(checkpoint)
    trainer = Trainer(specs, torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.x_test), dev,
                      fingerprint_of(specs, dataset.x_train, dataset.x_test), checkpoint)
    trainer.fit()
    summaries = [None if kept is None else write_run(trainer, i, *kept, dataset, dev, threads, run_dirs[i])
                 for i, kept in enumerate(trainer.kept_models())]
    checkpoint.unlink(missing_ok=True)
    if any(trainer.failed):
        raise TrainingDiverged("; ".join(f for f in trainer.failed if f))
    return summaries


def train_run(data_path: Path, spec: dict[str, Any], run_dir: Path, threads: int = 1,
              device: str = "auto") -> dict[str, Any]:
    """Train one run (a pack of one): model.pt, history.csv and train.json in `run_dir`."""
    summary = train_pack(data_path, [spec], [run_dir], threads, device)[0]
    assert summary is not None
    return summary
