"""What the headless-browser suites share: where Chromium is, the bound of every wait, a free port, the explorer
server's start and stop, and a headless Chromium session.

Selenium is imported inside :func:`headless_chromium` only, so a suite can skip itself (``HAS_CHROMIUM``) on a
machine without a browser before it imports anything of Selenium's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HAS_CHROMIUM = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
# Every wait is on a condition; this is only its bound, generous because the machine may be loaded (a Ray sweep runs
# beside the browser, and other suites beside this one). Raise it with SEGSWEEP_TEST_WAIT_S on a slower machine.
TIMEOUT = float(os.environ.get("SEGSWEEP_TEST_WAIT_S", "300"))
_HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Terminate a process this suite started (kill it if it does not exit in 20 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def wait_for_http(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Return once ``url`` answers 200; fail with the server's log if it exits or ``TIMEOUT`` passes first."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert process.poll() is None, f"explorer exited {process.returncode}:\n{log_path.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        assert time.monotonic() < deadline, f"explorer did not answer at {url}:\n{log_path.read_text()[-3000:]}"
        time.sleep(0.5)


@contextmanager
def headless_chromium(*arguments: str, browser_log: bool = False) -> Iterator[WebDriver]:
    """A headless Chromium session with ``arguments`` beside the headless ones; ``browser_log`` keeps the page's
    console for ``get_log("browser")``. Quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in (*_HEADLESS, *arguments):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_script_timeout(TIMEOUT)
    try:
        yield browser
    finally:
        browser.quit()
