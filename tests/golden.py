"""Golden numbers: each stage's outputs on tiny inputs made here, pinned under the stage's version.

``tests/test_golden.py`` recomputes them and compares with ``tests/golden.json``. A difference
under an unchanged version means a change moved numbers without bumping its version in
``src/sparse_vae/versions.py``; a changed version means the pinned numbers are stale. After a
deliberate bump, regenerate (single-threaded, CPU):

    python tests/golden.py --update

Tolerance (``RTOL``): 1e-4 relative. Another CPU's kernels (AVX2 vs AVX-512, another BLAS)
move a 2-epoch tiny history by about 1e-7 to 1e-6, so 1e-4 passes there; a 0.1% change of any
loss term moves its recorded epoch mean by 1e-3, ten times the tolerance, so it fails.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_FILE = Path(__file__).with_name("golden.json")
RTOL = 1e-4
ATOL = 1e-7
REGENERATE = "python tests/golden.py --update"

# -- inputs --------------------------------------------------------------------------------------

#: the prior entries training can take: every family x posterior family, both KL estimators
PRIORS = {
    "normal": {"family": "normal", "posterior": "gaussian", "kl": "closed_form"},
    "laplace": {"family": "laplace", "posterior": "gaussian", "kl": "monte_carlo"},
    "laplace_cf": {"family": "laplace", "posterior": "gaussian", "kl": "closed_form"},
    "cauchy": {"family": "cauchy", "posterior": "cauchy", "kl": "closed_form"},
    "cauchy_gauss": {"family": "cauchy", "posterior": "gaussian", "kl": "monte_carlo"},
}
OBJECTIVES = {"elbo": 1, "iwae": 2}
DECODERS = ("mlp", "linear")
LIKELIHOODS = ("bernoulli", "gaussian")
TRAIN = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "checkpoint_every": 1, "patience": None,
         "min_delta": 0.0, "val_iwae_samples": 4, "kl_warmup": 0}
#: a K = 2 grid long enough for the stopping rule to decide
GRID_TRAIN = {**TRAIN, "epochs": 6, "lr": [1e-3, 3e-2], "patience": 1, "min_delta": 0.15}
ANALYSIS = {"iwae_samples": 8, "max_examples": 40, "active_threshold": 0.01, "used_ratio_threshold": 1.0,
            "kl_threshold": 0.01, "sparsity_threshold": 0.1, "probe_folds": 2, "info_examples": 40,
            "info_draws": 2, "at_once_threshold": 0.1, "ais_examples": 2, "ais_steps": 10, "ais_chains": 2,
            "ais_leapfrog": 2, "figures": "representative"}
#: one small prepared sample per data source (raw files written in torchvision's formats)
DATA_PARAMS: dict[str, dict[str, Any]] = {
    "synthetic": {"image_size": 5, "n_templates": 4, "templates": "bars", "weights": "laplace",
                  "weight_scale": 1.0, "active_prob": 0.3, "noise_std": 0.1, "n_train": 64, "n_test": 16,
                  "seed": 0},
    "sparse_linear": {"image_size": 4, "n_sources": 6, "atom_norm": 1.0, "noise_std": 0.1, "n_train": 64,
                      "n_test": 16, "seed": 0},
    "mnist": {"n_train": 8, "n_test": 4, "seed": 0},
    "fashion_mnist": {"n_train": 8, "n_test": 4, "seed": 0},
    "cifar": {"size": 8, "patch_size": None, "n_train": 8, "n_test": 4, "seed": 0},
    "digits": {"test_fraction": 0.2, "seed": 0},
    "natural": {"patch_size": 4, "n_train": 64, "n_test": 16, "whiten": "zca", "seed": 0},
}


def tiny_dataset(path: Path) -> Path:
    """A labelled 4x4 dataset in [0, 1] (valid under both likelihoods): 96 train, 32 test."""
    from sparse_vae.data.io import Dataset, save_dataset

    rng = np.random.default_rng(7)
    templates = rng.uniform(0, 1, (3, 16))
    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = np.clip(0.7 * templates[y] + 0.3 * rng.uniform(0, 1, (n, 16)), 0, 1).astype(np.float32)
        return x, y.astype(np.int64)
    (x_train, y_train), (x_test, y_test) = draw(96), draw(32)
    save_dataset(path, Dataset(x_train, x_test, (4, 4), y_train, y_test, metadata={"source": "golden"}))
    return path


def spec(prior: str, objective: str, decoder: str, likelihood: str, train: dict[str, Any],
         seed: int = 1) -> dict[str, Any]:
    return {
        "dataset": "golden",
        "prior": {"name": prior, "scale": 1.0, "kl_samples": 2, **PRIORS[prior],
                  "objective": objective, "objective_samples": OBJECTIVES[objective]},
        "latent": 2, "seed": seed,
        "model": {"hidden": [8], "decoder": decoder, "likelihood": likelihood,
                  "obs_scale": "learned" if likelihood == "gaussian" else 0.1},
        "train": dict(train),
    }


def training_matrix() -> Iterator[tuple[str, dict[str, Any]]]:
    for prior, objective, decoder, likelihood in product(PRIORS, OBJECTIVES, DECODERS, LIKELIHOODS):
        yield f"{prior}/{objective}/{decoder}/{likelihood}", spec(prior, objective, decoder, likelihood, TRAIN)
    yield "grid/laplace/iwae/mlp/gaussian", spec("laplace", "iwae", "mlp", "gaussian", GRID_TRAIN)


# -- records -------------------------------------------------------------------------------------

HISTORY_NUMBERS = ("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "val_iwae")


def _weights_digest(path: Path) -> dict[str, list[float]]:
    """Per tensor of model.pt: sum of |w| and of w^2 (positive, so a relative tolerance applies)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {name: [float(t.double().abs().sum()), float(t.double().pow(2).sum())] for name, t in sorted(state.items())}


def train_record(data: Path, run_spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """What a training run pins: its history's loss terms, test scores, kept weights, stopping decision."""
    import pandas as pd

    from sparse_vae.train import train_run

    summary = train_run(data, run_spec, run_dir, threads=1, device="cpu")
    history = pd.read_csv(run_dir / "history.csv")
    return {
        "history": history[["epoch", "candidate", *HISTORY_NUMBERS]].to_numpy().tolist(),
        "test": {k: v for k, v in summary["selected"].items() if k.startswith("test_")},
        "weights": _weights_digest(run_dir / "model.pt"),
        "decision": {"candidate": summary["candidate"], "selected_epoch": summary["selected_epoch"],
                     "epochs": summary["epochs"],
                     "status": [c["status"] for c in summary["candidates"]]},
    }


def train_records(workdir: Path) -> dict[str, Any]:
    data = tiny_dataset(workdir / "golden.npz")
    return {name: train_record(data, s, workdir / name.replace("/", "_")) for name, s in training_matrix()}


def _fixture_run(data: Path, run_dir: Path, prior: str, decoder: str, seed: int) -> None:
    """A model.pt with weights drawn here (not by training or model init), so the analysis numbers
    depend on the analysis code alone."""
    import torch

    from sparse_vae.model import build_model
    from sparse_vae.model_io import save_model

    run_spec = spec(prior, "iwae", decoder, "gaussian", TRAIN, seed=seed)
    model = build_model(run_spec, input_dim=16)
    rng = np.random.default_rng(seed)
    with torch.no_grad():   # encoder and decoder weights; the prior's and pixel sd's constants stay
        for name, value in sorted(model.state_dict().items()):
            if name.startswith(("encoder.", "decoder.")):
                value.copy_(torch.from_numpy(rng.normal(0, 0.6, value.shape)).to(value.dtype))
        last = model.encoder[-1].bias   # (loc, raw scale): sharpen q(z|x) so the codes carry information
        last[last.shape[0] // 2:] -= 2.0
    family = PRIORS[prior]["family"]
    save_model(run_dir / "model.pt", model, run_spec,
               {"image_shape": [4, 4], "selected_epoch": 1, "selection": "best_validation_iwae", "candidate": 0,
                "lr": 1e-3, "family": family, "posterior": PRIORS[prior]["posterior"]})


def _flat_numbers(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat_numbers(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list):
        return {f"{prefix}{i}": v for i, v in enumerate(_flat_numbers_list(value))}
    return {prefix.rstrip("."): value}


def _flat_numbers_list(values: list[Any]) -> list[Any]:
    return [v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True) for v in values]


def analysis_records(workdir: Path) -> dict[str, Any]:
    """metrics.json's numbers of a fixture of 3 runs: a normal and a cauchy MLP model, and a linear-Gaussian
    one (whose exact marginal likelihood the AIS and IWAE estimates are checked against)."""
    from sparse_vae.analysis import analyze_run

    data = tiny_dataset(workdir / "golden.npz")
    out = {}
    for prior, decoder, seed in (("normal", "mlp", 1), ("cauchy", "mlp", 2), ("normal", "linear", 3)):
        run_dir = workdir / "analysis" / f"{prior}_{decoder}"
        _fixture_run(data, run_dir, prior, decoder, seed)
        metrics = analyze_run(data, run_dir, dict(ANALYSIS), threads=1, figures=False)["metrics"]
        out[f"{prior}/{decoder}"] = {k: v for k, v in _flat_numbers(metrics).items() if not k.startswith("seconds")}
    return out


def _array_digest(array: np.ndarray) -> list[Any]:
    values = np.asarray(array, dtype=np.float64).ravel()
    return [list(np.shape(array)), float(values.sum()), float((values ** 2).sum()), values[:8].tolist()]


def data_records(workdir: Path) -> dict[str, Any]:
    """Each source's prepared arrays on a small sample: shape, sum, sum of squares, first values."""
    from rawdata import write_cifar, write_mnist
    from sparse_vae.data import build_dataset

    root = workdir / "raw"
    write_mnist(root, n_train=12, n_test=6)
    write_mnist(root, n_train=12, n_test=6, folder="FashionMNIST")
    write_cifar(root, per_batch=4)
    out = {}
    for source, params in DATA_PARAMS.items():
        ds = build_dataset(source, dict(params), root)
        arrays = {"x_train": ds.x_train, "x_test": ds.x_test, **({"y_train": ds.y_train, "y_test": ds.y_test}
                                                                if ds.has_labels else {}), **ds.extras}
        out[source] = {name: _array_digest(a) for name, a in sorted(arrays.items())}
    return out


#: the verdict table's columns a report pins (its prose, the evidence text, is not a number)
VERDICT_NUMBERS = ("conclusion", "dataset", "latent", "metric", "verdict", "seeds", "test", "p_adjusted", "effect",
                   "effect_low", "effect_high")


def report_records(workdir: Path) -> dict[str, Any]:
    """The verdicts, summary and pairwise numbers of the report tests' small fixture study (three
    datasets, priors and seeds of made-up metrics.json files)."""
    import pandas as pd

    from sparse_vae.report import build_report
    from test_report import make_study

    paths, study = make_study(workdir / "study")
    build_report(paths, study, workdir / "report")
    tables = {name: pd.read_csv(workdir / "report" / f"{name}.csv") for name in ("verdicts", "summary", "pairwise")}
    verdicts = tables["verdicts"][[c for c in VERDICT_NUMBERS if c in tables["verdicts"]]]
    summary = tables["summary"].select_dtypes("number").join(tables["summary"][["dataset", "prior", "metric"]])
    pairwise = tables["pairwise"].select_dtypes("number")
    return {name: json.loads(frame.to_json(orient="records", double_precision=15))
            for name, frame in (("verdicts", verdicts), ("summary", summary), ("pairwise", pairwise))}


#: stage -> what computes its record
STAGES = {
    "train": train_records,
    "analysis": analysis_records,
    "data": data_records,
    "report": report_records,
}


def stage_versions(stage: str) -> dict[str, int]:
    """The versions a stage's golden numbers are keyed by (data: one per source)."""
    from sparse_vae import versions

    if stage == "data":
        return dict(versions.DATA)
    return {stage.upper(): versions.version(stage)}


def compute(stage: str) -> dict[str, Any]:
    """A stage's record, computed single-threaded on the CPU in a scratch folder."""
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(json.dumps(STAGES[stage](Path(tmp)), default=float))


# -- comparison ----------------------------------------------------------------------------------

def differences(pinned: Any, now: Any, where: str = "") -> list[str]:
    """Every place two records differ beyond RTOL/ATOL (numbers) or at all (anything else)."""
    if isinstance(pinned, dict) and isinstance(now, dict):
        found = [f"{where}{k}: missing now" for k in pinned if k not in now]
        found += [f"{where}{k}: new" for k in now if k not in pinned]
        for key in pinned.keys() & now.keys():
            found += differences(pinned[key], now[key], f"{where}{key}.")
        return found
    if isinstance(pinned, list) and isinstance(now, list):
        if len(pinned) != len(now):
            return [f"{where.rstrip('.')}: length {len(pinned)} -> {len(now)}"]
        return [d for i, (a, b) in enumerate(zip(pinned, now)) for d in differences(a, b, f"{where}{i}.")]
    numbers = (int, float)
    if isinstance(pinned, numbers) and isinstance(now, numbers) and not isinstance(pinned, bool):
        if math.isclose(pinned, now, rel_tol=RTOL, abs_tol=ATOL):
            return []
    elif pinned == now:
        return []
    return [f"{where.rstrip('.')}: {pinned!r} -> {now!r}"]


def load() -> dict[str, Any]:
    return json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.exists() else {}


def update(stages: list[str]) -> None:
    golden = load()
    for stage in stages:
        golden[stage] = {"versions": stage_versions(stage), "record": compute(stage)}
        print(f"pinned {stage} under {golden[stage]['versions']}")
    GOLDEN_FILE.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate tests/golden.json after a stage version bump.")
    parser.add_argument("--update", action="store_true", required=True, help="recompute and write the file")
    parser.add_argument("stages", nargs="*", metavar="STAGE",
                        help=f"stages to pin (default: all of {', '.join(STAGES)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage {', '.join(unknown)} (known: {', '.join(STAGES)})")
    update(args.stages or list(STAGES))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
