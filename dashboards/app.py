"""The Dash ablation explorer: ``python -m dashboards.app [--storage URI] [--experiment NAME] [--host] [--port]``.

Reads only the results tables (``dashboards.tables``). This module only assembles: the page is the sections of every
view module ``dashboards.views`` discovers (in their ``ORDER``), the callbacks are the ones those modules declare
(each ``View`` through one generic filtered callback, each ``Callback`` as declared), then the server and the CLI.
Every callback is reachable as a method of ``Explorer`` taking and returning plain values, so tests call them as
functions. The server is read-only, binds 127.0.0.1 unless told otherwise, and serves a trial's images only when
the artifacts table lists them, from inside the experiment directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html
from flask import Response

from dashboards.analysis import filter_trials
from dashboards.tables import Catalog, Experiment, ExplorerError
from dashboards.views import Context, View, callbacks, registered, sections, view_modules
from dashboards.views.common import image_type
from dashboards.views.page import version_key

MEMO_SIZE = 16  # entries per named cache (filtered trials, summaries, learning-curve epochs)


class Explorer:
    """The explorer's state (one storage root) and every callback as a plain method (views as attributes).

    ``extra_views``: view modules defined outside ``dashboards.views`` (its docstring states the contract)."""

    def __init__(self, storage: str, experiment: str | None = None,
                 extra_views: Iterable[ModuleType] = ()) -> None:
        self.catalog = Catalog(storage)
        names = self.catalog.names()
        if experiment is not None and experiment not in names:
            listed = ", ".join(names) or "none"
            raise ExplorerError(f"no experiment {experiment!r} under {self.catalog.storage} (experiments: {listed})")
        self.initial = experiment or (names[0] if names else None)
        self.modules = view_modules(extra_views)
        self.views = registered(self.modules)
        self.callbacks = callbacks(self.modules)
        self.refresh_s, self.live = 10.0, True  # the page's live refresh (create_app sets them)
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
        # Only reached for names not defined on the class: the views and the declared callbacks.
        views, declared = self.__dict__.get("views", {}), self.__dict__.get("callbacks", {})
        if name in views:
            return lambda *args: self.render(views[name], *args)
        if name in declared and declared[name].function is not None:
            return lambda *args: declared[name].function(self, *args)
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
        key = (version_key(experiment), json.dumps([statuses, brushes, grid_model], sort_keys=True, default=str))
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


# --- page ----------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f5f7fa; color: #1f2933; }
header { background: #243b53; color: white; padding: 10px 20px; display: flex; gap: 20px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
header label { color: white; }
.section { background: white; margin: 12px 20px; padding: 12px 16px; border-radius: 6px;
           box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.row { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
.page { display: flex; flex-wrap: wrap; align-items: flex-start; }
.page > * { flex: 1 1 100%; box-sizing: border-box; }
.half { flex: 1 1 560px; min-width: 480px; }
.page > .section.half { flex: 1 1 520px; max-width: calc(50% - 40px); }
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


def layout(explorer: Explorer) -> html.Div:
    """Every discovered section in its order; half sections pair up in the page's flex rows."""
    return html.Div(sections(explorer.modules, explorer), className="page")


def graph_ids(component: Any) -> list[str]:
    """The ids of every graph in a layout, in page order."""
    found = [component.id] if isinstance(component, dcc.Graph) and isinstance(getattr(component, "id", None), str) \
        else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        found += graph_ids(child)
    return found


def _dependency(kind: type, item: Any) -> Any:
    return kind(*item) if isinstance(item, tuple) else item


FILTERS = [("version", "data"), ("status", "value"), ("brushes", "data"), ("grid", "filterModel")]


def wire(app: dash.Dash, explorer: Explorer, graphs: list[str]) -> None:
    """Every declared callback: each ``View`` through the one generic filtered callback (``Explorer.render``),
    each ``Callback`` as declared."""
    for view in explorer.views.values():
        app.callback(*[Output(*o) for o in view.outputs], *[Input(*i) for i in (*FILTERS, *view.inputs)],
                     *[State(*s) for s in view.states])(lambda *args, view=view: explorer.render(view, *args))
    for callback in explorer.callbacks.values():
        states = callback.states(graphs) if callable(callback.states) else callback.states
        dependencies = [*[_dependency(Output, o) for o in callback.outputs],
                        *[_dependency(Input, i) for i in callback.inputs], *[_dependency(State, s) for s in states]]
        if callback.clientside is not None:
            app.clientside_callback(callback.clientside, *dependencies,
                                    prevent_initial_call=callback.prevent_initial_call)
            continue
        app.callback(*dependencies, prevent_initial_call=callback.prevent_initial_call)(
            lambda *args, callback=callback: callback.function(explorer, *args))


# Dash's own routes (scripts, layout, callbacks, favicon, assets) and the artifacts route: with "/", every path the
# page uses.
_SERVED_PREFIXES = ("/_dash-", "/_reload-hash", "/_favicon.ico", "/assets/", "/artifacts/")


def served_path(path: str) -> bool:
    """Whether the explorer answers ``path`` (anything else is a 404)."""
    return path == "/" or path.startswith(_SERVED_PREFIXES)


def create_app(explorer: Explorer, refresh_s: float = 10.0, live: bool = True) -> dash.Dash:
    app = dash.Dash(__name__, title="Ablation explorer", update_title=None)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    explorer.refresh_s, explorer.live = refresh_s, live
    # Built per page load: the experiment picker then lists the experiments that exist now, so a shared link to
    # one created after the server started opens it (a dropdown drops a value its options do not hold).
    app.layout = lambda: layout(explorer)
    wire(app, explorer, graph_ids(layout(explorer)))

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
