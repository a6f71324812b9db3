"""Stacked candidates: K independent copies of a layer trained at once, and where their draws come from.

A settings grid or a pack of seeds x learning rates (`sparse_vae.grid`, `sparse_vae.pack`) is one
model whose every weight carries a leading candidate axis; `CandidateLinear` is its layer and `Noise`
gives each seed's candidates their own reparameterisation draws. Why stacking pays: the small models'
steps are bound by per-kernel overhead, not arithmetic (bench/pack_throughput.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["CandidateLinear", "Noise", "mlp"]


@dataclass
class Noise:
    """Where a model's reparameterisation draws come from (`VAE.noise`; None: torch's global RNG).

    `generators`: one torch.Generator per group of candidates; `groups`: the group of each of the
    K candidates ((K,) long tensor), or None for one group shared by all. A pack of seeds x learning
    rates (`sparse_vae.pack`) gives every seed its own generator and the seed's candidates one group:
    a seed's candidates share their draws (as a grid's do) and see exactly the draws that seed's run
    alone would see, whatever else is in the pack.
    """

    generators: list[torch.Generator]
    groups: Tensor | None = None


class CandidateLinear(nn.Module):
    """K independent linear layers applied at once: weight (K, out, in), bias (K, out).

    Input (..., K, B, in) -> (..., K, B, out): the candidate axis is always third from the end, so a
    batch of posteriors (K, B, L) and their draws (S, K, B, L) pass through the same layers; a
    (B, in) input (the data, shared by all candidates) gives (K, B, out). One
    batched matmul (`baddbmm`) serves all K, which is why a grid of K settings costs about one run
    on the small models (their steps are bound by per-kernel overhead, not arithmetic: bench/).
    Parameter names match `nn.Linear`, so candidate k's slice is a plain layer's state.
    A (G, B, in) input with G < K dividing K is grouped: G inputs, each shared by K/G consecutive
    candidates (a pack's seeds, each with its own batch, times its learning rates), one batched
    matmul with K/G candidates' weights side by side per group.
    """

    def __init__(self, candidates: int, n_in: int, n_out: int) -> None:
        super().__init__()
        # Every candidate starts from the same nn.Linear initialisation, drawn once: candidates differ
        # only in their settings, and the draw (hence every later layer's) does not depend on K.
        plain = nn.Linear(n_in, n_out)
        self.weight = nn.Parameter(plain.weight.detach().expand(candidates, -1, -1).clone())
        self.bias = nn.Parameter(plain.bias.detach().expand(candidates, -1).clone())

    def forward(self, x: Tensor) -> Tensor:
        k, n_in = self.weight.shape[0], self.weight.shape[-1]
        if x.dim() == 2:  # one input (B, in) shared by all candidates (the data): a single matmul
            out = torch.addmm(self.bias.reshape(-1), x, self.weight.reshape(-1, n_in).t())
            return out.reshape(x.shape[0], k, -1).transpose(0, 1)
        if x.dim() == 3 and x.shape[0] != k:  # grouped input (G, B, in)
            g, b = x.shape[:2]
            if k % g:
                raise ValueError(f"{g} input groups do not divide {k} candidates")
            weight = self.weight.reshape(g, -1, n_in).transpose(1, 2)         # (G, in, K/G * out)
            out = torch.baddbmm(self.bias.reshape(g, 1, -1), x, weight)       # (G, B, K/G * out)
            return out.reshape(g, b, k // g, -1).transpose(1, 2).reshape(k, b, -1)
        lead = x.shape[:-3]
        flat = x.movedim(-3, 0).reshape(k, -1, n_in)
        out = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight.transpose(1, 2))
        return out.reshape(k, *lead, x.shape[-2], -1).movedim(0, -3)


def mlp(sizes: list[int], candidates: int | None = None) -> nn.Sequential:
    """Linear layers between consecutive sizes with ReLU between them (none after the last);
    `candidates` K stacks K independent copies (`CandidateLinear`)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out) if candidates is None else CandidateLinear(candidates, n_in, n_out))
    return nn.Sequential(*layers)
