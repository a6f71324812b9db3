"""The report's code provenance line: runs made by older code of the same stage version are counted,
so a forgotten version bump shows."""

from __future__ import annotations

import json
from pathlib import Path

from sparse_vae.codehash import stage_record
from sparse_vae.report import runs

from test_report import make_study


def stamp(metrics_path: Path, train: dict | None, analysis: dict | None) -> None:
    folder = metrics_path.parent
    for name, record in (("train.json", train), ("metrics.json", analysis)):
        content = json.loads((folder / name).read_text())
        if record is None:
            content.pop("code", None)
        else:
            content["code"] = record
        (folder / name).write_text(json.dumps(content))


def test_runs_of_older_code_under_the_same_version_are_counted(tmp_path: Path) -> None:
    paths, _ = make_study(tmp_path, datasets={"synthetic": [4]}, seeds=(1, 2))
    today = {stage: stage_record(stage) for stage in ("train", "analysis")}
    for path in paths:
        stamp(path, today["train"], today["analysis"])
    stamp(paths[0], {**today["train"], "code_hash": "0" * 16}, today["analysis"])     # forgotten bump
    stamp(paths[1], today["train"], {**today["analysis"], "code_hash": "f" * 16})     # in analysis
    stamp(paths[2], {**today["train"], "version": today["train"]["version"] - 1, "code_hash": "1" * 16},
          today["analysis"])                                                           # another version
    stamp(paths[3], None, today["analysis"])                                           # made before records
    loaded = runs.load_runs(paths)
    assert runs.code_drift(loaded) == {"older_code_same_version": 2, "no_code_record": 1}
    line = runs.code_drift_line(loaded)
    assert line.startswith(f"2 of {len(paths)} runs from older code of the same version") and "1 recorded no" in line
