"""Open an HTML file in headless Chromium (Debian's ``chromium``, via Playwright): errors, charts, screenshot."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "outputs" / "test_artifacts"


@dataclass(frozen=True)
class PageCheck:
    errors: list[str]  # console errors and uncaught exceptions
    charts: dict[str, int]  # plotly div id -> number of <svg> elements inside it
    text: str
    network: list[str]  # requests for anything but the file itself
    screenshot: Path


def open_in_chromium(page_file: Path, screenshot: Path, wait_for_charts: bool = True, width: int = 1400) -> PageCheck:
    """Load ``page_file``, wait until the page is parsed and (unless ``wait_for_charts`` is False: a page without
    charts) until Plotly has drawn every chart, then take a screenshot of the whole page."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page_file_uri = page_file.resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        network: list[str] = []
        page.on("request", lambda request: network.append(request.url) if request.url != page_file_uri else None)
        page.goto(page_file_uri, wait_until="networkidle")
        page.wait_for_function("document.readyState === 'complete'", timeout=30_000)  # a long page parses on
        if wait_for_charts:
            page.wait_for_function(  # every chart drawn, not only the first
                "[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('svg'))"
                " && document.querySelectorAll('.plotly-graph-div svg').length > 0",
                timeout=30_000,
            )
        charts = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('.plotly-graph-div')]"
            ".map(d => [d.id, d.querySelectorAll('svg').length]))"
        )
        text = page.inner_text("body")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    print(f"\nscreenshot: {screenshot}")
    return PageCheck(errors, charts, text, network, screenshot)
