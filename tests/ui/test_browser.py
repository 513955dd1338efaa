"""The dashboard in a real headless Chromium: a run parked in a parallel branch is
listed as awaiting, its graph shows the parked nodes, the form approves them and the
page follows the run to its end; another run is cancelled from its page. Screenshots of
the list and run pages are saved (see ``conftest.SCREENSHOTS``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from flowcraft.ui import Guard, SqliteBackend

from .conftest import SCREENSHOTS
from .helpers import REGISTRY_REF, park_runs, resume_elsewhere, served

pytestmark = pytest.mark.timeout(180)


def wait_for(driver: Any, css: str, timeout: float = 15) -> Any:
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def node_state(driver: Any, node_id: str) -> str | None:
    for _ in range(20):  # the live page redraws nodes: an element may go stale while read
        try:
            found = driver.find_elements(By.CSS_SELECTOR, f'#graph svg [data-node="{node_id}"]')
            return found[0].get_attribute("data-state") if found else None
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"node {node_id!r} kept being redrawn")


def until(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (StaleElementReferenceException, NoSuchElementException):  # redrawn meanwhile: look again
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def shot(driver: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(1360, max(700, min(int(height) + 20, 2000)))
    try:
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    finally:
        driver.set_window_size(1360, 900)


def test_approve_a_parked_branch_and_watch_the_run_complete(browser: Any, store: str) -> None:
    park_runs(store, ["order-1001", "order-1002", "order-1003"])
    with served(SqliteBackend(store, registry=REGISTRY_REF)) as server:
        browser.get(server.url + "/")
        rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        assert [row.get_attribute("data-run") for row in rows] == ["order-1003", "order-1002", "order-1001"]
        assert {row.get_attribute("data-state") for row in rows} == {"awaiting"}
        chip = browser.find_element(By.CSS_SELECTOR, '#state-filter [data-state="awaiting"] b')
        assert chip.text == "3"
        shot(browser, "runs")

        browser.find_element(By.LINK_TEXT, "order-1002").click()
        wait_for(browser, '#graph[data-drawn="true"]')
        until(lambda: node_state(browser, "w1") == "waiting")
        assert node_state(browser, "w2") == "waiting"
        assert node_state(browser, "a") == "done"
        assert browser.find_element(By.ID, "run-state").get_attribute("data-state") == "awaiting"
        # the context is text, never markup
        assert "<b>not bold</b>" in browser.find_element(By.ID, "context").text
        assert not browser.find_elements(By.CSS_SELECTOR, "#context b")
        shot(browser, "run-awaiting")

        # approve w1 with a JSON value (any action), then w2 with its "ok" button
        form = browser.find_element(By.CSS_SELECTOR, '.wait[data-wait="w1#1"] form')
        form.find_element(By.NAME, "value").send_keys('{"approved_by": "ana"}')
        form.find_element(By.CSS_SELECTOR, 'button[value="default"]').click()
        wait_for(browser, "#notice")
        until(lambda: node_state(browser, "w1") in ("resumed", "done"))
        assert node_state(browser, "w2") == "waiting"
        form = browser.find_element(By.CSS_SELECTOR, '.wait[data-wait="w2#1"] form')
        form.find_element(By.NAME, "value").send_keys('"looks good"')
        form.find_element(By.CSS_SELECTOR, 'button[value="ok"]').click()
        wait_for(browser, "#notice")
        until(lambda: browser.find_element(By.ID, "run-state").get_attribute("data-state") == "completed")
        until(lambda: node_state(browser, "join") == "done")
        # the context panel follows the run's state in the next live update
        until(lambda: all(text in browser.find_element(By.ID, "context").text
                          for text in ("approved_by", "looks good", "collected")))  # fmt: skip
        kinds = [row.get_attribute("data-kind") for row in browser.find_elements(By.CSS_SELECTOR, "#timeline tr")]
        assert "WaitResolved" in kinds
        shot(browser, "run-completed")

        # live: a run resumed by another process is followed without a reload
        browser.get(server.url + "/runs/order-1003")
        wait_for(browser, '#graph[data-drawn="true"]')
        browser.execute_script("window.__same_page = true;")
        resume_elsewhere(store, "order-1003", "w1#1", "x")
        resume_elsewhere(store, "order-1003", "w2#1", "y", action="no")
        until(lambda: browser.find_element(By.ID, "run-state").get_attribute("data-state") == "completed")
        until(lambda: node_state(browser, "join") == "done")
        assert browser.execute_script("return window.__same_page === true;")


def test_cancel_a_run_from_its_page(browser: Any, store: str) -> None:
    park_runs(store, ["to-cancel"])
    with served(SqliteBackend(store)) as server:
        browser.get(server.url + "/runs/to-cancel")
        wait_for(browser, '#graph[data-drawn="true"]')
        browser.find_element(By.ID, "cancel-button").click()
        wait_for(browser, "#notice")
        assert browser.find_element(By.ID, "run-state").get_attribute("data-state") == "cancelled"
        assert "cancelled from the dashboard" in browser.find_element(By.ID, "cancel-reason").text
        assert not browser.find_elements(By.CSS_SELECTOR, ".wait form")
        browser.get(server.url + "/?state=cancelled")
        assert [r.get_attribute("data-run") for r in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")] == [
            "to-cancel"
        ]


def test_a_token_guarded_dashboard_refuses_the_browser_without_it(browser: Any, store: str) -> None:
    park_runs(store, ["guarded"])
    with served(SqliteBackend(store), Guard("127.0.0.1", "s3cret")) as server:
        browser.delete_all_cookies()
        browser.get(server.url + "/")
        assert "Token required" in browser.find_element(By.ID, "error-page").text
        browser.get(server.url + "/?token=s3cret")
        wait_for(browser, "#runs")
        assert "token" not in browser.current_url
        browser.get(server.url + "/runs/guarded")
        assert browser.find_element(By.ID, "run-id").text == "guarded"
        browser.delete_all_cookies()
