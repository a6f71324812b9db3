"""A trained run's files: model.pt (the kept weights), history.csv (every epoch of every
candidate) and train.json (the spec, the kept candidate and epoch, the stopping rule's verdict).

The same files whether the run was trained alone or in a pack (`pack`): analysis and report read
them per run. Timings are the run's share of its pack's time (`train.TrainState`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sparse_vae import provenance
from sparse_vae.atomic import write_text
from sparse_vae.codehash import stage_record
from sparse_vae.model import VAE, prior_family_and_posterior
from sparse_vae.model_io import save_model
from sparse_vae.train import (
    EVAL_TERMS,
    HISTORY_COLUMNS,
    SELECTION,
    VALIDATION_FRACTION,
    VALIDATION_SEED,
    Trainer,
    run_name,
)


def write_run(trainer: Trainer, i: int, winner: int, model: VAE, dataset: Any, dev: torch.device, threads: int,
              run_dir: Path) -> dict[str, Any]:
    """Score the pack's seed i's kept model once on the test split and write its three files."""
    spec, book = trainer.specs[i], trainer.books[i]
    print(f"[{run_name(spec)}] kept candidate {winner} (lr {trainer.lrs[winner]:g}) at epoch "
          f"{book.best_epoch[winner]}/{spec['train']['epochs']}: {book.status[winner]}, validation IWAE "
          f"{book.best_val_iwae[winner]:.3f} nats/example; full history in history.csv", flush=True)
    test = trainer.evaluate(trainer.x_test, model)[0]   # the kept weights, scored once
    family, posterior = prior_family_and_posterior(spec["prior"])
    save_model(run_dir / "model.pt", model.cpu(), spec,
               {"image_shape": list(dataset.image_shape), "selected_epoch": book.best_epoch[winner],
                "selection": SELECTION, "candidate": winner, "lr": trainer.lrs[winner],
                "family": family, "posterior": posterior})
    write_history(run_dir / "history.csv", trainer.state.history[i])
    summary = run_summary(trainer, i, winner, test, dataset, dev, threads, family, posterior)
    write_text(run_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    return summary


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    lines = [",".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append(",".join(str(row[c]) if c in ("epoch", "candidate") else repr(float(row[c]))
                              for c in HISTORY_COLUMNS))
    write_text(path, "\n".join(lines) + "\n")


def run_summary(trainer: Trainer, i: int, winner: int, test: torch.Tensor, dataset: Any, dev: torch.device,
                threads: int, family: str, posterior: str) -> dict[str, Any]:
    """train.json of the pack's seed i: the spec, the kept candidate and epoch, the stopping rule's
    verdict, every candidate."""
    spec, book, state = trainer.specs[i], trainer.books[i], trainer.state
    epochs, elapsed = state.epochs[i], state.elapsed[i]
    rows = [r for r in state.history[i] if r["candidate"] == winner]
    kept = next(r for r in rows if r["epoch"] == book.best_epoch[winner])
    n_train = trainer.x_train.shape[0]
    scores = ("train_loss", "val_loss", "val_iwae")
    return {
        "spec": spec,
        "prior": spec["prior"]["name"],   # the prior entry's name: the run's identity
        "family": family,                 # the prior's distribution family
        "posterior": posterior,           # the posterior family (gaussian | cauchy)
        "objective": spec["prior"].get("objective", "elbo"),
        "source": dataset.metadata.get("source"),
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "threads": threads,
        "versions": provenance.versions(),   # every package behind the numbers, commit, CPU/BLAS/CUDA
        "code": stage_record("train"),       # TRAIN version and normalised code hash (codehash)
        "epochs": epochs,                 # epochs trained (the cap, or fewer when every candidate stopped)
        "duration_s": elapsed,            # this run's share of its pack's training time
        "samples_per_s": n_train * epochs / elapsed if elapsed else None,
        # model.pt holds the winning candidate's weights of `selected_epoch`
        "selection": SELECTION,
        "selected_epoch": book.best_epoch[winner],
        "candidate": winner,
        "lr": trainer.lrs[winner],
        "converged": book.status[winner] == "converged",
        "stopping": {"status": book.status[winner], "reason": book.reason[winner],
                     "rule": f"stop a candidate after {book.patience} epochs without a validation IWAE gain of "
                             f"more than {book.min_delta:g} nats/example (counted after {book.warmup} epochs of "
                             f"KL warm-up); cap {spec['train']['epochs']} epochs",
                     "val_iwae_samples": trainer.train["val_iwae_samples"],
                     "kl_warmup": trainer.train["kl_warmup"]},
        "candidates": book.records(),
        "validation": {
            "split": "train", "n_validation": int(trainer.x_val.shape[0]), "n_train_used": int(n_train),
            "rule": f"a fixed random {VALIDATION_FRACTION:.0%} of the train split (permutation with seed "
                    f"{VALIDATION_SEED}), held out of training; the test split is never used to choose",
        },
        "divergence_limit": trainer.divergence_limit(i, winner),
        "first_epoch": {k: rows[0][k] for k in scores},
        "selected": {**{k: kept[k] for k in scores},
                     **{f"test_{t}": float(v) for t, v in zip(EVAL_TERMS, test)}},
        "final": {k: rows[-1][k] for k in scores},
    }
