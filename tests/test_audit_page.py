"""The audit page in a real headless browser (Debian's chromium): it loads without console
errors, states the instant audited, has a summary row and a chart with axes per feature, and
calls out a comparison of NULLs only instead of showing it as a pass."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from skewless.audit import AuditReport, FeatureAudit
from skewless.audit_page import render_page, verdict

pytestmark = pytest.mark.full  # needs a browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _report() -> AuditReport:
    numbers = FeatureAudit(
        "lead_activity",
        "emails_7d",
        compared=4,
        equal=3,
        examples=[("lead_id=7", 2, 1)],
        pairs=[(1, 1, True), (2, 2, True), (0, 0, True), (1, 2, False)],
    )
    text = FeatureAudit(
        "lead_profile",
        "industry",
        compared=2,
        equal=2,
        pairs=[("software", "software", True), ("retail", "retail", True)],
    )
    nulls = FeatureAudit(
        "lead_recent_activity", "emails_1h", compared=3, equal=3, pairs=[(None, None, True)] * 3
    )
    return AuditReport(
        datetime(2026, 6, 15, 21, 0), keys=4, threshold=0.0, features=[numbers, text, nulls]
    )


def test_verdicts_name_failures_and_null_only_comparisons() -> None:
    report = _report()
    assert [verdict(f, report.threshold) for f in report.features] == ["fail", "pass", "all NULL"]


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="make test installs chromium")
def test_the_page_reads_at_a_glance_in_a_browser(tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    page = tmp_path / "audit.html"
    page.write_text(render_page(_report()))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(page.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert "2026-06-15 21:00:00 UTC" in driver.find_element(By.TAG_NAME, "h1").text
        rows = driver.find_elements(By.CSS_SELECTOR, "#summary tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows] == [
            "fail",
            "pass",
            "all NULL",
        ]
        charts = driver.find_elements(By.CSS_SELECTOR, "section.chart svg")
        assert len(charts) == 3
        assert all(c.size["width"] > 100 and c.size["height"] > 100 for c in charts)
        scatter = charts[0].get_attribute("outerHTML")
        assert "offline (as-of macro)" in scatter and "served" in scatter  # axis labels
        assert "mismatch (1)" in scatter  # the legend
        assert "compared only NULLs" in driver.find_element(By.TAG_NAME, "p").text
    finally:
        driver.quit()
