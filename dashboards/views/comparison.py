"""Two trials side by side: config differences highlighted, metrics per domain and class, and their images."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboards.analysis import config_differences, metric_breakdown, stopped_early
from dashboards.views import Callback, Context, View, common
from dashboards.views.common import dropdown, image_type, missing, ranked_ids, rounded, trial_labels

MAX_OPTIONS = 500  # trials offered in the pickers (best first; selected ones always included)


ORDER = 80


def controls() -> html.Div:
    return html.Div([
        html.H3("Compare two trials", style={"margin": "4px 0"}),
        html.Div([dropdown("compare-a", "A", style={"minWidth": "380px"}),
                  dropdown("compare-b", "B", style={"minWidth": "380px"})], className="row"),
        html.Div([html.Div(id="compare-config", className="half"), html.Div(id="compare-metrics", className="half")],
                 className="row"),
        html.Div(id="compare-images", className="row"),
    ], className="section")


def choices(context: Context, score: str | None, selected: list[dict[str, Any]] | None, current_a: str | None,
            current_b: str | None) -> tuple[list[dict[str, str]], list[dict[str, str]], str | None, str | None]:
    """Trials offered for the comparison; selecting rows in the grid picks A (first) and B (second, else the best
    other trial)."""
    experiment, trials = context.experiment, context.trials
    # Only the best MAX_OPTIONS are offered: listing (and labelling) 100,000 trials would cost seconds.
    order = ranked_ids(trials, score, experiment, MAX_OPTIONS)
    chosen = [row["trial_id"] for row in selected or [] if row.get("trial_id")]
    asked = [t for t in (current_a, current_b) if t]
    known = set(experiment.trials.loc[experiment.trials["trial_id"].isin(asked), "trial_id"]) if asked else set()
    # Picks from another experiment (the picker just changed) are not kept.
    current_a, current_b = (t if t in known else None for t in (current_a, current_b))
    offered = list(dict.fromkeys(chosen + order + [t for t in (current_a, current_b) if t]))
    labels = trial_labels(experiment, offered)
    options = [{"label": labels.get(t, t), "value": t} for t in offered]
    if common.triggered() == "grid" and chosen:
        a = chosen[0]
        b = chosen[1] if len(chosen) > 1 else next((t for t in order if t != a), None)
        return options, options, a, b
    a = current_a if current_a in offered else (order[0] if order else None)
    b = current_b if current_b in offered else next((t for t in order if t != a), None)
    return options, options, a, b


def comparison(explorer: Any, version: dict[str, Any] | None, a: str | None, b: str | None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Config rows (differences first, flagged), per-domain/class metric rows, and both trials' images."""
    experiment = explorer.experiment(version)
    if experiment is None or not a or not b:
        return [], [], []
    trials = experiment.trials.set_index("trial_id", drop=False)
    if a not in trials.index or b not in trials.index:
        return [], [], []
    configs = explorer.memo("configs", (experiment.name, experiment.version, a, b),
                            lambda: explorer.catalog.configs(experiment.name, [a, b]))
    extra = ["seed", "fold", "status", "epochs", "error"]

    def flat(trial_id: str) -> dict[str, Any]:
        row = trials.loc[trial_id]
        return {**dict(configs.get(trial_id, {}).items()),
                **{k: row[k] for k in extra if k in row and not missing(row[k])}}

    metric_rows = metric_breakdown(trials.loc[a], trials.loc[b])
    images = [images_of(experiment, trial_id, tag) for tag, trial_id in (("A", a), ("B", b))]
    return config_differences(flat(a), flat(b)), [rounded(r) for r in metric_rows], images


def page_parts(explorer: Any, version: dict[str, Any] | None, a: str | None, b: str | None) -> tuple[Any, Any, Any]:
    """The comparison as the page shows it: two tables and the images."""
    config_rows, metric_rows, images = comparison(explorer, version, a, b)
    if not config_rows:
        return html.P("choose two trials"), None, None
    return (rows_table(config_rows, ["key", "a", "b"], "compare-config-table"),
            rows_table(metric_rows, ["score", "metric", "domain", "class", "a", "b", "diff"],
                       "compare-metrics-table"), images)


def images_of(experiment: Any, trial_id: str, tag: str) -> html.Div:
    """A trial's pictures of the validation split (one per domain), each panel named, with the class colours."""
    rows = artifact_rows(experiment, trial_id)
    if "split" in rows:
        rows = rows[rows["split"].isna() | (rows["split"] == "val")]
    pictures = [picture(experiment, trial_id, row) for _, row in rows.iterrows() if image_type(row["file"])]
    heading = html.H4(f"{tag}: trial {trial_id}")
    if pictures:
        return html.Div([heading, *pictures], className="images")
    return html.Div([heading, html.P(f"this trial has no images: {no_images_reason(experiment, trial_id)}")],
                    className="images")


def no_images_reason(experiment: Any, trial_id: str) -> str:
    """Why a trial has no pictures. They are saved at each new best validation epoch and at the last one."""
    status = _status_of(experiment, trial_id)
    if status == "ERROR":
        return "it errored before its first validation epoch ended"
    if status != "TERMINATED":
        return (f"its status is {status}: pictures are saved at each new best validation epoch and at the last "
                "one, and it has finished none yet")
    if _stopped_early(experiment, trial_id):
        return ("the scheduler stopped it early and it saved none (results written before pictures were saved at "
                "the best epoch have them only for trials that ran to the end)")
    return "its trainer saved none"


def artifact_rows(experiment: Any, trial_id: str) -> Any:
    rows = experiment.artifacts
    return rows[rows["trial_id"] == trial_id] if len(rows) else rows


def picture(experiment: Any, trial_id: str, row: Any) -> html.Figure:
    """One saved picture: its panels named over it (from the row's ``kind``), a colour legend of the classes."""
    panels = [name for name in str(row.get("kind") or "").split("|") if name]
    legend = _legend(row.get("legend"))
    where = " ".join(str(row.get(k)) for k in ("domain", "subject") if not missing(row.get(k)))
    return html.Figure([
        html.Div([where, html.Span(f" · {when_saved(row)}", className="when")], className="label"),
        html.Div([html.Span(name, className="panel-name") for name in panels], className="panel-names",
                 style={"gridTemplateColumns": f"repeat({max(1, len(panels))}, 1fr)"}),
        html.Img(src=f"/artifacts/{experiment.name}/{trial_id}/{row['file']}", className="artifact",
                 alt=f"{' | '.join(panels)} {where}"),
        html.Figcaption([html.Span([html.Span(className="swatch", style={"background": entry["color"]}),
                                    entry["name"]], className="legend-entry") for entry in legend]),
    ], className="picture")


def when_saved(row: Any) -> str:
    """Which networks drew a picture: the last epoch's, or those of the best validation epoch (with its number)."""
    split = row.get("split") if not missing(row.get("split")) else "val"
    epoch = row.get("epoch")
    if missing(epoch):
        return f"{split}, last epoch"  # tables written before the epoch was recorded saved only then
    if row.get("checkpoint") == "best":
        return f"{split}, best val epoch ({int(epoch)})"
    return f"{split}, last epoch ({int(epoch)})"


def _legend(text: Any) -> list[dict[str, str]]:
    import json

    try:
        entries = json.loads(text) if isinstance(text, str) else []
    except json.JSONDecodeError:
        return []
    return [e for e in entries if isinstance(e, dict) and "name" in e and "color" in e]


def _status_of(experiment: Any, trial_id: str) -> str:
    rows = experiment.trials.loc[experiment.trials["trial_id"] == trial_id, "status"]
    return str(rows.iloc[0]) if len(rows) else "unknown"


def _stopped_early(experiment: Any, trial_id: str) -> bool:
    """Whether a finished trial was stopped by the scheduler before its planned epochs."""
    trials = experiment.trials
    return bool(stopped_early(trials)[trials["trial_id"] == trial_id].any())


def rows_table(rows: list[dict[str, Any]], columns: list[str], table_id: str) -> html.Table:
    head = html.Tr([html.Th(c) for c in columns])
    body = [html.Tr([html.Td("" if row.get(c) is None else str(row.get(c))) for c in columns],
                    className="differs" if row.get("differs") else "") for row in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="compare", id=table_id)


VIEWS = [View("comparison_choices",
              [("compare-a", "options"), ("compare-b", "options"), ("compare-a", "value"), ("compare-b", "value")],
              [("score", "value"), ("grid", "selectedRows")], choices, lambda: ([], [], None, None),
              states=[("compare-a", "value"), ("compare-b", "value")])]
CALLBACKS = [Callback("comparison_parts", [("compare-config", "children"), ("compare-metrics", "children"),
                                            ("compare-images", "children")],
                      [("version", "data"), ("compare-a", "value"), ("compare-b", "value")], page_parts)]
