"""Every registered explorer view (``dashboards/views/``), one test over the registry: it answers one value per
output for a real experiment under the shared filters, and its ``empty`` value when there is nothing to show."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.app import Explorer
from dashboards.bench import build_experiment
from dashboards.views import registered

VIEWS = registered()


def first_choices(explorer: Explorer, version: dict[str, Any]) -> dict[str, Any]:
    """The pickers' values and options of a first page load, each from the callback of the view that owns it."""
    score_options, score = explorer.score_choices(version, None)
    param_options, param = explorer.param_choices(version, None)
    factor_options, factors = explorer.factor_choices(version, None)
    _, _, x, y = explorer.pareto_axes(version, None, None)
    metric_options, metric = explorer.metric_choices(version, None)
    return {"score": score, "param": param, "factors": factors, "x": x, "y": y, "metric": metric,
            "score_options": score_options, "param_options": param_options, "factor_options": factor_options,
            "metric_options": metric_options}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("views")
    build_experiment(root, "synthetic", trials=30, epochs=3, seeds=3, images=1)
    explorer = Explorer(str(root))
    version, _, _ = explorer.refresh(0, "synthetic", None)
    choices = first_choices(explorer, version)
    values = {("score", "value"): choices["score"], ("param", "value"): choices["param"],
              ("factors", "value"): choices["factors"], ("pareto-x", "value"): choices["x"],
              ("pareto-y", "value"): choices["y"],
              ("pareto-x-mode", "value"): "max", ("pareto-y-mode", "value"): "min",
              ("curve-metric", "value"): choices["metric"], ("importance-evaluator", "value"): "mean_decrease_impurity",
              ("grid", "selectedRows"): [], ("baseline", "value"): None, ("compare-a", "value"): None,
              ("compare-trials", "value"): None,
              ("compare-b", "value"): None, ("case-metric", "value"): "dice", ("case-split", "value"): "test",
              ("case-checkpoint", "value"): "best", ("ranks-sample", "n_clicks"): 0, ("history-x", "value"): "trial",
              ("curves-mode", "value"): "mean", ("curves-smooth", "value"): 0.5, ("curves-log", "value"): ["log"]}
    return {"explorer": explorer, "version": version, "values": values}


def test_the_registry_finds_every_view_module() -> None:
    assert {"curve", "ablation", "pareto", "importance", "learning_curves", "comparison_choices", "ranks"} <= set(VIEWS)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_a_view_renders_one_value_per_output(page: dict[str, Any], name: str) -> None:
    view = VIEWS[name]
    inputs = [page["values"].get(key) for key in (*view.inputs, *view.states)]  # None: a control left unset
    statuses = ["TERMINATED", "RUNNING", "ERROR"]
    result = getattr(page["explorer"], name)(page["version"], statuses, {}, None, *inputs)
    outputs = result if len(view.outputs) > 1 else (result,)
    assert len(outputs) == len(view.outputs)
    first = outputs[0]
    if isinstance(first, dict) and "data" in first:  # a figure: drawn, not the blank that says why it is blank
        assert first["data"], f"{name} drew nothing for a real experiment: {first['layout'].get('annotations')}"
    elif len(outputs) == 4:  # the comparison pickers: options offered, A and B chosen
        assert first and outputs[2] and outputs[3]
    else:  # page content (the errored trials): something to read
        assert first


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_a_view_without_an_experiment_answers_its_empty_value(page: dict[str, Any], name: str) -> None:
    view = VIEWS[name]
    inputs = [page["values"].get(key) for key in (*view.inputs, *view.states)]  # None: a control left unset
    result = getattr(page["explorer"], name)(None, None, None, None, *inputs)
    assert repr(result) == repr(view.empty())


def _ids(component: Any) -> set[str]:
    """Every string component id in a layout."""
    found = {component.id} if isinstance(getattr(component, "id", None), str) else set()
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        found |= _ids(child)
    return found


def _answer(client: Any, output: str, inputs: list[dict[str, Any]]) -> Any:
    """One callback answered over HTTP, as the page asks for it."""
    response = client.post("/_dash-update-component", json={"output": output, "outputs": {
        "id": output.split(".")[0], "property": output.split(".")[1]}, "inputs": inputs, "changedPropIds": []})
    assert response.status_code == 200, response.data
    return response.get_json()["response"]


@pytest.mark.parametrize("how", ["argument", "environment", "register"])
def test_a_view_outside_the_package_is_on_the_page_and_answers(page: dict[str, Any], how: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.app import create_app, layout
    from tests.dashboards import view_outside

    storage = str(page["explorer"].catalog.storage)
    if how == "environment":
        monkeypatch.setenv("SEGSWEEP_VIEWS", "tests.dashboards.view_outside")
        explorer = Explorer(storage)
    elif how == "register":
        from dashboards import views

        monkeypatch.setattr(views, "_REGISTERED", [])  # this test's registration ends with it
        views.register(view_outside)
        explorer = Explorer(storage)
    else:
        explorer = Explorer(storage, extra_views=[view_outside])
    assert "outside_count" not in Explorer(storage).views if how == "argument" else True
    assert {"outside-note", "outside-echo", "outside-graph"} <= _ids(layout(explorer))
    client = create_app(explorer).server.test_client()
    echoed = _answer(client, "outside-echo.children", [{"id": "outside-note", "property": "value", "value": "hi"}])
    assert echoed["outside-echo"]["children"] == "outside: hi"
    version = explorer.refresh(0, "synthetic", None)[0]
    drawn = _answer(client, "outside-graph.figure", [
        {"id": "version", "property": "data", "value": version},
        {"id": "status", "property": "value", "value": ["TERMINATED"]},
        {"id": "brushes", "property": "data", "value": {}}, {"id": "grid", "property": "filterModel", "value": None},
        {"id": "outside-note", "property": "value", "value": "n"}])
    finished = int((explorer.experiment(version).trials["status"] == "TERMINATED").sum())
    assert drawn["outside-graph"]["figure"]["data"][0]["y"] == [finished]


def test_each_callback_is_declared_by_the_module_that_draws_its_outputs(page: dict[str, Any]) -> None:
    """"Who sets x?" is answered by the module drawing x: every output a callback or view sets (other than one
    declared as a duplicate, like the URL state's) is a component of the declaring module's own section."""
    explorer = page["explorer"]
    for module in explorer.modules:
        declared = [*getattr(module, "VIEWS", ()), *getattr(module, "CALLBACKS", ())]
        if not declared:
            continue
        controls = module.controls
        own = _ids(html_div(controls(explorer) if controls.__code__.co_argcount else controls()))
        for entry in declared:
            for output in entry.outputs:
                if getattr(output, "allow_duplicate", False):
                    continue
                component = output[0] if isinstance(output, tuple) else output.component_id
                assert component in own, f"{module.__name__} declares {entry.name}, which sets {component!r} " \
                                         "drawn by another module"


def html_div(section: Any) -> Any:
    from dash import html

    return html.Div(section if isinstance(section, list) else [section])


def test_the_specs_first_points_stopped_early_are_drawn_though_the_status_boxes_hide_stopped_trials(
        tmp_path: Any) -> None:
    """The lambda curve of a sweep whose scheduler stopped the spec's first points (the paper's values): they are
    drawn apart (their own series, not in the means) even with "stopped early" unticked; other stopped trials
    stay hidden."""
    import json
    from types import SimpleNamespace

    import pandas as pd

    from dashboards.analysis import filter_trials
    from dashboards.views import curve
    from platform.results import ResultsStore
    from platform.resume import SPEC_COLUMN

    location = str(tmp_path / "exp")
    ResultsStore(location).append("sweep", [{"experiment": "exp", SPEC_COLUMN: json.dumps(
        {"searcher": {"name": "optuna", "points_to_evaluate": [{"lambda": 1.5}, {"lambda": 5.0}]}})}])
    assert curve.first_points(location) == [{"lambda": 1.5}, {"lambda": 5.0}]
    trials = pd.DataFrame({"trial_id": [f"t{i}" for i in range(6)], "status": "TERMINATED",
                           "config/lambda": [0.1, 0.12, 0.15, 1.5, 5.0, 0.2], "seed": 0,
                           "stopped_early": ["False", "False", "False", "True", "True", "True"],
                           "config_key": [f"k{i}" for i in range(6)], "score": [0.74, 0.745, 0.748, 0.6, 0.5, 0.4]})
    experiment = SimpleNamespace(name="exp", version=1, location=location, trials=trials, categorical=set(),
                                 params=["config/lambda"], metrics_meta={}, is_log_axis=lambda p: False,
                                 levels=lambda p: None)
    memo = {}
    explorer = SimpleNamespace(memo=lambda name, key, compute: memo.setdefault((name, key), compute()))
    shown = ["TERMINATED", "RUNNING", "ERROR", "PENDING"]  # the default: stopped early unticked
    context = SimpleNamespace(explorer=explorer, experiment=experiment, trials=filter_trials(trials, shown),
                              version={}, filters=(shown, {}, None))
    figure = curve.render(context, "score", "config/lambda", [])
    series = {t["name"]: sorted(t["x"].tolist()) for t in figure["data"]}
    assert series["stopped early by the scheduler (2)"] == [1.5, 5.0]  # the points; not the other stopped trial
    means = next(t for t in figure["data"] if t["name"].startswith("mean"))
    assert sorted(means["x"].tolist()) == [0.1, 0.12, 0.15]  # never joined to the line


def test_the_default_score_is_the_test_score_of_the_checkpoint_selected_on_val() -> None:
    """One score everywhere by default: ``test/best/<objective>`` when the table has it, its val score next."""
    from types import SimpleNamespace

    import pandas as pd

    from dashboards.views.page import score_columns

    columns = ["best/val/dice", "last/val/dice", "test/best/dice", "test/last/dice", "test/best/hd95",
               "test/selected_epoch"]
    experiment = SimpleNamespace(objectives=[SimpleNamespace(metric="val/dice", mode="max")],
                                 trials=pd.DataFrame(columns=columns),
                                 score_columns=lambda: ["best/val/dice", "last/val/dice"])
    scores = score_columns(experiment)
    assert scores[:2] == ["test/best/dice", "best/val/dice"] and "test/selected_epoch" not in scores
    assert set(scores) == set(columns) - {"test/selected_epoch"}
