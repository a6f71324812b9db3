"""A pack: every seed x every learning rate of one (dataset, prior, latent) as one batched model.

Why: the study's small models are bound by per-step overhead (kernel launches, Python, Adam's
bookkeeping), not arithmetic, so stacking runs on the model's leading candidate axis
(`stacked.CandidateLinear`) costs far less than running them one after another, and one job pays
`import torch`, the data load and validation once for all of them (bench/pack_throughput.py).

Members are laid out seed-major: member m = i * K + k is grid candidate k (learning rate k) of the
pack's i-th seed. Each member stays the independent run it would be alone:
* initial weights: those of a plain model seeded `grid.restart_seed(seed, k)` (the seed itself
  for k = 0), built in the same order whatever the prior: seed s of two priors starts equal in
  every layer whose shape does not depend on the prior (common random numbers);
* batch order: a per-seed generator seeded with the seed (`Trainer`), one permutation an epoch;
* reparameterisation draws: a per-seed generator that continues the stream a plain model seeded
  `seed` would draw from after its initialisation (torch's global CPU stream after
  `torch.manual_seed(seed)` and building the model; on CUDA the device stream of that seed), so a
  pack of one draws exactly what the unpacked trainer did. A seed's K candidates share its batch
  and its draws, as a grid's candidates always have;
* Adam state and learning rate (`grid.CandidateAdam`) and stopping rule (`grid.CandidateBook`, one
  per seed). A member that stops leaves the stack (`Layout`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sparse_vae.grid import restart_seed
from sparse_vae.model import VAE, build_model
from sparse_vae.stacked import Noise


def check_pack(specs: list[dict[str, Any]]) -> None:
    """A pack is seeds of one configuration: the specs must differ in `seed` only, seeds unique."""
    if not specs:
        raise ValueError("a pack needs at least one run spec")
    seeds = [spec.get("seed") for spec in specs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a pack's seeds must be distinct, got {seeds}")
    first = {k: v for k, v in specs[0].items() if k != "seed"}
    for spec in specs[1:]:
        other = {k: v for k, v in spec.items() if k != "seed"}
        if other != first:
            keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
            raise ValueError(f"specs of one pack may differ only in seed; seed {spec.get('seed')} differs in "
                             f"{', '.join(keys)}")


def member_start(spec: dict[str, Any], k: int, input_dim: int, obs_sd: float) -> tuple[dict[str, Tensor], Tensor]:
    """(initial state_dict of candidate k of this spec's run, CPU RNG state right after building it).

    Built under a forked RNG: the global stream is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(restart_seed(spec["seed"], k))
        plain = build_model(spec, input_dim, obs_sd_init=obs_sd)
        return plain.state_dict(), torch.get_rng_state()


def build_pack(specs: list[dict[str, Any]], n_lrs: int, input_dim: int, obs_sd: float,
               device: torch.device) -> tuple[VAE, list[torch.Generator]]:
    """The stacked model of len(specs) x n_lrs members and each seed's generator of draws."""
    with torch.random.fork_rng(devices=[]):   # the stacked model's own init is overwritten below
        model = build_model(specs[0], input_dim, candidates=len(specs) * n_lrs, obs_sd_init=obs_sd)
    starts, generators = [], []
    for spec in specs:
        for k in range(n_lrs):
            weights, rng_after = member_start(spec, k, input_dim, obs_sd)
            starts.append(weights)
            if k == 0:
                generators.append(seed_generator(spec["seed"], rng_after, device))
    stacked = {name: torch.stack([start[name].reshape(param.shape[1:]) for start in starts])
               for name, param in model.named_parameters()}
    model.set_candidate_weights(stacked)
    return model.to(device), generators


def seed_generator(seed: int, cpu_state: Tensor, device: torch.device) -> torch.Generator:
    """The generator of a seed's reparameterisation draws on `device` (see the module docstring)."""
    generator = torch.Generator(device=device)
    if device.type == "cpu":
        generator.set_state(cpu_state)
    else:   # building the model on the host leaves the device stream at its seed
        generator.manual_seed(seed)
    return generator


class Layout:
    """Which members the stacked model holds (`rows`, in order) and how a step's data and draws
    reach them: one batch and one draw per seed still training, shared by its members.

    With one seed the batch is (B, D), shared by every row (the plain grid's matmul); with several
    and the same number of members each, it is grouped (G, B, D) (`stacked.CandidateLinear`);
    otherwise (after some members stopped) each row gets its seed's batch, (rows, B, D)."""

    def __init__(self, rows: list[int], n_lrs: int, device: torch.device) -> None:
        self.rows, self.n_lrs = list(rows), n_lrs
        self.seeds = sorted({m // n_lrs for m in self.rows})       # pack indices of the seeds in the stack
        group_of = [self.seeds.index(m // n_lrs) for m in self.rows]
        sizes = {group_of.count(g) for g in range(len(self.seeds))}
        self.uniform = len(sizes) == 1
        self.groups = None if len(self.seeds) == 1 else torch.tensor(group_of, device=device)

    def batch(self, x_seeds: Tensor) -> Tensor:
        """Model input from the seeds' batches (G, B, D)."""
        if self.groups is None:
            return x_seeds[0]
        return x_seeds if self.uniform else x_seeds.index_select(0, self.groups)

    def noise(self, generators: list[torch.Generator]) -> Noise:
        return Noise([generators[i] for i in self.seeds], self.groups)

    def members_of(self, i: int) -> list[int]:
        """Members of the pack's seed i in the stack."""
        return [m for m in self.rows if m // self.n_lrs == i]
