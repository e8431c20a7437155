"""The Dash ablation explorer: ``python -m dashboards.app [--storage URI] [--experiment NAME] [--host] [--port]``.

Reads only the results tables (``dashboards.tables``). The views live in ``dashboards/views/`` (one module each:
its controls and one render function); this module holds the page, the routes, the wiring and the CLI. Every
callback is reachable as a method of ``Explorer`` taking and returning plain values, so tests call them as
functions. The server is read-only, binds 127.0.0.1 unless told otherwise, and serves a trial's images only when
the artifacts table lists them, from inside the experiment directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from collections.abc import Callable
from html import escape as escape_html
from typing import Any

import dash
import pandas as pd
import plotly.io
from dash import Input, Output, State, dcc, html
from flask import Response

from dashboards.analysis import filter_trials, short_name
from dashboards.figures import Figure
from dashboards.tables import Catalog, Experiment, ExplorerError
from dashboards.views import (
    Context,
    View,
    ablation,
    cases,
    comparison,
    curve,
    errors,
    experiments,
    grid,
    history,
    importance,
    learning_curves,
    parcoords,
    pareto,
    ranks,
    registered,
    summary,
    urlstate,
    viewer,
)
from dashboards.views.common import image_type

FIGURES = ("parcoords", "curve", "ablation", "pareto", "curves", "history", "timeline", "importance", "ranks",
           "viewer", "case-scatter", "experiments")
MAX_FACTOR_LEVELS = 12  # a numeric parameter with at most this many values can be an ablation factor
MEMO_SIZE = 16  # entries per named cache (filtered trials, summaries, learning-curve epochs)
VIEW_MODULES = (summary, grid, parcoords, curve, ablation, pareto, learning_curves, history, ranks, importance,
                comparison, viewer, cases, experiments, errors)
METHODS: dict[str, Callable[..., Any]] = {name: function for module in VIEW_MODULES
                                          for name, function in getattr(module, "METHODS", {}).items()}


def _version_key(experiment: Experiment) -> str:
    return f"{experiment.name}:{hash(experiment.version)}"


class Explorer:
    """The explorer's state (one storage root) and every callback as a plain method (views as attributes)."""

    def __init__(self, storage: str, experiment: str | None = None) -> None:
        self.catalog = Catalog(storage)
        names = self.catalog.names()
        if experiment is not None and experiment not in names:
            listed = ", ".join(names) or "none"
            raise ExplorerError(f"no experiment {experiment!r} under {self.catalog.storage} (experiments: {listed})")
        self.initial = experiment or (names[0] if names else None)
        self.views = registered()
        self._caches: dict[str, OrderedDict] = {}

    def cache(self, name: str) -> OrderedDict:
        """A named cache for a view (e.g. importance, per version and filter)."""
        return self._caches.setdefault(name, OrderedDict())

    def memo(self, name: str, key: Any, compute: Callable[[], Any], size: int = MEMO_SIZE) -> Any:
        """``compute()`` once per ``key`` (which names the table version it reads), kept in the named cache
        (least recently used dropped beyond ``size``): every view of one interaction shares the filtered trials,
        and a summary is computed once per table version."""
        cache = self.cache(name)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = cache[key] = compute()
        while len(cache) > size:
            cache.popitem(last=False)
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for names not defined on the class: the views and the view modules' methods.
        views = self.__dict__.get("views", {})
        if name in views:
            return lambda *args: self.render(views[name], *args)
        if name in METHODS:
            return lambda *args: METHODS[name](self, *args)
        raise AttributeError(name)

    # --- data --------------------------------------------------------------------------------------------

    def experiment(self, version: dict[str, Any] | None) -> Experiment | None:
        name = (version or {}).get("experiment")
        return self.catalog.load(name) if name else None

    def filtered(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
                 grid_model: dict[str, Any] | None) -> tuple[Experiment | None, pd.DataFrame]:
        experiment = self.experiment(version)
        if experiment is None:
            return None, pd.DataFrame()
        key = (_version_key(experiment), json.dumps([statuses, brushes, grid_model], sort_keys=True, default=str))
        return experiment, self.memo("filtered", key, lambda: filter_trials(experiment.trials, statuses, brushes,
                                                                            grid_model))

    def render(self, view: View, version: dict[str, Any] | None, statuses: list[str] | None,
               brushes: dict[str, Any] | None, grid_model: dict[str, Any] | None, *inputs: Any) -> Any:
        """The one callback of every filtered view: the shared filters, then the "nothing to show" guard."""
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None or not view.ready(*inputs[:len(view.inputs)]):
            return view.empty()
        context = Context(self, experiment, trials, version or {}, (statuses, brushes, grid_model))
        return view.render(context, *inputs)

    # --- callbacks of the page itself ----------------------------------------------------------------------

    def refresh(self, _ticks: int | None, name: str | None, current: dict[str, Any] | None
                ) -> tuple[Any, list[dict[str, str]], str]:
        """Re-read the experiment if any table changed; ``no_update`` otherwise, so nothing downstream redraws
        and the user's selection, brushes and filters stay as they are."""
        try:
            options = [{"label": n, "value": n} for n in self.catalog.names()]
            if not name:
                return None, options, "no experiment under this storage yet" if not options else ""
            experiment = self.catalog.load(self.catalog.check_name(name))
        except ExplorerError as exc:
            return None, dash.no_update, str(exc)
        version = {"experiment": experiment.name, "key": _version_key(experiment)}
        notice = _problems_notice(experiment)
        if current == version:
            return dash.no_update, options, notice
        return version, options, notice

    def controls(self, version: dict[str, Any] | None, score: str | None, param: str | None,
                 factors: list[str] | None, pareto_x: str | None, pareto_y: str | None,
                 metric: str | None) -> tuple[Any, ...]:
        """Options of every picker; current choices kept while they still exist."""
        experiment = self.experiment(version)
        if experiment is None:
            return ([],) * 6 + (None, None, [], None, None, None)
        scores = experiment.score_columns()
        params = experiment.params
        # Factors: categorical parameters, and numeric ones with few levels (a grid such as the paper's lambdas).
        categorical = [p for p in params if p in experiment.categorical
                       or experiment.trials[p].nunique(dropna=True) <= MAX_FACTOR_LEVELS]
        metrics = experiment.epoch_metrics
        score = score if score in scores else (scores[0] if scores else None)
        param = param if param in params else next((p for p in params if p not in experiment.categorical),
                                                   params[0] if params else None)
        factors = [f for f in (factors or []) if f in categorical] or categorical[:1]
        x_default, y_default = pareto.defaults(experiment, scores)
        pareto_x = pareto_x if pareto_x in scores else x_default
        pareto_y = pareto_y if pareto_y in scores else y_default
        primary = experiment.objectives[0].metric if experiment.objectives else None
        metric = metric if metric in metrics else (primary if primary in metrics else (metrics[0] if metrics else None))

        def options(columns: list[str]) -> list[dict[str, str]]:
            return [{"label": short_name(c), "value": c} for c in columns]

        return (options(scores), options(params), options(categorical), options(scores), options(scores),
                options(metrics), score, param, factors, pareto_x, pareto_y, metric)

    def natural_mode(self, column: str | None, version: dict[str, Any] | None) -> str:
        """Whether larger is better for a Pareto axis (the objectives, else the declared direction)."""
        experiment = self.experiment(version)
        return experiment.mode_of(column) if experiment is not None and column else "max"

    def export_figures(self, clicks: int | None, version: dict[str, Any] | None, *shown: Figure | None
                       ) -> dict[str, Any] | None:
        """Every figure as the page shows it now, in one self-contained HTML file (plotly.js inlined once)."""
        experiment = self.experiment(version)
        if experiment is None:
            return None
        parts = [plotly.io.to_html(figure, include_plotlyjs=index == 0, full_html=False)
                 for index, figure in enumerate(f for f in shown if f)]
        name = escape_html(experiment.name)  # a directory name: text, never markup
        page = (f"<html><head><meta charset='utf-8'><title>{name}</title></head><body>"
                f"<h1>{name}</h1>{''.join(parts)}</body></html>")
        return dcc.send_string(page, f"{experiment.name}-figures.html")

    def artifact(self, name: str, trial_id: str, file_name: str) -> Response:
        """One saved image, or 404: only files the artifacts table lists, inside the experiment directory."""
        media = image_type(file_name)
        try:
            if media is None:
                raise ExplorerError("not an image")
            data = self.catalog.artifact_bytes(self.catalog.check_name(name), trial_id, file_name)
        except (ExplorerError, OSError, ValueError):  # OSError: e.g. a name longer than the filesystem allows
            return Response("not found", status=404, mimetype="text/plain")
        return Response(data, mimetype=media, headers={"X-Content-Type-Options": "nosniff",
                                                       "Cache-Control": "private, max-age=60"})


def _problems_notice(experiment: Experiment) -> str:
    """A visible line naming the table parts that were skipped, so a partial view never passes for whole."""
    if not experiment.problems:
        return ""
    shown = "; ".join(experiment.problems[:3]) + (f"; and {len(experiment.problems) - 3} more"
                                                   if len(experiment.problems) > 3 else "")
    return f"showing the readable rows only; skipped {len(experiment.problems)} unreadable part(s): {shown}"


# --- page ----------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f5f7fa; color: #1f2933; }
header { background: #243b53; color: white; padding: 10px 20px; display: flex; gap: 20px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
.section { background: white; margin: 12px 20px; padding: 12px 16px; border-radius: 6px;
           box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.row { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
.half { flex: 1 1 560px; min-width: 480px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #f0f4f8; padding: 8px 12px; border-radius: 4px; }
.label { font-size: 11px; text-transform: uppercase; color: #627d98; }
.control { min-width: 220px; }
.images { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-start; }
.artifact { max-width: 520px; image-rendering: pixelated; border: 1px solid #d9e2ec; }
figure { margin: 0; }
table.compare { border-collapse: collapse; font-size: 13px; }
table.compare td, table.compare th { border-bottom: 1px solid #e4e7eb; padding: 2px 8px; text-align: left; }
tr.differs { background: #fff3c4; font-weight: 600; }
table.compare td:not(:first-child), table.compare th:not(:first-child) { text-align: right;
                                                                        font-variant-numeric: tabular-nums; }
figure.picture { max-width: 520px; }
.panel-names { display: grid; font-size: 12px; color: #334e68; text-align: center; }
figure.picture .artifact { width: 100%; }
.legend-entry { display: inline-flex; align-items: center; gap: 4px; margin-right: 12px; font-size: 12px; }
.swatch { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
details.error-entry { margin: 4px 0; }
details.error-entry summary { cursor: pointer; }
pre.traceback { font-size: 11px; background: #f0f4f8; padding: 8px; overflow-x: auto; max-height: 360px; }
.case-list ol { margin: 4px 0 8px 0; padding-left: 20px; }
button.case-pick { background: none; border: none; color: #1f77b4; cursor: pointer; padding: 1px 0;
                   font-variant-numeric: tabular-nums; }
"""


def layout(explorer: Explorer, refresh_s: float, live: bool) -> html.Div:
    pair = {"className": "row", "style": {"margin": "0 8px"}}
    return html.Div([
        html.Header([
            html.H1("Ablation explorer"),
            html.Div(dcc.Dropdown(id="experiment", value=explorer.initial, clearable=False,
                                  options=[{"label": n, "value": n} for n in explorer.catalog.names()]),
                     style={"minWidth": "320px", "color": "#1f2933"}),
            dcc.Checklist(id="live", options=[{"label": " live refresh every", "value": "on"}],
                          value=["on"] if live else []),
            dcc.Input(id="refresh-s", type="number", min=1, step=1, value=refresh_s, debounce=True,
                      style={"width": "60px", "color": "#1f2933"}),
            html.Span("s"),
            html.Span(id="message", style={"color": "#ffb3b3"}),
        ]),
        urlstate.controls(),
        dcc.Interval(id="tick", interval=int(refresh_s * 1000), disabled=not live),
        dcc.Store(id="version"), dcc.Store(id="brushes", data={}), dcc.Store(id="axes", data=[]),
        summary.controls(), grid.controls(), parcoords.controls(),
        html.Div([curve.controls(), ablation.controls()], **pair),
        html.Div([pareto.controls(), learning_curves.controls()], **pair),
        history.controls(),
        html.Div([ranks.controls(), importance.controls()], **pair),
        comparison.controls(), viewer.controls(), cases.controls(), experiments.controls(), errors.controls(),
    ])


def _wire_views(app: dash.Dash, explorer: Explorer) -> None:
    """Every filtered view through the one generic callback (``Explorer.render``)."""
    filters = [Input("version", "data"), Input("status", "value"), Input("brushes", "data"),
               Input("grid", "filterModel")]
    for view in explorer.views.values():
        outputs = [Output(component, prop) for component, prop in view.outputs]
        inputs = [Input(component, prop) for component, prop in view.inputs]
        states = [State(component, prop) for component, prop in view.states]
        app.callback(*outputs, *filters, *inputs, *states)(lambda *args, view=view: explorer.render(view, *args))


# Dash's own routes (scripts, layout, callbacks, favicon, assets) and the artifacts route: with "/", every path the
# page uses.
_SERVED_PREFIXES = ("/_dash-", "/_reload-hash", "/_favicon.ico", "/assets/", "/artifacts/")


def served_path(path: str) -> bool:
    """Whether the explorer answers ``path`` (anything else is a 404)."""
    return path == "/" or path.startswith(_SERVED_PREFIXES)


def create_app(explorer: Explorer, refresh_s: float = 10.0, live: bool = True) -> dash.Dash:
    app = dash.Dash(__name__, title="Ablation explorer", update_title=None)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    # Built per page load: the experiment picker then lists the experiments that exist now, so a shared link to
    # one created after the server started opens it (a dropdown drops a value its options do not hold).
    app.layout = lambda: layout(explorer, refresh_s, live)

    @app.server.route("/artifacts/<name>/<trial_id>/<file_name>")
    def artifact(name: str, trial_id: str, file_name: str) -> Response:
        return explorer.artifact(name, trial_id, file_name)

    @app.server.route("/artifacts/<path:anything>")
    def not_an_artifact(anything: str) -> Response:
        # Any other shape under /artifacts/ (e.g. an encoded "../") is a 404, not Dash's catch-all page.
        return Response("not found", status=404, mimetype="text/plain")

    @app.server.before_request
    def only_the_page_and_its_parts() -> Response | None:
        # Dash answers every path with the page (its catch-all route): /admin or /.env would look served. The
        # explorer is one page at "/" (its state is in the query string); the rest is Dash's own routes.
        from flask import request

        if not served_path(request.path):
            return Response("not found", status=404, mimetype="text/plain")
        return None

    app.callback(Output("tick", "disabled"), Output("tick", "interval"),
                 Input("live", "value"), Input("refresh-s", "value"))(
        lambda live_value, seconds: (not live_value, int(max(1.0, float(seconds or 10)) * 1000)))
    app.callback(Output("version", "data"), Output("experiment", "options"), Output("message", "children"),
                 Input("tick", "n_intervals"), Input("experiment", "value"), State("version", "data"))(
        explorer.refresh)
    app.callback(
        Output("score", "options"), Output("param", "options"), Output("factors", "options"),
        Output("pareto-x", "options"), Output("pareto-y", "options"), Output("curve-metric", "options"),
        Output("score", "value"), Output("param", "value"), Output("factors", "value"),
        Output("pareto-x", "value"), Output("pareto-y", "value"), Output("curve-metric", "value"),
        Input("version", "data"), State("score", "value"), State("param", "value"), State("factors", "value"),
        State("pareto-x", "value"), State("pareto-y", "value"), State("curve-metric", "value"))(explorer.controls)
    app.callback(Output("summary", "children"), Input("version", "data"), Input("score", "value"))(explorer.summary)
    app.callback(Output("grid", "columnDefs"), Output("grid-columns", "options"), Output("grid-columns", "value"),
                 Input("version", "data"), Input("score", "value"), Input("grid-columns", "value"),
                 State("grid", "columnDefs"))(explorer.columns)
    app.callback(Output("grid", "getRowsResponse"), Input("grid", "getRowsRequest"), State("version", "data"),
                 State("status", "value"), State("brushes", "data"), State("score", "value"),
                 State("experiment", "value"), State("grid-columns", "value"))(explorer.rows)
    # The rows changed on the server (a new table version, other statuses, brushes or score): the grid fetches
    # the blocks it shows again; rows keep their selection by id.
    app.clientside_callback(
        """function(version, statuses, brushes, score, columns) {
            dash_ag_grid.getApiAsync("grid").then(api => api.refreshInfiniteCache()).catch(() => null);
            return Date.now();
        }""",
        Output("grid-refresh", "data"), Input("version", "data"), Input("status", "value"),
        Input("brushes", "data"), Input("score", "value"), Input("grid-columns", "value"))
    app.callback(Output("parcoords", "figure"), Output("axes", "data"), Input("version", "data"),
                 Input("status", "value"), Input("grid", "filterModel"), Input("score", "value"),
                 Input("grid", "selectedRows"), State("brushes", "data"))(explorer.parcoords)
    app.callback(Output("brushes", "data"), Input("parcoords", "restyleData"), Input("clear-brushes", "n_clicks"),
                 State("axes", "data"), State("brushes", "data"), prevent_initial_call=True)(explorer.brushes)
    _wire_views(app, explorer)
    for axis in ("x", "y"):
        # A metric's natural direction (the objectives, else its declared direction) whenever the axis changes.
        app.callback(Output(f"pareto-{axis}-mode", "value"), Input(f"pareto-{axis}", "value"),
                     State("version", "data"))(explorer.natural_mode)
    app.callback(Output("compare-config", "children"), Output("compare-metrics", "children"),
                 Output("compare-images", "children"), Input("version", "data"), Input("compare-a", "value"),
                 Input("compare-b", "value"))(lambda *args: comparison.page_parts(explorer, *args))
    cases.wire(app, explorer)
    urlstate.wire(app, explorer)
    viewer.wire(app, explorer)
    app.callback(Output("experiments-pick", "options"), Output("experiments-pick", "value"),
                 Output("experiments-factor", "options"), Output("experiments-factor", "value"),
                 Output("experiments", "figure"), Input("version", "data"), Input("experiments-pick", "value"),
                 Input("experiments-factor", "value"), Input("score", "value"))(explorer.compare_experiments)
    app.callback(Output("ablation-download", "data"), Input("ablation-csv", "n_clicks"),
                 Input("ablation-md", "n_clicks"), Input("ablation-latex", "n_clicks"), State("version", "data"),
                 State("status", "value"), State("brushes", "data"), State("grid", "filterModel"),
                 State("score", "value"), State("factors", "value"), State("baseline", "value"),
                 prevent_initial_call=True)(explorer.download_ablation)
    app.callback(Output("download-html", "data"), Input("export-html", "n_clicks"), State("version", "data"),
                 *[State(graph, "figure") for graph in FIGURES], prevent_initial_call=True)(explorer.export_figures)
    app.callback(Output("download", "data"), Input("export-csv", "n_clicks"), Input("export-parquet", "n_clicks"),
                 State("version", "data"), State("status", "value"), State("brushes", "data"),
                 State("grid", "filterModel"), prevent_initial_call=True)(explorer.export)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.app", description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="./runs", help="results root: a path or s3:// / gs:// URI (./runs)")
    parser.add_argument("--experiment", help="experiment to open first (default: the newest)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--refresh", type=float, default=10.0, help="live refresh interval in seconds (10)")
    parser.add_argument("--no-live", action="store_true", help="start with live refresh off")
    parser.add_argument("--log-requests", action="store_true", help="log every HTTP request (off: only errors)")
    parser.add_argument("--threads", type=int, default=8, help="server threads answering requests at once (8)")
    args = parser.parse_args(argv)
    try:
        explorer = Explorer(args.storage, args.experiment)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: serving on {args.host}; the explorer has no login, keep it behind your cluster's access "
              "control (e.g. kubectl port-forward)", file=sys.stderr)
    app = create_app(explorer, args.refresh, not args.no_live)
    try:
        serve(app.server, args.host, args.port, args.threads, args.log_requests,
              f"explorer for {explorer.catalog.storage} on http://{args.host}:{args.port}/")
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


class ServeError(Exception):
    """The server cannot listen where asked; the message says what to try."""


def serve(server: Any, host: str, port: int, threads: int, log_requests: bool, banner: str) -> None:
    """Serve the page with waitress, a production WSGI server (Flask's own server is for development and says
    so on every start): the URL printed once, each request logged only with ``log_requests``."""
    import logging

    from waitress.server import create_server

    application = _logged(server) if log_requests else server
    logging.getLogger("waitress").setLevel(logging.ERROR)  # no "Serving on ..." line beside ours
    try:
        instance = create_server(application, host=host, port=port, threads=threads)
    except (OSError, ValueError) as exc:  # in use, not an address of this machine, a port out of range
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ServeError(f"the explorer cannot listen on {host}:{port} ({reason}). Another program (or another "
                         "explorer) may use the port: pick a free one with --port (e.g. --port "
                         f"{port + 1 if 0 < port < 65535 else 8051}), or a --host of this machine.") from None
    print(banner, file=sys.stderr, flush=True)
    try:
        instance.run()
    except KeyboardInterrupt:
        pass
    finally:
        instance.close()


def _logged(application: Any) -> Any:
    """A WSGI wrapper printing one line per request (method, path, status), like a development server."""
    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: Any, *rest: Any) -> Any:
            print(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} {status.split()[0]}",
                  file=sys.stderr, flush=True)
            return start_response(status, headers, *rest)
        return application(environ, start)
    return logged


if __name__ == "__main__":
    sys.exit(main())
