"""A grid of training settings trained as one batched model: per-candidate Adam and stopping rule.

Why batched: the study's small models are bound by per-kernel overhead more than arithmetic, so K
candidates stacked along a leading axis (`stacked.CandidateLinear`) cost less than K runs (bench/).
What must stay per candidate is everything that makes them independent runs: the learning rate and
Adam's moments (`CandidateAdam`), and the stopping rule, kept weights and fate (`CandidateBook`).
A candidate that stops leaves the stacked model (`CandidateAdam.keep`, `train.Trainer._compact`),
so the steps after it cost only the candidates still training.

The stopping rule (Keras' EarlyStopping semantics, on a quantity that is higher-is-better): after
every epoch a candidate's validation IWAE counts as an improvement when it exceeds its best so far
by more than `min_delta` nats/example; the weights kept are those of its last improving epoch. A
candidate that has gone `patience` epochs without improving has *converged* and leaves the batch
(its kept weights stay in the book; the others go on); one still improving at the
epoch cap has *not* converged (status "cap"); one whose loss turned non-finite or exploded is
*diverged* and dropped. The run's winner is the candidate with the best kept validation IWAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


import numpy as np
import torch
from torch import Tensor


STATUSES = ("training", "converged", "cap", "diverged")
LOSS_TERMS = ("loss", "recon", "kl")
DIVERGENCE_FACTOR = 10.0       # see `train`'s module docstring (divergence)


class CandidateAdam:
    """Adam (Kingma & Ba; torch.optim.Adam's update with default betas and eps) over parameters
    whose first axis indexes K candidates, each with its own learning rate.

    torch's Adam takes one learning rate per parameter tensor; a stacked tensor holds K candidates,
    so the step is written with `torch._foreach_*` kernels: the moments are updated on the whole
    stacked tensors, and the final step on per-candidate views, each with its own step size (the
    bias corrections folded in as torch's Adam does). `keep` drops stopped candidates' moments
    when the trainer drops their rows from the parameters.
    """

    def __init__(self, params: list[Tensor], lrs: list[float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lrs = [float(lr) for lr in lrs]
        self.betas, self.eps, self.step_count = betas, eps, 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def keep(self, rows: list[int]) -> None:
        """Keep only these candidates (rows of the stacked tensors, in this order); the caller
        slices the parameters the same way."""
        index = torch.tensor(rows, device=self.exp_avg[0].device)
        self.lrs = [self.lrs[k] for k in rows]
        self.exp_avg = [m.index_select(0, index) for m in self.exp_avg]
        self.exp_avg_sq = [v.index_select(0, index) for v in self.exp_avg_sq]

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.step_count += 1
        grads = [p.grad for p in self.params]
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1 - beta2)
        bias2_sqrt = math.sqrt(1 - beta2 ** self.step_count)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_add_(denom, self.eps * bias2_sqrt)  # = bias2_sqrt * (sqrt(v_hat) + eps)
        size = bias2_sqrt / (1 - beta1 ** self.step_count)
        rows = range(len(self.lrs))
        torch._foreach_addcdiv_([p[k] for k in rows for p in self.params],
                                [m[k] for k in rows for m in self.exp_avg],
                                [d[k] for k in rows for d in denom],
                                [-self.lrs[k] * size for k in rows for _ in self.params])

    def state_dict(self) -> dict:
        return {"lrs": list(self.lrs), "step": self.step_count,
                "exp_avg": [t.clone() for t in self.exp_avg], "exp_avg_sq": [t.clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict) -> None:
        self.lrs, self.step_count = list(state["lrs"]), state["step"]
        device = self.exp_avg[0].device
        self.exp_avg = [t.to(device).clone() for t in state["exp_avg"]]
        self.exp_avg_sq = [t.to(device).clone() for t in state["exp_avg_sq"]]


@dataclass
class CandidateBook:
    """Per-candidate record of the stopping rule: best validation IWAE, its epoch, patience, fate."""

    lrs: list[float]
    patience: int | None              # None: no early stopping (run to the cap)
    min_delta: float
    warmup: int = 0                   # epochs of KL warm-up: patience counts only after them
    best_val_iwae: list[float] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)
    since_best: list[int] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)
    initial_loss: list[float] | None = None   # loss of each candidate's first batch (divergence rule)

    def __post_init__(self) -> None:
        k = len(self.lrs)
        self.best_val_iwae = self.best_val_iwae or [-math.inf] * k
        self.best_epoch = self.best_epoch or [0] * k
        self.since_best = self.since_best or [0] * k
        self.status = self.status or ["training"] * k
        self.reason = self.reason or [""] * k

    def active(self) -> list[int]:
        return [k for k, s in enumerate(self.status) if s == "training"]

    def drop(self, k: int, reason: str) -> None:
        self.status[k], self.reason[k] = "diverged", reason

    def update(self, epoch: int, val_iwae: list[float]) -> tuple[list[int], list[int]]:
        """Record one epoch's validation IWAE; returns (improved, newly converged) candidates."""
        improved, converged = [], []
        for k in self.active():
            if val_iwae[k] > self.best_val_iwae[k] + self.min_delta:
                self.best_val_iwae[k], self.best_epoch[k], self.since_best[k] = val_iwae[k], epoch, 0
                improved.append(k)
            elif epoch > self.warmup:
                self.since_best[k] += 1
                if self.patience is not None and self.since_best[k] >= self.patience:
                    self.status[k] = "converged"
                    self.reason[k] = (f"no improvement of validation IWAE by more than {self.min_delta:g} "
                                      f"nats for {self.patience} epochs")
                    converged.append(k)
        return improved, converged

    def close(self, epochs: int) -> None:
        """At the cap: candidates still training have not converged."""
        for k in self.active():
            self.status[k], self.reason[k] = "cap", f"still improving at the epoch cap ({epochs})"

    def winner(self) -> int:
        alive = [k for k, s in enumerate(self.status) if s != "diverged" and self.best_epoch[k] > 0]
        return max(alive, key=lambda k: self.best_val_iwae[k])

    def records(self) -> list[dict]:
        """One line per candidate for train.json."""
        return [{"candidate": k, "lr": lr, "status": self.status[k], "reason": self.reason[k],
                 "kept_epoch": self.best_epoch[k],
                 "val_iwae": self.best_val_iwae[k] if math.isfinite(self.best_val_iwae[k]) else None}
                for k, lr in enumerate(self.lrs)]


def restart_seed(seed: int, k: int) -> int:
    """The seed of grid candidate k's initial weights: the run's own seed for k = 0.

    Candidate k > 0 starts from the weights of a plain model seeded `restart_seed(s, k)`
    (`pack.member_start`): each candidate is a restart as well as a learning rate. Why: the small
    models have local optima (e.g. a template left unused), and which one a run falls into depends
    on its start; restarts make the grid's best-of-K less hostage to one draw, for every prior
    alike. Candidate k's start depends only on (seed, k), so priors stay paired."""
    return seed if k == 0 else seed + 1_000_003 * k


def divergence(terms: torch.Tensor, limit: float, initial: float, pixels: int) -> tuple[str, int, str] | None:
    """(what, first step, values) when one candidate's epoch of step terms (steps, 3) has a non-finite
    term or a median batch loss beyond `limit`, else None."""
    bad = ~torch.isfinite(terms)
    if bool(bad.any()):
        step = int(bad.any(dim=1).nonzero()[0])
        values = dict(zip(LOSS_TERMS, terms[step].tolist()))
        culprits = [t for t in LOSS_TERMS[1:] if not np.isfinite(values[t])] or ["loss"]
        return f"non-finite {' and '.join(culprits)}", step, _shown(values)
    median_loss = float(terms[:, 0].median())
    if abs(median_loss) <= limit:
        return None
    step = int((terms.abs() > limit).any(dim=1).nonzero()[0])     # the median exceeds it, so some step does
    values = dict(zip(LOSS_TERMS, terms[step].tolist()))
    culprits = [t for t in LOSS_TERMS[1:] if abs(values[t]) > limit] or ["loss"]
    return (f"{' and '.join(culprits)} diverged (epoch median batch loss {median_loss:.4g} nats/example, limit "
            f"{DIVERGENCE_FACTOR:g} x (|initial loss {initial:.4g}| + {pixels} pixels) = {limit:.4g})",
            step, _shown(values))


def _shown(values: dict[str, float]) -> str:
    return ", ".join(f"{name}={v:.4g}" for name, v in values.items())
