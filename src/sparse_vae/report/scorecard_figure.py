"""The scorecard as a picture (PNG and SVG, matplotlib): the same grid, colours and words as the
HTML table, for the README and ``snakemake --report``. Drawn from ``scorecard.Card`` only.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from sparse_vae.report.scorecard import Card, colours
from sparse_vae.report.verdicts import VERDICTS

__all__ = ["SCORECARD_FILE", "write_scorecard_figure"]

#: file name (PNG; the SVG beside it) in the report's figures/ folder.
SCORECARD_FILE = "scorecard.png"
_LABEL_WIDTH = 4.2  # inches of the claim labels
_CELL_W, _CELL_H = 1.45, 0.52  # inches per cell


def _label(cid: str, label: str) -> str:
    """The claim's id and label on at most two lines (an ellipsis where it is cut)."""
    lines = textwrap.wrap(label, 44)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), 44, placeholder=" …")]
    return f"{cid}  " + "\n     ".join(lines)


def _controls_line(card: Card) -> str:
    marks = {True: "passed", False: "FAILED", None: "not run"}
    return "Controls: " + "; ".join(f"{c.label} {marks[c.passed]}" for c in card.controls) if card.controls else ""


def _draw_cell(ax, box, j: int, i: int, span: int, cell) -> None:
    """Cell (row i, column j, `span` columns wide): its verdict's colour (faded when a failed control
    greys it out), the verdict word and, where there is one, the effect and its interval; a pale box
    when the claim has no verdict there."""
    shape = {"boxstyle": "round,pad=0,rounding_size=0.06", "ec": "none"}
    if cell is None:
        ax.add_patch(box((j + 0.04, i + 0.08), span - 0.08, 0.84, fc="#f4f4f4", **shape))
        return
    bg, fg = colours(cell.verdict)
    ax.add_patch(box((j + 0.04, i + 0.08), span - 0.08, 0.84, fc=bg, alpha=0.4 if cell.greyed_by else 1.0, **shape))
    if not cell.effect:
        ax.text(j + span / 2, i + 0.5, cell.verdict, ha="center", va="center", fontsize=9, color=fg, weight="bold")
        return
    ax.text(j + span / 2, i + 0.3, cell.verdict, ha="center", va="center", fontsize=8.5, color=fg, weight="bold")
    ax.text(j + span / 2, i + 0.66, f"{cell.effect}\n{cell.interval}".strip(), ha="center", va="center",
            fontsize=6.5, color=fg, linespacing=1.1)


def write_scorecard_figure(card: Card, folder: Path, title: str) -> list[str]:
    """Write ``scorecard.png`` and ``scorecard.svg`` into `folder`; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.transforms import blended_transform_factory

    groups, claims = card.groups or [("", "")], card.claims
    ncol, nrow = len(groups), max(1, len(claims))
    width = _LABEL_WIDTH + _CELL_W * ncol + 0.3
    cell_h = _CELL_H * (1.3 if any(c.effect for cl in claims for c in cl.cells.values()) else 1.0)
    height = 0.85 + cell_h * nrow + 0.9
    fig = plt.figure(figsize=(width, height), dpi=110)
    ax = fig.add_axes([_LABEL_WIDTH / width, 0.9 / height, _CELL_W * ncol / width, cell_h * nrow / height])
    ax.set_xlim(0, ncol)
    ax.set_ylim(nrow, 0)
    ax.axis("off")
    rows = blended_transform_factory(fig.transFigure, ax.transData)  # x in the figure, y in rows
    datasets = [d for d, _ in groups]
    for j, (dataset, latent) in enumerate(groups):
        head = dataset + (f"\nz={latent}" if latent and datasets.count(dataset) > 1 else "")
        ax.text(j + 0.5, -0.12, head, ha="center", va="bottom", fontsize=9.5, weight="bold")
    for i, claim in enumerate(claims):
        ax.text(0.12 / width, i + 0.5, _label(claim.cid, claim.label), transform=rows, ha="left", va="center",
                fontsize=8.5, clip_on=False)
        spans = ([(0, ncol, claim.study_wide[0])] if not claim.cells and claim.study_wide else
                 [(j, 1, claim.cells.get(g)) for j, g in enumerate(groups)])
        for j, span, cell in spans:
            _draw_cell(ax, FancyBboxPatch, j, i, span, cell)
    fig.text(0.12 / width, 1 - 0.22 / height, title, ha="left", va="center", fontsize=12, weight="bold")
    line = _controls_line(card)
    if line:
        fig.text(0.12 / width, 0.62 / height, textwrap.shorten(line, 190), ha="left", va="center", fontsize=8)
    renderer, x = fig.canvas.get_renderer(), 0.12 / width  # legend chips, each placed after the last one
    for word in VERDICTS:
        bg, fg = colours(word)
        chip = fig.text(x, 0.25 / height, f" {word} ", ha="left", va="center", fontsize=7.5, color=fg,
                        bbox={"boxstyle": "round,pad=0.25", "fc": bg, "ec": "none"})
        x += chip.get_window_extent(renderer).width / fig.bbox.width + 0.1 / width
    png = folder / SCORECARD_FILE
    fig.savefig(png)
    fig.savefig(png.with_suffix(".svg"))
    plt.close(fig)
    return [png.name, png.with_suffix(".svg").name]
