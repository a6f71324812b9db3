"""Stage versions: the key that decides what an edit reruns.

Every Snakemake rule's params carry its stage's version (beside its config slice), so bumping one
reruns that stage and everything downstream of it, and an edit that leaves every version alone
reruns nothing. Bump a version when, and only when, a change moves that stage's numbers;
``pytest -m golden`` (tests/test_golden.py) says which stage a change moved. After a bump,
regenerate the pinned numbers with ``python -m tests.golden --update``.

The code itself is recorded too, for provenance (``codehash``): a run made by code whose
normalised hash differs from today's under the same version shows in the report as "older code
of the same version", so a forgotten bump is visible.
"""

from __future__ import annotations

#: one per data source (``sparse_vae.data.SOURCES``): bump when a source's prepared arrays change
#: (reruns that source's prepare jobs and everything trained on them).
DATA: dict[str, int] = {
    "synthetic": 1,
    "sparse_linear": 1,
    "mnist": 1,
    "fashion_mnist": 1,
    "cifar": 1,
    "digits": 1,
    "natural": 1,
}
#: bump when training's histories or weights change (reruns every train and analyze job, the report).
TRAIN = 1
#: bump when a metrics.json value, latents.npz or a baseline changes (reruns analyses and the report).
ANALYSIS = 2
#: bump when a report table, verdict or figure changes (reruns the report only).
REPORT = 4
#: bump when the estimators' known-answer controls change their design (reruns the controls job and the
#: report; a change of the estimators themselves is ANALYSIS, which reruns the controls too).
CONTROLS = 2

#: stage name -> the module whose imports define the stage's code (``codehash.stage_hash``).
ENTRY_MODULES: dict[str, str] = {
    "train": "sparse_vae.train",
    "analysis": "sparse_vae.analysis",
    "report": "sparse_vae.report",
}


def version(stage: str) -> int:
    """The version of a stage: ``train``, ``analysis``, ``report`` or ``data:<source>``."""
    if stage.startswith("data:"):
        source = stage.split(":", 1)[1]
        if source not in DATA:
            raise KeyError(f"no DATA version for source {source!r} (known: {', '.join(DATA)})")
        return DATA[source]
    versions = {"train": TRAIN, "analysis": ANALYSIS, "report": REPORT}
    if stage not in versions:
        raise KeyError(f"unknown stage {stage!r} (known: {', '.join(versions)}, data:<source>)")
    return versions[stage]


def entry_module(stage: str) -> str:
    """The module a stage runs: a data source's own module, or ``ENTRY_MODULES[stage]``."""
    if stage.startswith("data:"):
        return f"sparse_vae.data.{stage.split(':', 1)[1]}"
    return ENTRY_MODULES[stage]
