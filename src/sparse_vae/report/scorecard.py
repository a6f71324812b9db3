"""The scorecard: the talk's claims x the datasets, one coloured verdict per cell, read from the
verdict table (``conclusions.compute_verdicts``), with the controls beside it.

``scorecard(verdicts, status)`` turns the table into rows (one per claim, ordered by the keys of
``conclusions.CONCLUSIONS``), columns (dataset x latent groups, in table order) and cells (the row
of the verdict table each one shows, its position there for the link, and whether a failed control
greys it out). ``html.py`` draws it as a <table>, ``scorecard_figure`` as a PNG/SVG. Ids may be
integers (1, 2, ...) or strings ("2a", "3b", ...); a conclusion's ``short`` label is used when it
has one, and the ``effect`` / ``effect_low`` / ``effect_high`` / ``unit`` columns when the table
has them. Nothing is computed here: every word and number is the verdict table's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from sparse_vae.report import controls as _controls
from sparse_vae.report.conclusions import CONCLUSIONS
from sparse_vae.report.verdicts import METRIC_CONTROLS, VERDICTS

__all__ = ["CONTROL_LABELS", "VERDICT_COLOURS", "Card", "Cell", "Claim", "ControlItem", "control_of_claim",
           "effect_parts", "effect_text", "scorecard", "verdict_class"]

#: verdict word -> (background, text colour): the Okabe-Ito colour-blind-safe palette, with tints
#: for the milder words; words the vocabulary may gain later fall back to grey (``colours``).
VERDICT_COLOURS: dict[str, tuple[str, str]] = {
    "supported": ("#009E73", "#ffffff"),          # bluish green
    "partly supported": ("#A6DDC9", "#10362a"),   # tint of bluish green
    "contradicted": ("#D55E00", "#ffffff"),       # vermillion
    "no difference": ("#56B4E9", "#0b2a3d"),      # sky blue
    "inconclusive": ("#F0E442", "#3a3500"),       # yellow
    "not observed": ("#E69F00", "#3a2600"),       # orange
    "unstable": ("#CC79A7", "#ffffff"),           # reddish purple
    "not tested": ("#EEEEEE", "#555555"),         # light grey
    "control failed": ("#4D4D4D", "#ffffff"),     # dark grey
}
_FALLBACK = ("#BBBBBB", "#222222")

#: control name (``controls.CONTROLS``) -> how the strip names it.
CONTROL_LABELS = {"training_likelihood": "training reaches the generating prior",
                  "dictionary_recovery": "positive control: known dictionary recovered",
                  "receptive_fields": "sparse coding gives Gabor fields",
                  "retina_fields": "centre-surround classifier",
                  "estimators": "estimators recover known answers (each posterior family)"}


def colours(verdict: str) -> tuple[str, str]:
    return VERDICT_COLOURS.get(verdict, _FALLBACK)


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict word: "v-" and the word with dashes (``v-partly-supported``)."""
    return "v-" + re.sub(r"[^a-z0-9]+", "-", str(verdict).lower()).strip("-")


def _num(x) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return value


def _blank(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x).strip() in ("", "nan")


def effect_parts(row: Mapping) -> tuple[str, str]:
    """("+0.012 nats", "[+0.008, +0.016]") from the row's effect columns; ("", "") when it has none."""
    effect = _num(row.get("effect"))
    if math.isnan(effect):
        return "", ""
    lo, hi = _num(row.get("effect_low")), _num(row.get("effect_high"))
    spread = abs(hi - lo) / 2 if not (math.isnan(lo) or math.isnan(hi)) else abs(effect)
    digits = 3 if spread == 0 or math.isnan(spread) else max(0, min(5, 1 - math.floor(math.log10(spread))))
    unit = "" if _blank(row.get("unit")) else str(row.get("unit"))
    interval = "" if math.isnan(lo) or math.isnan(hi) else f"[{lo:+.{digits}f}, {hi:+.{digits}f}]"
    return f"{effect:+.{digits}f} {unit}".strip(), interval


def effect_text(row: Mapping) -> str:
    """"+0.012 [+0.008, +0.016] nats" from the row's effect columns; "" when it has none."""
    main, interval = effect_parts(row)
    if not main:
        return ""
    value, _, unit = main.partition(" ")
    return " ".join(x for x in (value, interval, unit) if x)


@dataclass
class Cell:
    """One claim x group: the verdict row it shows (its position in the verdict table)."""

    index: int
    verdict: str
    effect: str  # the effect and its unit ("" without effect columns) ...
    interval: str  # ... and its interval
    seeds: str
    greyed_by: list[str] = field(default_factory=list)  # failed controls it depends on

    @property
    def anchor(self) -> str:
        return f"verdict-{self.index}"


@dataclass
class Claim:
    """One row of the scorecard: a claim (id as shown, label, full text) and its cells by group."""

    cid: str
    label: str
    text: str
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    study_wide: list[Cell] = field(default_factory=list)  # rows without a dataset (e.g. not tested at all)

    def counts(self) -> dict[str, int]:
        """Verdict word -> number of its cells, in vocabulary order."""
        found = [c.verdict for c in list(self.cells.values()) + self.study_wide]
        words = list(VERDICTS) + [w for w in dict.fromkeys(found) if w not in VERDICTS]
        return {w: found.count(w) for w in words if w in found}


@dataclass
class ControlItem:
    """One control's status beside the grid, with the verdict rows (conclusion 0) that show it."""

    name: str
    label: str
    passed: bool | None
    cells: list[tuple[str, Cell]] = field(default_factory=list)  # (dataset or "", cell)


@dataclass
class Card:
    claims: list[Claim]
    groups: list[tuple[str, str]]  # (dataset, latent as text; "" when a row has none)
    controls: list[ControlItem]
    failed: list[str]  # names of the failed controls


def _cid(value) -> str:
    """A conclusion id as text: 1 -> "1", 1.0 (a CSV's float) -> "1", "2a" -> "2a"."""
    number = _num(value)
    if not math.isnan(number) and number == int(number):
        return str(int(number))
    return str(value).strip()


def _latent(value) -> str:
    number = _num(value)
    return "" if math.isnan(number) else str(int(number))


_BY_ID = {_cid(k): c for k, c in CONCLUSIONS.items()}
_RANK = {cid: i for i, cid in enumerate(_BY_ID)}


def _rank(cid: str) -> float:
    """Position of an id in CONCLUSIONS' order; "3b" without its own key sorts just after "3"."""
    if cid in _RANK:
        return _RANK[cid]
    stem = re.match(r"\d+", cid)
    return _RANK.get(stem.group(0), len(_RANK)) + 0.5 if stem else len(_RANK) + 1


def _label(cid: str, claim: str) -> tuple[str, str]:
    """(shown id, label): the conclusion's ``short`` where this row is that conclusion's claim, else
    the claim text; a claim text opening with its own id ("3b: ...") shows that id."""
    own = re.match(r"\s*(\d+[a-z]?)\s*(?::|\(|\s)", claim)
    shown = own.group(1) if own and own.group(1).startswith(re.sub(r"[a-z]+$", "", cid)) else cid
    conclusion = _BY_ID.get(cid)
    short = getattr(conclusion, "short", None)
    if short and conclusion.claim == claim:
        return shown, str(short)
    text = re.sub(rf"^\s*{re.escape(shown)}(?:\s*:\s*|\s+)", "", claim)
    return shown, text


def control_of_claim() -> dict[str, str]:
    """Verdict-row claim text of each control (``controls``) -> its name."""
    zero = _BY_ID.get("0")
    claims = {"training_likelihood": getattr(_controls, "TRAINING_CONTROL_CLAIM", None),
              "dictionary_recovery": zero.claim if zero else None,
              "receptive_fields": getattr(_controls, "FIELD_CONTROL_CLAIM", None),
              "retina_fields": getattr(_controls, "RETINA_CONTROL_CLAIM", None),
              "estimators": getattr(_controls, "ESTIMATOR_CONTROL_CLAIM", None)}
    return {text: name for name, text in claims.items() if text}


def _greyed(row: Mapping, failed: set[str], training_failed: set[str]) -> list[str]:
    """The failed controls this row depends on (``verdicts.METRIC_CONTROLS``; the training control
    takes down every verdict on its dataset)."""
    metrics = [m.strip() for m in str(row.get("metric") or "").split(",") if m.strip()]
    names = sorted({METRIC_CONTROLS[m] for m in metrics if METRIC_CONTROLS.get(m) in failed})
    if str(row.get("dataset") or "") in training_failed:
        names.append("training_likelihood")
    if not names and row.get("verdict") == "control failed":
        names.append("a control")
    return names


def _cell(i: int, row: Mapping, failed: set[str], training_failed: set[str]) -> Cell:
    seeds = "" if _blank(row.get("seeds")) else str(row.get("seeds"))
    return Cell(i, str(row["verdict"]), *effect_parts(row), seeds, _greyed(row, failed, training_failed))


def _folded(status: Mapping[str, bool | None]) -> dict[str, bool | None]:
    """The strip's controls: every "estimator <name> <family>" result folded into one "estimators"
    item (failed if one failed, passed if all passed), whose per-family rows link from it."""
    prefix = _controls.ESTIMATOR_PREFIX
    out = {name: ok for name, ok in status.items() if not name.startswith(prefix)}
    estimators = [ok for name, ok in status.items() if name.startswith(prefix)]
    if estimators:
        out["estimators"] = False if False in estimators else (True if all(estimators) else None)
    return out


def scorecard(verdicts: pd.DataFrame, status: Mapping[str, bool | None] | None = None) -> Card:
    """The scorecard of a verdict table (``verdicts.VERDICT_COLUMNS``, any extra columns kept).

    ``status`` is ``conclusions.control_status`` (name -> passed, failed or None, not run); without it
    a control counts as failed when one of its rows reads "control failed"."""
    rows = verdicts.reset_index(drop=True)
    by_claim = control_of_claim()
    is_control = rows["conclusion"].map(_cid) == "0"
    status = dict(status) if status is not None else {}
    if not status:
        for _, row in rows[is_control].iterrows():
            name = by_claim.get(str(row["claim"]), str(row["claim"]))
            ok = {"control failed": False, "not tested": None}.get(row["verdict"], True)
            status[name] = ok if status.get(name, True) is not False else False
    failed = {name for name, ok in status.items() if ok is False}
    training_failed = {str(r["dataset"]) for _, r in rows[is_control].iterrows()
                       if by_claim.get(str(r["claim"])) == "training_likelihood" and r["verdict"] == "control failed"}

    items = {name: ControlItem(name, CONTROL_LABELS.get(name, name.replace("_", " ")), ok)
             for name, ok in _folded(status).items()}
    claims: dict[tuple[str, str], Claim] = {}
    groups: list[tuple[str, str]] = []
    for i, row in rows.iterrows():
        cell = _cell(int(i), row, failed, training_failed)
        dataset = "" if _blank(row.get("dataset")) else str(row["dataset"])
        if is_control[i]:
            name = by_claim.get(str(row["claim"]), str(row["claim"]))
            item = items.setdefault(name, ControlItem(name, CONTROL_LABELS.get(name, name), None))
            # a study-wide row (an estimator on one family's codes) is named by what it checks
            what = dataset or ("" if _blank(row.get("metric")) else str(row["metric"])).removeprefix(
                _controls.ESTIMATOR_PREFIX)
            item.cells.append((what, cell))
            continue
        cid = _cid(row["conclusion"])
        key = (cid, str(row["claim"]))
        if key not in claims:
            shown, label = _label(cid, str(row["claim"]))
            claims[key] = Claim(shown, label, str(row["claim"]))
        claim = claims[key]
        if not dataset:
            claim.study_wide.append(cell)
            continue
        group = (dataset, _latent(row.get("latent")))
        if group not in groups:
            groups.append(group)
        claim.cells.setdefault(group, cell)
    ordered = sorted(claims.values(), key=lambda c: _rank(c.cid))
    return Card(ordered, groups, list(items.values()), sorted(failed))
