"""The ablation table of one experiment as the report and the explorer's download write it: per level of the
factor(s), the mean with its 95% interval and n, the difference to the baseline with its interval, the adjusted
p-value, the verdict, P(improvement), Hedges' g and the repeats needed (``report_table``), rendered as Markdown,
LaTeX, CSV, JSON or one self-contained HTML page (``render``), every text from the tables escaped."""

from __future__ import annotations

import html as html_module
import io
import json
import math
from typing import Any

import pandas as pd

from dashboards.analysis import ABLATION_COLUMNS, ablation, level_labels
from dashboards.tables import Experiment, ExplorerError
from dashboards.views.labels import score_label
from platform.papertables import md_text

SIGNIFICANT = 0.05


def score_column(experiment: Experiment, metric: str | None, split: str) -> str:
    """The trials column of the reported score: ``test/best/<m>`` (split test: the networks best on val) or
    ``best/val/<m>`` (split val), for the first objective's metric unless ``metric`` names one."""
    base = metric or (experiment.objectives[0].metric if experiment.objectives else "val/dice")
    stem = base.split("/", 1)[1] if base.startswith(("val/", "test/")) else base
    column = f"test/best/{stem}" if split == "test" else f"best/val/{stem}"
    if column not in experiment.trials:
        if split == "val" and f"last/val/{stem}" in experiment.trials:
            return f"last/val/{stem}"
        raise ExplorerError(f"experiment {experiment.name!r} has no column {column!r}: choose --metric from "
                            f"{sorted(c for c in experiment.trials if c.startswith(('best/', 'test/best/')))[:12]}")
    return column


def report_table(experiment: Experiment, factors: list[str], baseline: str | None, score: str,
                 adjust: str = "holm", trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ablation table of finished trials (of ``trials``, e.g. the explorer's filtered ones, else every trial),
    levels in the spec's order, baseline from the spec unless given."""
    from dashboards.analysis import default_baseline, spec_order

    columns = [f if f.startswith("config/") else f"config/{f}" for f in factors]
    unknown = [c for c in columns if c not in experiment.trials]
    if unknown:
        raise ExplorerError(f"unknown factor(s) {[c.removeprefix('config/') for c in unknown]}: choose from "
                            f"{[p.removeprefix('config/') for p in experiment.params]}")
    trials = experiment.trials if trials is None else trials
    trials = trials[trials["status"] == "TERMINATED"]
    levels = list(level_labels(trials, columns).unique()) if not trials.empty else []
    if baseline is None:
        baseline = default_baseline(experiment, trials, columns, levels, score)
    elif baseline not in levels:
        raise ExplorerError(f"baseline {baseline!r} is not a level of {factors}: choose from {levels}")
    order = spec_order(experiment, columns)
    table = ablation(trials, columns, score, baseline, mode=experiment.mode_of(score), adjust=adjust, order=order)
    table["significant"] = table["p_adjusted"].lt(SIGNIFICANT)
    table.attrs.update(baseline=baseline, score=score, factors=factors, adjust=adjust, columns=columns, order=order,
                       mode=experiment.mode_of(score))
    return table


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def _interval(mean: Any, low: Any, high: Any) -> str:
    """``mean [low, high]``; a missing interval (one repeat has no spread) says so instead of ``[nan, nan]``."""
    finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high))
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]" if finite else f"{_fmt(mean)} (no interval: n < 2)"


def _rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for record in table.to_dict("records"):
        mark = " *" if record["significant"] else ""
        rows.append([f"{record['level']}{mark}", _interval(record["mean"], record["low"], record["high"]),
                     str(record["n"]),
                     "baseline" if record["method"] == "baseline" else
                     _interval(record["diff"], record["diff_low"], record["diff_high"]),
                     _fmt(record["method"]) if record["method"] != "baseline" else "-", _fmt(record["p_adjusted"]),
                     _fmt(record["verdict"]),
                     _fmt(record["p_improvement"], 2), _fmt(record["hedges_g"], 2), _fmt(record["repeats_needed"])])
    return rows


HEADERS = ["level", "mean [95% CI]", "n", "difference to baseline [95% CI]", "test", "adjusted p",
           "beats baseline (Holm)", "P(improvement)", "Hedges' g", "repeats for 80% power"]


def headers(mode: str) -> list[str]:
    """The column headers; the difference's says which sign is better under ``mode``."""
    better = "< 0" if mode == "min" else "> 0"
    return [f"difference to baseline [95% CI] ({better} is better)" if h.startswith("difference") else h
            for h in HEADERS]


def _json_value(value: Any) -> Any:
    """A JSON value of a table cell: NaN and None as null, numpy scalars as Python numbers."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return value


def render(table: pd.DataFrame, form: str, experiment: str) -> str:
    """The table as Markdown, LaTeX, CSV, JSON or a self-contained HTML page."""
    attrs = table.attrs
    caption = (f"{experiment}: {score_label(attrs['score'])} by {', '.join(attrs['factors'])}, baseline "
               f"{attrs['baseline']}; n = repeats (seed, fold); the intervals are unadjusted 95% t-intervals over "
               "repeats (paired t or Welch for differences; none at n < 2); "
               f"p adjusted by {attrs['adjust']} over the {int(table['p'].notna().sum())} levels compared; "
               f"* adjusted p < {SIGNIFICANT}; verdicts of 'beats the baseline': Holm-adjusted intervals over the "
               "levels compared")
    columns = headers(attrs.get("mode", "max"))
    if form == "csv":
        buffer = io.StringIO()
        table.reindex(columns=[*ABLATION_COLUMNS, "significant"]).to_csv(buffer, index=False)
        return buffer.getvalue()
    if form == "json":
        # Python's float repr, not pandas' to_json (which rounds to 10 digits): the numbers as computed.
        records = [{key: _json_value(value) for key, value in record.items()}
                   for record in table.reindex(columns=[*ABLATION_COLUMNS, "significant"]).to_dict("records")]
        return json.dumps({"caption": caption, "rows": records}, indent=2).replace("<", "\\u003c").replace(
            ">", "\\u003e").replace("&", "\\u0026")
    rows = _rows(table)
    if form == "md":
        lines = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
        lines += [f"| {' | '.join(md_text(cell) for cell in row)} |" for row in rows]
        return "\n".join(lines) + f"\n\n{md_text(caption)}\n"
    if form == "latex":
        def tex(text: str) -> str:
            return text.replace("_", r"\_").replace("%", r"\%").replace("#", r"\#").replace("&", r"\&")

        lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * (len(HEADERS) - 1) + "}",
                 r"\hline", " & ".join(tex(h) for h in columns) + r" \\", r"\hline"]
        lines += [" & ".join(tex(c) for c in row) + r" \\" for row in rows]
        lines += [r"\hline", r"\end{tabular}", f"\\caption{{{tex(caption)}}}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    if form == "html":
        import plotly.io as pio

        esc = html_module.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        shown = [f for f in (attrs.get("figures") or [attrs.get("figure")]) if f is not None]
        plot = "".join(pio.to_html(f, full_html=False, include_plotlyjs="inline" if i == 0 else False)
                       for i, f in enumerate(shown))
        return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>ablation</title><style>td,th{padding:2px "
                "8px;text-align:right}td:first-child{text-align:left}</style></head><body>"
                f"<h2>{esc(caption)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{plot}"
                "</body></html>")
    raise ValueError(f"unknown format {form!r}")
