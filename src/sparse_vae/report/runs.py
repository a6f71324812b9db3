"""Loading the report's inputs: the study settings (parsed once) and every run folder.

The inputs are written by our own code (the report rule's ``--study`` JSON, ``analyze`` and
``train``) against docs/interfaces.md, so nothing here guesses or falls back: a missing or
malformed input is an error that names the file (``MissingRunError`` for a run folder).
Not here: tables, verdicts, figures (the other modules of this package).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.errors import MissingRunError, SparseVAEError
from sparse_vae.paths import PANEL_ARRAYS

__all__ = ["Run", "Study", "check_complete", "code_drift", "code_drift_line", "environments", "load_baselines", "load_run",
           "load_runs"]

#: keys of train.json the report reads: (section or None, key).
TRAIN_KEYS = (
    ("selected", "train_loss"), ("selected", "test_loss"), ("selected", "test_recon"), ("selected", "test_kl"),
    ("selected", "val_iwae"), (None, "selected_epoch"), (None, "converged"), (None, "lr"), (None, "candidate"),
    ("first_epoch", "train_loss"), ("first_epoch", "val_iwae"), (None, "epochs"), (None, "duration_s"),
    (None, "samples_per_s"), (None, "device"),
)
RUN_KEYS = ("dataset", "prior", "latent", "seed", "kl_estimator")


@dataclass(frozen=True)
class Study:
    """The report rule's ``--study`` argument: ``{"study", "report", "datasets": {name: {"source",
    "priors"}}}`` (``priors``: the study's priors this dataset runs, ``config.dataset_priors``;
    ``report.stability``, optional: the verdicts.csv of one or more reruns of the study)."""

    datasets: tuple[str, ...]
    priors: tuple[str, ...]
    seeds: tuple[int, ...]
    sources: dict[str, str]  # dataset -> source (synthetic, mnist, cifar, digits, natural)
    confidence: float  # of the t-intervals over seeds
    representative_seed: int  # the seed whose run figures are shown side by side
    dataset_priors: dict[str, tuple[str, ...]]  # dataset -> the priors it runs (all when not restricted)
    #: dataset -> the prior family that generated it (``config.generating_family``), for the training control
    generators: dict[str, str | None] = field(default_factory=dict)
    #: reruns of the same study (their verdicts.csv) whose verdict words this report must match row by
    #: row; a row that flips in any of them reads "unstable" (``report.stability``). Empty: no check.
    stability: tuple[str, ...] = ()
    #: datasets whose Gaussian likelihood has a fixed noise sd (``model.obs_scale`` a number; conclusion 1
    #: leaves them out), from the study JSON's ``datasets.<name>.model``
    fixed_noise: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, study: Any) -> Study:
        """Check and parse the JSON once; an error names the missing or invalid key."""
        def get(holder: Any, key: str, where: str) -> Any:
            if not isinstance(holder, Mapping) or key not in holder:
                raise SparseVAEError(f"report --study: missing {where}{key}")
            return holder[key]

        spec, report, configured = get(study, "study", ""), get(study, "report", ""), get(study, "datasets", "")
        datasets = tuple(str(d) for d in get(spec, "datasets", "study."))
        seeds = tuple(int(s) for s in get(spec, "seeds", "study."))
        confidence = float(get(report, "confidence", "report."))
        if not 0 < confidence < 1:
            raise SparseVAEError(f"report confidence must lie in (0, 1), got {confidence}")
        if not (datasets and seeds):
            raise SparseVAEError("report --study: study.datasets and study.seeds must not be empty")
        sources = {d: str(get(get(configured, d, "datasets."), "source", f"datasets.{d}.")) for d in datasets}
        rep = get(report, "representative_seed", "report.")
        priors = tuple(str(p) for p in get(spec, "priors", "study."))
        per_dataset = {}
        for d in datasets:
            listed = configured[d].get("priors")
            per_dataset[d] = priors if listed is None else tuple(p for p in priors if p in {str(x) for x in listed})
        stability = report.get("stability")
        listed = [stability] if isinstance(stability, str) else stability
        if stability is not None and not (isinstance(listed, list) and listed
                                          and all(isinstance(s, str) and s for s in listed)):
            raise SparseVAEError("report.stability must be the path of a verdicts.csv, a list of them, or null, "
                                 f"got {stability!r}")
        generators = {d: configured[d].get("generator") for d in datasets}
        from sparse_vae.report.conclusions import fixed_noise_datasets  # noqa: PLC0415 (conclusions reads Run)
        return cls(datasets=datasets, priors=priors, seeds=seeds, sources=sources, confidence=confidence,
                   representative_seed=int(rep) if rep is not None else seeds[0], dataset_priors=per_dataset,
                   stability=tuple(listed or ()), generators=generators,
                   fixed_noise=frozenset(fixed_noise_datasets({d: configured[d] for d in datasets})))


@dataclass
class Run:
    """One run folder's outputs, as read (and checked) by ``load_run``."""

    folder: Path
    info: dict[str, Any]  # metrics.json "run": dataset, prior, latent, seed, kl_estimator
    metrics: dict[str, float | int | None]  # one value per catalogue metric
    not_applicable: dict[str, str]
    per_dimension: dict[str, list | None]
    train: dict[str, Any]  # train.json
    history: pd.DataFrame  # history.csv
    #: stage -> the code record (stage, version, code_hash) train.json / metrics.json carry, or None
    code: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.info["dataset"], self.info["prior"], int(self.info["latent"]), int(self.info["seed"]))

    def figure(self, name: str) -> Path:
        return self.folder / "figures" / f"{name}.png"

    def panel_arrays(self) -> Path:
        return self.folder / "figures" / PANEL_ARRAYS


def _failing(path: Path) -> Callable[[str], NoReturn]:
    """An error naming the file it is about, once: ``<path>: <what is wrong>``."""
    def fail(message: str) -> NoReturn:
        raise MissingRunError(f"{path}: {message}")
    return fail


def _read_json(path: Path) -> dict:
    fail = _failing(path)
    if not path.is_file():
        fail("is missing")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        fail(f"is unreadable ({error})")
    if not isinstance(value, dict):
        fail("does not hold a JSON object")
    return value


def _check_metrics(metrics: dict, fail: Callable[[str], NoReturn]) -> None:
    """metrics.json as `analyze` writes it: the catalogue's metrics, numbers or null."""
    for key in ("run", "metrics", "not_applicable", "per_dimension"):
        if not isinstance(metrics.get(key), dict):
            fail(f"lacks its {key!r} object (not a metrics.json written by `sparse-vae analyze`?)")
    missing = [k for k in RUN_KEYS if k not in metrics["run"]]
    if missing:
        fail(f"'run' lacks {', '.join(missing)}")
    names = set(metrics["metrics"])
    if names != set(catalogue.SCALAR_METRICS):
        lacking = sorted(set(catalogue.SCALAR_METRICS) - names)
        unknown = sorted(names - set(catalogue.SCALAR_METRICS))
        fail(f"metrics do not match the catalogue (lacking: {', '.join(lacking) or '-'}; "
             f"unknown: {', '.join(unknown) or '-'}); rerun the analysis")
    for name, value in metrics["metrics"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fail(f"metric {name} is {value!r}, not a number or null")


def _check_train(train: dict, fail: Callable[[str], NoReturn]) -> None:
    for section, key in TRAIN_KEYS:
        holder = train.get(section) if section else train
        if not isinstance(holder, dict) or key not in holder:
            fail(f"lacks {section + '.' if section else ''}{key}")


def _read_history(path: Path) -> pd.DataFrame:
    fail = _failing(path)
    if not path.is_file():
        fail("is missing")
    try:
        history = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        fail(f"is unreadable ({error})")
    if not {"epoch", "candidate", "val_iwae"} <= set(history.columns) or history.empty:
        fail("has no rows or lacks the epoch / candidate / val_iwae columns")
    return history


def load_run(path: Path | str) -> Run:
    """Read one run from its metrics.json and the train.json and history.csv beside it;
    MissingRunError names the file that is missing or malformed."""
    path = Path(path)
    folder = path.parent
    fail = _failing(path)
    metrics = _read_json(path)
    _check_metrics(metrics, fail)
    info = dict(metrics["run"])
    try:
        info["latent"], info["seed"] = int(info["latent"]), int(info["seed"])
    except (TypeError, ValueError):
        fail("metrics.json 'run' has a non-integer latent or seed")
    info["dataset"], info["prior"] = str(info["dataset"]), str(info["prior"])
    train = _read_json(folder / "train.json")
    _check_train(train, _failing(folder / "train.json"))
    return Run(folder=folder, info=info, metrics=metrics["metrics"], not_applicable=metrics["not_applicable"],
               per_dimension=metrics["per_dimension"], train=train,
               history=_read_history(folder / "history.csv"),
               code={"train": train.get("code"), "analysis": metrics.get("code")})


def load_runs(metrics_paths: Iterable[Path | str]) -> list[Run]:
    """Every run, checked for duplicates (two folders claiming the same dataset/prior/latent/seed)."""
    runs, seen = [], {}
    for path in metrics_paths:
        run = load_run(path)
        if run.key in seen:
            raise SparseVAEError(
                f"runs {seen[run.key]} and {run.folder} both claim dataset={run.key[0]} prior={run.key[1]} "
                f"latent={run.key[2]} seed={run.key[3]}"
            )
        seen[run.key] = run.folder
        runs.append(run)
    if not runs:
        raise MissingRunError("the report was given no runs")
    return runs


def code_drift(runs: Sequence[Run]) -> dict[str, int]:
    """How many runs were made by code whose normalised hash differs from today's under the same stage
    version ("older code of the same version": a forgotten version bump shows here), and how many
    recorded no code at all. A run counts once, whichever of its stages (train, analysis) differs."""
    from sparse_vae.codehash import stage_record

    today = {stage: stage_record(stage) for stage in ("train", "analysis")}
    older = unrecorded = 0
    for run in runs:
        records = [(run.code.get(stage), now) for stage, now in today.items()]
        if any(record is None for record, _ in records):
            unrecorded += 1
        elif any(record["version"] == now["version"] and record["code_hash"] != now["code_hash"]
                 for record, now in records):
            older += 1
    return {"older_code_same_version": older, "no_code_record": unrecorded}


def code_drift_line(runs: Sequence[Run]) -> str:
    """The report's one line on code provenance."""
    drift = code_drift(runs)
    line = f"{drift['older_code_same_version']} of {len(runs)} runs from older code of the same version"
    if drift["no_code_record"]:
        line += f"; {drift['no_code_record']} recorded no code hash (made before it was recorded)"
    return line + "."


#: field-fit keys the report reads from a dictionary baseline's metrics.json ("fields" section).
BASELINE_FIELD_KEYS = ("n_fields", "gabor_fraction", "dog_fraction", "extended_fraction", "unfitted_fraction")


def load_baselines(paths: Iterable[Path | str]) -> dict[str, dict[str, Any]]:
    """dataset -> the ``fields`` summary of its sparse-coding baseline, read from
    ``baselines/{dataset}/dictionary/metrics.json`` (rule baseline); an error names a bad file."""
    out: dict[str, dict[str, Any]] = {}
    for path in map(Path, paths):
        fail = _failing(path)
        if path.parent.name != "dictionary" or path.name != "metrics.json":
            fail("expected baselines/<dataset>/dictionary/metrics.json")
        fields = _read_json(path).get("fields")
        if not isinstance(fields, dict) or any(not isinstance(fields.get(k), (int, float))
                                               for k in BASELINE_FIELD_KEYS):
            fail(f"lacks fields.{{{', '.join(BASELINE_FIELD_KEYS)}}}")
        dataset = path.parent.parent.name
        if dataset in out:
            fail(f"a second baseline for dataset {dataset}")
        out[dataset] = {k: float(fields[k]) for k in BASELINE_FIELD_KEYS}
    return out


def check_complete(runs: Sequence[Run], study: Study) -> None:
    """Runs are exactly the study's: each dataset x its priors x seed (x each latent seen), nothing else."""
    have = {run.key for run in runs}
    for run in runs:
        dataset, prior, _, seed = run.key
        if (dataset not in study.datasets or prior not in study.dataset_priors[dataset]
                or seed not in study.seeds):
            priors = list(study.dataset_priors.get(dataset, study.priors))
            raise SparseVAEError(f"run {run.folder}: not part of the study (datasets {list(study.datasets)}, "
                                 f"priors of {dataset} {priors}, seeds {list(study.seeds)})")
    for dataset in study.datasets:
        latents = sorted({k[2] for k in have if k[0] == dataset}) or ["?"]
        for prior in study.dataset_priors[dataset]:
            for latent in latents:
                for seed in study.seeds:
                    if (dataset, prior, latent, seed) not in have:
                        raise MissingRunError(
                            f"run {dataset}/{prior}/z{latent}/seed{seed}: part of the study but its "
                            f"metrics.json was not given to the report"
                        )


def environments(runs: Sequence[Run]) -> tuple[dict[str, Any], list[tuple[Run, dict[str, tuple[Any, Any]]]]]:
    """(the environment most runs share, [(run, {key: (its value, the shared value)}) for runs that
    differ]) from train.json's "versions" (``sparse_vae.provenance.versions``).

    Older runs recorded four keys (python, torch, numpy, sparse_vae) or none: a key a run did not
    record is not a difference, so such runs are flagged only where what they did record differs;
    the report lists the keys no run recorded as unknown."""
    recorded = [run.train.get("versions") if isinstance(run.train.get("versions"), dict) else {} for run in runs]
    keys = list(dict.fromkeys(k for v in recorded for k in v))
    common: dict[str, Any] = {}
    for key in keys:
        values = [json.dumps(v[key], sort_keys=True) for v in recorded if key in v]
        common[key] = json.loads(max(dict.fromkeys(values), key=values.count))  # the most common value
    differ = []
    for run, v in zip(runs, recorded):
        diff = {k: (v[k], common[k]) for k in v if v[k] != common[k]}
        if diff:
            differ.append((run, diff))
    return common, differ


def number(value: Any) -> float:
    """A JSON number or null as a float (null -> NaN)."""
    return math.nan if value is None else float(value)
