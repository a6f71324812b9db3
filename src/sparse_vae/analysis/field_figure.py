"""One figure of receptive fields sorted by how the literature would describe them, each with its
fitted shape outlined: the Gabor envelope (2-sd ellipse) or the DoG centre and surround circles.

Drawn from arrays only (the fields and ``summarize_fields``'s ``per_field``), so the same figure
serves decoder columns of a VAE and atoms of the sparse-coding baseline.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LABEL_ORDER", "field_order", "plot_fields"]

LABEL_ORDER = ("gabor", "dog", "extended", "none")
LABEL_COLOURS = {"gabor": "tab:green", "dog": "tab:purple", "extended": "tab:orange", "none": "0.5"}


def field_order(per_field: list[dict[str, Any]]) -> np.ndarray:
    """Indices sorted by label (LABEL_ORDER), then by the R^2 of the label's fit, best first."""
    def key(i: int) -> tuple[int, float]:
        p = per_field[i]
        r2 = p["dog_r2"] if p["label"] == "dog" else p["gabor_r2"]
        return LABEL_ORDER.index(p["label"]), -r2
    return np.array(sorted(range(len(per_field)), key=key), dtype=int)


def _mosaic(fields: np.ndarray, cols: int) -> np.ndarray:
    """Fields (n, H, W), each scaled to max |value| 1, on a grid with 1-pixel NaN gutters."""
    n, h, w = fields.shape
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    peak = np.abs(fields).reshape(n, -1).max(axis=1)
    scaled = fields / np.where(peak > 0, peak, 1.0)[:, None, None]
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = scaled[i]
    return out


def _outline(ax: Any, fit: dict[str, Any], left: float, top: float, shape: tuple[int, int]) -> None:
    """The fitted shape of one field, in mosaic coordinates, clipped to its cell."""
    from matplotlib.patches import Circle, Ellipse, Rectangle

    colour = LABEL_COLOURS[fit["label"]]
    cell = Rectangle((left - 0.5, top - 0.5), shape[1], shape[0], transform=ax.transData)
    if fit["label"] == "dog":
        d = fit["dog"]
        shapes = [Circle((left + d["x0"], top + d["y0"]), d["sc"], fill=False, lw=0.8, color=colour),
                  Circle((left + d["x0"], top + d["y0"]), d["ss"], fill=False, lw=0.6, ls="--", color=colour)]
    else:
        g = fit["gabor"]
        shapes = [Ellipse((left + g["x0"], top + g["y0"]), 4 * g["sx"], 4 * g["sy"], angle=math.degrees(g["theta"]),
                          fill=False, lw=0.8, color=colour)]
    for patch in shapes:
        ax.add_patch(patch)
        patch.set_clip_path(cell)


def plot_fields(fields: np.ndarray, per_field: list[dict[str, Any]], path: Path, title: str,
                max_cols: int = 13) -> None:
    """Save the sorted, outlined fields (N, H, W) to ``path``; the title line gets the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = np.asarray(fields, dtype=float)
    order = field_order(per_field)
    n, h, w = fields.shape
    cols = min(max_cols, n)
    rows = math.ceil(n / cols)
    fig, ax = plt.subplots(figsize=(max(6.5, 0.55 * cols), 0.55 * rows + 1.0), layout="constrained")
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    ax.imshow(_mosaic(fields[order], cols), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    for slot, index in enumerate(order):
        r, c = divmod(slot, cols)
        _outline(ax, per_field[index], c * (w + 1), r * (h + 1), (h, w))
    counts = ", ".join(f"{label} {sum(p['label'] == label for p in per_field)}" for label in LABEL_ORDER)
    ax.set_title(f"{title}\n{counts} (of {n}); outlines: Gabor 2-sd envelope, DoG centre/surround sd",
                 fontsize=9)
    ax.set_axis_off()
    fig.savefig(path, dpi=90)
    plt.close(fig)
