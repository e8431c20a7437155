"""End to end in a real headless Chromium: the explorer server, the page's views, selection, live refresh,
filters and switching experiments (slow, run in CI, which installs chromium and chromedriver).

One server and one browser for the module; the tests run in file order and share the page's state. Expected
numbers are computed from the results tables; each view reports how many trials it shows in
``layout.meta.trials`` of its rendered plotly figure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from platform.results import ResultsStore, read_table
from platform.storage import experiment_uri
from tests.conftest import REPO_ROOT
from tests.dashboards.browser_support import (
    CHROMEDRIVER,
    CHROMIUM,
    HAS_CHROMIUM,
    TIMEOUT,
    free_port,
    headless_chromium,
    stop,
    wait_for_http,
)

if not HAS_CHROMIUM:
    pytest.skip(f"browser test needs {CHROMIUM} and {CHROMEDRIVER} (CI installs both)", allow_module_level=True)

# Selenium after the skip: only needed where a browser exists.
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow

SYNTHETIC, SMOKE = "synthetic", "advnorm-lambda-smoke"
SWEEP_TIMEOUT = 3 * TIMEOUT  # the smoke sweep: a Ray start and 2 trials, beside the other tests
VIEWS = ("parcoords", "curve", "ablation", "pareto", "curves", "importance")
SELECTED = "t000001"  # one of the synthetic trials that saved images
SERVER_LOG: list[Path] = []  # the running server's log, quoted when a wait times out
GRID_API = "dash_ag_grid.getApiAsync('grid').then(api => done({js})).catch(error => done('error: ' + error));"


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("explorer-storage")


@pytest.fixture(scope="module")
def smoke_sweep(storage: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, Path]]:
    """The real smoke sweep, started first and left running beside the other tests (it takes 25-60 s)."""
    cache = tmp_path_factory.mktemp("explorer-cache")
    log_path = storage.parent / "sweep.log"
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1", "SEGSWEEP_CACHE": str(cache)}
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "platform.sweep", "search_spaces/lambda.yaml", "--smoke",
                                    "--storage", str(storage)], cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        yield process, log_path
        try:  # let it finish (Ray shuts down cleanly) when only some tests ran; stop it if it hangs
            process.wait(timeout=SWEEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            stop(process)


@pytest.fixture(scope="module")
def smoke_experiment(smoke_sweep: tuple[subprocess.Popen, Path], storage: Path) -> str:
    """The smoke sweep's experiment location, once the sweep exited 0."""
    process, log_path = smoke_sweep
    process.wait(timeout=SWEEP_TIMEOUT)
    assert process.returncode == 0, f"smoke sweep exited {process.returncode}:\n{log_path.read_text()[-3000:]}"
    return experiment_uri(str(storage), SMOKE)


@pytest.fixture(scope="module")
def synthetic(storage: Path) -> str:
    from dashboards.bench import build_experiment

    return build_experiment(storage, SYNTHETIC, trials=120, epochs=8, seeds=3, images=4)


@pytest.fixture(scope="module")
def server(storage: Path, synthetic: str, smoke_sweep: tuple[subprocess.Popen, Path]) -> Iterator[str]:
    """``python -m dashboards.app`` on a free port (refresh every 2 s); yields its URL once it answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = storage.parent / "server.log"
    # A file, not a pipe: the server logs every request, and a full pipe would block it.
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "dashboards.app", "--storage", str(storage),
                                    "--experiment", SYNTHETIC, "--port", str(port), "--refresh", "2"],
                                   cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        SERVER_LOG[:] = [log_path]
        try:
            wait_for_http(url, process, log_path)
            _assert_loopback_only(port, log_path)
            log = log_path.read_text()  # a production server: its URL once, no development-server warning
            assert log.count(f"http://127.0.0.1:{port}/") == 1 and "development server" not in log, log
            yield url
        finally:
            stop(process)
            SERVER_LOG.clear()


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with headless_chromium("--window-size=1400,3400", browser_log=True) as browser:
        yield browser


@pytest.fixture(autouse=True)
def clean_console(driver: WebDriver) -> Iterator[None]:
    """Fail a test whose page logged a SEVERE console entry (favicon and WebGL noise aside)."""
    yield
    severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
              and "favicon" not in entry["message"].lower() and "webgl" not in entry["message"].lower()]
    assert not severe, "browser console errors:\n" + "\n".join(severe)


# --- helpers -------------------------------------------------------------------------------------------------


def _assert_loopback_only(port: int, log_path: Path) -> None:
    """The server says it serves on 127.0.0.1, and the kernel's listening sockets on its port agree."""
    log = log_path.read_text()
    assert f"http://127.0.0.1:{port}/" in log, log[-2000:]
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    addresses.append(address)
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc/net prints them
    assert all(a in loopback for a in addresses), f"explorer listens on {addresses} (hex), not only loopback"


def _until(driver: WebDriver, probe: Callable[[WebDriver], Any], accept: Callable[[Any], bool], what: str) -> Any:
    """Wait until ``accept(probe(driver))``; on timeout, say what was expected and what was last seen."""
    seen: list[Any] = [None]

    def check(browser: WebDriver) -> Any:
        seen[0] = probe(browser)
        return (seen[0],) if accept(seen[0]) else False  # a tuple: truthy even when the value is not

    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.25,
                             ignored_exceptions=[StaleElementReferenceException]).until(check)[0]
    except Exception as exc:
        raise AssertionError(f"timed out waiting for {what}; last seen: {seen[0]!r}{_server_problems()}") from exc


def _server_problems() -> str:
    """The server log's lines other than successful requests (tracebacks, 500s), for a failure message."""
    if not SERVER_LOG or not SERVER_LOG[0].exists():
        return ""
    lines = [line for line in SERVER_LOG[0].read_text().splitlines() if not any(
        f'HTTP/1.1" {code} ' in line for code in (200, 204, 304))]
    return "\nserver log (requests answered 2xx/304 left out):\n" + "\n".join(lines[-40:]) if lines else ""


def _meta_trials(driver: WebDriver, view: str) -> int | None:
    return driver.execute_script(
        "const plot = document.querySelector(arguments[0]);"
        "return plot && plot.layout && plot.layout.meta ? plot.layout.meta.trials : null;",
        f"#{view} .js-plotly-plot")


def _title(driver: WebDriver, view: str) -> str:
    """The title of a view's rendered figure, as one line (the figures wrap long titles with <br>)."""
    return driver.execute_script(
        "const plot = document.querySelector(arguments[0]);"
        "return plot && plot.layout && plot.layout.title ? plot.layout.title.text : '';",
        f"#{view} .js-plotly-plot").replace("<br>", " ")


def _wait_trials(driver: WebDriver, view: str, expected: int) -> None:
    _until(driver, lambda d: _meta_trials(d, view), lambda n: n == expected, f"#{view} to show {expected} trials")


def _grid(driver: WebDriver, js: str) -> Any:
    """Evaluate ``js`` (an expression of ``api``) against the AG Grid's API."""
    result = driver.execute_async_script("const done = arguments[arguments.length - 1];" + GRID_API.format(js=js))
    assert not (isinstance(result, str) and result.startswith("error:")), result
    return result


def _row_count(driver: WebDriver) -> int:
    return _grid(driver, "api.getDisplayedRowCount()")


def _selected(driver: WebDriver) -> list[str]:
    return _grid(driver, "api.getSelectedRows().map(row => row.trial_id)")


def _text(driver: WebDriver, selector: str) -> str:
    """The rendered text of the first match ('' if none), read in one script: no stale element references."""
    # SVG text (plotly's titles) has no innerText: its textContent then.
    return driver.execute_script("const e = document.querySelector(arguments[0]);"
                                 "return e ? (e.innerText ?? e.textContent ?? '') : '';", selector)


def _open(driver: WebDriver, url: str) -> None:
    """Load the page and wait until the first experiment's rows are in the grid."""
    driver.get(url)
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid .ag-row"), bool, "the grid's first rows")


def _on_page(driver: WebDriver, url: str) -> None:
    """Open the page unless an earlier test left it open (each test also runs on its own)."""
    if not driver.current_url.startswith(url):
        _open(driver, url)


def _select(driver: WebDriver, trial_id: str) -> None:
    """Tick a row's selection checkbox with a real click (no-op when already selected)."""
    if trial_id in _selected(driver):
        return
    selector = f'.ag-row[row-id="{trial_id}"] [col-id="ag-Grid-SelectionColumn"] input[type="checkbox"]'

    def checkbox_or_sort(browser: WebDriver) -> list[Any]:
        found = browser.find_elements(By.CSS_SELECTOR, selector)
        if not found and not _grid(browser, "api.getColumnState().some(c => c.colId === 'trial_id' && c.sort)"):
            # Rows come best first; sorting by id (as a click on its header would) brings the early trials to
            # page 1. Applied again if the page's first column definitions arrive after it and reset it.
            _grid(browser, "api.applyColumnState({state: [{colId: 'trial_id', sort: 'asc'}]}) || true")
        return found

    checkbox = _until(driver, checkbox_or_sort, bool, f"the selection checkbox of {trial_id}")[0]
    before = set(_selected(driver))
    checkbox.click()
    # The grid recycles its row elements: a refresh between finding the box and the click can put another
    # trial's row there. Then that trial is unselected and this one selected through the grid's API.
    wrong = set(_selected(driver)) - before - {trial_id}
    if wrong:
        _grid(driver, f"{json.dumps(sorted(wrong))}.forEach(id => api.getRowNode(id)?.setSelected(false)) || true")
    if trial_id not in _selected(driver):
        _grid(driver, f"api.getRowNode({json.dumps(trial_id)})?.setSelected(true) || true")
    _until(driver, _selected, lambda rows: trial_id in rows and not set(rows) - before - {trial_id},
           f"{trial_id} selected in the grid")


def _trials(location: str) -> Any:
    return read_table(location, "trials").to_pandas()


# --- tests ---------------------------------------------------------------------------------------------------


def test_page_renders_every_view(driver: WebDriver, server: str, synthetic: str) -> None:
    trials = _trials(synthetic)
    total, finished = len(trials), int((trials["status"] == "TERMINATED").sum())
    assert total == 120
    _open(driver, server)
    expected = {"parcoords": total, "curve": total, "ablation": total, "pareto": total, "curves": 5,
                "importance": finished}
    for view in VIEWS:
        _until(driver, lambda d, v=view: d.find_elements(By.CSS_SELECTOR, f"#{v} .js-plotly-plot"), bool,
               f"#{view} drawn")
        _wait_trials(driver, view, expected[view])
    _until(driver, _row_count, lambda n: n == total, f"{total} rows in the grid")
    _until(driver, lambda d: _text(d, "#summary"), lambda text: "advnorm" in text, "the trainer in #summary")
    assert _text(driver, "#summary-1").startswith(f"{total}:")


def test_selecting_a_row_updates_the_comparison(driver: WebDriver, server: str) -> None:
    _on_page(driver, server)
    _select(driver, SELECTED)
    _until(driver, lambda d: _text(d, "#compare-images h4"), lambda text: text == f"A: trial {SELECTED}",
           f"comparison A = {SELECTED}")
    assert driver.find_elements(By.CSS_SELECTOR, "#compare-config-table tbody tr")
    assert driver.find_elements(By.CSS_SELECTOR, "#compare-metrics-table tbody tr")
    images = _until(driver, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#compare-images img')]"
        ".map(img => [new URL(img.src).pathname, img.complete ? img.naturalWidth : 0]);"),
        lambda found: any(path.startswith(f"/artifacts/{SYNTHETIC}/{SELECTED}/") for path, _ in found)
        and all(width > 0 for _, width in found), f"{SELECTED}'s images loaded")
    assert len([path for path, _ in images if f"/{SELECTED}/" in path]) == 2  # one per domain
    _wait_trials(driver, "curves", 1)


def test_live_refresh_keeps_the_selection(driver: WebDriver, server: str, synthetic: str) -> None:
    _on_page(driver, server)
    _select(driver, SELECTED)
    before = len(_trials(synthetic))
    ResultsStore(synthetic).append("trials", [{"trial_id": "t999999", "status": "RUNNING", "config/lambda": 0.5,
                                               "config/disc_arch": "resnet", "config/n_steps": 3, "seed": 0,
                                               "trainer": "advnorm"}])
    _until(driver, _row_count, lambda n: n == before + 1, f"{before + 1} rows after the live refresh")
    assert _selected(driver) == [SELECTED]
    checkbox = driver.find_element(
        By.CSS_SELECTOR, f'.ag-row[row-id="{SELECTED}"] [col-id="ag-Grid-SelectionColumn"] input[type="checkbox"]')
    assert checkbox.is_selected()
    assert _text(driver, "#compare-images h4") == f"A: trial {SELECTED}"
    _wait_trials(driver, "curves", 1)
    _wait_trials(driver, "curve", before + 1)


def test_the_grid_comes_best_first_one_block_at_a_time(driver: WebDriver, server: str, synthetic: str) -> None:
    _open(driver, server)  # a fresh page: no column sorted
    trials = _trials(synthetic)
    best = trials.sort_values("best/val/dice", ascending=False, kind="stable")["trial_id"].iloc[0]
    _until(driver, lambda d: _grid(d, "api.getDisplayedRowAtIndex(0) && api.getDisplayedRowAtIndex(0).id"),
           lambda first: first == best, f"the best trial {best} first")
    assert _row_count(driver) == len(trials)
    rendered = driver.find_elements(By.CSS_SELECTOR, "#grid .ag-center-cols-container .ag-row")
    assert 0 < len(rendered) <= 50  # one page of the infinite row model, not the table


def test_axes_are_titled_and_the_ablation_names_its_test(driver: WebDriver, server: str) -> None:
    _on_page(driver, server)
    for view in ("curve", "pareto", "ablation", "curves"):
        _until(driver, lambda d, v=view: _text(d, f"#{v} .g-xtitle"), bool, f"#{view}'s x-axis title drawn")
    _until(driver, lambda d: _text(d, "#ablation .g-x2title"), lambda text: "paired t" in text,
           "the difference axis to say the seeds paired")
    _until(driver, lambda d: _text(d, "#ablation .g-ytitle"), lambda text: "disc_arch" in text,
           "the levels' axis titled with the factor")


def test_per_case_evidence_and_its_drill_down_to_both_trials_images(driver: WebDriver, server: str) -> None:
    _on_page(driver, server)
    for trial_id in ("t000000", "t000001"):  # the first selected row is A, the second B; both saved pictures
        _select(driver, trial_id)
    _until(driver, lambda d: _text(d, "#compare-images h4"), lambda text: text == "A: trial t000000", "A = t000000")
    _wait_trials(driver, "case-scatter", 6)  # 3 test subjects in each of 2 domains
    assert "Wilcoxon signed-rank p" in _title(driver, "case-scatter")
    _until(driver, lambda d: _text(d, "#case-breakdown-table"), lambda text: "dice/gm" in text,
           "the breakdown per structure")
    button = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#case-extremes button.case-pick"), bool,
                    "a case listed as helped or hurt")[0]
    case = button.text.split(":")[0]
    button.click()
    domain, subject = case.split("/")
    images = _until(driver, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#case-images img')]"
        ".map(img => [new URL(img.src).pathname, img.complete ? img.naturalWidth : 0]);"),
        lambda found: len(found) == 2 and all(width > 0 for _, width in found), f"{case}'s pictures loaded")
    assert sorted(path for path, _ in images) == [f"/artifacts/{SYNTHETIC}/{t}/test-{domain}_{subject}.png"
                                                  for t in ("t000000", "t000001")]
    assert "truth" in _text(driver, "#case-images .panel-names") and "gm" in _text(driver, "#case-images")


def test_rank_stability_blob_plot(driver: WebDriver, server: str) -> None:
    _on_page(driver, server)
    _wait_trials(driver, "ranks", 2)  # the two levels of disc_arch
    assert "bootstrap draws" in _title(driver, "ranks")


def test_the_ablation_table_downloads(driver: WebDriver, server: str, tmp_path: Path) -> None:
    _on_page(driver, server)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    driver.find_element(By.ID, "ablation-md").click()
    target = tmp_path / f"{SYNTHETIC}-ablation.md"
    _until(driver, lambda d: target.exists() and target.read_text(), bool, f"{target.name} downloaded")
    text = target.read_text()
    assert "| level | mean [95% CI] |" in text and "dcgan" in text and "resnet" in text and "paired t" in text


def test_status_filter_applies_to_the_views(driver: WebDriver, server: str, synthetic: str) -> None:
    _on_page(driver, server)
    errors = int((_trials(synthetic)["status"] == "ERROR").sum())
    assert errors > 0
    for label in driver.find_elements(By.CSS_SELECTOR, "#status label"):
        box = label.find_element(By.TAG_NAME, "input")
        if box.is_selected() != (box.get_attribute("value") == "ERROR"):
            label.click()
    _until(driver, lambda d: [b.get_attribute("value") for b in d.find_elements(By.CSS_SELECTOR, "#status input")
                              if b.is_selected()], lambda values: values == ["ERROR"], "only ERROR checked")
    for view in ("curve", "parcoords", "pareto"):
        _wait_trials(driver, view, errors)
    _until(driver, _row_count, lambda n: n == errors, f"{errors} rows in the grid")


def test_switching_experiment(driver: WebDriver, server: str, smoke_experiment: str) -> None:
    total = len(_trials(smoke_experiment))
    assert total == 2
    _open(driver, server)  # a fresh page: every status checked again
    driver.find_element(By.ID, "experiment").click()
    search = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content input[type=search]"),
                    bool, "the experiment dropdown's search box")[0]
    _until(driver, lambda d: _text(d, ".dash-dropdown-content .dash-dropdown-options"), lambda text: SMOKE in text,
           f"{SMOKE} offered in the dropdown")
    search.send_keys(SMOKE)
    _until(driver, lambda d: [o.text for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content [role=option]")],
           lambda options: options == [SMOKE], f"the search to leave only {SMOKE}")
    search.send_keys(Keys.ENTER)
    _until(driver, lambda d: _text(d, "#experiment"), lambda text: text.strip() == SMOKE, f"{SMOKE} chosen")
    _until(driver, lambda d: _text(d, "#summary-1"), lambda text: text.startswith(f"{total}:"),
           f"#summary to count {total} trials")
    assert _text(driver, "#summary-0") == "advnorm"
    _wait_trials(driver, "curve", total)
    _until(driver, _row_count, lambda n: n == total, f"{total} rows in the grid")
    smoke_ids = set(_trials(smoke_experiment)["trial_id"])  # the comparison follows the new experiment
    _until(driver, lambda d: _text(d, "#compare-images h4"),
           lambda text: text.startswith("A: trial ") and text.split()[-1] in smoke_ids, "a smoke trial compared")


def test_experiments_side_by_side(driver: WebDriver, server: str, smoke_experiment: str) -> None:
    _open(driver, server)
    _until(driver, lambda d: d.find_elements(By.ID, "experiments-pick"), bool, "the experiments picker")[0].click()
    search = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content input[type=search]"),
                    bool, "the experiments picker's search box")[0]
    search.send_keys(SMOKE)
    _until(driver, lambda d: [o.text for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content [role=option]")],
           lambda options: SMOKE in options, f"{SMOKE} offered")
    search.send_keys(Keys.ENTER)
    names = _until(driver, lambda d: d.execute_script(
        "const p = document.querySelector('#experiments .js-plotly-plot');"
        "return p && p.data ? p.data.map(t => t.name) : null;"), lambda found: found == [SYNTHETIC, SMOKE],
        "both experiments' bars")
    assert names == [SYNTHETIC, SMOKE]
    assert "lambda" in _title(driver, "experiments")


ASHA = "asha"


@pytest.fixture(scope="module")
def asha(storage: Path) -> str:
    """A small experiment in which the scheduler stopped 4 of 12 trials after 2 of their 4 epochs."""
    from dashboards.bench import build_experiment

    location = build_experiment(storage, ASHA, trials=12, epochs=4, seeds=2, images=0)
    rows = [row for row in _trials(location).to_dict("records") if row["status"] == "TERMINATED"][:4]
    ResultsStore(location).append("trials", [{**row, "epochs": 2, "planned_epochs": 4, "stopped_early": True}
                                             for row in rows])
    return location


def test_selected_trials_are_highlighted_in_parcoords_curve_and_pareto(driver: WebDriver, server: str) -> None:
    _open(driver, server)
    _select(driver, SELECTED)

    def names(view: str) -> list[str]:
        return driver.execute_script("const p = document.querySelector(arguments[0]);"
                                     "return p && p.data ? p.data.map(t => t.name || '') : [];",
                                     f"#{view} .js-plotly-plot")

    for view in ("curve", "pareto"):
        _until(driver, lambda d, v=view: names(v), lambda found: "selected (1)" in found,
               f"#{view} to ring the selected trial")
    _until(driver, lambda d: d.execute_script(
        "const p = document.querySelector('#parcoords .js-plotly-plot');"
        "return p && p.layout && p.layout.meta ? p.layout.meta.selected : null;"), lambda n: n == 1,
        "the parallel coordinates to draw the selected trial in red")
    assert "the 1 selected in red" in _title(driver, "parcoords")


def test_the_new_views_history_timeline_and_errors(driver: WebDriver, server: str, synthetic: str) -> None:
    _on_page(driver, server)
    trials = _trials(synthetic)
    finished = int(trials["status"].isin(["TERMINATED", "ERROR"]).sum())
    _wait_trials(driver, "history", finished)
    assert "Optimisation history of Dice (val, best epoch) (higher is better): best 0." in _title(driver, "history")
    _until(driver, lambda d: _text(d, "#history .g-xtitle"), lambda text: text == "trials finished", "history's x")
    driver.find_element(By.CSS_SELECTOR, "#history-x input[value='time']").click()
    _until(driver, lambda d: _text(d, "#history .g-xtitle"), lambda text: "minutes" in text, "history against time")
    _wait_trials(driver, "timeline", int(trials["started_at"].notna().sum()))  # the live-refresh row never started
    assert "none stopped early" in _title(driver, "timeline")
    errored = trials[trials["status"] == "ERROR"]["trial_id"].tolist()
    entries = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#errors details.error-entry"),
                     lambda found: len(found) == len(errored), f"{len(errored)} errored trials listed")
    entries[0].find_element(By.TAG_NAME, "summary").click()
    _until(driver, lambda d: _text(d, "#errors details[open] pre.traceback"), lambda text: "Traceback" in text
           and "FloatingPointError" in text, "the unfolded traceback")


def test_the_column_chooser_adds_a_column_to_the_grid(driver: WebDriver, server: str) -> None:
    _on_page(driver, server)
    driver.find_element(By.ID, "grid-columns").click()
    search = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content input[type=search]"),
                    bool, "the column chooser's search box")[0]
    search.send_keys("last/val/hd95/infant")
    _until(driver, lambda d: [o.text for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content [role=option]")],
           lambda options: "last/val/hd95/infant" in options, "the column offered")
    search.send_keys(Keys.ENTER)
    search.send_keys(Keys.ESCAPE)
    _until(driver, lambda d: _grid(d, "api.getColumnDefs().map(c => c.field)"),
           lambda fields: "last/val/hd95/infant" in fields, "the grid to show the chosen column")
    # Its values arrive with the rows (read through the API: the grid renders only the columns in view).
    _until(driver, lambda d: _grid(d, "api.getDisplayedRowAtIndex(0)?.data?.['last/val/hd95/infant'] ?? null"),
           lambda value: isinstance(value, (int, float)), "its values in the rows")


def test_the_slice_viewer_scrolls_and_shows_where_two_trials_differ(driver: WebDriver, server: str) -> None:
    _open(driver, server)
    for trial_id in ("t000000", "t000001"):  # both saved volumes of their val cases
        _select(driver, trial_id)
    _until(driver, lambda d: d.execute_script(
        "const p = document.querySelector('#viewer .js-plotly-plot');"
        "return p && p.data ? p.data.filter(t => t.type === 'image').length : 0;"), lambda n: n == 4,
        "A, B, the truth and their difference drawn")
    assert "only A right" in driver.execute_script(
        "return document.querySelector('#viewer .js-plotly-plot').layout.annotations.map(a => a.text).join(' ')")
    rail = driver.find_element(By.CSS_SELECTOR, "#viewer-slice")
    webdriver.ActionChains(driver).move_to_element_with_offset(rail, -rail.size["width"] // 2 + 2, 0).click().perform()
    _until(driver, lambda d: _title(d, "viewer"), lambda text: "axial slice 1 of 16" in text, "the first slice shown")


def test_early_stopped_trials_are_left_out_then_marked_and_the_state_is_in_the_url(driver: WebDriver, server: str,
                                                                                   asha: str) -> None:
    from urllib.parse import parse_qs, urlparse

    driver.get(f"{server}?experiment={ASHA}&score=best%2Fval%2Fdice")  # a shared link opens that view
    _until(driver, lambda d: _text(d, "#experiment"), lambda text: text.strip() == ASHA, f"{ASHA} opened from the URL")
    trials = _trials(asha)
    early = int(trials.drop_duplicates("trial_id", keep="last")["stopped_early"].fillna(False).astype(bool).sum())
    assert early == 4
    _wait_trials(driver, "curve", 12 - early)  # left out by default
    _wait_trials(driver, "timeline", 12 - early)
    driver.find_element(By.CSS_SELECTOR, "#status input[value='STOPPED_EARLY']").click()
    _wait_trials(driver, "curve", 12)
    assert "4 trials stopped early shown apart, not in the means" in _title(driver, "curve")
    assert "stopped early by the scheduler at epoch 2 (4)" in _title(driver, "timeline")
    query = _until(driver, lambda d: parse_qs(urlparse(d.current_url).query),
                   lambda q: "STOPPED_EARLY" in q.get("status", [""])[0], "the status boxes written to the URL")
    assert query["experiment"] == [ASHA] and query["score"] == ["best/val/dice"]
    driver.get(driver.current_url)  # the same link again: the same view
    _until(driver, lambda d: [b.get_attribute("value") for b in d.find_elements(By.CSS_SELECTOR, "#status input")
                              if b.is_selected()], lambda values: "STOPPED_EARLY" in values, "the boxes restored")
    _wait_trials(driver, "curve", 12)


SECTIONS = {"page": None, "grid": "#grid", "parcoords": "#parcoords", "curve": "#curve", "curves": "#curves",
            "history": "#history", "timeline": "#timeline", "comparison": "#compare-metrics", "viewer": "#viewer",
            "errors": "#errors"}


def test_screenshot(driver: WebDriver, server: str, tmp_path: Path) -> None:
    """The whole page and each view as PNGs; with EXPLORER_SCREENSHOTS=DIR they are kept there to look at."""
    _open(driver, server)
    for trial_id in ("t000000", "t000001"):
        _select(driver, trial_id)
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer .js-plotly-plot .layer-subplot"), bool,
           "the viewer drawn")
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#curve .js-plotly-plot"), bool, "the page drawn")
    keep = os.environ.get("EXPLORER_SCREENSHOTS")
    for name, selector in SECTIONS.items():
        path = tmp_path / f"{name}.png"
        element = driver.find_element(By.CSS_SELECTOR, selector) if selector else None
        if element is not None:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            assert element.screenshot(str(path))
        else:
            assert driver.save_screenshot(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2_000, (name, path.stat())
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(keep) / path.name)
