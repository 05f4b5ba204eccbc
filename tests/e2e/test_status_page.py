"""The status page in a real headless browser (Debian's chromium, driven through
chromedriver by selenium): it loads, lists an incident the test posted, shows the
incident's explanation, and creates and expires a silence from its form. Screenshots go
to test-artifacts/ (status-list.png, status-incident.png, status-silences.png)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Daemon, missing_service
from tests.e2e.tools import burst, get_json, iso_now, post_alerts, require_binary

pytestmark = pytest.mark.tools
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_binary("chromium", "chromium")
    driver_bin = require_binary("chromedriver", "chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_service("selenium is not installed: pip install -e '.[test]'")
    profile = tempfile.mkdtemp(prefix="stormwatch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_bin), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, css_class: str, text: str) -> Any:
    """The element of that class once it shows `text` (the page after a click arrives
    after click() returns: poll with a deadline)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    where = (By.CLASS_NAME, css_class)
    WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element(where, text))
    return driver.find_element(*where)


def _wait_url(driver: Any, part: str) -> None:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(ec.url_contains(part))


def _shot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(int(height) + 40, 4000)))
    assert driver.save_screenshot(str(ARTIFACTS / name))


def test_status_page_lists_explains_and_silences(
    daemon_factory: Callable[..., Daemon], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    daemon = daemon_factory()
    post_alerts(daemon, burst(5))
    (incident,) = get_json(daemon, "/api/v1/incidents")

    browser.get(daemon.url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Open incidents (1)"
    refresh = browser.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert int(refresh.get_attribute("content")) > 0
    row = browser.find_element(By.CSS_SELECTOR, "tbody tr")
    assert "checkout: 5 alerts within a minute" in row.text
    assert "P2" in row.text and "service-alert-burst" in row.text and "jsonl: delivered" in row.text
    _shot(browser, "status-list.png")

    row.find_element(By.LINK_TEXT, "checkout: 5 alerts within a minute").click()
    _wait_url(browser, "/status/incidents/")
    assert browser.current_url.endswith(f"/status/incidents/{incident['key']}")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "5 matching alerts within 1m (event_count gte 5)" in page
    assert "rules/defaults/monitoring.yaml:9" in page  # the rule's file:line
    decided = next(line for line in page.splitlines() if line.startswith("decided"))
    assert "UTC" in decided, decided  # the processing time it opened at, not a dash
    assert page.count("alertname=HighErrorRate") >= 10  # the window and the alert list
    _shot(browser, "status-incident.png")

    browser.find_element(By.LINK_TEXT, "silences").click()
    _wait_url(browser, "/status/silences")
    assert "No silences." in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.ID, "matchers").send_keys('service="checkout"\nseverity=~"warn.*"')
    duration = browser.find_element(By.ID, "duration")
    duration.clear()
    duration.send_keys("90m")
    browser.find_element(By.ID, "created_by").send_keys("browser-test")
    browser.find_element(By.ID, "comment").send_keys("deploying checkout")
    browser.find_element(By.XPATH, "//button[text()='Create silence']").click()
    notice = _wait(browser, "notice", "created silence").text
    assert notice.startswith("created silence sil-")
    (silence,) = get_json(daemon, "/api/v1/silences")
    assert silence["matchers"] == ['service="checkout"', 'severity=~"warn.*"']
    assert silence["created_by"] == "browser-test"
    assert 89 * 60 < silence["ends_at"] - silence["starts_at"] <= 90 * 60
    table = browser.find_element(By.TAG_NAME, "table").text
    assert "active" in table and "deploying checkout" in table
    _shot(browser, "status-silences.png")

    browser.find_element(By.ID, "matchers").send_keys('service=~"(bad"')
    browser.find_element(By.ID, "created_by").send_keys("x")
    browser.find_element(By.ID, "comment").send_keys("x")
    browser.find_element(By.XPATH, "//button[text()='Create silence']").click()
    assert "invalid regex" in _wait(browser, "error", "invalid regex").text
    assert len(get_json(daemon, "/api/v1/silences")) == 1  # the bad one was not added

    browser.find_element(By.XPATH, "//button[text()='Expire']").click()
    assert "expired silence" in _wait(browser, "notice", "expired silence").text
    assert get_json(daemon, "/api/v1/silences") == []


def test_health_and_rules_pages_render(daemon_factory: Callable[..., Daemon], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    daemon = daemon_factory()
    post_alerts(daemon, [{"labels": {"alertname": "A", "service": "s"}, "startsAt": iso_now()}])
    browser.get(daemon.url + "/status/health")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "alertmanager" in text and "jsonl" in text and "running" in text
    _shot(browser, "status-health.png")
    browser.get(daemon.url + "/status/rules")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "Rules (6)" in text and "last load ok" in text and "watchdog-missing" in text
    _shot(browser, "status-rules.png")


def test_pages_answer_without_a_browser(daemon_factory: Callable[..., Daemon]) -> None:
    """JavaScript off is the only mode: every page is whole HTML, forms post plainly."""
    daemon = daemon_factory()
    for path in ("/", "/status/silences", "/status/health", "/status/rules"):
        status, body = daemon.get(path)
        assert status == 200 and b"<script" not in body and b"</html>" in body, path
    status, _ = daemon.get("/status/incidents/inc-nope")
    assert status == 404
    status, body, _ = daemon.post(
        "/status/silences",
        b"matchers=a%3D%22b%22&duration=1h&created_by=me&comment=c",
        "application/x-www-form-urlencoded",
    )
    assert status == 200 and b"created silence" in body  # followed the 303 to the list
    assert Path(ARTIFACTS).parent == ROOT
