"""Do the verdicts survive a rerun? Compare two finished report folders of the same study row by row.

Typical use: the offline study as shipped (1 torch thread per job) and a copy that changes only the
reduction order (2 threads per job) or the batch of seeds, each in its own results folder:

    snakemake --cores 2 --configfile presets/offline.yaml
    snakemake --cores 2 --configfile presets/offline.yaml stability.yaml   # results: results/offline-2t,
                                                                            # resources.train.threads: 2
    python bench/stability.py results/offline/report results/offline-2t/report --markdown out.md

It prints every verdict (and pairwise answer) that differs, and counts of same / flipped / only in
one study. To make the report itself mark the flipped rows "unstable", set ``report.stability`` to
the other study's verdicts.csv and rerun the report rule (``sparse_vae.report.stability``; the
comparison here reads each report's own words, so give it reports built without that key).
Exit status 0 when nothing flipped, 1 when some verdict did (so a CI job can require stability).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sparse_vae.report.stability import PAIRWISE_KEY, VERDICT_KEY, flips, read_table


def compare(first: Path, second: Path) -> dict[str, pd.DataFrame]:
    """{"verdicts": ..., "pairwise": ...}: each a ``stability.flips`` table of the two report folders."""
    out = {"verdicts": flips(read_table(first / "verdicts.csv", VERDICT_KEY, "verdict"),
                             read_table(second / "verdicts.csv", VERDICT_KEY, "verdict"), VERDICT_KEY, "verdict")}
    if (first / "pairwise.csv").is_file() and (second / "pairwise.csv").is_file():
        out["pairwise"] = flips(read_table(first / "pairwise.csv", PAIRWISE_KEY, "outcome"),
                                read_table(second / "pairwise.csv", PAIRWISE_KEY, "outcome"), PAIRWISE_KEY, "outcome")
    return out


def markdown(tables: dict[str, pd.DataFrame], first: Path, second: Path) -> str:
    """Counts per table, then one markdown row per flipped row (both words)."""
    lines = [f"Stability: `{first}` (A) against `{second}` (B).", ""]
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
