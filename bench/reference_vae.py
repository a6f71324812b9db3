"""Sanity check of the normal VAE's test ELBO against an independent reference implementation.

The reference is the pytorch/examples VAE (fc1 -> relu -> fc21/fc22, reparameterise, fc3 -> relu ->
fc4 -> sigmoid; loss = BCE summed over pixels + the closed-form Gaussian KL), written out here with
nothing from this package, trained with its textbook DataLoader loop at a preset's size and
settings on the same examples the package trains on (the train split less the package's fixed 10%
validation hold-out; the package keeps its best-validation epoch, the reference its last). Both
ELBOs are over the same test examples (the first ``analysis.max_examples``). If the package's
normal-prior run lands at the same test ELBO, its likelihood, KL and training loop agree with the
canonical example.

    python bench/reference_vae.py [--latent 10] [--seeds 1 2 3]         # digits, offline preset
    python bench/reference_vae.py --preset presets/fashion.yaml --dataset fashion_mnist --latent 20

Needs <results>/data/<dataset>.npz (prepared by the study) and, to compare, the study's
<results>/runs/<dataset>/normal/z<latent>/seed<seed>/metrics.json; <results> defaults to the
preset's ``results`` folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]


class ReferenceVAE(nn.Module):
    """pytorch/examples/vae/main.py, with the layer sizes as arguments."""

    def __init__(self, d: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, d)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def loss_function(recon_x, x, mu, logvar) -> torch.Tensor:
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_reference(x_train: np.ndarray, x_test: np.ndarray, settings: dict, latent: int, seed: int) -> float:
    """Train as pytorch/examples does; return the test ELBO (nats/example, averaged over 100 draws)."""
    torch.manual_seed(seed)
    model = ReferenceVAE(x_train.shape[1], settings["model"]["hidden"][0], latent)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["train"]["lr"])
    loader = DataLoader(TensorDataset(torch.from_numpy(x_train)), batch_size=settings["train"]["batch_size"],
                        shuffle=True)
    for _ in range(settings["train"]["epochs"]):
        model.train()
        for (data,) in loader:
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(x_test)
        mu, logvar = model.encode(x)
        # Average the one-sample ELBO over many draws so the number is the ELBO, not one noisy draw.
        losses = [loss_function(model.decode(model.reparameterize(mu, logvar)), x, mu, logvar).item()
                  for _ in range(100)]
    return -float(np.mean(losses)) / len(x_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", type=Path, default=REPO / "presets/offline.yaml")
    parser.add_argument("--dataset", default="digits", help="a Bernoulli MLP dataset of the preset")
    parser.add_argument("--results", type=Path, help="the study's output folder (default: the preset's)")
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    torch.set_num_threads(1)
    preset = yaml.safe_load(args.preset.read_text())
    settings = preset["datasets"][args.dataset]
    if settings["model"]["likelihood"] != "bernoulli" or len(settings["model"]["hidden"]) != 1:
        parser.error(f"{args.dataset}: the reference is a one-hidden-layer Bernoulli VAE")
    results = args.results or Path(preset["results"])
    with np.load(results / f"data/{args.dataset}.npz") as npz:
        x_train, x_test = npz["x_train"], npz["x_test"]
    # Train on what the package trains on; only the example indices come from the package.
    from sparse_vae.train import validation_split

    x_train = x_train[validation_split(len(x_train))[0]]
    max_examples = preset["analysis"]["max_examples"]
    x_test = x_test[:max_examples] if max_examples is not None else x_test
    print(f"{args.dataset} {x_train.shape[0]} train / {x_test.shape[0]} test, "
          f"{x_train.shape[1]}-{settings['model']['hidden'][0]}-{args.latent}, "
          f"{settings['train']['epochs']} epochs, batch {settings['train']['batch_size']}, lr {settings['train']['lr']}")
    reference, package = [], []
    for seed in args.seeds:
        reference.append(train_reference(x_train, x_test, settings, args.latent, seed))
        metrics = results / f"runs/{args.dataset}/normal/z{args.latent}/seed{seed}/metrics.json"
        package.append(json.loads(metrics.read_text())["metrics"]["elbo"] if metrics.exists() else float("nan"))
        print(f"seed {seed}: reference test ELBO {reference[-1]:.2f}, package {package[-1]:.2f} nats/example",
              flush=True)
    if len(args.seeds) > 1:
        print(f"mean: reference {np.mean(reference):.2f} ± {np.std(reference, ddof=1):.2f}, "
              f"package {np.nanmean(package):.2f} ± {np.nanstd(package, ddof=1):.2f} nats/example")


if __name__ == "__main__":
    main()
