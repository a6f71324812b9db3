"""Verdicts that survive a rerun: compare this study's verdict words with another run of the same
study (another reduction order, e.g. 2 torch threads per job instead of 1, or another batch of
seeds) row by row, and mark a row whose word flips as "unstable" rather than report it as a finding.

Reproducibility across machines cannot mean equal bits; it must mean equal conclusions. The report
does this when the study config names the other run's verdicts.csv (``report.stability``; its
pairwise.csv, when beside it, is compared too); ``bench/stability.py`` prints the same comparison for
any two finished report folders. Rows are matched by ``VERDICT_KEY`` / ``PAIRWISE_KEY``; a row only
one study has is counted, never marked. A rerun that moved nothing checks nothing: when the other
study's metrics.csv lies beside its verdicts.csv, a row whose (dataset, latent) runs the rerun left
bit-identical reads "unperturbed", not "same" (``unperturbed_groups``). Not here: how a verdict is
reached (``verdicts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sparse_vae.errors import SparseVAEError

__all__ = ["PAIRWISE_KEY", "RERUN_WORDS", "VERDICT_KEY", "Stability", "apply_stability", "flips", "read_table",
           "unperturbed_groups"]

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
    """What the comparison found: the other study's file and the counts of each status."""

    source: str
    verdicts: dict[str, int]
    pairwise: dict[str, int]

    def summary(self) -> str:
        """One line for the log and the HTML: how many verdicts and pairwise answers flipped."""
        def counts(c: dict[str, int]) -> str:
            compared = c.get("same", 0) + c.get("flipped", 0)
            extra = ", ".join(f"{v} {k}" for k, v in c.items() if k.startswith("only") and v)
            still = (f"; {c['unperturbed']} more on runs the rerun left bit-identical (not checked)"
                     if c.get("unperturbed") else "")
            return f"{c.get('flipped', 0)} of {compared} flipped" + (f" ({extra})" if extra else "") + still
        text = f"stability rerun {self.source}: verdicts {counts(self.verdicts)}"
        return text + (f"; pairwise answers {counts(self.pairwise)}" if self.pairwise else "")


#: the ``rerun`` column a checked report gains: what the stability rerun said of each of its rows.
RERUN_WORDS = {"same": "same", "flipped": "flipped", "only here": "not rerun", "unperturbed": "unperturbed"}
#: columns of a per-run metrics table that identify a run (the rest are its numbers)
RUN_COLUMNS = ["dataset", "prior", "latent", "seed"]


def unperturbed_groups(here: pd.DataFrame, other: pd.DataFrame) -> set[tuple[str, str]]:
    """(dataset, latent) groups whose every shared run has exactly the same numbers in both studies'
    per-run metrics tables: the rerun did not perturb them, so it cannot check their rows."""
    numbers = [c for c in here.columns if c not in RUN_COLUMNS and c in other.columns
               and pd.api.types.is_numeric_dtype(here[c])]
    keyed = lambda t: t.assign(latent=t["latent"].map(_key), seed=t["seed"].map(_key)).set_index(RUN_COLUMNS)  # noqa: E731
    a, b = keyed(here)[numbers], keyed(other)[numbers]
    shared = a.index.intersection(b.index)
    a, b = a.loc[shared].astype(float), b.loc[shared].astype(float)
    same = ((a == b) | (a.isna() & b.isna())).all(axis=1)
    groups = same.groupby(level=["dataset", "latent"]).all()
    return {(str(d), str(z)) for (d, z), unmoved in groups.items() if unmoved}


def _mark(table: pd.DataFrame, other: pd.DataFrame, key: list[str], word: str,
          unmoved: set[tuple[str, str]] = frozenset()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set `word` to "unstable" on this study's rows that flipped and add the ``rerun`` column
    (``RERUN_WORDS``), so a reader tells a checked verdict from one the rerun did not cover."""
    cmp = flips(table, other, key, word)
    if unmoved:
        rows = [(_key(d), _key(z)) in unmoved for d, z in zip(cmp["dataset"], cmp["latent"])]
        cmp.loc[(cmp["status"] == "same") & pd.Series(rows, index=cmp.index), "status"] = "unperturbed"
    table = table.reset_index(drop=True).copy()
    mine = cmp.iloc[:len(table)]  # this study's rows, in its order
    table.loc[(mine["status"] == "flipped").to_numpy(), word] = "unstable"
    table["rerun"] = mine["status"].map(RERUN_WORDS).to_numpy()
    return table, cmp


def apply_stability(verdicts: pd.DataFrame, pairwise: pd.DataFrame, other_verdicts: Path | str,
                    metrics: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Stability]:
    """Mark the verdicts (and pairwise answers, when the other study's pairwise.csv lies beside its
    verdicts.csv) that differ from the other study's as "unstable"; the evidence says both words.
    ``metrics``: this study's per-run table, compared with the other's metrics.csv (when beside) to
    tell the rows the rerun could not check ("unperturbed")."""
    path = Path(other_verdicts)
    other = read_table(path, VERDICT_KEY, "verdict")
    unmoved: set[tuple[str, str]] = set()
    if metrics is not None and (path.parent / "metrics.csv").is_file():
        unmoved = unperturbed_groups(metrics, pd.read_csv(path.parent / "metrics.csv"))
    verdicts, cmp = _mark(verdicts, other, VERDICT_KEY, "verdict", unmoved)
    for i in cmp.index[cmp["status"] == "flipped"]:
        verdicts.loc[i, "evidence"] = (f"{verdicts.loc[i, 'evidence']} Unstable: this study says "
                                       f"'{cmp.loc[i, 'here']}', the stability rerun ({path}) says "
                                       f"'{cmp.loc[i, 'other']}'; not a finding.")
    pair_counts: dict[str, int] = {}
    if (path.parent / "pairwise.csv").is_file() and len(pairwise):
        other_pw = read_table(path.parent / "pairwise.csv", PAIRWISE_KEY, "outcome")
        pairwise, pcmp = _mark(pairwise, other_pw, PAIRWISE_KEY, "outcome", unmoved)
        pair_counts = pcmp["status"].value_counts().to_dict()
    return verdicts, pairwise, Stability(str(path), cmp["status"].value_counts().to_dict(), pair_counts)
