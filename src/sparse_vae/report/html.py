"""The self-contained report.html. The first screen: the title, then the scorecard (``scorecard``,
``scorecard_html``: claims x datasets, the controls beside it), then the talk's figures side by side
per prior (``talk_figures``). Below, each in a <details> closed by default: the answers prior against
prior (``answers``), the verdicts, summary tables, the metric glossary, the figure panels (all
figures embedded as base64 data URIs), configuration, training, environment and the per-run table.

Labels, units and definitions come from ``sparse_vae.catalogue``. Not here: computing any table,
verdict or figure (the other modules of this package).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.answers import answers_section
from sparse_vae.report.figures import FigureInfo, slug
from sparse_vae.report.runs import Run, Study, code_drift_line, environments
from sparse_vae.report.scorecard import Card, effect_text, scorecard, verdict_class
from sparse_vae.report.html_style import OPEN_TARGET, PAGE_CSS
from sparse_vae.report.scorecard_html import scorecard_section
from sparse_vae.report.talk_figures import TALK_KINDS
from sparse_vae.report.stability import Stability
from sparse_vae.report.tables import ID_COLUMNS, TRAIN_COLUMNS, fmt, fmt_sd, order
from sparse_vae.report import conclusions
from sparse_vae.report.conclusions import CONCLUSIONS
from sparse_vae.report.verdicts import VERDICT_RULES

__all__ = ["render_html"]

def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _cell(x: Any) -> str:
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
        return f'<td class="num">{_e(fmt(x))}</td>'
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return '<td class="num">—</td>'
    return f"<td>{_e(x)}</td>"


def _table(df: pd.DataFrame, table_id: str, headers: Sequence[str] | None = None,
           row_class: Sequence[str] | None = None, row_ids: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in (headers or df.columns))
    rows = []
    for i, (_, row) in enumerate(df.iterrows()):
        cls = f' class="{_e(row_class[i])}"' if row_class else ""
        rid = f' id="{_e(row_ids[i])}"' if row_ids else ""
        rows.append(f"<tr{rid}{cls}>" + "".join(_cell(v) for v in row.values) + "</tr>")
    return (f'<div class="scroll"><table id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def clipped(metric: str, latent: int, lo: float, hi: float) -> tuple[float, float]:
    """A t-interval clipped to the range the metric can take (catalogue bounds)."""
    low, high = catalogue.value_range(metric, latent)
    return (lo if math.isnan(lo) else min(max(lo, low), high), hi if math.isnan(hi) else max(min(hi, high), low))


def _summary_cell(row: pd.Series | None, metric: str, latent: int) -> str:
    if row is None:
        return "—"
    text = fmt(row["mean"])
    if row["n"] >= 2:
        lo, hi = clipped(metric, latent, row["ci_low"], row["ci_high"])
        text += f" ± {fmt_sd(row['sd'], row['mean'])} [{fmt(lo)}, {fmt(hi)}]"
    return f"{text} (n={int(row['n'])})"


def _constant(rows: pd.DataFrame) -> bool:
    """Whether a metric has one value in every run of the group (a setting, not a result)."""
    means = rows["mean"].astype(float)
    spread = max(float(means.max() - means.min()), float(rows["sd"].fillna(0).abs().max()))
    return spread <= 1e-9 * max(1.0, float(means.abs().max()))


def _summary_tables(summary: pd.DataFrame, priors: Sequence[str]) -> list[tuple[str, str, str]]:
    """(table id, heading, html) per dataset x latent: metrics as rows, priors as columns; metrics
    with one value in every run are listed under the table instead of filling rows."""
    out = []
    rank = {m: i for i, m in enumerate(list(catalogue.SCALAR_METRICS) + TRAIN_COLUMNS)}
    for (dataset, latent), group in summary.groupby(["dataset", "latent"], sort=False):
        metrics = sorted(dict.fromkeys(group["metric"]), key=lambda m: (rank.get(m, 999), m))
        here = [p for p in priors if p in set(group["prior"])]
        rows, same = [], []
        for metric in metrics:
            mine = group[group["metric"] == metric]
            if _constant(mine):
                unit = catalogue.unit(metric)
                same.append(f"{catalogue.label(metric)} = {fmt(mine['mean'].iloc[0])}" + (f" {unit}" if unit else ""))
                continue
            cells = [catalogue.label(metric), catalogue.unit(metric)]
            for prior in here:
                hit = mine[mine["prior"] == prior]
                cells.append(_summary_cell(hit.iloc[0] if len(hit) else None, metric, int(latent)))
            rows.append(cells)
        table = pd.DataFrame(rows, columns=["metric", "unit"] + here)
        tid = f"summary-{slug(dataset)}-z{latent}"
        note = f'<p class="muted">Same in every run here: {_e("; ".join(same))}.</p>' if same else ""
        out.append((tid, f"{dataset}, latent {latent}", _table(table, tid) + note))
    return out


def _config_section(study: Study, df: pd.DataFrame, priors: Sequence[str]) -> str:
    pct = f"{study.confidence * 100:g}%"
    latents = {d: sorted(set(df.loc[df["dataset"] == d, "latent"])) for d in dict.fromkeys(df["dataset"])}
    rows = [
        ("datasets", ", ".join(study.datasets)),
        ("priors", ", ".join(study.priors)),
        ("seeds", ", ".join(map(str, study.seeds))),
        ("latent sizes", "; ".join(f"{d}: {', '.join(map(str, z))}" for d, z in latents.items())),
        ("dataset sources", "; ".join(f"{d}: {s}" for d, s in study.sources.items())),
        ("KL estimators", "; ".join(
            f"{p}: {', '.join(sorted(set(map(str, df.loc[df['prior'] == p, 'kl_estimator'].dropna()))) or '—')}"
            for p in priors)),
        ("runs", str(len(df))),
        ("confidence of intervals", f"{pct} (Student t over seeds; paired t for differences)"),
        ("tests", "exact sign-flip permutation test of the per-seed paired differences (paired t where it "
                  "cannot reach the level); Holm within each verdict row and within each pairwise metric"),
        ("representative seed", str(study.representative_seed)),
    ]
    return ('<h2 id="config">Study configuration</h2>' +
            _table(pd.DataFrame(rows, columns=["setting", "value"]), "config-table"))


def _verdicts_section(verdicts: pd.DataFrame, pct: str, stability: Stability | None) -> str:
    rules = pd.DataFrame(list(VERDICT_RULES.items()), columns=["verdict", "rule"])
    vclass = verdict_class
    checked = (f"Stability check: {_e(stability.summary())}; a verdict that flipped reads "
               "\"unstable\"." if stability else "No stability rerun was compared (report.stability is not set).")
    parts = [
        '<h2 id="verdicts">Verdicts on the talk\'s conclusions</h2>',
        f'<p class="muted">Computed from the runs, not written by hand. Runs are paired by seed; a comparison '
        f"between two priors tests the per-seed differences (exact sign-flip permutation test, or a paired t "
        f"where that cannot reach the level), with Holm's correction over the comparisons of one verdict row "
        f"(the family), and gives the {pct} paired t interval of the mean difference. It holds when the "
        f"adjusted test rejects in the claimed direction; it reads no difference when the interval lies within "
        f"the metric's equivalence margin (glossary); else inconclusive. Each row states its test, adjusted "
        f"p-values and the minimal detectable effect at 80% power. Controls come first: a verdict that relies "
        f"on a metric whose control failed says so. {checked}</p>",
        _table(rules, "vocabulary", row_class=[vclass(v) for v in rules["verdict"]]),
    ]
    for number, c in CONCLUSIONS.items():
        parts.append(f"<h3>{number}. {_e(c.claim)}</h3><blockquote>{_e(c.quote)}</blockquote>"
                     f'<p class="muted">Deviation: {_e(c.deviation)}</p>')
        for label, (claim, quote, deviation) in getattr(conclusions, "SECOND_CLAIMS", {}).items():
            if label.startswith(str(number)):
                parts.append(f"<h4>{_e(claim)}</h4><blockquote>{_e(quote)}</blockquote>"
                             f'<p class="muted">Deviation: {_e(deviation)}</p>')
    columns = ["conclusion", "dataset", "latent", "metric", "verdict", "seeds"]
    table = verdicts[columns].copy()
    if "effect" in verdicts:  # the effect and its interval, in the metric's unit
        table["effect [interval]"] = [effect_text(row) for _, row in verdicts.iterrows()]
    rest = ["test", "p_adjusted", "mde"] + (["rerun"] if "rerun" in verdicts else []) + ["evidence"]
    table = pd.concat([table, verdicts[rest]], axis=1)
    classes = [verdict_class(v) for v in verdicts["verdict"]]
    parts.append(_table(table, "verdicts-table", row_class=classes,
                        row_ids=[f"verdict-{i}" for i in range(len(verdicts))]))
    return "".join(parts)


def _summary_section(summary: pd.DataFrame, priors: Sequence[str], pct: str,
                     toc: list[tuple[str, str]]) -> str:
    parts = ['<h2 id="summary">Summary over seeds</h2>',
             f'<p class="muted">mean ± sd [{pct} t-interval] (n = non-null seeds). Units: nats per '
             f"test example for ELBO / log-likelihoods / KL, pixel MSE on the [0, 1] intensity scale "
             f"(or the prepared scale of whitened data), counts of latent dimensions for active units. "
             f"Intervals are clipped to the range a metric can take (e.g. [0, 1] for fractions and "
             f"Hoyer sparsity, [0, latent size] for unit counts, ≥ 0 for MSE): with few seeds a t-interval "
             f"can run past it. Metrics null for every run of a group are omitted, and metrics with one "
             f"value in every run (settings such as IWAE samples K or epochs) are listed under the table; "
             'see the <a href="#glossary">glossary</a>.</p>']
    for tid, heading, table in _summary_tables(summary, priors):
        parts.append(f"<h3>{_e(heading)}</h3>{table}")
        toc.append((tid, f"Summary table: {heading}"))
    return "".join(parts)


def _range_text(metric: catalogue.Metric) -> str:
    low, high = metric.bounds
    if low is None and high is None:
        return "—"
    show = {None: "", "L": "latent size"}
    if high is None:
        return f"≥ {fmt(low)}"
    if low is None:
        return f"≤ {show.get(high, fmt(high))}"
    return f"[{fmt(low)}, {show.get(high, fmt(high) if not isinstance(high, str) else high)}]"


def _glossary_section() -> str:
    """The catalogue as a glossary: what every metric means, how to read it, which way is better."""
    better = {"higher": "higher", "lower": "lower", "": "—"}
    rows = [(m.label, m.name, m.unit, better[m.better], _range_text(m),
             "—" if m.margin is None else f"±{fmt(m.margin)}: {m.margin_reason}", m.definition, m.note)
            for m in catalogue.METRICS]
    table = pd.DataFrame(rows, columns=["metric", "name", "unit", "better", "range", "equivalence margin",
                                        "definition", "how to read it"])
    terms = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>"
                    for k, v in {**catalogue.TERMS, **catalogue.PER_DIMENSION}.items())
    return ('<h2 id="glossary">Glossary of metrics</h2><p class="muted">Generated from the metric catalogue '
            "(src/sparse_vae/catalogue.py), the same text each run's metrics.json carries. \"how to read it\" "
            "explains metrics that can look contradictory side by side.</p>"
            + _table(table, "glossary-table") + f"<ul class=\"muted\">{terms}</ul>")


def _figure(fig: FigureInfo, figure_dir: Path, caption: bool = True) -> str:
    data = base64.b64encode((figure_dir / fig.file).read_bytes()).decode("ascii")
    fid = "fig-" + slug(fig.file[:-4])
    text = f"<b>{_e(fig.title)}</b> ({_e(fig.file)})." + (f" {_e(fig.caption)}" if caption else "")
    return (f'<figure id="{_e(fid)}"><img src="data:image/png;base64,{data}" alt="{_e(fig.title)}" '
            f'data-file="{_e(fig.file)}"><figcaption>{text}</figcaption></figure>')


def _talk_section(figures: Sequence[FigureInfo], figure_dir: Path) -> str:
    """The talk's figures right below the scorecard, by kind (``talk_figures.TALK_KINDS``), one card
    per dataset x latent; the kind's caption once above its cards."""
    talk = [f for f in figures if f.file.startswith("talk_")]
    if not talk:
        return ('<section id="talk"><h2>The talk\'s figures</h2><p class="muted">No run figures in this study '
                "(the representative seed's runs have no figures/ folder).</p></section>")
    parts = ['<section id="talk"><h2>The talk\'s figures, side by side per prior</h2>']
    for kind, (title, caption) in TALK_KINDS.items():
        mine = [f for f in talk if f.kind == kind]
        if mine:
            wide = " full" if all(f.side_by_side for f in mine) else ""  # priors in a row: a row each
            cards = "".join(_figure(f, figure_dir, caption=False) for f in mine)
            parts.append(f'<div class="talk-kind"><h3>{_e(title)}</h3><div class="cards{wide}">{cards}</div>'
                         f'<p class="muted">{_e(caption)}</p></div>')
    return "".join(parts) + "</section>"


def _figures_section(figures: Sequence[FigureInfo], figure_dir: Path) -> str:
    parts = ['<h2 id="figures">Figure panels</h2>']
    parts += [_figure(f, figure_dir) for f in figures if not f.file.startswith("talk_")]
    if (figure_dir / "scorecard.png").is_file():
        parts.append(_figure(FigureInfo("scorecard.png", "The scorecard as a picture (README)", "The scorecard above, "
                                        "drawn with matplotlib; also scorecard.svg.", "scorecard", "", 0), figure_dir))
    return "".join(parts)


def _details(section_id: str, title: str, note: str, body: str) -> str:
    """A section closed by default; its summary names what it holds."""
    return (f'<details class="more" id="d-{_e(section_id)}"><summary>{_e(title)} <span class="muted">— {_e(note)}'
            f"</span></summary>{body}</details>")


def _environment_section(runs: Sequence[Run]) -> str:
    """The environment once (what most runs recorded in train.json), then every run that differs."""
    common, differ = environments(runs)
    parts = ['<h2 id="environment">Environment</h2><p class="muted">Package versions, git commit, CPU, BLAS '
             "and CUDA recorded by training (train.json \"versions\"); the values most runs share.</p>"]
    # code provenance: each run's training and analysis code against today's (stage version, normalised hash)
    parts.append(f'<p id="code-drift"><b>Code:</b> {_e(code_drift_line(runs))}</p>')
    if not common:
        return "".join(parts) + '<p class="muted">No run recorded its environment.</p>'
    parts.append(_table(pd.DataFrame([(k, "—" if v is None else str(v)) for k, v in common.items()],
                                      columns=["item", "value"]), "environment-table"))
    if differ:
        rows = [(f"{r.info['dataset']}/{r.info['prior']}/z{r.info['latent']}/seed{r.info['seed']}", key,
                 str(mine), str(shared)) for r, diff in differ for key, (mine, shared) in diff.items()]
        parts.append(f'<p><b>{len(differ)} of {len(runs)} runs ran in a different environment:</b></p>'
                     + _table(pd.DataFrame(rows, columns=["run", "item", "this run", "most runs"]),
                              "environment-differs"))
    else:
        parts.append(f'<p class="muted">All {len(runs)} runs recorded the same environment.</p>')
    return "".join(parts)


def _training_section(runs: Sequence[Run]) -> str:
    """One line per run: its grid's candidates (validation IWAE at each one's kept epoch, or its
    fate), the winner and whether it converged by the stopping rule."""
    rows = []
    for r in sorted(runs, key=lambda r: r.key):
        t = r.train
        grid = "; ".join(f"lr {c['lr']:g}: " + (f"{c['val_iwae']:.3f}" if c.get("val_iwae") is not None else "—")
                         + ("" if c["status"] == "converged" else f" ({c['status']})") for c in t.get("candidates", []))
        rows.append(("/".join(str(k) for k in r.key), f"{t.get('lr', float('nan')):g}", t.get("selected_epoch"),
                     t.get("epochs"), "yes" if t.get("converged") else "NO: " + t.get("stopping", {}).get("reason", ""),
                     grid))
    unconverged = sum(1 for r in runs if not r.train.get("converged"))
    note = (f"<p><b>{unconverged} of {len(runs)} runs did not converge by the stopping rule</b>; the verdicts "
            "resting on them name them.</p>" if unconverged else
            f'<p class="muted">All {len(runs)} runs converged by the stopping rule.</p>')
    return ('<h2 id="training">Training: grid, winner, convergence</h2><p class="muted">Each run trains every '
            "learning rate of its dataset's grid at once and keeps the candidate with the best validation IWAE "
            "(nats/example, at that candidate's own kept epoch); nothing else chooses. From train.json.</p>"
            + note + _table(pd.DataFrame(rows, columns=["run", "winning lr", "kept epoch", "epochs trained",
                                                        "converged", "candidates: validation IWAE"]),
                            "training-table"))


def render_html(study: Study, df: pd.DataFrame, summary: pd.DataFrame, verdicts: pd.DataFrame,
                figures: Sequence[FigureInfo], figure_dir: Path, pairwise: pd.DataFrame | None = None,
                runs: Sequence[Run] = (), stability: Stability | None = None, card: Card | None = None) -> str:
    """The whole page: title, scorecard, the talk's figures, then every detail in closed <details>;
    figures are read from `figure_dir` and embedded.

    ``pairwise`` (report.pairwise's table) feeds the answers; None gives a note instead. ``runs`` give
    the environment section; ``stability`` the result of the stability check; ``card`` the scorecard
    (``scorecard.scorecard`` with the controls' status; made from the verdicts alone when None).
    """
    priors = order(df["prior"], study.priors)
    pct = f"{study.confidence * 100:g}%"
    card = card if card is not None else scorecard(verdicts)
    run_cols = [c for c in df.columns if c != "run_dir" and (c in ID_COLUMNS or df[c].notna().any())]
    details = [
        ("answers", "Answers, prior against prior", "laplace vs normal, cauchy vs normal, laplace vs cauchy",
         answers_section(pairwise, figures, pct)),
        ("verdicts", "Verdicts and their evidence", "the table every scorecard cell links to, the rules, the "
         "talk's words", _verdicts_section(verdicts, pct, stability)),
        ("summary", "Summary over seeds", f"mean ± sd [{pct} interval] per metric and prior",
         _summary_section(summary, priors, pct, [])),
        ("glossary", "Glossary of metrics", "what each metric means, its unit, margin and direction",
         _glossary_section()),
        ("figures", "Figure panels", "metrics by prior, field shapes, KL and information profiles, training",
         _figures_section(figures, figure_dir)),
        ("config", "Study configuration", "datasets, priors, seeds, tests", _config_section(study, df, priors)),
        ("training", "Training", "grid, winner, convergence per run", _training_section(runs)),
        ("environment", "Environment", "package versions, CPU, BLAS", _environment_section(runs)),
        ("runs", "Per-run metrics", "one row per run, as metrics.csv",
         '<h2 id="runs">Per-run metrics</h2><p class="muted">One row per run, as in metrics.csv (columns null for '
         "every run are omitted here).</p>" + _table(df[run_cols], "runs-table")),
    ]
    seeds = ", ".join(map(str, study.seeds))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Sparse VAE study report</title><style>{PAGE_CSS}</style></head><body>"
        "<h1>Sparse VAE study: do the talk's claims hold?"
        f'<span class="sub">{len(df)} runs, seeds {_e(seeds)}; {pct} intervals over seeds; every word and number '
        "computed from the runs' files</span></h1>"
        + scorecard_section(card, stability.summary() if stability else None) + _talk_section(figures, figure_dir)
        + "".join(_details(*d) for d in details) + OPEN_TARGET + "</body></html>\n"
    )
