"""One trial's log (its stdout and stderr, kept by the engine in the trial's artifacts folder), and the picker of
the trial the log and the resources view show: by default the first row selected in the grid, else A of the
comparison, else the best trial on the score. Log text is program output: shown as text, never as markup."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from dashboards.tables import LOG_BYTES, TrialLog
from dashboards.views import Callback, Context, View, common
from dashboards.views.common import dropdown, ranked_ids
from dashboards.views.comparison import known_ids, ranked_options

ORDER = 85
MAX_OPTIONS = 100  # trials offered in the picker (the best; the shown one and a grid selection always included)


def controls() -> html.Div:
    return html.Div([
        html.H3("One trial: its log", style={"margin": "4px 0"}),
        dropdown("inspect-trial", "trial (its log and its resources; default: the first row selected in the grid, "
                 "else A of the comparison)", style={"minWidth": "420px"}),
        html.Div(id="trial-log"),
    ], className="section half")


def choices(context: Context, score: str | None, selected: list[dict[str, Any]] | None, compared: str | None,
            current: str | None) -> tuple[list[dict[str, str]], Any]:
    """The trials offered (the best ``MAX_OPTIONS`` on the score, from the comparison's ranked list) and the one
    shown: the row just selected in the grid, A of the comparison when it just changed, else the current one
    while it exists, else A, else the best; ``no_update`` when that is the current one."""
    experiment, trials = context.experiment, context.trials
    fired, chosen = common.triggered(), common.selected_ids(selected)
    candidates = [chosen[0] if fired == "grid" and chosen else None, compared if fired == "compare-a" else None,
                  current, compared]
    found = known_ids(experiment, [t for t in candidates if t])
    shown = found[0] if found else next(iter(ranked_ids(trials, score, experiment, 1)), None)
    options = ranked_options(context, score, [shown] if shown else [], MAX_OPTIONS)
    return options, dash.no_update if shown is not None and shown == current else shown


MAX_WORKER_LOGS = 8  # other workers' logs shown (folded) below rank 0's


def log_view(explorer: Any, version: dict[str, Any] | None, trial_id: str | None) -> Any:
    """The end of the trial's log as preformatted text (Dash escapes it), or why there is none; the logs of
    the trial's other Train workers follow, folded."""
    experiment = explorer.experiment(version)
    if experiment is None or not trial_id:
        return html.P("choose a trial")
    log = explorer.catalog.trial_log(experiment.name, trial_id)
    shown = [html.P(f"no log recorded for this trial ({trial_id})", className="no-log")] if log is None \
        else _log_text(log, trial_id)
    for file_name in explorer.catalog.worker_logs(experiment.name, trial_id)[:MAX_WORKER_LOGS]:
        other = explorer.catalog.trial_log(experiment.name, trial_id, file_name=file_name)
        if other is not None:
            shown.append(html.Details([html.Summary(file_name), *_log_text(other, trial_id)], className="worker-log"))
    return shown


def _log_text(log: TrialLog, trial_id: str) -> list[Any]:
    size = f"{log.size / 1e3:,.1f} kB" if log.size >= 1000 else f"{log.size} bytes"
    note = f"{log.file} of trial {trial_id}: {size}"
    if log.truncated:
        note += f"; showing its last {LOG_BYTES / 1e3:,.0f} kB"
    if not log.text.strip():
        return [html.P(f"{note}; the log is empty", className="no-log")]
    return [html.P(note, className="label"), html.Pre(log.text, className="traceback trial-log")]


VIEWS = [View("inspect_choices", [("inspect-trial", "options"), ("inspect-trial", "value")],
              [("score", "value"), ("grid", "selectedRows"), ("compare-a", "value")], choices,
              lambda: ([], None), states=[("inspect-trial", "value")])]
CALLBACKS = [Callback("trial_log", [("trial-log", "children")], [("version", "data"), ("inspect-trial", "value")],
                      log_view)]
