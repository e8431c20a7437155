"""No tag from a spec, a trials table or a path reaches an HTML or Markdown output unescaped: reproduce (Markdown,
HTML, JSON) and ``dashboards.report`` (Markdown, HTML). Tables are written directly (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import tests.fault_trainer  # noqa: F401  (registers the fault trainer, whose once_dir is a free text field)
from platform.papertables import html, json_text, markdown, measure, plan_table, table_result
from platform.results import ResultsStore
from platform.storage import experiment_uri

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8, "batch_size": 1,
        "patches_per_epoch": 1}


def assert_no_tag(text: str) -> None:
    """Neither payload's tag is in ``text`` as a tag (plotly's own script tags are not the payload's)."""
    assert SCRIPT not in text and "<img" not in text.lower() and "<script>alert" not in text
    assert "onerror=alert(1)>" not in text


def write_trials(storage: str, name: str, column: str) -> None:
    rows = [{"trial_id": f"t{i}-{seed}", "experiment": name, "trainer": "fault", "status": "TERMINATED", "seed": seed,
             "repeat": seed, column: value, "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]),
             "best/val/dice": 0.5 + 0.1 * i + 0.01 * seed, "test/best/dice": 0.5 + 0.1 * i + 0.02 * seed * i}
            for i, value in enumerate([SCRIPT, IMAGE]) for seed in range(3)]
    ResultsStore(experiment_uri(storage, name)).append("trials", rows)
    return None


def test_reproduce_escapes_spec_text_in_markdown_html_and_json(tmp_path: Path) -> None:
    spec = {"name": "xss", "trainer": "fault", "data": DATA, "storage": str(tmp_path / "runs"),
            "search": {"once_dir": {"grid": [SCRIPT, IMAGE]}}, "searcher": {"sampler": "grid"},
            "repeats": {"seeds": [0, 1, 2]},
            "paper": {"title": f"title {SCRIPT} | with `ticks`",
                      "rows": [{"label": f"row {SCRIPT}", "where": {"once_dir": SCRIPT}, "paper": 0.5},
                               {"label": f"row {IMAGE}", "where": {"once_dir": IMAGE}}],
                      "claims": [{"text": f"claim {IMAGE}", "larger": f"row {IMAGE}", "smaller": f"row {SCRIPT}"}]}}
    path = tmp_path / f"xss{SCRIPT[:7]}.yaml"  # a path with a tag in it reaches the outputs too
    path.write_text(yaml.safe_dump(spec))
    table = plan_table(path, False, None)
    write_trials(table.spec.storage, table.spec.name, "config/once_dir")
    measure(table)
    results = {table.stem: table_result(table)}
    assert [row["n"] for row in results[table.stem]["rows"]] == [3, 3]  # the payload rows were measured
    header = f"read from {tmp_path / SCRIPT}"
    text_md, page, text_json = markdown(results, header), html(results, header), json_text(results)
    for text in (text_md, page, text_json):
        assert_no_tag(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x" in page
    assert "row &lt;script&gt;" in text_md and "title &lt;script&gt;alert(1)&lt;/script&gt; \\| with \\`ticks\\`" \
        in text_md
    data = json.loads(text_json)  # the JSON escapes are only an encoding: the strings come back as written
    assert data[table.stem]["rows"][0]["name"] == f"row {SCRIPT}" and data[table.stem]["claims"][0]["claim"] == \
        f"claim {IMAGE}"


@pytest.mark.parametrize("form", ["md", "html"])
def test_report_escapes_level_names_from_the_trials_table(tmp_path: Path, form: str) -> None:
    from dashboards.report import render, report_figures, report_table
    from dashboards.tables import Catalog

    storage = str(tmp_path)
    write_trials(storage, "xss", "config/once_dir")
    ResultsStore(experiment_uri(storage, "xss")).append("sweep", [{
        "experiment": "xss", "trainer": "fault", "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]),
        "metrics": json.dumps({"dice": {"direction": "max", "kind": "overlap"}}),
        "axes": json.dumps({"once_dir": {"kind": "grid", "log": False, "values": [SCRIPT, IMAGE]}}),
        "explore": json.dumps({})}])
    catalog = Catalog(storage)
    experiment = catalog.load("xss")
    table = report_table(experiment, ["once_dir"], None, "test/best/dice")
    assert set(table["level"]) == {SCRIPT, IMAGE}
    if form == "html":
        attrs = table.attrs
        attrs["figures"] = report_figures(catalog, experiment, attrs["columns"], "test/best/dice", attrs["baseline"],
                                          attrs["order"])
    text = render(table, form, f"xss {SCRIPT}")
    assert_no_tag(text)
    assert ("&lt;script&gt;alert(1)&lt;/script&gt;" if form == "html" else "&lt;img src=x") in text


def test_the_explorers_exports_escape_level_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.app import Explorer
    from dashboards.views import ablation, common
    from dashboards.views.ablation import ablation_bars

    name = "xss"  # experiment names are checked (dashboards.tables); level names are not
    write_trials(str(tmp_path), name, "config/once_dir")
    explorer = Explorer(str(tmp_path))
    version = {"experiment": name}
    trials = explorer.experiment(version).trials
    bars = ablation_bars(trials, ["config/once_dir"], "test/best/dice", SCRIPT)
    page = explorer.export_figures(1, version, bars)["content"]
    assert_no_tag(page)
    monkeypatch.setattr(common, "triggered", lambda: "ablation-md")  # the Markdown button, outside a callback
    table = ablation.download(explorer, None, 1, None, version, None, None, None, "test/best/dice",
                              ["config/once_dir"], SCRIPT)
    assert table is not None and table["filename"].endswith(".md")
    assert_no_tag(table["content"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table["content"]
