"""The dashboard in a real browser: Debian's Chromium, headless, driven by Selenium.

Against a whole Ordinaut (API, beat, worker processes): a person signs in with an agent
token, an agent creates a task through the API, the task shows on the agenda and the task
list, the person runs it now from its page, watches the run appear and succeed, and opens
its step timeline; another agent, signed in, sees none of it. The browser and its driver
come from the system (``apt-get install chromium chromium-driver``, done by ``.ci/run``);
nothing is downloaded at test time. ``ORDINAUT_SCREENSHOTS=docs/screenshots`` saves the
pages the README shows.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(
        "no system Chromium and chromedriver (apt-get install chromium chromium-driver; "
        ".ci/run installs them)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (after the skip: only with a browser)
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

ECHO = {"pipeline": [{"id": "greet", "uses": "builtin.echo", "with": {"hello": "world"}}]}
SHOTS = os.environ.get("ORDINAUT_SCREENSHOTS")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def until(
    driver: WebDriver, check: object, seconds: float, what: str, reload: bool = False
) -> None:
    """Poll ``check(driver)`` (reloading the page between tries if asked) until true."""
    assert callable(check)
    deadline = time.monotonic() + seconds
    while not _safely(check, driver):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; page:\n{driver.page_source[:3000]}"
            )
        time.sleep(0.5)
        if reload:
            driver.refresh()


def _safely(check: object, driver: WebDriver) -> bool:
    """``check(driver)``, False while the page is being replaced under it."""
    assert callable(check)
    try:
        return bool(check(driver))
    except (StaleElementReferenceException, NoSuchElementException):
        return False


def text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


# WCAG 2 contrast of each visible text element against the background it is drawn on
CONTRAST_JS = r"""
function rgb(c) { const m = c.match(/[\d.]+/g).map(Number); return m; }
function lum(c) {
  const [r, g, b] = rgb(c).slice(0, 3).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor; const v = rgb(c);
    if (v.length < 4 || v[3] > 0) { return c; }
  }
  return "rgb(255, 255, 255)";
}
const worst = [];
for (const el of document.querySelectorAll("body *")) {
  const text = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  if (!text || !el.offsetParent) { continue; }
  const a = lum(getComputedStyle(el).color), b = lum(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) {
    worst.push(el.tagName + " '" + el.textContent.trim().slice(0, 30) + "' " + ratio.toFixed(2));
  }
}
return worst;
"""


def low_contrast(driver: WebDriver) -> list[str]:
    """Text on the page below WCAG AA contrast (4.5:1)."""
    found = driver.execute_script(CONTRAST_JS)
    return [str(item) for item in found]


def sign_in(driver: WebDriver, base: str, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/ui/")
    assert driver.current_url.endswith("/ui/login")
    field = driver.find_element(
        By.ID, driver.find_element(By.CSS_SELECTOR, "label[for]").get_attribute("for") or ""
    )
    field.send_keys(token, Keys.ENTER)  # the keyboard is enough
    until(driver, lambda d: "<h1>Agenda</h1>" in d.page_source, 10, "the agenda after sign-in")


@pytest.mark.timeout(180)
def test_a_person_follows_a_task_from_agenda_to_step_timeline(
    stack: Stack, browser: WebDriver
) -> None:
    def agent(name: str) -> str:
        scopes = ["tasks:read", "tasks:write", "runs:read", "events:publish"]
        made = stack.api.post("/agents", json={"name": name, "scopes": scopes})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])

    alice, bob = agent("alice"), agent("bob")
    base = stack.base_url
    sign_in(browser, base, alice)
    cookie = browser.get_cookie("ordinaut_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # an agent creates a task through the API
    body = {
        "title": "Morning briefing",
        "schedule_kind": "rrule",
        "schedule_expr": "FREQ=HOURLY;BYMINUTE=0",
        "timezone": "Europe/Chisinau",
        "payload": ECHO,
    }
    created = stack.api.post("/tasks", json=body, headers={"Authorization": f"Bearer {alice}"})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    others = []
    for title, kind, expr in (
        ("Water the plants", "cron", "0 7 * * *"),
        ("Weekly review", "rrule", "FREQ=WEEKLY;BYDAY=FR;BYHOUR=17;BYMINUTE=30"),
    ):
        other = {**body, "title": title, "schedule_kind": kind, "schedule_expr": expr}
        other["budgets"] = {"tz": "UTC", "runs_per_day": 1}  # a second run today: skipped
        made = stack.api.post("/tasks", json=other, headers={"Authorization": f"Bearer {alice}"})
        assert made.status_code == 201, made.text
        others.append(made.json()["id"])

    browser.get(f"{base}/ui/?days=7")
    assert "Morning briefing" in text(browser) and "Water the plants" in text(browser)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".agenda-item")) >= 7 * 24 - 1 + 7
    assert low_contrast(browser) == []
    shot(browser, "agenda")

    browser.find_element(By.LINK_TEXT, "Tasks").click()
    until(browser, lambda d: "every hour at :00 Europe/Chisinau" in text(d), 10, "the task list")
    assert "Fridays at 17:30 Europe/Chisinau" in text(browser)
    shot(browser, "tasks")
    browser.find_element(By.LINK_TEXT, "Morning briefing").click()
    until(browser, lambda d: "No runs yet." in text(d), 10, "the task page")
    assert browser.current_url.endswith(f"/ui/tasks/{task_id}")

    browser.find_element(By.ID, "action-run_now").click()
    until(browser, lambda d: "Queued a run for now." in text(d), 10, "the run-now notice")
    until(
        browser,
        lambda d: (
            "succeeded" in d.find_element(By.ID, "task-runs").text
            if d.find_elements(By.ID, "task-runs")
            else False
        ),
        30,
        "the run to appear and succeed",
        reload=True,
    )
    shot(browser, "task")

    browser.find_element(By.CSS_SELECTOR, "#task-runs tbody th a").click()
    until(browser, lambda d: d.find_element(By.ID, "run-status").text == "succeeded", 10, "run")
    steps = browser.find_element(By.ID, "steps")
    assert "greet" in steps.text and "builtin.echo" in steps.text and "took" in steps.text
    browser.find_element(By.CSS_SELECTOR, "#steps details summary").click()  # the input
    assert '"hello": "world"' in steps.text
    assert low_contrast(browser) == []
    shot(browser, "run")

    # a second run today passes the task's budget: skipped, and its page says which policy
    browser.get(f"{base}/ui/tasks/{others[0]}")
    for _ in range(2):
        browser.find_element(By.ID, "action-run_now").click()
        until(browser, lambda d: "Queued a run for now." in text(d), 10, "the run-now notice")
    until(
        browser,
        lambda d: "skipped" in d.find_element(By.ID, "task-runs").text,
        30,
        "the second run to be skipped by the budget",
        reload=True,
    )
    browser.find_element(By.CSS_SELECTOR, "#task-runs tbody th a").click()  # newest first
    until(browser, lambda d: "Policy decisions" in text(d), 10, "the skipped run's page")
    assert "runs_per_day 1 of 1" in browser.find_element(By.ID, "decisions").text
    assert low_contrast(browser) == []
    shot(browser, "run-decisions")

    browser.find_element(By.LINK_TEXT, "Activity").click()
    until(browser, lambda d: "Morning briefing" in text(d), 10, "the activity feed")
    feed = browser.find_element(By.ID, "feed")
    until(browser, lambda d: feed.get_attribute("data-live") == "open", 10, "the live feed")
    sent = stack.api.post(
        "/events",
        json={"topic": "garden.watered", "payload": {"why": "the soil sensor said dry"}},
        headers={"Authorization": f"Bearer {alice}"},
    )
    assert sent.status_code == 202, sent.text
    until(browser, lambda d: "garden.watered" in feed.text, 15, "the event on the live feed")
    assert "the soil sensor said dry" in feed.text and '"admin"' not in feed.text
    assert low_contrast(browser) == []
    shot(browser, "activity")
    browser.set_window_size(390, 844)  # a phone
    browser.get(f"{base}/ui/tasks/{task_id}")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the task page scrolls sideways on a phone ({width} px)"
    assert low_contrast(browser) == []
    shot(browser, "phone-task")
    browser.set_window_size(1280, 900)

    # another agent, signed in, sees none of it
    sign_in(browser, base, bob)
    assert "Morning briefing" not in text(browser)
    browser.get(f"{base}/ui/tasks")
    assert "Morning briefing" not in text(browser)
    browser.get(f"{base}/ui/activity")
    assert "Morning briefing" not in text(browser)
    browser.get(f"{base}/ui/tasks/{task_id}")
    assert "Not here" in text(browser)
