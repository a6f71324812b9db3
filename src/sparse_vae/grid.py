"""A grid of training settings trained as one batched model: per-candidate Adam and stopping rule.

Why batched: the study's small models are bound by per-kernel overhead, not arithmetic, so K
candidates stacked along a leading axis (`model.CandidateLinear`) cost about one run (bench/). What
must stay per candidate is everything that makes them independent runs: the learning rate and
Adam's moments (`CandidateAdam`), and the stopping rule, kept weights and fate (`CandidateBook`).

The stopping rule (Keras' EarlyStopping semantics, on a quantity that is higher-is-better): after
every epoch a candidate's validation IWAE counts as an improvement when it exceeds its best so far
by more than `min_delta` nats/example; the weights kept are those of its last improving epoch. A
candidate that has gone `patience` epochs without improving has *converged* and is frozen (its
learning rate becomes 0, so it no longer changes and the others go on); one still improving at the
epoch cap has *not* converged (status "cap"); one whose loss turned non-finite or exploded is
*diverged* and dropped. The run's winner is the candidate with the best kept validation IWAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

STATUSES = ("training", "converged", "cap", "diverged")


class CandidateAdam:
    """Adam (Kingma & Ba; torch.optim.Adam's update with default betas and eps) over parameters
    whose first axis indexes K candidates, each with its own learning rate.

    torch's Adam takes one learning rate per parameter tensor; a stacked tensor holds K candidates,
    so the step is written with `torch._foreach_*` kernels: the moments are updated on the whole
    stacked tensors, and the final step on per-candidate views, each with its own step size (the
    bias corrections folded in as torch's Adam does). A frozen candidate (`freeze`) is left out.
    """

    def __init__(self, params: list[Tensor], lrs: list[float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lrs = [float(lr) for lr in lrs]
        self.frozen: set[int] = set()
        self.betas, self.eps, self.step_count = betas, eps, 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def freeze(self, k: int) -> None:
        self.frozen.add(k)

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
        live = [k for k in range(len(self.lrs)) if k not in self.frozen]
        torch._foreach_addcdiv_([p[k] for k in live for p in self.params],
                                [m[k] for k in live for m in self.exp_avg],
                                [d[k] for k in live for d in denom],
                                [-self.lrs[k] * size for k in live for _ in self.params])

    def state_dict(self) -> dict:
        return {"lrs": list(self.lrs), "frozen": sorted(self.frozen), "step": self.step_count,
                "exp_avg": [t.clone() for t in self.exp_avg], "exp_avg_sq": [t.clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict) -> None:
        self.lrs, self.frozen, self.step_count = list(state["lrs"]), set(state["frozen"]), state["step"]
        for own, saved in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"]):
            own.copy_(saved)


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
