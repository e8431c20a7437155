"""Two to six trials side by side: their config differences highlighted, their metrics per domain and class, their
learning curves overlaid and their images. By default the best two distinct configurations on the score (never
two seeds of one configuration); rows selected in the grid replace them. The first two are the pair the per-case
evidence and the slice viewer compare (``compare-a``, ``compare-b``)."""

from __future__ import annotations

import math
from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import SCORE_SOURCES, stopped_early
from dashboards.views import Callback, Context, View, common
from dashboards.views.common import GRAPH, dropdown, image_type, missing, ranked_ids, rounded, trial_labels

MAX_OPTIONS = 500  # trials offered in the picker (best first; selected ones always included)
MAX_COMPARED = 6  # trials compared at once (a table column and a curve each)
DEFAULT_COMPARED = 2  # the default pick: the best configurations, one trial each


ORDER = 80


def controls() -> html.Div:
    return html.Div([
        html.H3(f"Compare trials (2 to {MAX_COMPARED})", style={"margin": "4px 0"}),
        dropdown("compare-trials", f"trials compared, up to {MAX_COMPARED} (default: the best two distinct "
                 "configurations on the score; rows selected in the grid replace them; the first two are A and B "
                 "of the per-case evidence and the slice viewer)", multi=True, style={"minWidth": "600px"}),
        # The pair the pairwise views read: the first two compared trials, set by ``choices``.
        dcc.Input(id="compare-a", type="hidden"), dcc.Input(id="compare-b", type="hidden"),
        html.Div([html.Div(id="compare-config", className="half"), html.Div(id="compare-metrics", className="half")],
                 className="row"),
        dcc.Graph(id="compare-curves", **GRAPH),
        html.Div(id="compare-images", className="row"),
    ], className="section")


def distinct_best(trials: pd.DataFrame, score: str | None, experiment: Any, count: int = DEFAULT_COMPARED
                  ) -> list[str]:
    """One trial of each of the ``count`` best configurations: configurations (``config_key``: the trials that
    differ only in seed or fold) ranked by the mean of ``score`` over their repeats (its direction from the
    experiment), each shown by its best trial. Fewer configurations with a score: the best other trials follow."""
    if trials.empty:
        return []
    if not score or score not in trials or "config_key" not in trials:
        return trials["trial_id"].head(count).tolist()
    sign = -1.0 if experiment.mode_of(score) == "min" else 1.0
    values = sign * pd.to_numeric(trials[score], errors="coerce").replace([np.inf, -np.inf], np.nan)
    frame = pd.DataFrame({"key": trials["config_key"].to_numpy(), "value": values.to_numpy(dtype=float),
                          "trial_id": trials["trial_id"].to_numpy()})
    means = frame.groupby("key", sort=False)["value"].mean().dropna()
    best_keys = means.sort_values(ascending=False, kind="stable").index[:count]
    scored = frame.dropna(subset=["value"])
    picked = []
    for key in best_keys:
        members = scored[scored["key"] == key]
        picked.append(str(members["trial_id"].iloc[int(np.argmax(members["value"].to_numpy()))]))
    others = [t for t in ranked_ids(trials, score, experiment, count + len(picked)) if t not in picked]
    return (picked + others)[:count]


def ranked_options(context: Context, score: str | None, extra: list[str], limit: int = MAX_OPTIONS
                   ) -> list[dict[str, str]]:
    """Picker options: ``extra`` first, then the best ``limit`` trials on ``score`` among the filtered ones,
    each labelled by its parameters and seed. The ranked part is computed once per filter and score (the trial
    pickers of the comparison and of the log view share it): listing 100,000 trials would cost seconds."""
    experiment, trials = context.experiment, context.trials
    key = (context.version.get("key"), experiment.version, repr(context.filters), score)

    def ranked() -> tuple[list[str], dict[str, str]]:
        order = ranked_ids(trials, score, experiment, MAX_OPTIONS)
        return order, trial_labels(experiment, order)

    order, labels = context.explorer.memo("ranked_options", key, ranked)
    missing_labels = [t for t in extra if t not in labels]
    if missing_labels:
        labels = {**labels, **trial_labels(experiment, missing_labels)}
    return [{"label": labels.get(t, t), "value": t} for t in dict.fromkeys([*extra, *order[:limit]])]


def known_ids(experiment: Any, ids: list[str]) -> list[str]:
    """``ids`` that are trials of ``experiment``, in order (one vectorised lookup, never a set of every id)."""
    if not ids:
        return []
    found = set(experiment.trials.loc[experiment.trials["trial_id"].isin(ids), "trial_id"].tolist())
    return [t for t in ids if t in found]


def choices(context: Context, score: str | None, selected: list[dict[str, Any]] | None,
            current: list[str] | None) -> tuple[Any, Any, Any, Any]:
    """The trials offered, those compared (rows selected in the grid when they fired, else the current ones
    still in the experiment, else ``distinct_best``) and the first two as A and B. A pick that did not change is
    answered ``no_update``, so a filter does not redraw the comparison and the views that follow A and B."""
    experiment, trials = context.experiment, context.trials
    chosen = common.selected_ids(selected)
    kept = known_ids(experiment, list(current or []))[:MAX_COMPARED]  # picks from another experiment dropped
    if common.triggered() == "grid" and chosen:
        compared = chosen[:MAX_COMPARED]
    else:
        compared = kept or distinct_best(trials, score, experiment)
    if len(compared) == 1:  # one trial: beside the best configuration other than its own
        compared = compared + distinct_best(_other_configurations(trials, compared[0]), score, experiment, 1)
    options = ranked_options(context, score, compared)
    if current and compared == list(current):
        return options, dash.no_update, dash.no_update, dash.no_update
    a = compared[0] if compared else None
    b = compared[1] if len(compared) > 1 else None
    return options, compared, a, b


def _other_configurations(trials: pd.DataFrame, trial_id: str) -> pd.DataFrame:
    """The trials of every configuration but ``trial_id``'s (every other trial without configuration keys)."""
    if "config_key" not in trials:
        return trials[trials["trial_id"] != trial_id]
    own = trials.loc[trials["trial_id"] == trial_id, "config_key"]
    return trials[~trials["config_key"].isin(own)] if len(own) else trials[trials["trial_id"] != trial_id]


def config_table(configs: dict[str, dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    """Rows ``{key, <trial id>: value text, ..., differs}`` over the union of the trials' flat configs (a key a
    trial lacks reads ``(absent)``), the keys whose values differ first."""
    rows = []
    for key in sorted({k for trial_id in ids for k in configs.get(trial_id, {})}):
        texts = {trial_id: _text(configs.get(trial_id, {}).get(key, "(absent)")) for trial_id in ids}
        rows.append({"key": key, **texts, "differs": len(set(texts.values())) > 1})
    return sorted(rows, key=lambda row: (not row["differs"], row["key"]))


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def metric_table(rows: dict[str, pd.Series], ids: list[str],
                 sources: tuple[tuple[str, str], ...] = SCORE_SOURCES) -> list[dict[str, Any]]:
    """Per-metric, per-domain, per-class scores of the trials, each labelled with what it is (``score``: the last
    or best validation epoch, or the test split with which networks), one column per trial. Rows ``{score,
    metric, domain, class, <trial id>: value}`` in the order of ``sources``; ``all``/``mean`` mark aggregates."""
    columns = sorted({c for trial_id in ids for c in rows[trial_id].index})
    table = []
    for prefix, label in sources:
        for column in columns:
            if not column.startswith(prefix) or column == "test/selected_epoch":
                continue
            parts = column[len(prefix):].split("/")
            values = {trial_id: _as_float(rows[trial_id].get(column)) for trial_id in ids}
            table.append({"score": label, "metric": parts[0], "domain": parts[1] if len(parts) > 1 else "all",
                          "class": parts[2] if len(parts) > 2 else "mean", **values})
    return table


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def comparison(explorer: Any, version: dict[str, Any] | None, ids: list[str] | None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Config rows (differences first, flagged), per-domain/class metric rows and each trial's images, for the
    compared trials that exist (at most ``MAX_COMPARED``, fewer than two: nothing)."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], [], []
    trials = experiment.trials.set_index("trial_id", drop=False)
    ids = [t for t in dict.fromkeys(ids or []) if t in trials.index][:MAX_COMPARED]
    if len(ids) < 2:
        return [], [], []
    configs = explorer.memo("configs", (experiment.name, experiment.version, tuple(ids)),
                            lambda: explorer.catalog.configs(experiment.name, ids))
    extra = ["seed", "fold", "status", "epochs", "error"]

    def flat(trial_id: str) -> dict[str, Any]:
        row = trials.loc[trial_id]
        return {**dict(configs.get(trial_id, {}).items()),
                **{k: row[k] for k in extra if k in row and not missing(row[k])}}

    metric_rows = metric_table({t: trials.loc[t] for t in ids}, ids)
    images = [images_of(experiment, trial_id, chr(ord("A") + index)) for index, trial_id in enumerate(ids)]
    return config_table({t: flat(t) for t in ids}, ids), [rounded(r) for r in metric_rows], images


def curves(explorer: Any, version: dict[str, Any] | None, ids: list[str], metric: str | None) -> Any:
    """The compared trials' learning curves of ``metric`` overlaid (one line each, the legend naming them)."""
    experiment = explorer.experiment(version)
    if experiment is None or not metric:
        return figures.empty("choose a learning-curve metric")
    key = (experiment.name, experiment.version, "compare", tuple(ids), metric)
    epochs = explorer.memo("epochs", key, lambda: explorer.catalog.epochs(experiment.name, ids, [metric]))
    labels = trial_labels(experiment, ids)
    tags = {t: f"{chr(ord('A') + index)}: {labels.get(t, t)}" for index, t in enumerate(ids)}
    from dashboards.views.learning_curves import learning_curves

    return learning_curves(epochs, metric, tags)


def page_parts(explorer: Any, version: dict[str, Any] | None, ids: list[str] | None, metric: str | None
               ) -> tuple[Any, Any, Any, Any]:
    """The comparison as the page shows it: the config and metric tables (a column per trial, A, B, ...), the
    learning curves overlaid and the images."""
    config_rows, metric_rows, images = comparison(explorer, version, ids)
    if not config_rows:
        return html.P("choose at least two trials"), None, None, figures.empty("choose at least two trials")
    shown = [t for t in dict.fromkeys(ids or []) if t in config_rows[0]]
    headers = {t: f"{chr(ord('A') + index)}: {t}" for index, t in enumerate(shown)}
    return (rows_table(config_rows, ["key", *shown], "compare-config-table", headers),
            rows_table(metric_rows, ["score", "metric", "domain", "class", *shown], "compare-metrics-table", headers),
            images, curves(explorer, version, shown, metric))


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


def rows_table(rows: list[dict[str, Any]], columns: list[str], table_id: str,
               headers: dict[str, str] | None = None) -> html.Table:
    """Rows as a table (text cells, escaped by Dash), the rows flagged ``differs`` highlighted; ``headers``
    renames columns in the head."""
    head = html.Tr([html.Th((headers or {}).get(c, c)) for c in columns])
    body = [html.Tr([html.Td("" if row.get(c) is None else str(row.get(c))) for c in columns],
                    className="differs" if row.get("differs") else "") for row in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="compare", id=table_id)


VIEWS = [View("comparison_choices",
              [("compare-trials", "options"), ("compare-trials", "value"), ("compare-a", "value"),
               ("compare-b", "value")],
              [("score", "value"), ("grid", "selectedRows"), ("compare-trials", "value")], choices,
              lambda: ([], [], None, None))]
CALLBACKS = [Callback("comparison_parts", [("compare-config", "children"), ("compare-metrics", "children"),
                                            ("compare-images", "children"), ("compare-curves", "figure")],
                      [("version", "data"), ("compare-trials", "value"), ("curve-metric", "value")], page_parts)]
