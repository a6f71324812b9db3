"""Golden numbers guard the stage versions (``tests/golden.py`` makes them; see its docstring).

A stage whose numbers moved while its version in ``src/sparse_vae/versions.py`` stayed fails with
the version to bump; a stage whose version moved since its numbers were pinned fails with the
one-liner that regenerates them. Single-threaded, CPU, tiny inputs: the file runs in well under a
minute on 2 cores.
"""

from __future__ import annotations

from typing import Any

import pytest

import golden

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    data = golden.load()
    assert data, f"{golden.GOLDEN_FILE} is missing: create it with `{golden.REGENERATE}`"
    return data


def check(stage: str, pinned: dict[str, Any]) -> None:
    """Compare a stage's numbers with the pinned ones, each record entry against the version that
    covers it (a data source's entry against ``DATA[source]``, the others against the stage's)."""
    entry = pinned.get(stage)
    assert entry is not None, f"no golden numbers for stage {stage!r}: run `{golden.REGENERATE} {stage}`"
    now_versions = golden.stage_versions(stage)
    record = golden.compute(stage)
    problems = []
    for name in sorted(set(entry["record"]) | set(record)):
        key = name if stage == "data" else stage.upper()
        label = f"DATA[{name!r}]" if stage == "data" else key
        if entry["versions"].get(key) != now_versions.get(key):
            problems.append(f"{name}: pinned under {label} = {entry['versions'].get(key)}, now "
                            f"{now_versions.get(key)}: regenerate with `{golden.REGENERATE} {stage}`")
            continue
        diffs = golden.differences(entry["record"].get(name), record.get(name), f"{name}.")
        if diffs:
            shown = "; ".join(diffs[:5]) + (f"; ... {len(diffs) - 5} more" if len(diffs) > 5 else "")
            problems.append(f"{name} moved ({shown}): a change that moves {stage} numbers must bump {label} in "
                            f"src/sparse_vae/versions.py (then run `{golden.REGENERATE} {stage}`); one that "
                            f"should not move them has a bug")
    assert not problems, "\n".join(problems)


def test_training_numbers_match_their_version(pinned: dict[str, Any]) -> None:
    check("train", pinned)


def test_analysis_numbers_match_their_version(pinned: dict[str, Any]) -> None:
    check("analysis", pinned)


def test_report_numbers_match_their_version(pinned: dict[str, Any]) -> None:
    check("report", pinned)


def test_prepared_data_match_each_source_version(pinned: dict[str, Any]) -> None:
    check("data", pinned)


def test_every_source_has_a_version_and_a_golden_sample() -> None:
    from sparse_vae import versions
    from sparse_vae.data import SOURCES

    assert set(versions.DATA) == set(SOURCES)
    assert set(golden.DATA_PARAMS) == set(SOURCES)


def test_a_changed_log_density_constant_without_a_bump_fails_naming_train(pinned: dict[str, Any],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself: a 0.1% change of the Gaussian log-density constant (a semantic change to
    training that keeps TRAIN) fails the training check and names the version to bump."""
    from sparse_vae import distributions

    monkeypatch.setattr(distributions, "HALF_LOG_2PI", distributions.HALF_LOG_2PI * 1.001)
    with pytest.raises(AssertionError, match=r"must bump TRAIN in src/sparse_vae/versions.py"):
        check("train", pinned)


def test_a_changed_analysis_seed_without_a_bump_fails_naming_analysis(pinned: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same guard for analysis: other IWAE draws (a changed seed offset) move metrics.json numbers,
    and the analysis check names ANALYSIS."""
    from sparse_vae.analysis import seeds

    monkeypatch.setitem(seeds.OFFSETS, "iwae", seeds.OFFSETS["iwae"] + 100)
    with pytest.raises(AssertionError, match=r"must bump ANALYSIS in src/sparse_vae/versions.py"):
        check("analysis", pinned)
