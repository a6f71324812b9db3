"""The analysis' random streams, written once: every step that draws numbers seeds its own stream
from the run's seed, so each step draws its own numbers and adding a step moves no other."""

from __future__ import annotations

__all__ = ["OFFSETS", "step_seed"]

#: step -> offset: the step's generator is seeded with run seed x 1000 + offset
OFFSETS = {"iwae": 101, "kl": 102, "prior_samples": 103, "ais": 104, "information": 105, "probe": 106}


def step_seed(run_seed: int, step: str) -> int:
    """The seed of one analysis step of one run."""
    return int(run_seed) * 1000 + OFFSETS[step]
