"""Every registered explorer view (``dashboards/views/``), one test over the registry: it answers one value per
output for a real experiment under the shared filters, and its ``empty`` value when there is nothing to show."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.app import Explorer
from dashboards.bench import build_experiment
from dashboards.views import registered

VIEWS = registered()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("views")
    build_experiment(root, "synthetic", trials=30, epochs=3, seeds=3, images=1)
    explorer = Explorer(str(root))
    version, _, _ = explorer.refresh(0, "synthetic", None)
    controls = explorer.controls(version, None, None, None, None, None, None)
    values = {("score", "value"): controls[6], ("param", "value"): controls[7], ("factors", "value"): controls[8],
              ("pareto-x", "value"): controls[9], ("pareto-y", "value"): controls[10],
              ("pareto-x-mode", "value"): "max", ("pareto-y-mode", "value"): "min",
              ("curve-metric", "value"): controls[11], ("importance-evaluator", "value"): "mean_decrease_impurity",
              ("grid", "selectedRows"): [], ("baseline", "value"): None, ("compare-a", "value"): None,
              ("compare-b", "value"): None, ("case-metric", "value"): "dice", ("case-split", "value"): "test",
              ("case-checkpoint", "value"): "best", ("ranks-sample", "n_clicks"): 0, ("history-x", "value"): "trial",
              ("curves-mode", "value"): "mean", ("curves-smooth", "value"): 0.5, ("curves-log", "value"): ["log"]}
    return {"explorer": explorer, "version": version, "values": values}


def test_the_registry_finds_every_view_module() -> None:
    assert {"curve", "ablation", "pareto", "importance", "learning_curves", "comparison_choices", "ranks"} <= set(VIEWS)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_a_view_renders_one_value_per_output(page: dict[str, Any], name: str) -> None:
    view = VIEWS[name]
    inputs = [page["values"][key] for key in (*view.inputs, *view.states)]
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
    inputs = [page["values"][key] for key in (*view.inputs, *view.states)]
    result = getattr(page["explorer"], name)(None, None, None, None, *inputs)
    assert repr(result) == repr(view.empty())
