"""The explorer's callbacks as plain functions on a small experiment, its HTTP surface and its command line."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import dash
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dashboards import app as app_module
from dashboards.app import Explorer, create_app
from dashboards.bench import build_experiment
from dashboards.views import common as views_common
from dashboards.views.comparison import comparison
from platform.results import ResultsStore, read_table
from tests.dashboards.test_views import first_choices


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("storage")
    build_experiment(root, "synthetic", trials=60, epochs=5, seeds=3, images=2)
    return root


@pytest.fixture(scope="module")
def trials(storage: Path) -> pd.DataFrame:
    return read_table(str(storage / "synthetic"), "trials").to_pandas()


@pytest.fixture
def page(storage: Path) -> dict[str, Any]:
    """A fresh explorer and the state of a first page load."""
    explorer = Explorer(str(storage))
    version, options, message = explorer.refresh(0, "synthetic", None)
    return {"explorer": explorer, "version": version, "options": options, "message": message,
            **first_choices(explorer, version)}


def test_first_load_picks_objective_parameter_factor_and_pareto_axes(page: dict[str, Any]) -> None:
    assert page["options"] == [{"label": "synthetic", "value": "synthetic"}] and page["message"] == ""
    assert page["score"] == "best/val/dice"
    assert page["param"] == "config/lambda"  # the first numeric parameter
    assert page["factors"] == ["config/disc_arch"]
    assert (page["x"], page["y"]) == ("last/val/dice", "last/val/jsd_norm")  # the two recorded objectives
    assert page["metric"] == "val/dice"
    factor_options = [o["value"] for o in page["factor_options"]]
    assert "config/n_steps" in factor_options  # a numeric parameter with few levels is a factor too


def test_refresh_is_a_no_op_until_a_table_changes(page: dict[str, Any], tmp_path: Path) -> None:
    explorer, version = page["explorer"], page["version"]
    assert explorer.refresh(1, "synthetic", version)[0] is dash.no_update
    location = build_experiment(tmp_path, "live", trials=3, epochs=2, seeds=1, images=0)
    live = Explorer(str(tmp_path))
    first = live.refresh(0, "live", None)[0]
    ResultsStore(location).append("epochs", [{"trial_id": "t000000", "epoch": 3, "val/dice": 0.9}])
    second = live.refresh(1, "live", first)[0]
    assert second is not dash.no_update and second != first


def test_refresh_of_an_unknown_experiment_says_so(page: dict[str, Any]) -> None:
    version, _, message = page["explorer"].refresh(0, "../etc", None)
    assert version is None and "not an experiment name" in message


def _all_rows(explorer: Any, version: dict[str, Any], statuses: list[str] | None, brushes: dict[str, Any],
              score: str, **request: Any) -> dict[str, Any]:
    return explorer.rows({"startRow": 0, "endRow": 10_000, **request}, version, statuses, brushes, score)


def test_grid_rows_follow_status_and_brushes(page: dict[str, Any], trials: pd.DataFrame) -> None:
    explorer, version = page["explorer"], page["version"]
    answer = _all_rows(explorer, version, None, {}, page["score"])
    rows, columns = answer["rowData"], explorer.columns(version, page["score"])[0]
    assert len(rows) == len(trials) == answer["rowCount"]
    assert [c["field"] for c in columns][:2] == ["trial_id", "status"]
    assert all(r["error"] is None or isinstance(r["error"], str) for r in rows)  # NaN became None for JSON
    answer = _all_rows(explorer, version, ["TERMINATED"], {"config/lambda": {"ranges": [[0.01, 0.1]]}}, page["score"])
    expected = trials[(trials["status"] == "TERMINATED") & trials["config/lambda"].between(0.01, 0.1)]
    assert sorted(r["trial_id"] for r in answer["rowData"]) == sorted(expected["trial_id"])
    assert answer["rowCount"] == len(expected)


def test_the_column_chooser_offers_every_column_and_the_rows_follow_it(page: dict[str, Any]) -> None:
    explorer, version, score = page["explorer"], page["version"], page["score"]
    default, options, value = explorer.columns(version, score)
    offered = [o["value"] for o in options]
    assert value == [c["field"] for c in default] and set(value) <= set(offered)
    assert "wall_s" in offered and "config_key" not in offered
    chosen = ["config/lambda", "wall_s", "no such column"]
    definitions, _, value = explorer.columns(version, score, chosen)
    assert value == ["trial_id", "config/lambda", "wall_s"] == [c["field"] for c in definitions]
    again = explorer.columns(version, score, value, None, definitions)  # the grid shows them already: nothing resent
    assert again[0] is dash.no_update and again[2] is dash.no_update
    block = explorer.rows({"startRow": 0, "endRow": 3}, version, None, {}, score, None, value)
    assert [sorted(r) for r in block["rowData"]] == [sorted(value)] * 3


def test_grid_serves_one_block_sorted_by_the_score_unless_a_column_is_sorted(page: dict[str, Any],
                                                                             trials: pd.DataFrame) -> None:
    explorer, version, score = page["explorer"], page["version"], page["score"]
    block = explorer.rows({"startRow": 10, "endRow": 20}, version, None, {}, score)
    best_first = trials.sort_values(score, ascending=False, na_position="last", kind="stable")["trial_id"]
    assert [r["trial_id"] for r in block["rowData"]] == list(best_first.iloc[10:20])
    assert block["rowCount"] == len(trials)
    by_lambda = explorer.rows({"startRow": 0, "endRow": 5, "sortModel": [{"colId": "config/lambda", "sort": "asc"}]},
                              version, None, {}, score)
    assert [r["trial_id"] for r in by_lambda["rowData"]] == list(
        trials.sort_values("config/lambda", kind="stable")["trial_id"].iloc[:5])
    model = {"config/disc_arch": {"filterType": "text", "type": "equals", "filter": "resnet"}}
    filtered = _all_rows(explorer, version, None, {}, score, filterModel=model)
    assert filtered["rowCount"] == int((trials["config/disc_arch"] == "resnet").sum())
    assert {r["config/disc_arch"] for r in filtered["rowData"]} == {"resnet"}


def test_curve_shows_each_configuration_mean_over_its_seeds(page: dict[str, Any], trials: pd.DataFrame) -> None:
    figure = page["explorer"].curve(page["version"], None, {}, None, "best/val/dice", "config/lambda", None)
    points, means = figure["data"]
    assert len(points["x"]) == len(trials) and figure["layout"]["meta"]["trials"] == len(trials)
    expected = trials.groupby("config/lambda")["best/val/dice"].mean().sort_index()
    assert np.allclose(means["x"], expected.index) and np.allclose(means["y"], expected.to_numpy())
    assert figure["layout"]["xaxis"]["type"] == "log"  # lambda spans three decades


def test_grid_filter_reaches_every_view(page: dict[str, Any], trials: pd.DataFrame) -> None:
    explorer, version, score = page["explorer"], page["version"], page["score"]
    model = {"config/disc_arch": {"filterType": "text", "type": "equals", "filter": "resnet"}}
    count = int((trials["config/disc_arch"] == "resnet").sum())
    figures = [explorer.curve(version, None, {}, model, score, page["param"], None),
               explorer.ablation(version, None, {}, model, score, page["factors"], None)[0],
               explorer.pareto(version, None, {}, model, page["x"], "max", page["y"], "min", None),
               explorer.parcoords(version, None, model, score, None, {})[0]]
    assert [f["layout"]["meta"]["trials"] for f in figures] == [count] * 4


def test_ablation_baseline_defaults_and_differences(page: dict[str, Any], trials: pd.DataFrame) -> None:
    figure, levels, baseline = page["explorer"].ablation(page["version"], None, {}, None, "best/val/dice",
                                                         ["config/disc_arch"], "resnet")
    assert levels == ["dcgan", "resnet"] and baseline == "resnet"
    bars, differences = figure["data"]
    means = trials.groupby("config/disc_arch")["best/val/dice"].mean()
    assert np.allclose(bars["x"], [means["dcgan"], means["resnet"]])
    assert np.allclose(differences["x"], [means["dcgan"] - means["resnet"], 0.0])


def test_pareto_front_is_non_dominated(page: dict[str, Any]) -> None:
    figure = page["explorer"].pareto(page["version"], None, {}, None, "last/val/dice", "max", "last/val/jsd_norm",
                                     "min", None)
    points, front = figure["data"]
    on_front = list(zip(front["x"], front["y"], strict=True))
    for x, y in zip(points["x"], points["y"], strict=True):
        assert not any(fx >= x and fy <= y and (fx, fy) != (x, y) for fx, fy in on_front) or (x, y) not in on_front


def test_learning_curves_of_selected_trials_else_the_best(page: dict[str, Any], trials: pd.DataFrame) -> None:
    explorer, version = page["explorer"], page["version"]
    figure = explorer.learning_curves(version, None, {}, None, [{"trial_id": "t000004"}], "val/dice", page["score"],
                                      "trial", 0, [])
    assert len(figure["data"]) == 1 and list(figure["data"][0]["x"]) == [1, 2, 3, 4, 5]
    figure = explorer.learning_curves(version, None, {}, None, [], "val/dice", page["score"], "trial", 0, [])
    best = trials.sort_values("best/val/dice", ascending=False)["trial_id"][:5]
    assert sorted(t["name"].split(" ")[0] for t in figure["data"]) == sorted(best)


def test_learning_curves_averaged_over_repeats_smoothed_and_on_a_log_axis(page: dict[str, Any],
                                                                           trials: pd.DataFrame) -> None:
    from scipy import stats

    explorer, version = page["explorer"], page["version"]
    trials = explorer.experiment(version).trials  # with the configuration keys the explorer derives
    key = trials.loc[trials["trial_id"] == "t000004", "config_key"].iloc[0]
    repeats = trials.loc[trials["config_key"] == key, "trial_id"].tolist()
    figure = explorer.learning_curves(version, None, {}, None, [{"trial_id": "t000004"}], "val/dice", page["score"],
                                      "mean", 0, ["log"])
    band, mean = figure["data"]
    assert band["fill"] == "toself" and mean["name"].endswith(f"(n={len(repeats)})")
    assert figure["layout"]["yaxis"]["type"] == "log"
    epochs = explorer.catalog.epochs("synthetic", repeats, ["val/dice"])
    last = epochs[epochs["epoch"] == 5]["val/dice"].to_numpy()
    half = stats.t.ppf(0.975, len(last) - 1) * last.std(ddof=1) / len(last) ** 0.5
    assert mean["y"][-1] == pytest.approx(last.mean()) and mean["customdata"][-1][2] == pytest.approx(last.mean()
                                                                                                         + half)
    smoothed = explorer.learning_curves(version, None, {}, None, [{"trial_id": "t000004"}], "val/dice",
                                        page["score"], "trial", 0.5, [])["data"][0]["y"]
    raw = epochs[epochs["trial_id"] == "t000004"].sort_values("epoch")["val/dice"].to_numpy()
    assert smoothed[0] == pytest.approx(raw[0])  # debiased: the first point is the first value
    assert smoothed[1] == pytest.approx((0.25 * raw[0] + 0.5 * raw[1]) / 0.75)


def test_importance_of_the_synthetic_sweep_ranks_lambda_first(page: dict[str, Any]) -> None:
    figure = page["explorer"].importance(page["version"], None, {}, None, "best/val/dice", "mean_decrease_impurity")
    bars = figure["data"][0]
    assert bars["y"][-1] == "lambda"  # sorted ascending: the most important is drawn last (top)


def test_selecting_rows_picks_the_comparison_and_shows_differences(page: dict[str, Any], trials: pd.DataFrame,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    explorer, version = page["explorer"], page["version"]
    monkeypatch.setattr(views_common, "triggered", lambda: "grid")
    selected = [{"trial_id": "t000000"}, {"trial_id": "t000003"}]
    options, _, a, b = explorer.comparison_choices(version, None, {}, None, page["score"], selected, None)
    assert (a, b) == ("t000000", "t000003") and {"t000000", "t000003"} <= {o["value"] for o in options}
    _, _, a, b = explorer.comparison_choices(version, None, {}, None, page["score"], selected[1:], None)
    keys = explorer.experiment(version).trials.set_index("trial_id")["config_key"]
    assert a == "t000003" and keys[b] != keys["t000003"]  # one selected: B is of another configuration
    config_rows, metric_rows, images = comparison(explorer, version, ["t000000", "t000003"])
    differing = {row["key"] for row in config_rows if row["differs"]}
    assert "lambda" in differing and "epochs" not in differing
    assert ("dice", "adult", "wm") in {(r["metric"], r["domain"], r["class"]) for r in metric_rows}
    assert "/artifacts/synthetic/t000000/" in str(images[0])  # trial 0 saved images, trial 3 did not
    assert "this trial has no images: its trainer saved none" in str(images[1])


def test_export_writes_the_filtered_table(page: dict[str, Any], trials: pd.DataFrame,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    explorer, version = page["explorer"], page["version"]
    expected = sorted(trials.loc[trials["status"] == "ERROR", "trial_id"])
    monkeypatch.setattr(views_common, "triggered", lambda: "export-parquet")
    sent = explorer.export(None, 1, version, ["ERROR"], {}, None)
    table = pq.read_table(io.BytesIO(base64.b64decode(sent["content"])))
    assert sorted(table["trial_id"].to_pylist()) == expected and sent["filename"] == "synthetic-trials.parquet"
    monkeypatch.setattr(views_common, "triggered", lambda: "export-csv")
    sent = explorer.export(1, None, version, ["ERROR"], {}, None)
    assert sorted(pd.read_csv(io.StringIO(sent["content"]))["trial_id"]) == expected


@pytest.fixture
def client(storage: Path) -> Any:
    return create_app(Explorer(str(storage))).server.test_client()


def test_page_and_listed_artifact_are_served(client: Any, storage: Path) -> None:
    assert client.get("/").status_code == 200
    listed = next(row for row in read_table(str(storage / "synthetic"), "artifacts").to_pylist()
                  if row["kind"] != "volume")  # a picture: volumes are read by the server, never served
    response = client.get(f"/artifacts/synthetic/{listed['trial_id']}/{Path(listed['path']).name}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("url", [
    "/artifacts/synthetic/t000000/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/artifacts/..%2F..%2Fetc/t000000/passwd.png",
    "/artifacts/synthetic/..%2Ft000000/infant_infant-000.png",
    "/artifacts/synthetic/t000000/unlisted.png",
    "/artifacts/synthetic/t000000/table.parquet",
    "/artifacts/other/t000000/infant_infant-000.png",
    "/artifacts/synthetic/../../../etc/passwd",
])
def test_paths_outside_the_root_or_unlisted_are_not_served(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404 and b"root:" not in response.data


def test_cli_binds_loopback_by_default(storage: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bound: dict[str, Any] = {}

    def serve(server: Any, host: str, port: int, threads: int, log_requests: bool, banner: str) -> None:
        bound.update(host=host, port=port, log_requests=log_requests, banner=banner)

    monkeypatch.setattr(app_module, "serve", serve)
    assert app_module.main(["--storage", str(storage)]) == 0
    assert bound["host"] == "127.0.0.1" and bound["port"] == 8050 and bound["log_requests"] is False
    assert bound["banner"].endswith("on http://127.0.0.1:8050/")


def test_cli_unknown_experiment_exits_2_with_the_list(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app_module.main(["--storage", str(storage), "--experiment", "nope"]) == 2
    error = capsys.readouterr().err
    assert "no experiment 'nope'" in error and "synthetic" in error and "Traceback" not in error


def test_figures_export_as_one_html_page(page: dict[str, Any]) -> None:
    explorer, version = page["explorer"], page["version"]
    shown = [explorer.curve(version, None, {}, None, page["score"], page["param"], None),
             explorer.parcoords(version, None, None, page["score"], None, {})[0], None]
    sent = explorer.export_figures(1, version, *shown)
    assert sent["filename"] == "synthetic-figures.html"
    assert sent["content"].count("Plotly.newPlot") == 2 and "Dice (val, best epoch) vs lambda" in sent["content"]


def test_comparison_drops_picks_of_another_experiment(page: dict[str, Any], trials: pd.DataFrame) -> None:
    options, _, a, b = page["explorer"].comparison_choices(page["version"], None, {}, None, page["score"], [],
                                                           ["gone-trial", "t000002"])
    assert a == "t000002" and b in set(trials["trial_id"]) and b != "gone-trial"
    assert "gone-trial" not in {o["value"] for o in options}


def test_ablation_levels_are_categories_even_when_numeric(page: dict[str, Any]) -> None:
    figure, levels, _ = page["explorer"].ablation(page["version"], None, {}, None, page["score"],
                                                  ["config/n_steps"], None)
    assert levels == sorted(levels, key=int) and figure["layout"]["yaxis"]["type"] == "category"


# --- per-case evidence, rank stability, experiments side by side, the ablation download --------------------------


def test_per_case_evidence_of_two_trials(page: dict[str, Any], storage: Path) -> None:
    from scipy import stats

    explorer, version = page["explorer"], page["version"]
    options, metric = explorer.case_metric_options(version, None)
    assert metric == "dice" and {"dice", "dice/gm"} <= {o["value"] for o in options}
    scatter, extremes, breakdown = explorer.case_evidence(version, "t000000", "t000001", "dice", "test", "best")
    cases = read_table(str(storage / "synthetic"), "cases").to_pandas()
    best = cases[(cases["split"] == "test") & (cases["checkpoint"] == "best")]
    a = best[best["trial_id"] == "t000000"].set_index(["domain", "subject"])["dice"]
    b = best[best["trial_id"] == "t000001"].set_index(["domain", "subject"])["dice"].reindex(a.index)
    assert scatter["layout"]["meta"]["trials"] == len(a)
    assert scatter["layout"]["meta"]["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert "B helps most" in str(extremes) and "B hurts most" in str(extremes)
    assert "case-breakdown-table" in str(breakdown)


def test_a_picked_case_shows_its_pictures_under_both_trials_or_says_why_not(page: dict[str, Any]) -> None:
    explorer, version = page["explorer"], page["version"]
    with_images = str(explorer.case_images(version, "adult/adult-001", "t000000", "t000001"))
    assert with_images.count("/artifacts/synthetic/t00000") == 2 and "test-adult_adult-001.png" in with_images
    assert "input" in with_images and "truth" in with_images and "gm" in with_images  # panels named, legend
    without = str(explorer.case_images(version, "adult/adult-001", "t000000", "t000010"))
    assert without.count("/artifacts/") == 1 and "no picture of this case" in without


def test_rank_stability_blobs_follow_the_factor(page: dict[str, Any]) -> None:
    explorer, version = page["explorer"], page["version"]
    figure = explorer.ranks(version, ["TERMINATED"], {}, None, ["config/disc_arch"], "dice", "test", "best", 0)
    assert figure["data"] and "bootstrap draws" in figure["layout"]["title"]["text"].replace("<br>", " ")
    assert set(figure["data"][1]["x"]) == {"dcgan", "resnet"}
    assert figure["layout"]["yaxis"]["range"] == [2.5, 0.5]  # rank 1 on top, exactly over the two ranks


def test_experiments_side_by_side_on_a_shared_factor(page: dict[str, Any], storage: Path) -> None:
    build_experiment(storage, "rerun", trials=30, epochs=3, seeds=3, images=0, seed=1)
    explorer, version = Explorer(str(storage)), page["version"]
    options, picked, factors, factor, figure = explorer.compare_experiments(version, ["rerun"], None,
                                                                             "best/val/dice")
    assert picked == ["synthetic", "rerun"] and {o["value"] for o in options} >= {"synthetic", "rerun"}
    assert factor in {f["value"] for f in factors} and factor == "config/disc_arch"
    assert [trace["name"] for trace in figure["data"]] == ["synthetic", "rerun"]
    rerun = read_table(str(storage / "rerun"), "trials").to_pandas()
    finished = rerun[rerun["status"] == "TERMINATED"]
    expected = finished.groupby("config/disc_arch")["best/val/dice"].mean()
    second = dict(zip(figure["data"][1]["x"], figure["data"][1]["y"], strict=True))
    assert second == pytest.approx(expected.to_dict())
    single = explorer.compare_experiments(version, [], None, "best/val/dice")[-1]
    assert "pick a second experiment" in str(single["layout"]["annotations"])


@pytest.mark.parametrize("button, suffix, marker", [("ablation-csv", "csv", "level,mean,low,high,n"),
                                                    ("ablation-md", "md", "| level | mean [95% CI] |"),
                                                    ("ablation-latex", "tex", r"\begin{tabular}")])
def test_the_ablation_table_downloads_as_the_report_writes_it(page: dict[str, Any], monkeypatch, button: str,
                                                              suffix: str, marker: str) -> None:
    from dashboards.views import ablation as ablation_view

    monkeypatch.setattr(ablation_view.common, "triggered", lambda: button)
    sent = page["explorer"].download_ablation(1, 1, 1, page["version"], None, {}, None, page["score"],
                                              page["factors"], "dcgan")
    assert sent["filename"] == f"synthetic-ablation.{suffix}" and marker in sent["content"]


def test_the_slice_viewer_shows_both_predictions_and_where_they_differ(page: dict[str, Any]) -> None:
    import numpy as np

    explorer, version = page["explorer"], page["version"]
    options, case, figure = explorer.viewer(version, "t000000", "t000001", None, 1.0, 0.3)
    assert [o["value"] for o in options] == ["adult adult-val", "infant infant-val"] and case == "adult adult-val"
    depth = figure["layout"]["meta"]["depth"]
    assert figure["layout"]["meta"]["slice"] == depth - 1 and f"slice {depth} of {depth}" in figure["layout"][
        "title"]["text"]
    assert len(figure["data"]) == 4 and all(t["source"].startswith("data:image/png;base64,") for t in figure["data"])
    a = explorer.catalog.volume("synthetic", "t000000", "adult_adult-val.npz")
    b = explorer.catalog.volume("synthetic", "t000001", "adult_adult-val.npz")
    z = depth - 1
    truth, pred_a, pred_b = a["label"][:, :, z], a["pred"][:, :, z], b["pred"][:, :, z]
    assert figure["layout"]["meta"]["difference"] == {
        "only A right": int(((pred_a == truth) & (pred_b != truth)).sum()),
        "only B right": int(((pred_b == truth) & (pred_a != truth)).sum()),
        "both wrong": int(((pred_a != pred_b) & (pred_a != truth) & (pred_b != truth)).sum())}
    assert np.array_equal(a["label"], b["label"])  # one case, one truth
    # A trial without volumes: its panel says so, and there is no difference to draw.
    _, _, alone = explorer.viewer(version, "t000000", "t000009", "infant infant-val", 0.0, 0.6)
    assert alone["layout"]["meta"]["difference"] == {} and alone["layout"]["meta"]["slice"] == 0
    assert "no volume saved" in [note["text"] for note in alone["layout"]["annotations"]]
