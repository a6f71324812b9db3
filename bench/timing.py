"""The one timing loop of the throughput benchmarks: warm up every variant, then time them
interleaved (so a drift in the machine's load hits every variant alike) and keep each one's median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import torch


def seconds(step: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of one call of `step`, waiting for the GPU's queue when there is one."""
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_medians(steps: Mapping[Hashable, Callable[[], Any]], device: torch.device,
                        repeats: int) -> dict[Hashable, float]:
    """Median seconds of each variant's step over `repeats` interleaved rounds, after one warm-up each
    (first-touch allocations, kernel choice)."""
    for step in steps.values():
        seconds(step, device)
    times: dict[Hashable, list[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            times[key].append(seconds(step, device))
    return {key: statistics.median(t) for key, t in times.items()}
