"""The per-trial views: the log a trial kept (shown as escaped text, its end when long, a clear message when there
is none, never a file outside the experiment) and its resource use per epoch (every ``resources/*`` column, one
panel per unit read from the suffix)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io
import pytest

from dashboards.app import Explorer
from dashboards.bench import build_experiment
from dashboards.views import logs, resources


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root: Path = tmp_path_factory.mktemp("trialviews")
    location = Path(build_experiment(root, "synthetic", trials=12, epochs=4, seeds=3, images=2))
    return {"explorer": Explorer(str(root)), "version": {"experiment": "synthetic"}, "location": location}


def write_log(page: dict[str, Any], trial_id: str, data: bytes) -> None:
    directory = page["location"] / "artifacts" / trial_id
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log.txt").write_bytes(data)


def shown(answer: Any) -> list[dict[str, Any]]:
    """The components the browser receives, as JSON."""
    return json.loads(plotly.io.json.to_json_plotly(answer if isinstance(answer, list) else [answer]))


@pytest.mark.parametrize(("trial_id", "data", "expected"), [
    ("t000000", None, "epoch 1: val/dice"),  # the log build_experiment kept
    ("t000005", None, "no log recorded for this trial (t000005)"),
    ("t000006", b"", "the log is empty"),
    ("t000007", b"<script>alert('x')</script>\n<b>bold</b>\n", "<script>alert('x')</script>\n<b>bold</b>\n"),
    ("t000008", b"caf\xe9 not utf-8\n", "caf\ufffd not utf-8\n"),
    ("not-a-trial", None, "no log recorded for this trial"),
])
def test_the_log_view_shows_the_log_as_text_or_says_there_is_none(page: dict[str, Any], trial_id: str,
                                                                    data: bytes | None, expected: str) -> None:
    if data is not None:
        write_log(page, trial_id, data)
    answer = page["explorer"].trial_log(page["version"], trial_id)
    components = shown(answer)
    assert {c["type"] for c in components} <= {"P", "Pre"}  # text only: no markup component is ever built
    texts = [c["props"]["children"] for c in components]
    assert any(expected in text for text in texts), texts
    if data and b"<script>" in data:
        pre = next(c for c in components if c["type"] == "Pre")
        assert pre["props"]["children"] == data.decode()  # the text itself: React renders it escaped


def test_other_workers_logs_follow_folded_in_rank_order(page: dict[str, Any]) -> None:
    directory = page["location"] / "artifacts" / "t000001"
    (directory / "log-rank10.txt").write_text("rank ten <i>x</i>\n")
    (directory / "log-rank2.txt").write_text("rank two\n")
    (directory / "log-rankx.txt").write_text("not a rank\n")
    assert page["explorer"].catalog.worker_logs("synthetic", "t000001") == ["log-rank2.txt", "log-rank10.txt"]
    components = shown(page["explorer"].trial_log(page["version"], "t000001"))
    folded = [c for c in components if c["type"] == "Details"]
    assert [c["props"]["children"][0]["props"]["children"] for c in folded] == ["log-rank2.txt", "log-rank10.txt"]
    assert folded[1]["props"]["children"][2] == {"type": "Pre", "namespace": "dash_html_components",
                                                 "props": {"children": "rank ten <i>x</i>\n",
                                                           "className": "traceback trial-log"}}


def test_a_long_log_is_read_from_its_end_at_a_line_start(page: dict[str, Any]) -> None:
    lines = [f"line {i:06d}\n".encode() for i in range(40_000)]  # 480 kB
    write_log(page, "t000009", b"".join(lines))
    log = page["explorer"].catalog.trial_log("synthetic", "t000009", limit=1000)
    assert log is not None and log.truncated and log.size == 480_000
    assert log.text.endswith("line 039999\n") and log.text.startswith("line ") and len(log.text) <= 1000


def test_a_log_outside_the_experiment_is_never_read(page: dict[str, Any], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    directory = page["location"] / "artifacts" / "t000010"
    directory.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, directory / "log.txt")
    assert page["explorer"].catalog.trial_log("synthetic", "t000010") is None


@pytest.mark.parametrize(("column", "name", "unit"), [
    ("resources/cpu_percent", "cpu", "%"),
    ("resources/gpu_mem_peak_mb", "gpu mem peak", "MiB"),  # the engine's _mb columns count MiB
    ("resources/worker1/rss_peak_mb", "rss peak (worker1)", "MiB"),  # the engine's name for another rank's
    ("resources/rss_peak_mb/worker1", "rss peak (worker1)", "MiB"),
    ("resources/disk_read_gib", "disk read", "GiB"),
    ("resources/threads", "threads", ""),
    ("resources/worker2/threads", "threads (worker2)", ""),
])
def test_resource_columns_are_named_with_units_from_their_suffix(column: str, name: str, unit: str) -> None:
    assert resources.describe(column) == (name, unit)


def test_the_resources_view_draws_one_panel_per_unit(page: dict[str, Any]) -> None:
    figure = page["explorer"].trial_resources(page["version"], "t000000")
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["cpu (%)", "gpu (%)", "gpu mem peak (MiB)", "rss peak (MiB)"]
    assert {trace["yaxis"] for trace in figure["data"]} == {"y", "y2"}
    assert figure["layout"]["yaxis"]["title"]["text"] == "%" and figure["layout"]["yaxis2"]["title"]["text"] == "MiB"
    assert list(figure["data"][0]["x"]) == [1, 2, 3, 4]


def test_every_worker_gets_its_own_line() -> None:
    epochs = pd.DataFrame({"epoch": [1, 2], "resources/cpu_percent": [90.0, 95.0],
                           "resources/worker1/cpu_percent": [80.0, 85.0]})
    figure = resources.resources_figure(epochs, ["resources/cpu_percent", "resources/worker1/cpu_percent"], "t")
    assert [trace["name"] for trace in figure["data"]] == ["cpu (worker0) (%)", "cpu (worker1) (%)"]


@pytest.mark.parametrize(("epochs", "message"), [
    (pd.DataFrame({"epoch": [1, 2], "resources/cpu_percent": [None, None]}), "no CPU, GPU or memory use recorded"),
    (pd.DataFrame(columns=["epoch", "resources/cpu_percent"]), "no CPU, GPU or memory use recorded"),
])
def test_no_resources_recorded_says_so(epochs: pd.DataFrame, message: str) -> None:
    figure = resources.resources_figure(epochs, ["resources/cpu_percent"], "t")
    assert not figure["data"] and message in figure["layout"]["annotations"][0]["text"]


def test_the_trial_picker_follows_the_grid_then_the_comparison(page: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    explorer, version = page["explorer"], page["version"]
    _, value = explorer.inspect_choices(version, None, {}, None, "best/val/dice", [], "t000003", None)
    assert value == "t000003"  # A of the comparison
    monkeypatch.setattr(logs.common, "triggered", lambda: "grid")
    options, value = explorer.inspect_choices(version, None, {}, None, "best/val/dice", [{"trial_id": "t000004"}],
                                              "t000003", "t000003")
    assert value == "t000004" and "t000004" in {o["value"] for o in options}
