"""What every figure module of the report shares: the record of a written figure, file-name slugs,
the priors' colours, and the composition of run figures into one picture (one block per prior)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PRIOR_COLORS", "FigureInfo", "compose", "palette", "slug"]

PRIOR_COLORS = {"normal": "#1f77b4", "laplace": "#ff7f0e", "cauchy": "#2ca02c"}


@dataclass
class FigureInfo:
    file: str
    title: str
    caption: str
    kind: str
    dataset: str
    latent: int
    side_by_side: bool = False  # one block per prior in a row (the page gives it a full row)


def slug(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def palette(priors: Sequence[str]) -> dict[str, str]:
    """Each prior's colour: the three talk priors fixed, any other entry the next free one."""
    extra = iter(["#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"])
    return {p: PRIOR_COLORS.get(p) or next(extra, "#333333") for p in priors}


def compose(plt, images: dict[str, Any], colors: dict[str, str], side_by_side: bool, title: str):
    """The run figures at their own pixel size, one block per prior (in a row or stacked), each
    named in its prior's colour; a missing figure is a labelled placeholder."""
    dpi, gap, head, top = 100, 16, 30, 30
    shapes = {}
    for prior, img in images.items():
        h, w = img.shape[:2] if img is not None else (120, 360)
        grow = max(1, 240 // w)  # a tiny figure is enlarged by a whole factor, never shrunk
        shapes[prior] = (h * grow, w * grow)
    if side_by_side:
        width = sum(w for _, w in shapes.values()) + gap * (len(shapes) - 1)
        height = top + head + max(h for h, _ in shapes.values())
    else:
        width = max(w for _, w in shapes.values())
        height = top + sum(head + h + gap for h, _ in shapes.values())
    width = max(width, 8 * len(title) + 8)  # room for the title line
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    fig.text(4 / width, 1 - (top / 2) / height, title, fontsize=12, ha="left", va="center", color="#333")
    x, y = 0, top
    for prior, img in images.items():
        h, w = shapes[prior]
        ax = fig.add_axes([x / width, 1 - (y + head + h) / height, w / width, h / height])
        ax.axis("off")
        fig.text((x + 4) / width, 1 - (y + head / 2) / height, prior, fontsize=13, weight="bold",
                 color=colors[prior], ha="left", va="center")
        if img is None:
            ax.text(0.5, 0.5, "run figure missing", ha="center", va="center", color="#b34700",
                    transform=ax.transAxes)
        else:
            ax.imshow(img, interpolation="nearest", aspect="equal")
        if side_by_side:
            x += w + gap
        else:
            y += head + h + gap
    return fig
