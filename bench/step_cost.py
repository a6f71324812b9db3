"""A training step's cost: the log weights written out against torch.distributions' log_prob.

`VAE.log_weights` takes log q(z|x) at the standard draw and the prior's log density written out
(`distributions.standard_log_density`, `prior_log_density`); the reference here is the textbook form
it replaced, `q.log_prob(z) - p.log_prob(z)` and the Gaussian likelihood as one expression per
element, swapped in by monkeypatching. Both time the same steps (4-candidate grid, 4-draw IWAE, one
thread, the offline preset's shapes), interleaved, median of repeats, in one process.

    python bench/step_cost.py [--repeats 5] [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sparse_vae.grid import CandidateAdam
from sparse_vae.distributions import HALF_LOG_2PI
from sparse_vae.model import VAE, build_model
from sparse_vae.train import set_threads

#: name -> (input dim, latent, hidden, decoder, likelihood, obs_scale, batch size, prior)
MODELS = {
    "control (16-32-6, linear)": (16, 6, [32], "linear", "gaussian", 0.3, 128, "laplace"),
    "synthetic10 (100-128-2 MLP)": (100, 2, [128], "mlp", "gaussian", "learned", 128, "laplace"),
    "digits z10 (64-128-10 MLP)": (64, 10, [128], "mlp", "bernoulli", "learned", 64, "laplace"),
    "natural (64-128-16 MLP)": (64, 16, [128], "mlp", "gaussian", "learned", 128, "cauchy"),
    "natural12 (144-169 linear)": (144, 169, [], "linear", "gaussian", 0.5, 128, "laplace"),
}
CANDIDATES = 4


def reference_log_weights(self: VAE, x: torch.Tensor, q, n_samples: int):
    """The textbook form: torch.distributions' log_prob of the draws."""
    z = self.draw(q, (n_samples,))
    return reference_log_likelihood(self, x, z), q.log_prob(z) - self.prior().log_prob(z)


def reference_log_likelihood(self: VAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    if self.likelihood == "bernoulli":   # unchanged: the same code on both sides
        return VAE.log_likelihood(self, x, z)
    out = self.decoder(z)
    log_sd = self._obs_log_sd()
    residual = (x - self._mean(out)) * torch.exp(-log_sd)
    return -(0.5 * residual.square() + log_sd + HALF_LOG_2PI).sum(-1)


def step_seconds(shape: tuple, steps: int) -> float:
    d, latent, hidden, decoder, likelihood, obs, batch, prior = shape
    posterior = "cauchy" if prior == "cauchy" else "gaussian"
    spec = {"latent": latent, "prior": {"name": prior, "family": prior, "posterior": posterior,
                                        "objective": "iwae", "objective_samples": 4},
            "model": {"hidden": hidden, "decoder": decoder, "likelihood": likelihood, "obs_scale": obs}}
    torch.manual_seed(0)
    model = build_model(spec, d, candidates=CANDIDATES)
    optimizer = CandidateAdam(list(model.parameters()), [1e-3] * CANDIDATES)
    x = torch.rand(batch, d)
    for step in range(steps + 10):
        if step == 10:
            start = time.perf_counter()
        terms = model(x)
        optimizer.zero_grad()
        terms.loss.sum().backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    set_threads(1)
    written_out = VAE.log_weights
    print(f"one thread; {CANDIDATES}-candidate grid, 4-draw IWAE; ms per step, median of {args.repeats}")
    print("| model | log_prob (reference) | written out | reference / written out |\n|---|---|---|---|")
    for name, shape in MODELS.items():
        times: dict[str, list[float]] = {"reference": [], "ours": []}
        for _ in range(args.repeats):
            VAE.log_weights = reference_log_weights
            times["reference"].append(step_seconds(shape, args.steps))
            VAE.log_weights = written_out
            times["ours"].append(step_seconds(shape, args.steps))
        ref, ours = (statistics.median(times[k]) * 1e3 for k in ("reference", "ours"))
        print(f"| {name} | {ref:.2f} | {ours:.2f} | {ref / ours:.2f} |")


if __name__ == "__main__":
    main()
