"""The estimators' known-answer gate: analysis writes ``<results>/controls/estimators.json`` (each
estimator's bias on synthetic codes of known label information, per posterior family); a verdict that
reads an estimator is gated by it. A paired comparison of two families reads the DIFFERENCE of their
biases (a bias both share cancels), scaled to the metric: the paired interval of the difference where
the controls drew both families with common random numbers (``paired_with``), else the two intervals
added (a bound that never is narrower). Not here: the control rows the report shows
(``controls.estimator_controls``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from sparse_vae import catalogue
from sparse_vae.errors import SparseVAEError
from sparse_vae.report.evidence import Evidence

__all__ = ["ESTIMATOR_OF", "POSTERIOR_OF", "REFERENCE_FAMILY", "SUMMED_DIMS", "bias_difference",
           "differential_passes", "estimator_failures", "read_estimator_controls"]

#: metric -> the estimator whose known-answer control gates it.
ESTIMATOR_OF = {"label_info_total": "label_info", "label_info_top1": "label_info", "label_info_top2": "label_info",
                "label_info_auc": "label_info", "label_info_mean": "label_info", "label_info_max": "label_info",
                "probe_accuracy_sampled": "probe_sampled",
                "probe_accuracy_sampled_additive": "probe_sampled_additive", "used_dims_2d": "rate"}
#: prior -> the posterior family its runs use (the estimators' controls are per posterior family).
POSTERIOR_OF = {"normal": "gaussian", "laplace": "gaussian", "cauchy": "cauchy"}
#: the family every other family's control row is compared with (the normal prior's posterior)
REFERENCE_FAMILY = "gaussian"
_ROW_KEYS = ("bias", "bias_low", "bias_high")


def _flatten(node: Any, path: tuple[str, ...], out: list[dict[str, Any]], where: str) -> None:
    if isinstance(node, Mapping) and "bias" in node:
        row = dict(node)
        row.setdefault("estimator", path[0] if path else None)
        row.setdefault("family", path[1] if len(path) > 1 else None)
        out.append(row)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _flatten(value, path + (str(key),), out, where)
    elif isinstance(node, list):
        for value in node:
            _flatten(value, path, out, where)
    else:
        raise SparseVAEError(f"{where}: unexpected entry {node!r} at {'/'.join(path) or 'top level'}")


def read_estimator_controls(path: Path | str) -> dict[tuple[str, str], dict[str, float]]:
    """(estimator, family) -> the row at the largest N (the study's) of controls/estimators.json: a list
    of rows, or nested objects estimator -> family -> [N ->] row, each row with ``bias``, ``bias_low``,
    ``bias_high`` (its interval) and optionally ``n``, ``exact``; SparseVAEError names a bad file/key."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SparseVAEError(f"{path}: unreadable as the estimators' controls ({error})") from None
    rows: list[dict[str, Any]] = []
    _flatten(content, (), rows, str(path))
    out: dict[tuple[str, str], dict[str, float]] = {}
    for row in rows:
        lacking = [k for k in ("estimator", "family", *_ROW_KEYS) if row.get(k) is None]
        if lacking:
            raise SparseVAEError(f"{path}: an estimator control row lacks {', '.join(lacking)}: {row}")
        key = (str(row["estimator"]), str(row["family"]))
        if key not in out or float(row.get("n", 0)) >= float(out[key].get("n", 0)):
            out[key] = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if isinstance(row.get("paired_with"), str):
                out[key]["paired_with"] = row["paired_with"]
    return out


#: metrics that add an estimator's per-dimension value over several dims: how many (None: every dim of the
#: code), so a per-dim bias b is a bias of up to (dims x b) in the metric
SUMMED_DIMS: dict[str, int | None] = {"label_info_total": None, "label_info_auc": None, "label_info_top2": 2}


def bias_difference(row_a: Mapping[str, Any], row_b: Mapping[str, Any], family_a: str | None = None,
                    family_b: str | None = None) -> tuple[float, float]:
    """The interval of (bias on a's codes) - (bias on b's): the paired one when one row was paired with
    the other's family on common random numbers, else [low_a - high_b, high_a - low_b]."""
    if all(row_a[k] == row_b[k] for k in _ROW_KEYS):
        return 0.0, 0.0   # the same numbers on the same draws (a monotone map of the code): no difference at all
    if family_b is not None and row_a.get("paired_with") == family_b and "paired_low" in row_a:
        return row_a["paired_low"], row_a["paired_high"]
    if family_a is not None and row_b.get("paired_with") == family_a and "paired_low" in row_b:
        return -row_b["paired_high"], -row_b["paired_low"]
    return row_a["bias_low"] - row_b["bias_high"], row_a["bias_high"] - row_b["bias_low"]


def differential_passes(row_a: Mapping[str, Any], row_b: Mapping[str, Any], metric: str, latent: int,
                        family_a: str | None = None, family_b: str | None = None) -> bool:
    """A paired comparison of two posterior families' runs reads the DIFFERENCE of the estimator's biases
    on their codes (a bias both share cancels): its interval (``bias_difference``), scaled to the
    metric (a sum over dims carries the per-dim bias once per dim), must lie within the metric's
    margin, so the estimator alone cannot make a verdict."""
    margin = catalogue.margin_of(metric)[0] or 0.0  # no margin: any known bias difference fails
    dims = SUMMED_DIMS.get(metric, 1) or latent
    low, high = bias_difference(row_a, row_b, family_a, family_b)
    return -margin <= dims * low and dims * high <= margin


def estimator_failures(ev: Evidence, metrics: Collection[str], priors: Collection[str], latent: int = 1) -> list[str]:
    """The estimator controls these metrics read that fail for the posterior families these priors
    compare (``differential_passes``, at this latent size): none when every compared prior has the same
    posterior family, whose shared bias cancels; [] when the controls were not run (``ev.estimators`` None)."""
    if not ev.estimators:
        return []
    failed = []
    families = sorted({POSTERIOR_OF.get(p, p) for p in priors})
    for metric in metrics:
        name = ESTIMATOR_OF.get(metric)
        for i, fa in enumerate(families):
            for fb in families[i + 1:]:
                a, b = (ev.estimators.get((name, f)) if name else None for f in (fa, fb))
                if a is not None and b is not None and not differential_passes(a, b, metric, latent, fa, fb):
                    low, high = bias_difference(a, b, fa, fb)
                    failed.append(f"estimator {name}: bias on {fa} codes {a['bias']:+.3g} [{a['bias_low']:+.3g}, "
                                  f"{a['bias_high']:+.3g}], on {fb} codes {b['bias']:+.3g} [{b['bias_low']:+.3g}, "
                                  f"{b['bias_high']:+.3g}]: their difference [{low:+.3g}, {high:+.3g}] per dim is "
                                  f"not within {metric}'s margin")
    return list(dict.fromkeys(failed))
