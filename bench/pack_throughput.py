"""Seeds x learning rates as one pack: epoch time of S seeds x K rates against one run.

For each model of the offline study (presets/offline.yaml: its shapes, batch sizes and 4-draw IWAE
objective) and MNIST's 784-400-20, this times one epoch (`Trainer.train_epoch` and the validation
score, `Trainer.evaluate`) of packs of S seeds x K rates, S x K in {1, 4, 8, 32}, on random data of
the model's shape, and reports the ratio to one seed with one rate (1x1) and to the offline
study's run (one seed with its 4-rate grid, 1x4). All in one process, one thread, interleaved
repeats (median), so machine load hits every row alike. S separate runs would cost S x (1xK).

    nice python bench/pack_throughput.py [--threads 1] [--device auto|cpu|cuda] [--repeats 3] [--examples 4096]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

from timing import interleaved_medians

from sparse_vae.train import Trainer, resolve_device, set_threads

#: name -> (input dim, latent, hidden, decoder, likelihood, obs_scale, train examples, batch size)
MODELS = {
    "control (16-32-6, linear decoder)": (16, 6, [32], "linear", "gaussian", 0.3, 7200, 128),
    "synthetic (25-64-4 MLP)": (25, 4, [64], "mlp", "gaussian", "learned", 9000, 128),
    "synthetic10 (100-128-2 MLP)": (100, 2, [128], "mlp", "gaussian", "learned", 9000, 128),
    "digits z10 (64-128-10 MLP)": (64, 10, [128], "mlp", "bernoulli", "learned", 1294, 64),
    "natural (64-128-16 MLP)": (64, 16, [128], "mlp", "gaussian", "learned", 3600, 128),
    "natural12 (144-169 linear)": (144, 169, [], "linear", "gaussian", 0.5, 18000, 128),
    "MNIST (784-400-20 MLP)": (784, 20, [400], "mlp", "bernoulli", "learned", 54000, 128),
}
GRID = [5e-4, 1e-3, 2e-3, 4e-3]
PACKS = [(1, 1), (1, 4), (4, 1), (2, 4), (8, 1), (8, 4)]   # (seeds, rates): 1, 4, 4, 8, 8, 32 members


def trainer_for(shape: tuple, seeds: int, rates: int, examples: int, device: torch.device) -> Trainer:
    d, latent, hidden, decoder, likelihood, obs, n, batch = shape
    n = min(n, examples)
    spec = {"dataset": "bench", "latent": latent, "seed": 1,
            "prior": {"name": "laplace", "family": "laplace", "posterior": "gaussian", "scale": 1.0,
                      "kl": "closed_form", "kl_samples": 1, "objective": "iwae", "objective_samples": 4},
            "model": {"hidden": hidden, "decoder": decoder, "likelihood": likelihood, "obs_scale": obs},
            "train": {"epochs": 1000, "batch_size": batch, "lr": GRID[:rates], "checkpoint_every": 1000,
                      "patience": None, "min_delta": 0.0, "val_iwae_samples": 16}}
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(int(n / 0.9), d, generator=generator)
    x = x.round() if likelihood == "bernoulli" else x
    return Trainer([{**spec, "seed": s} for s in range(1, seeds + 1)], x, x[:64], device, "bench", None)


def epoch(trainer: Trainer) -> None:
    """One epoch of training and the validation score, as a run's loop does them."""
    trainer.state.epoch += 1
    trainer.train_epoch(trainer.state.epoch)
    trainer.evaluate(trainer.x_val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=4096, help="cap on the train examples an epoch")
    parser.add_argument("--models", nargs="*", help="substrings of the model names to run (default: all)")
    args = parser.parse_args()
    set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, {args.threads} thread(s); epoch (train + validation) of S seeds x K rates, "
          f"ratios to 1x1 and to 1x4 (the offline study's run)")
    print(f"| model | 1x1 epoch (s) | {' | '.join(f'{s}x{k}' for s, k in PACKS[1:])} | 8x4 / 1x4 |")
    print("|---|---|" + "---|" * len(PACKS))
    for name, shape in MODELS.items():
        if args.models and not any(m in name for m in args.models):
            continue
        trainers = {pack: trainer_for(shape, *pack, args.examples, device) for pack in PACKS}
        median = interleaved_medians({pack: partial(epoch, t) for pack, t in trainers.items()}, device, args.repeats)
        base = median[(1, 1)]
        ratios = " | ".join(f"{median[pack] / base:.2f}" for pack in PACKS[1:])
        print(f"| {name} | {base:.3f} | {ratios} | {median[(8, 4)] / median[(1, 4)]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
