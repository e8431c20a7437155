"""The sweep over time: the optimisation history (each finished trial's score and the best so far, against the
trial number or the time) and the timeline of trials (who ran when, and who the scheduler stopped at which rung)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    stopped_early,
)
from dashboards.figures import BLUE, GREY, ORANGE, RED, Figure, integer_ticks, sample_index, scatter_type, titled
from dashboards.views import Context, View
from dashboards.views.common import GRAPH
from dashboards.views.labels import score_label

ORDER = 60


def controls() -> list[html.Div]:
    return [
        html.Div([dcc.RadioItems(id="history-x", options=[{"label": " trial number", "value": "trial"},
                                                          {"label": " time", "value": "time"}],
                                 value="trial", inline=True, inputStyle={"marginLeft": "8px"}),
                  dcc.Graph(id="history", **GRAPH)], className="section half"),
        html.Div(dcc.Graph(id="timeline", **GRAPH), className="section half"),
    ]


def history(context: Context, score: str | None, x: str) -> Any:
    return optimisation_history(context.trials, score, context.experiment.mode_of(score), x,
                                context.experiment.metrics_meta)


def timeline(context: Context) -> Any:
    experiment, trials = context.experiment, context.trials
    drawn = timeline_trial_ids(trials)
    # Epoch times are read only when some trial was stopped early (the rung ticks), for the trials drawn.
    epochs = pd.DataFrame(columns=["trial_id", "epoch", "time_total_s"])
    if stopped_early(trials).any():
        key = (context.version.get("key"), experiment.version, "timeline", tuple(drawn))
        epochs = context.explorer.memo("epochs", key, lambda: context.explorer.catalog.epochs(
            experiment.name, drawn, ["time_total_s"]))
    return trial_timeline(trials, epochs, experiment.loaded_at if not _running(trials) else time.time())


def _running(trials: Any) -> bool:
    return "status" in trials and bool((trials["status"] == "RUNNING").any())


# --- the figure ---

def optimisation_history(trials: pd.DataFrame, score: str, mode: str, x: str = "trial",
                         meta: dict[str, dict[str, str]] | None = None) -> Figure:
    """Each finished trial's ``score`` in the order the trials finished, and the best so far (a step line), against
    the trial number (``x`` "trial") or the time since the sweep started (``x`` "time", minutes)."""
    finished = trials[trials["status"].isin(["TERMINATED", "ERROR"])] if "status" in trials else trials
    if finished.empty or score not in finished or "ended_at" not in finished:
        return figures.empty("no finished trial yet")
    order = finished.assign(_end=pd.to_numeric(finished["ended_at"], errors="coerce")).sort_values("_end",
                                                                                                    kind="stable")
    values = pd.to_numeric(order[score], errors="coerce").replace([np.inf, -np.inf], np.nan).to_numpy(dtype=float)
    filled = np.where(np.isnan(values), -np.inf if mode == "max" else np.inf, values)
    best = np.maximum.accumulate(filled) if mode == "max" else np.minimum.accumulate(filled)
    best = np.where(np.isfinite(best), best, np.nan)
    if x == "time":
        start = pd.to_numeric(trials.get("started_at"), errors="coerce").min()
        position = (order["_end"].to_numpy(dtype=float) - start) / 60
        axis = "minutes since the first trial started"
    else:
        position = np.arange(1, len(order) + 1)
        axis = "trials finished"
    # Beyond SCATTER_POINTS the dots are a seeded sample that keeps every trial that set a new best; the step line
    # needs only the points where the best changes (and the last), whatever the number of trials.
    improved = np.flatnonzero(np.r_[True, best[1:] != best[:-1]] & np.isfinite(best))
    drawn = sample_index(len(order), figures.SCATTER_POINTS, keep=improved)
    dots = slice(None) if drawn is None else drawn
    steps = np.unique(np.r_[improved, len(order) - 1])
    traces = [{"type": scatter_type(len(values[dots])), "x": position[dots], "y": values[dots], "mode": "markers",
               "name": "trial", "marker": {"color": GREY, "size": 6}, "customdata": order["trial_id"].to_numpy()[dots],
               "hovertemplate": f"trial %{{customdata}}<br>{score} %{{y:.4f}}<extra></extra>"},
              {"type": "scatter", "x": position[steps], "y": best[steps], "mode": "lines", "name": "best so far",
               "line": {"color": BLUE, "shape": "hv", "width": 2}}]
    final = best[-1] if best.size and np.isfinite(best[-1]) else math.nan
    best_text = f"{final:.4f}" if math.isfinite(final) else "none"
    label = score_label(score, meta)
    title = (f"Optimisation history of {label} ({'higher' if mode == 'max' else 'lower'} is better): best "
             f"{best_text}, {len(order)} finished trials")
    if drawn is not None:
        title += f" (dots: a uniform sample of {drawn.size:,} with every new best)"
    ticks = integer_ticks(len(order)) if x != "time" else {}  # trial numbers are whole: never 1.5
    return titled(traces, title, len(order), height=360, xaxis={"title": {"text": axis}, **ticks},
                  yaxis={"title": {"text": label}}, showlegend=True, legend={"orientation": "h"})


TIMELINE_TRIALS = 300  # trials drawn in the timeline (the latest to start; the title says so)


_STATUS_COLOURS = {"completed": BLUE, "stopped early": ORANGE, "errored": RED, "running": "#2ca02c",
                   "pending": GREY}


def _timeline_rows(trials: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The trials the timeline draws (the last ``TIMELINE_TRIALS`` to start, by start; column ``_start``) and how
    many have started."""
    started = pd.to_numeric(trials["started_at"], errors="coerce")
    ordered = trials.assign(_start=started).dropna(subset=["_start"]).sort_values("_start", kind="stable")
    return ordered.tail(TIMELINE_TRIALS), len(ordered)


def timeline_trial_ids(trials: pd.DataFrame) -> list[str]:
    """The ids of the trials ``trial_timeline`` draws."""
    return _timeline_rows(trials)[0]["trial_id"].tolist() if "started_at" in trials and len(trials) else []


def trial_timeline(trials: pd.DataFrame, epochs: pd.DataFrame, now: float) -> Figure:
    """Each trial a bar from its start to its end (``now`` while running), coloured by how it ended, with a tick
    at the end of each epoch at which the scheduler stopped some trial (its rungs, read from the stopped trials'
    epoch counts), so who was stopped at which rung, and when, reads off the chart.

    ``epochs``: columns trial_id, epoch, time_total_s (the trial's training time at the end of the epoch)."""
    if trials.empty or "started_at" not in trials:
        return figures.empty("no trial has started yet")
    shown, total = _timeline_rows(trials)
    origin = float(pd.to_numeric(trials["started_at"], errors="coerce").min())
    ended = pd.to_numeric(shown.get("ended_at"), errors="coerce").fillna(now).to_numpy(dtype=float)
    begin = shown["_start"].to_numpy(dtype=float)
    early = stopped_early(shown).to_numpy()
    status = shown["status"].astype(str).to_numpy() if "status" in shown else np.array(["TERMINATED"] * len(shown))
    how = np.select([early, status == "TERMINATED", status == "ERROR", status == "RUNNING"],
                    ["stopped early", "completed", "errored", "running"], "pending")
    ran = pd.to_numeric(shown.get("epochs"), errors="coerce").to_numpy(dtype=float) if "epochs" in shown \
        else np.full(len(shown), np.nan)
    planned = pd.to_numeric(shown.get("planned_epochs"), errors="coerce").to_numpy(dtype=float) \
        if "planned_epochs" in shown else np.full(len(shown), np.nan)
    labels = shown["trial_id"].astype(str).to_numpy()
    traces = []
    for name, colour in _STATUS_COLOURS.items():
        keep = how == name
        if not keep.any():
            continue
        text = [f"{'?' if math.isnan(r) else int(r)}/{'?' if math.isnan(p) else int(p)} epochs"
                for r, p in zip(ran[keep], planned[keep], strict=True)]
        base, length = (begin[keep] - origin) / 60, (ended[keep] - begin[keep]) / 60
        traces.append({"type": "bar", "orientation": "h", "y": labels[keep], "base": base, "x": length,
                       "name": f"{name} ({int(keep.sum())})", "marker": {"color": colour},
                       "customdata": np.stack([np.array(text, dtype=object), base, base + length], axis=-1),
                       "hovertemplate": "trial %{y}: %{customdata[0]}<br>from %{customdata[1]:.2f} to "
                                        "%{customdata[2]:.2f} min<extra>" + name + "</extra>"})
    rungs = sorted({int(r) for r in ran[early] if not math.isnan(r)})
    if rungs and not epochs.empty:
        ticks = epochs[epochs["epoch"].isin(rungs) & epochs["trial_id"].isin(labels)]
        starts = dict(zip(labels, begin, strict=True))
        x = [(starts[t] - origin + s) / 60 for t, s in zip(ticks["trial_id"], ticks["time_total_s"].fillna(0),
                                                           strict=True)]
        traces.append({"type": "scatter", "mode": "markers", "y": ticks["trial_id"].tolist(), "x": x,
                       "name": "rung reached", "marker": {"symbol": "line-ns-open", "size": 12, "color": "black"},
                       "customdata": ticks["epoch"].to_numpy(),
                       "hovertemplate": "trial %{y} reached epoch %{customdata}<extra>rung</extra>"})
    stopped = pd.Series(ran[early]).value_counts().sort_index()
    at = ", ".join(f"epoch {int(e)} ({n})" for e, n in stopped.items())
    title = (f"Timeline of {total} trials" + ("" if total <= TIMELINE_TRIALS else f" (the last {len(shown)} to "
                                                                                    "start drawn)")
             + (f"; stopped early by the scheduler at {at}" if at else "; none stopped early"))
    return titled(traces, title, total, height=min(640, max(320, 100 + 12 * len(shown))), barmode="overlay",
                   xaxis={"title": {"text": "minutes since the first trial started"}},
                   yaxis={"title": {"text": "trial (by start)"}, "type": "category", "categoryorder": "array",
                          "categoryarray": labels.tolist(), "autorange": "reversed",
                          "showticklabels": len(shown) <= 40},
                   showlegend=True, legend={"orientation": "h", "y": -0.2})

VIEWS = [View("history", [("history", "figure")], [("score", "value"), ("history-x", "value")], history,
              lambda: figures.empty("no experiment selected"), ready=lambda score, x: bool(score)),
         View("timeline", [("timeline", "figure")], [], timeline, lambda: figures.empty("no experiment selected"))]
