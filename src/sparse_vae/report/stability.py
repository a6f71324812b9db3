"""Verdicts that survive a rerun: compare this study's verdict words with another run of the same
study (another reduction order, e.g. 2 torch threads per job instead of 1, or another batch of
seeds) row by row, and mark a row whose word flips as "unstable" rather than report it as a finding.
Several reruns (each perturbing other runs) may be named; a row flipped by any of them is unstable.

Reproducibility across machines cannot mean equal bits; it must mean equal conclusions. The report
does this when the study config names the reruns' verdicts.csv (``report.stability``; the
pairwise.csv beside each, when there, is compared too); ``bench/stability.py`` prints the same comparison for
any two finished report folders. Rows are matched by ``VERDICT_KEY`` / ``PAIRWISE_KEY``; a row only
one study has is counted, never marked. A rerun that moved nothing checks nothing: when the other
study's metrics.csv lies beside its verdicts.csv, a row whose (dataset, latent) runs the rerun left
bit-identical, or that rests on no trained run (a control, the baseline), reads "unperturbed", not
"same" (``run_groups_moved``). Not here: how a verdict is
reached (``verdicts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sparse_vae.errors import SparseVAEError

__all__ = ["PAIRWISE_KEY", "RERUN_WORDS", "STATUS_ORDER", "VERDICT_KEY", "Stability", "apply_stability", "combined",
           "flips", "read_table", "run_groups_moved"]

#: what identifies a verdict row, and a pairwise row, in two studies of the same design.
VERDICT_KEY = ["conclusion", "claim", "dataset", "latent", "metric"]
PAIRWISE_KEY = ["question", "dataset", "latent", "metric", "prior_a", "prior_b"]


def read_table(path: Path | str, key: list[str], word: str) -> pd.DataFrame:
    """A verdicts.csv or pairwise.csv with its key and word columns; SparseVAEError names a bad file."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise SparseVAEError(f"{path}: unreadable as the stability study's table ({error})") from None
    lacking = [c for c in key + [word] if c not in table.columns]
    if lacking:
        raise SparseVAEError(f"{path}: lacks column(s) {', '.join(lacking)}; give a report's verdicts.csv")
    return table


def _key(value: object) -> str:
    """A key cell as comparable text: a latent read back from CSV is "20.0" or "20" or ""."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number == int(number) else text


def _words(table: pd.DataFrame, key: list[str], word: str) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(_key(v) for v in row[:-1]), str(row[-1])) for row in table[key + [word]].itertuples(index=False)]


def flips(here: pd.DataFrame, other: pd.DataFrame, key: list[str], word: str) -> pd.DataFrame:
    """Row-by-row comparison: the key, ``here``, ``other`` and ``status`` ("same", "flipped", "only
    here", "only there"), in this study's row order, then the rows only the other study has."""
    theirs = dict(_words(other, key, word))
    rows = []
    for k, w in _words(here, key, word):
        o = theirs.get(k)
        rows.append((*k, w, "" if o is None else o, "only here" if o is None else ("same" if o == w else "flipped")))
    mine = {k for k, _ in _words(here, key, word)}
    rows += [(*k, "", o, "only there") for k, o in theirs.items() if k not in mine]
    return pd.DataFrame(rows, columns=key + ["here", "other", "status"])


@dataclass(frozen=True)
class Stability:
    """What the comparison found: the reruns' files and the counts of each status (a row's status
    over all reruns, ``combined``)."""

    sources: tuple[str, ...]
    verdicts: dict[str, int]
    pairwise: dict[str, int]

    def summary(self) -> str:
        """One line for the log and the HTML: how many verdicts and pairwise answers flipped."""
        def counts(c: dict[str, int]) -> str:
            compared = c.get("same", 0) + c.get("flipped", 0)
            extra = ", ".join(f"{v} {k}" for k, v in c.items() if k.startswith("only") and v)
            still = (f"; {c['unperturbed']} more on numbers no rerun changed (not checked)"
                     if c.get("unperturbed") else "")
            return f"{c.get('flipped', 0)} of {compared} flipped" + (f" ({extra})" if extra else "") + still
        noun = "stability rerun" if len(self.sources) == 1 else "stability reruns"
        text = f"{noun} {', '.join(self.sources)}: verdicts {counts(self.verdicts)}"
        return text + (f"; pairwise answers {counts(self.pairwise)}" if self.pairwise else "")


#: the ``rerun`` column a checked report gains: what the stability rerun said of each of its rows.
RERUN_WORDS = {"same": "same", "flipped": "flipped", "only here": "not rerun", "unperturbed": "unperturbed"}
#: columns of a per-run metrics table that identify a run (the rest are its numbers)
RUN_COLUMNS = ["dataset", "prior", "latent", "seed"]


def run_groups_moved(here: pd.DataFrame, other: pd.DataFrame) -> pd.Series:
    """Per (dataset, latent) group of the runs both studies' per-run metrics tables share: True when
    the rerun changed some number of some run (it perturbed the group), False when it left every run
    bit-identical (so it cannot check the group's rows)."""
    numbers = [c for c in here.columns if c not in RUN_COLUMNS and c in other.columns
               and pd.api.types.is_numeric_dtype(here[c])]
    keyed = lambda t: t.assign(latent=t["latent"].map(_key), seed=t["seed"].map(_key)).set_index(RUN_COLUMNS)  # noqa: E731
    a, b = keyed(here)[numbers], keyed(other)[numbers]
    shared = a.index.intersection(b.index)
    a, b = a.loc[shared].astype(float), b.loc[shared].astype(float)
    same = ((a == b) | (a.isna() & b.isna())).all(axis=1)
    return ~same.groupby(level=["dataset", "latent"]).all()


#: a row's status over several reruns: the first of these that any rerun gives it (a flip anywhere
#: makes it unstable; one perturbed rerun that agrees makes it checked)
STATUS_ORDER = ("flipped", "same", "unperturbed", "only here")


def _statuses(table: pd.DataFrame, other: pd.DataFrame, key: list[str], word: str,
              moved: set[tuple[str, str]] | None) -> pd.DataFrame:
    """``flips`` of this study against one rerun; when the runs were compared (`moved`: the groups the
    rerun perturbed), "same" on any other row turns "unperturbed": on runs the rerun left bit-identical,
    or on no run at all (the controls, the baseline); this study's rows first, in its order."""
    cmp = flips(table, other, key, word)
    if moved is not None:
        rows = [(_key(d), _key(z)) not in moved for d, z in zip(cmp["dataset"], cmp["latent"])]
        cmp.loc[(cmp["status"] == "same") & pd.Series(rows, index=cmp.index), "status"] = "unperturbed"
    return cmp


def combined(statuses: list[pd.Series]) -> pd.Series:
    """Each row's status over all reruns (``STATUS_ORDER``)."""
    rank = pd.concat([s.map(STATUS_ORDER.index) for s in statuses], axis=1).min(axis=1)
    return rank.map(dict(enumerate(STATUS_ORDER)))


def _mark(table: pd.DataFrame, reruns: list[tuple[str, pd.DataFrame, set | None]], key: list[str], word: str):
    """Set `word` to "unstable" on this study's rows that flipped in any rerun, add the ``rerun``
    column (``RERUN_WORDS``) so a reader tells a checked verdict from one the reruns did not cover,
    and say in ``evidence`` (when the table has it) which rerun said what. Returns the marked table
    and the status counts (with the rows only a rerun has, summed over reruns)."""
    table = table.reset_index(drop=True).copy()
    comparisons = [(source, _statuses(table, other, key, word, moved)) for source, other, moved in reruns]
    mine = [cmp.iloc[:len(table)].reset_index(drop=True) for _, cmp in comparisons]
    status = combined([m["status"] for m in mine])
    for i in status.index[status == "flipped"]:
        said = "; ".join(f"the rerun {source} says '{m.loc[i, 'other']}'" for (source, _), m in zip(comparisons, mine)
                         if m.loc[i, "status"] == "flipped")
        if "evidence" in table:
            table.loc[i, "evidence"] = (f"{table.loc[i, 'evidence']} Unstable: this study says '{table.loc[i, word]}', "
                                        f"{said}; not a finding.")
    table.loc[(status == "flipped").to_numpy(), word] = "unstable"
    table["rerun"] = status.map(RERUN_WORDS).to_numpy()
    counts = status.value_counts().to_dict()
    there = sum(int((cmp["status"] == "only there").sum()) for _, cmp in comparisons)
    return table, counts | ({"only there": there} if there else {})


def apply_stability(verdicts: pd.DataFrame, pairwise: pd.DataFrame, reruns: Sequence[Path | str] | Path | str,
                    metrics: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Stability]:
    """Mark the verdicts (and pairwise answers, when a rerun's pairwise.csv lies beside its
    verdicts.csv) that differ from any rerun's as "unstable"; the evidence says both words.
    ``reruns``: one or more reruns' verdicts.csv. ``metrics``: this study's per-run table, compared
    with each rerun's metrics.csv (when beside) to tell the rows a rerun could not check ("unperturbed")."""
    paths = [Path(reruns)] if isinstance(reruns, (str, Path)) else [Path(r) for r in reruns]
    verdict_reruns, pairwise_reruns = [], []
    for path in paths:
        moved = None
        if metrics is not None and (path.parent / "metrics.csv").is_file():
            groups = run_groups_moved(metrics, pd.read_csv(path.parent / "metrics.csv"))
            moved = {(str(d), str(z)) for d, z in groups.index[groups]}
        verdict_reruns.append((str(path), read_table(path, VERDICT_KEY, "verdict"), moved))
        if (path.parent / "pairwise.csv").is_file() and len(pairwise):
            pairwise_reruns.append((str(path), read_table(path.parent / "pairwise.csv", PAIRWISE_KEY, "outcome"),
                                    moved))
    verdicts, counts = _mark(verdicts, verdict_reruns, VERDICT_KEY, "verdict")
    pair_counts: dict[str, int] = {}
    if pairwise_reruns:
        pairwise, pair_counts = _mark(pairwise, pairwise_reruns, PAIRWISE_KEY, "outcome")
    return verdicts, pairwise, Stability(tuple(str(p) for p in paths), counts, pair_counts)
