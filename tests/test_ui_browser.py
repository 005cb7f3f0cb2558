"""The UI in a real browser (headless chromium through selenium): list, filter, one
execution with its timeline, cancel, a script in a payload, and the token.

Skipped with an install hint where chromium or chromedriver is missing; `.ci/run`
installs them.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dolmen.cli.ui.app import UiConfig
from tests import workflows as w
from tests.ui_support import XSS, XSS_ID, browser, screenshot, seed, serving

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def driver():
    with browser() as d:
        d.set_page_load_timeout(60)
        yield d


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ui") / "dolmen.db")
    seed(path)
    return path


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_list_filter_execution_timeline_and_xss(driver, seeded, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with serving(UiConfig(seeded, read_only=True)) as base:
        driver.get(base + "/")
        rows = driver.find_elements(By.CSS_SELECTOR, "#executions tbody tr")
        assert len(rows) == 50  # a full first page, and a next one
        assert driver.find_element(By.ID, "next")
        counts = {
            b.get_attribute("data-status"): int(b.text)
            for b in driver.find_elements(By.CSS_SELECTOR, "#counts b")
        }
        assert counts["failed"] > 0 and counts["running"] > 0
        screenshot(driver, tmp_path, "list")

        # Filter: only failed ones, the count says how many, every row says failed.
        Select(driver.find_element(By.NAME, "status")).select_by_value("failed")
        driver.find_element(By.ID, "apply").click()
        _wait(driver, lambda d: "status=failed" in d.current_url)
        statuses = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "td.status")]
        assert statuses and set(statuses) == {"failed"}
        assert len(statuses) == min(counts["failed"], 50)

        # One execution: its error chain and a drawn timeline.
        driver.find_element(By.CSS_SELECTOR, "#executions tbody a").click()
        _wait(driver, lambda d: "/x/" in d.current_url)
        assert driver.find_element(By.ID, "status").text == "failed"
        assert driver.find_elements(By.CSS_SELECTOR, ".error b")
        svg = driver.find_element(By.CSS_SELECTOR, "#timeline svg")
        assert svg.size["width"] > 100 and svg.size["height"] > 20
        bars = driver.find_elements(By.CSS_SELECTOR, "#timeline svg rect")
        assert len(bars) >= 2
        assert driver.find_elements(By.CSS_SELECTOR, "#timeline svg g.critical")
        assert driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
        screenshot(driver, tmp_path, "execution")

        # A script as an argument (and in the id and workflow) is shown, not run.
        driver.get(base + "/x/" + quote(XSS_ID, safe=""))
        assert driver.find_element(By.TAG_NAME, "h1").text == XSS_ID
        assert XSS in driver.find_element(By.ID, "input").text
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018 - raises when no alert is open
        assert driver.execute_script("return window.__xss === undefined")
        driver.get(base + "/?q=xss")
        assert driver.find_element(By.CSS_SELECTOR, "#executions tbody a").text == XSS_ID
        assert driver.execute_script("return window.__xss === undefined")

        driver.get(base + "/stats")
        charts = driver.find_elements(By.CSS_SELECTOR, "#charts svg")
        assert len(charts) >= 3
        assert driver.find_elements(By.CSS_SELECTOR, "#charts svg rect")
        screenshot(driver, tmp_path, "stats")


@pytest.mark.ray
def test_cancel_from_the_browser_changes_the_status(driver, client, db_path, tmp_path):
    from selenium.webdriver.common.by import By

    handle = client.start(w.signalled, "never", id="to-cancel")
    assert handle.status()["status"] == "running"
    with serving(UiConfig(db_path, client_factory=lambda: client)) as base:
        driver.get(base + "/x/to-cancel")
        assert driver.find_element(By.ID, "status").text == "running"
        driver.find_element(By.ID, "cancel").click()
        # The confirmation page: nothing happened yet.
        _wait(driver, lambda d: d.find_elements(By.ID, "confirm"))
        assert handle.status()["status"] == "running"
        driver.find_element(By.ID, "confirm").click()
        # Back on the execution page, which reloads itself when the status changes.
        _wait(driver, lambda d: d.find_element(By.ID, "status").text == "cancelled")
    assert handle.status()["status"] == "cancelled"


def test_token_is_required_off_loopback(driver, seeded):
    from selenium.webdriver.common.by import By

    with serving(UiConfig(seeded, token="s3cret-token"), host="0.0.0.0") as base:
        driver.delete_all_cookies()
        driver.get(base + "/")
        assert "needs its token" in driver.find_element(By.TAG_NAME, "body").text
        assert not driver.find_elements(By.ID, "executions")
        driver.get(base + "/?token=wrong")
        assert not driver.find_elements(By.ID, "executions")
        driver.get(base + "/?token=s3cret-token")
        assert driver.find_elements(By.ID, "executions")
        assert "token" not in driver.current_url  # the cookie carries it from now on
        driver.get(base + "/stats")
        assert driver.find_elements(By.ID, "charts")
        driver.delete_all_cookies()
