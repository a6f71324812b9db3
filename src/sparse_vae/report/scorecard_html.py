"""The scorecard as the first thing on report.html: a one-line summary per claim, the claims x
datasets <table> of coloured verdict cells (each links to its row of the verdict table), the legend,
and the controls strip beside it. Drawn from ``scorecard.Card``; the words are the verdict table's.
"""

from __future__ import annotations

import html
from typing import Any

from sparse_vae.report.scorecard import VERDICT_COLOURS, Card, Cell, Claim, colours, verdict_class
from sparse_vae.report.verdicts import VERDICT_RULES, VERDICTS

__all__ = ["SCORECARD_CSS", "scorecard_section"]


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _verdict_css() -> str:
    """One rule per verdict word (the vocabulary and any word with a colour of its own)."""
    words = list(dict.fromkeys(list(VERDICTS) + list(VERDICT_COLOURS)))
    return "".join(f".{verdict_class(w)}{{background:{colours(w)[0]};color:{colours(w)[1]}}}" for w in words)


SCORECARD_CSS = _verdict_css() + """
#scorecard{margin:6px 0 0} .sc-wrap{display:flex;gap:18px;align-items:flex-start}
.sc-main{flex:1 1 auto;min-width:0} .sc-side{flex:0 0 270px;font-size:12.5px}
ul.sc-summary{margin:0 0 6px;padding-left:18px;font-size:12.5px;line-height:1.3}
ul.sc-summary li{margin:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
ul.sc-summary .chip{padding:0 6px}
table.scorecard{border-collapse:separate;border-spacing:3px 2px;margin:0;font-size:12px;width:100%;table-layout:fixed}
table.scorecard th,table.scorecard td{border:0;padding:3px 6px;vertical-align:middle}
table.scorecard thead th{background:none;text-align:center;font-weight:600;padding:1px 4px}
table.scorecard thead tr.z th{font-weight:normal;color:#666;font-size:11px}
table.scorecard th.claim{background:#f6f6f6;text-align:left;font-weight:normal;width:300px;line-height:1.25}
th.claim .cid{float:left;min-width:24px;font-weight:700;font-size:13px}
th.claim .lab{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
td.sc{text-align:center;border-radius:4px;line-height:1.15;height:30px;padding:2px 4px}
td.sc a{color:inherit;text-decoration:none;display:block}
td.sc .w{font-weight:700;display:block} td.sc .fx{font-size:11px;font-variant-numeric:tabular-nums}
td.sc .ci{font-size:10px;font-variant-numeric:tabular-nums;opacity:.85;margin-left:3px}
td.sc.na{background:#fafafa;color:#bbb} td.sc.greyed{filter:grayscale(1);opacity:.45}
td.sc a:hover .w{text-decoration:underline}
.sc-legend{margin:6px 0 0;font-size:11.5px;display:flex;flex-wrap:wrap;gap:4px;align-items:center}
.chip{display:inline-block;padding:1px 7px;border-radius:9px;white-space:nowrap}
.sc-side h3{margin:0 0 4px;font-size:14px} .sc-side ul{list-style:none;margin:0;padding:0}
.sc-side li{margin:0 0 5px;line-height:1.3} .sc-side a{color:inherit}
.ctl{font-weight:700;margin-right:4px} .ctl.pass{color:#007a59} .ctl.fail{color:#b34700} .ctl.none{color:#777}
"""


def _cell(cell: Cell | None, colspan: int = 1) -> str:
    if cell is None:
        return '<td class="sc na" title="no verdict for this claim here">·</td>'
    span = f' colspan="{colspan}"' if colspan > 1 else ""
    grey = " greyed" if cell.greyed_by else ""
    tip = f"{cell.verdict}: {VERDICT_RULES.get(cell.verdict, '')}"
    if cell.seeds:
        tip += f" — seeds: {cell.seeds}"
    if cell.greyed_by:
        tip += f" — depends on a failed control ({', '.join(cell.greyed_by)})"
    effect = f'<span class="fx">{_e(cell.effect)}</span>' if cell.effect else ""
    effect += f'<span class="ci">{_e(cell.interval)}</span>' if cell.interval else ""
    return (f'<td class="sc {verdict_class(cell.verdict)}{grey}"{span}><a href="#{cell.anchor}" '
            f'title="{_e(tip)}"><span class="w">{_e(cell.verdict)}</span>{effect}</a></td>')


def _summary(claim: Claim, groups: list[tuple[str, str]]) -> str:
    """"1 reconstruction: supported on synthetic, digits z2; contradicted on natural"."""
    datasets = [d for d, _ in groups]
    where: dict[str, list[str]] = {}
    for (dataset, latent), cell in claim.cells.items():
        name = f"{dataset} z{latent}" if datasets.count(dataset) > 1 and latent else dataset
        where.setdefault(cell.verdict, []).append(name)
    for cell in claim.study_wide:
        where.setdefault(cell.verdict, [])
    parts = [f'<span class="chip {verdict_class(w)}">{_e(w)}</span> ' + (_e(", ".join(where[w])) if where[w]
             else "no dataset for it in this study") for w in claim.counts()]
    return (f'<li title="{_e(claim.text)}"><b>{_e(claim.cid)}</b> {_e(claim.label)}: '
            + "; ".join(parts) + "</li>")


def _grid(card: Card) -> str:
    datasets = list(dict.fromkeys(d for d, _ in card.groups))
    top = "".join(f'<th colspan="{sum(1 for g in card.groups if g[0] == d)}">{_e(d)}</th>' for d in datasets)
    lat = "".join(f"<th>{'z=' + _e(z) if z else ''}</th>" for _, z in card.groups)
    rows = []
    for claim in card.claims:
        head = (f'<th class="claim" title="{_e(claim.text)}"><span class="cid">{_e(claim.cid)}</span>'
                f'<span class="lab">{_e(claim.label)}</span></th>')
        if not claim.cells and claim.study_wide:
            cells = _cell(claim.study_wide[0], max(1, len(card.groups)))
        else:
            cells = "".join(_cell(claim.cells.get(g)) for g in card.groups)
        rows.append(f"<tr>{head}{cells}</tr>")
    return (f'<table id="scorecard-table" class="scorecard"><thead><tr><th class="claim-h"></th>{top}</tr>'
            f'<tr class="z"><th></th>{lat}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _controls(card: Card, stability: str | None) -> str:
    items = []
    for item in card.controls:
        state = {True: ("pass", "passed"), False: ("fail", "FAILED"), None: ("none", "not run")}[item.passed]
        links = " ".join(f'<a href="#{c.anchor}" class="chip {verdict_class(c.verdict)}" title="{_e(c.verdict)}">'
                         f"{_e(d or c.verdict)}</a>" for d, c in item.cells)
        items.append(f'<li><span class="ctl {state[0]}">{state[1]}</span>{_e(item.label)} {links}</li>')
    note = (f'<p class="muted">Failed: {_e(", ".join(card.failed))}. The verdicts resting on them are greyed '
            "out and read \"control failed\".</p>" if card.failed else
            '<p class="muted">A failed control greys out the verdicts that rest on it.</p>')
    rerun = (f'<p id="stability-line"><b>Stability:</b> {_e(stability)}; a verdict that flipped reads "unstable".</p>'
             if stability else '<p id="stability-line" class="muted"><b>Stability:</b> no rerun compared '
             "(report.stability is not set).</p>")
    return (f'<aside class="sc-side" id="controls-strip"><h3>Controls</h3><ul>{"".join(items)}</ul>{note}{rerun}'
            "</aside>")


def _legend() -> str:
    chips = "".join(f'<span class="chip {verdict_class(w)}" title="{_e(rule)}">{_e(w)}</span>'
                    for w, rule in VERDICT_RULES.items())
    return (f'<div class="sc-legend"><span class="muted">Verdicts (hover for the rule; a cell links to its '
            f"evidence):</span>{chips}</div>")


def scorecard_section(card: Card, stability: str | None = None) -> str:
    """The section (id "scorecard"): summary lines, grid and legend, controls strip on the right with
    the stability rerun's flip count (``stability.Stability.summary``; None: no rerun compared)."""
    if not card.claims:
        return ('<section id="scorecard"><table id="scorecard-table" class="scorecard"><tbody><tr>'
                '<td class="muted">No verdicts in this report.</td></tr></tbody></table></section>')
    summary = "".join(_summary(c, card.groups) for c in card.claims)
    return (f'<section id="scorecard"><div class="sc-wrap"><div class="sc-main"><ul class="sc-summary">{summary}'
            f"</ul>{_grid(card)}{_legend()}</div>{_controls(card, stability)}</div></section>")
