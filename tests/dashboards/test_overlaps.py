"""No text over other text or over the data, at the two widths a reviewer reads the explorer at (1280 and 1920 px).

Starts ``python -m dashboards.app`` on a small synthetic experiment, opens it in headless Chromium and, once every
graph has drawn and stopped changing, measures the rendered text of every plotly graph by its bounding box (titles,
axis titles, tick labels, legends, bar value labels) and asserts: no two boxes overlap, none runs out of the
figure, no legend or title lies on the plot area, bar value labels are at least 10 px and not crossed by their
error bars. A screenshot of every graph at both widths is saved under ``test-output/screenshots/`` (git-ignored)
for a person to look at.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

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
    pytest.skip(f"the overlap test needs {CHROMIUM} and {CHROMEDRIVER}", allow_module_level=True)

# Selenium after the skip: only needed where a browser exists.
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow

WIDTHS = (1280, 1920)
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
MIN_LABEL_PX = 10.0  # bar value labels readable

# Every text box of every plotly graph, grouped by what it is, with the plot areas and error bars; and a signature
# of what is drawn, so the test waits until the page stops changing.
MEASURE = """
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const shown = e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
                     return r.width > 0.5 && r.height > 0.5 && s.visibility !== 'hidden' && s.display !== 'none'
                            && (e.textContent || '').trim() !== '' || e.matches('g.legend'); };
const graphs = [];
for (const plot of document.querySelectorAll('.js-plotly-plot')) {
  const graph = plot.closest('.dash-graph');
  const id = graph ? graph.id : plot.id;
  const texts = [];
  const add = (kind, selector) => plot.querySelectorAll(selector).forEach(e => {
    if (shown(e)) texts.push({kind, text: (e.textContent || '').slice(0, 60), box: box(e),
                              size: parseFloat(getComputedStyle(e).fontSize) || 0}); });
  add('title', '.gtitle');
  add('axis title', '.xtitle, .ytitle, .x2title, .y2title, .x3title, .y3title');
  add('tick', '.xtick text, .ytick text, .x2tick text, .y2tick text');
  add('legend', 'g.legend');
  add('bar text', 'text.bartext');
  add('colorbar', '.cbtitle text, .cbaxis text');
  add('parcoords title', '.axis-title');
  const areas = [...plot.querySelectorAll('.nsewdrag')].map(box);
  const whiskers = [...plot.querySelectorAll('g.errorbar path')].map(box);
  const rect = plot.getBoundingClientRect();
  graphs.push({id, texts, areas, whiskers, width: rect.width, height: rect.height, frame: box(plot),
               traces: (plot.data || []).length});
}
return graphs;
"""
SIGNATURE = """
const plots = [...document.querySelectorAll('.js-plotly-plot')];
const pending = document.querySelectorAll('.dash-graph[data-dash-is-loading="true"]').length;
return JSON.stringify([pending, plots.map(p => [p.id, (p.data || []).length,
                       p.layout && p.layout.title ? p.layout.title.text : '',
                       p.querySelectorAll('text').length])]);
"""
# Graphs that must have drawn data on this experiment before anything is measured.
DRAWN = ("parcoords", "curve", "ablation", "pareto", "curves", "history", "timeline", "importance")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from dashboards.bench import build_experiment

    storage = tmp_path_factory.mktemp("overlap-storage")
    build_experiment(storage, "synthetic", trials=24, epochs=4, seeds=2, images=2)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = storage.parent / "overlap-server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "dashboards.app", "--storage", str(storage), "--port",
                                    str(port), "--no-live"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_http(url, process, log_path)
            yield url
        finally:
            stop(process)


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with headless_chromium("--hide-scrollbars", "--force-device-scale-factor=1") as browser:
        yield browser


def _overlap(a: list[float], b: list[float], tolerance: float = 1.0) -> bool:
    """Whether two boxes (left, top, right, bottom) share more than ``tolerance`` px in both directions."""
    return min(a[2], b[2]) - max(a[0], b[0]) > tolerance and min(a[3], b[3]) - max(a[1], b[1]) > tolerance


def problems(graph: dict[str, Any]) -> list[str]:
    """What a reviewer would flag in one measured graph (empty: nothing)."""
    found = []
    texts = graph["texts"]
    for i, first in enumerate(texts):
        for second in texts[i + 1:]:
            if first["kind"] == second["kind"] == "bar text":
                continue  # grouped bars' labels sit in their own bars; whiskers are checked below
            if _overlap(first["box"], second["box"]):
                found.append(f"{first['kind']} {first['text']!r} overlaps {second['kind']} {second['text']!r}")
    frame = graph.get("frame")
    for text in texts:
        if frame and not (text["box"][0] >= frame[0] - 1 and text["box"][2] <= frame[2] + 1
                          and text["box"][1] >= frame[1] - 1 and text["box"][3] <= frame[3] + 1):
            found.append(f"{text['kind']} {text['text']!r} runs out of the figure")
        if text["kind"] in ("legend", "title", "axis title") and any(_overlap(text["box"], area, 2.0)
                                                                   for area in graph["areas"]):
            found.append(f"{text['kind']} {text['text']!r} lies on the plot area")
        if text["kind"] == "bar text":
            if text["size"] < MIN_LABEL_PX:
                found.append(f"bar label {text['text']!r} is {text['size']:.1f} px (< {MIN_LABEL_PX:g})")
            if any(_overlap(text["box"], whisker, 0.5) for whisker in graph["whiskers"]):
                found.append(f"bar label {text['text']!r} is crossed by an error bar")
    return found


def _settled(driver: WebDriver) -> Any:
    """Wait until every expected graph has data and two looks at the page agree (nothing still redrawing)."""
    last: list[Any] = [None]

    def ready(browser: WebDriver) -> bool:
        drawn = browser.execute_script(
            "return arguments[0].every(id => { const p = document.querySelector('#' + id + ' .js-plotly-plot');"
            " return p && p.data && p.data.length > 0; });", list(DRAWN))
        signature = browser.execute_script(SIGNATURE)
        stable = drawn and signature == last[0] and signature.startswith("[0,")  # [0, ...]: no graph loading
        last[0] = signature
        return bool(stable)

    WebDriverWait(driver, TIMEOUT, poll_frequency=1.0,
                  ignored_exceptions=[StaleElementReferenceException, WebDriverException]).until(ready)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_text_overlaps_text_or_data(server: str, driver: WebDriver, width: int) -> None:
    driver.set_window_size(width, 1200)
    driver.get(server)
    _settled(driver)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 100, 16000))  # the whole page in one viewport: nothing lazy
    _settled(driver)
    graphs = driver.execute_script(MEASURE)
    assert {g["id"] for g in graphs} >= set(DRAWN), [g["id"] for g in graphs]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"page-{width}.png"))
    for element in driver.find_elements(By.CSS_SELECTOR, ".dash-graph"):
        name = element.get_attribute("id")
        if name and element.size["height"] > 10:
            element.screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))
    report = {g["id"]: problems(g) for g in graphs}
    flagged = {name: found for name, found in report.items() if found}
    assert not flagged, f"at {width} px (screenshots in {SCREENSHOTS}):\n" + "\n".join(
        f"{name}: " + "; ".join(found) for name, found in flagged.items())


def test_the_checks_flag_what_they_should() -> None:
    """The geometry itself, on hand-made boxes: overlapping labels, a legend on the data, a small crossed label."""
    graph = {"texts": [{"kind": "tick", "text": "a", "box": [0, 0, 20, 10], "size": 12},
                       {"kind": "axis title", "text": "b", "box": [10, 5, 40, 15], "size": 12},
                       {"kind": "legend", "text": "", "box": [100, 100, 150, 150], "size": 0},
                       {"kind": "bar text", "text": "0.9", "box": [300, 0, 320, 8], "size": 7},
                       {"kind": "axis title", "text": "long", "box": [380, 300, 420, 310], "size": 12}],
             "areas": [[90, 90, 200, 200]], "whiskers": [[305, 2, 330, 4]], "frame": [0, 0, 400, 400]}
    found = problems(graph)
    assert any("overlaps" in f for f in found) and any("plot area" in f for f in found)
    assert any("px" in f for f in found) and any("error bar" in f for f in found)
    assert any("out of the figure" in f for f in found)
    assert problems({"texts": [], "areas": [], "whiskers": []}) == []
