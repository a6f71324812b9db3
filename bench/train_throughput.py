"""Training throughput: the package's in-memory loop vs a plain DataLoader loop, same run, same model.

MNIST-shaped data (60,000 x 784, made locally), the pytorch/examples 784-400-20 VAE, batch 128.
Reports samples/s per prior, the ratio to the DataLoader baseline (measured in this same run),
achieved GFLOP/s as a fraction of a large `torch.mm` measured in this same run, and the
pytorch/examples VAE itself (bench/reference_vae.py, its textbook loop) in the same run.
On CUDA when a GPU is present (--device auto, the default); it says so when there is none.

    python bench/train_throughput.py [--threads 1] [--epochs 1] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from sparse_vae.model import build_model
from sparse_vae.train import Trainer, resolve_device, set_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_vae import ReferenceVAE, loss_function  # noqa: E402  (bench/ is not a package)

N, D, HIDDEN, LATENT, BATCH = 60_000, 784, 400, 20, 128


def spec_for(prior: str, epochs: int) -> dict:
    return {
        "dataset": "bench", "latent": LATENT, "seed": 0,
        "prior": {"name": prior, "scale": 1.0, "kl": "closed_form", "kl_samples": 1},
        "model": {"hidden": [HIDDEN], "decoder": "mlp", "likelihood": "bernoulli", "obs_scale": "learned"},
        "train": {"epochs": epochs, "batch_size": BATCH, "lr": 1e-3, "checkpoint_every": 1000},
    }


def flops_per_sample() -> float:
    """Matmul flops of one training step per sample: forward, input-gradient and weight-gradient
    products of the four dense layers (the first layer needs no input gradient)."""
    first = D * HIDDEN
    rest = HIDDEN * 2 * LATENT + LATENT * HIDDEN + HIDDEN * D
    return 2.0 * (2 * first + 3 * rest)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large square float32 matmul: the machine's practical peak."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    sync(device)
    return 2.0 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def time_package_loop(x: torch.Tensor, prior: str, epochs: int, device: torch.device) -> float:
    trainer = Trainer(spec_for(prior, epochs), x, x[:1000], device, "bench", checkpoint_path=None)
    trainer.train_epoch(0)  # warm-up
    sync(device)
    start = time.perf_counter()
    for epoch in range(epochs):
        trainer.train_epoch(epoch)
    sync(device)
    return N * epochs / (time.perf_counter() - start)


def time_dataloader_loop(x: torch.Tensor, prior: str, epochs: int, device: torch.device) -> float:
    """The textbook loop: TensorDataset + shuffling DataLoader, batches moved to the device each step."""
    torch.manual_seed(0)
    model = build_model(spec_for(prior, epochs), D).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=BATCH, shuffle=True)

    def epoch_pass() -> None:
        for (batch,) in loader:
            batch = batch.to(device)
            loss = model(batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return samples_per_second(epoch_pass, epochs, device)


def samples_per_second(epoch_pass, epochs: int, device: torch.device) -> float:
    """Throughput of `epoch_pass` over `epochs` passes of N samples, after one warm-up pass."""
    epoch_pass()
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        epoch_pass()
    sync(device)
    return N * epochs / (time.perf_counter() - start)


def time_reference_loop(x: torch.Tensor, epochs: int, device: torch.device) -> float:
    """pytorch/examples/vae as written: its model, summed BCE + KL, DataLoader, `data.to(device)`."""
    torch.manual_seed(0)
    model = ReferenceVAE(D, HIDDEN, LATENT).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=BATCH, shuffle=True)

    def epoch_pass() -> None:
        for (data,) in loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss_function(recon, data, mu, logvar).backward()
            optimizer.step()

    return samples_per_second(epoch_pass, epochs, device)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"device cuda ({torch.cuda.get_device_name(device)})"
    gpu = "" if torch.cuda.is_available() else " (no CUDA device here: GPU throughput not measured)"
    return f"device cpu{gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both loops)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per measurement")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: CUDA when present, else the CPU")
    args = parser.parse_args()
    set_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except RuntimeError as error:
        parser.error(str(error))
    x = (torch.rand(N, D, generator=torch.Generator().manual_seed(0)) ** 4)  # MNIST-like: mostly dark

    peak = matmul_peak(device)
    print(f"{describe(device)}, threads {args.threads}, torch {torch.__version__}")
    print(f"matmul peak (2048^2 float32 mm): {peak:.1f} GFLOP/s")
    print(f"pytorch/examples VAE (its own loop): {time_reference_loop(x, args.epochs, device):,.0f} samples/s")
    print(f"{'prior':8} {'package samples/s':>18} {'DataLoader samples/s':>21} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'% of mm peak':>13}")
    for prior in ("normal", "laplace", "cauchy"):
        ours = time_package_loop(x, prior, args.epochs, device)
        base = time_dataloader_loop(x, prior, args.epochs, device)
        gflops = ours * flops_per_sample() / 1e9
        print(f"{prior:8} {ours:18,.0f} {base:21,.0f} {ours / base:6.2f} {gflops:8.1f} {100 * gflops / peak:12.0f}%")


if __name__ == "__main__":
    main()
