"""Fixtures of the dashboard's tests: a store with parked runs, a served dashboard, and a
real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DURABLE = ROOT / "tests" / "durable"  # wait_nodes: the graphs and nodes of the waits suite
if str(DURABLE) not in sys.path:
    sys.path.insert(0, str(DURABLE))
SCREENSHOTS = Path(os.environ.get("FLOWCRAFT_UI_SCREENSHOTS") or ROOT / "screenshots" / "ui")
"""Where the browser tests save their screenshots (``FLOWCRAFT_UI_SCREENSHOTS=docs/assets/ui``
refreshes the ones the docs show)."""


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "the dashboard's browser tests need Debian's chromium and chromium-driver: "
            "apt-get install chromium chromium-driver (scripts/test installs them when run as root)"
        )
    return browser, driver


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium driven by Selenium (no browser or driver is downloaded)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager downloads nothing
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
        "--window-size=1360,900", "--force-device-scale-factor=1", "--hide-scrollbars",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")
