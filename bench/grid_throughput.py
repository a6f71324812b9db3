"""A learning-rate grid as one batched model: wall time of K stacked candidates against one run.

For the study's model shapes (digits MLP, synthetic MLP, control and natural12 linear decoders, the
784-400-20 MNIST model) this times `Trainer.train_epoch` for a grid of K = 1, 2, 4, 8 learning rates
(K = 1: a single `lr`, a pack of one member; since issue 33 every run trains on the stacked model) and reports the ratio to K = 1,
all in one process, one thread, interleaved repeats (median), so machine load affects every row
alike. "K separate runs" would cost K x the K = 1 time; the ratio says what the grid costs instead.

    python bench/grid_throughput.py [--threads 1] [--device auto|cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

from timing import interleaved_medians

from sparse_vae.train import Trainer, resolve_device, set_threads

#: name -> (input dim, latent, hidden, decoder, likelihood, obs_scale, examples, batch size)
MODELS = {
    "digits z10 (64-128-10 MLP)": (64, 10, [128], "mlp", "bernoulli", "learned", 1437, 64),
    "synthetic (25-64-4 MLP)": (25, 4, [64], "mlp", "gaussian", "learned", 9000, 128),
    "control (16-32-6, linear decoder)": (16, 6, [32], "linear", "gaussian", 0.3, 7200, 128),
    "natural12 (144-169 linear)": (144, 169, [], "linear", "gaussian", 0.5, 8192, 64),
    "MNIST (784-400-20 MLP)": (784, 20, [400], "mlp", "bernoulli", "learned", 8192, 128),
}
GRID = [5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2]


def trainer_for(shape: tuple, k: int, device: torch.device) -> Trainer:
    d, latent, hidden, decoder, likelihood, obs, n, batch = shape
    spec = {"dataset": "bench", "latent": latent, "seed": 0,
            "prior": {"name": "laplace", "family": "laplace", "posterior": "gaussian", "scale": 1.0,
                      "kl": "closed_form", "kl_samples": 1, "objective": "elbo", "objective_samples": 1},
            "model": {"hidden": hidden, "decoder": decoder, "likelihood": likelihood, "obs_scale": obs},
            "train": {"epochs": 1, "batch_size": batch, "lr": GRID[:k], "checkpoint_every": 1000,
                      "patience": 10, "min_delta": 0.0, "val_iwae_samples": 16}}
    x = torch.rand(int(n / 0.9), d).round() if likelihood == "bernoulli" else torch.rand(int(n / 0.9), d)
    return Trainer(spec, x, x[:64], device, "bench", None)


def train_epoch(trainer: Trainer) -> None:
    """One training epoch (no validation: the grid's own cost)."""
    trainer.train_epoch(trainer.state.epoch + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    set_threads(args.threads)
    device = resolve_device(args.device)
    ks = (1, 2, 4, 8)
    print(f"device {device}, {args.threads} thread(s); epoch time of a K-candidate grid / one run (K = 1)")
    print(f"| model | steps/epoch | K=1 epoch (s) | {' | '.join(f'K={k} / K=1' for k in ks[1:])} |")
    print("|---|---|---|" + "---|" * (len(ks) - 1))
    for name, shape in MODELS.items():
        trainers = {k: trainer_for(shape, k, device) for k in ks}
        median = interleaved_medians({k: partial(train_epoch, t) for k, t in trainers.items()}, device, args.repeats)
        base = median[1]
        steps = -(-trainers[1].x_train.shape[0] // shape[-1])
        ratios = " | ".join(f"{median[k] / base:.2f}" for k in ks[1:])
        print(f"| {name} | {steps} | {base:.3f} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
