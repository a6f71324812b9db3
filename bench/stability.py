"""Do the verdicts survive a rerun? Compare two finished report folders of the same study row by row.

Typical use: the offline study as shipped, and a rerun on another CPU's kernels (torch's AVX2 paths
and MKL's instead of AVX512: the rounding another machine gives), each in its own results folder:

    snakemake --cores 2 --configfile presets/offline.yaml
    ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 \
        snakemake --cores 2 --configfile presets/offline.yaml bench/offline-avx2.yaml
    python bench/stability.py results/offline/report results/offline-avx2/report --markdown out.md

It prints how many runs' numbers the rerun moved (and by how much, in seed-sd units: a rerun that
moved nothing checks nothing), every verdict (and pairwise answer) that differs, and counts of same /
flipped / only in one study. To make the report itself mark the flipped rows "unstable", set
``report.stability`` to the other study's verdicts.csv and rerun the report rule
(``sparse_vae.report.stability``; the comparison here reads each report's own words, so give it
reports built without that key).
Exit status 0 when nothing flipped, 1 when some verdict did (so a CI job can require stability).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sparse_vae.report.stability import PAIRWISE_KEY, VERDICT_KEY, flips, read_table, run_groups_moved


def compare(first: Path, second: Path) -> dict[str, pd.DataFrame]:
    """{"verdicts": ..., "pairwise": ...}: each a ``stability.flips`` table of the two report folders."""
    out = {"verdicts": flips(read_table(first / "verdicts.csv", VERDICT_KEY, "verdict"),
                             read_table(second / "verdicts.csv", VERDICT_KEY, "verdict"), VERDICT_KEY, "verdict")}
    if (first / "pairwise.csv").is_file() and (second / "pairwise.csv").is_file():
        out["pairwise"] = flips(read_table(first / "pairwise.csv", PAIRWISE_KEY, "outcome"),
                                read_table(second / "pairwise.csv", PAIRWISE_KEY, "outcome"), PAIRWISE_KEY, "outcome")
    return out


RUN = ["dataset", "prior", "latent", "seed"]


def number_changes(first: Path, second: Path) -> str | None:
    """How far the rerun moved the numbers themselves (metrics.csv of both): runs whose metrics differ
    at all, and the largest change in units of that metric's sd over seeds. A rerun that moved nothing
    checks nothing about rounding; None when either folder lacks metrics.csv."""
    if not ((first / "metrics.csv").is_file() and (second / "metrics.csv").is_file()):
        return None
    a, b = pd.read_csv(first / "metrics.csv"), pd.read_csv(second / "metrics.csv")
    both = a.merge(b, on=RUN, suffixes=("_a", "_b"))
    metrics = [c for c in a.columns if c not in RUN and c in b.columns and pd.api.types.is_numeric_dtype(a[c])]
    sd = a.groupby(RUN[:3])[metrics].std().add_suffix("_sd").reset_index()
    both = both.merge(sd, on=RUN[:3])
    # a value present in one study and null in the other counts as changed; null in both does not
    changed = pd.concat([both[f"{m}_a"].ne(both[f"{m}_b"]) & ~(both[f"{m}_a"].isna() & both[f"{m}_b"].isna())
                         for m in metrics], axis=1).any(axis=1)
    scaled = pd.DataFrame({m: (both[f"{m}_a"] - both[f"{m}_b"]).abs() / both[f"{m}_sd"] for m in metrics})
    scaled = scaled.replace([float("inf")], float("nan"))
    largest = scaled.max().dropna().sort_values()
    worst = (f"; largest change {largest.iloc[-1]:.2g} sd over seeds ({largest.index[-1]}), median over "
             f"metrics {largest.median():.2g} sd") if len(largest) and largest.iloc[-1] > 0 else ""
    return f"- numbers: {int(changed.sum())} of {len(both)} shared runs differ in some metric{worst}"


def markdown(tables: dict[str, pd.DataFrame], first: Path, second: Path) -> str:
    """Counts per table, then one markdown row per flipped row (both words)."""
    lines = [f"Stability: `{first}` (A) against `{second}` (B).", ""]
    numbers = number_changes(first, second)
    lines += [numbers] if numbers else []
    if numbers:
        moved = run_groups_moved(pd.read_csv(first / "metrics.csv"), pd.read_csv(second / "metrics.csv"))
        unmoved = sorted(moved.index[~moved])
        lines.append("- unperturbed (every run bit-identical, so not checked): "
                     + (", ".join(f"{d} z{z}" for d, z in unmoved) or "none"))
    for name, table in tables.items():
        counts = table["status"].value_counts()
        compared = int(counts.get("same", 0) + counts.get("flipped", 0))
        lines.append(f"- {name}: {int(counts.get('flipped', 0))} of {compared} rows flipped"
                     + "".join(f", {int(counts[s])} {s}" for s in ("only here", "only there") if counts.get(s)))
    for name, table in tables.items():
        flipped = table[table["status"] == "flipped"]
        if flipped.empty:
            continue
        key = [c for c in table.columns if c not in ("here", "other", "status", "claim")]
        lines += ["", f"Flipped {name}:", "", "| " + " | ".join(key) + " | A | B |",
                  "|" + "---|" * (len(key) + 2)]
        lines += ["| " + " | ".join(str(r[c]) for c in key) + f" | {r['here']} | {r['other']} |"
                  for _, r in flipped.iterrows()]
    return "\n".join(lines).replace("only here", "only in A").replace("only there", "only in B") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="report folder A (holds verdicts.csv, pairwise.csv)")
    parser.add_argument("second", type=Path, help="report folder B, the rerun")
    parser.add_argument("--markdown", type=Path, help="also write the comparison here")
    args = parser.parse_args(argv)
    tables = compare(args.first, args.second)
    text = markdown(tables, args.first, args.second)
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
    return 1 if (tables["verdicts"]["status"] == "flipped").any() else 0


if __name__ == "__main__":
    sys.exit(main())
