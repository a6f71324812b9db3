"""Verdicts that survive a rerun: compare this study's verdict words with another run of the same
study (another reduction order, e.g. 2 torch threads per job instead of 1, or another batch of
seeds) row by row, and mark a row whose word flips as "unstable" rather than report it as a finding.

Reproducibility across machines cannot mean equal bits; it must mean equal conclusions. The report
does this when the study config names the other run's verdicts.csv (``report.stability``; its
pairwise.csv, when beside it, is compared too); ``bench/stability.py`` prints the same comparison for
any two finished report folders. Rows are matched by ``VERDICT_KEY`` / ``PAIRWISE_KEY``; a row only
one study has is counted, never marked. Not here: how a verdict is reached (``verdicts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sparse_vae.errors import SparseVAEError

__all__ = ["PAIRWISE_KEY", "RERUN_WORDS", "VERDICT_KEY", "Stability", "apply_stability", "flips", "read_table"]

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
            return f"{c.get('flipped', 0)} of {compared} flipped" + (f" ({extra})" if extra else "")
        text = f"stability rerun {self.source}: verdicts {counts(self.verdicts)}"
        return text + (f"; pairwise answers {counts(self.pairwise)}" if self.pairwise else "")


#: the ``rerun`` column a checked report gains: what the stability rerun said of each of its rows.
RERUN_WORDS = {"same": "same", "flipped": "flipped", "only here": "not rerun"}


def _mark(table: pd.DataFrame, other: pd.DataFrame, key: list[str], word: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set `word` to "unstable" on this study's rows that flipped and add the ``rerun`` column
    (``RERUN_WORDS``), so a reader tells a checked verdict from one the rerun did not cover."""
    cmp = flips(table, other, key, word)
    table = table.reset_index(drop=True).copy()
    mine = cmp.iloc[:len(table)]  # this study's rows, in its order
    table.loc[(mine["status"] == "flipped").to_numpy(), word] = "unstable"
    table["rerun"] = mine["status"].map(RERUN_WORDS).to_numpy()
    return table, cmp


def apply_stability(verdicts: pd.DataFrame, pairwise: pd.DataFrame, other_verdicts: Path | str
                    ) -> tuple[pd.DataFrame, pd.DataFrame, Stability]:
    """Mark the verdicts (and pairwise answers, when the other study's pairwise.csv lies beside its
    verdicts.csv) that differ from the other study's as "unstable"; the evidence says both words."""
    path = Path(other_verdicts)
    other = read_table(path, VERDICT_KEY, "verdict")
    verdicts, cmp = _mark(verdicts, other, VERDICT_KEY, "verdict")
    for i in cmp.index[cmp["status"] == "flipped"]:
        verdicts.loc[i, "evidence"] = (f"{verdicts.loc[i, 'evidence']} Unstable: this study says "
                                       f"'{cmp.loc[i, 'here']}', the stability rerun ({path}) says "
                                       f"'{cmp.loc[i, 'other']}'; not a finding.")
    pair_counts: dict[str, int] = {}
    if (path.parent / "pairwise.csv").is_file() and len(pairwise):
        other_pw = read_table(path.parent / "pairwise.csv", PAIRWISE_KEY, "outcome")
        pairwise, pcmp = _mark(pairwise, other_pw, PAIRWISE_KEY, "outcome")
        pair_counts = pcmp["status"].value_counts().to_dict()
    return verdicts, pairwise, Stability(str(path), cmp["status"].value_counts().to_dict(), pair_counts)
