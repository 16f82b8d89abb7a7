"""Debian's chromium through Playwright, for the tests that open the dashboard as a user would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_api

CHROMIUM = Path(os.environ.get("GROUNDSWELL_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():  # `make test` installs it; a silent skip would hide the whole browser suite
    raise RuntimeError(f"no chromium at {CHROMIUM}: `make chromium` (apt-get install -y chromium) installs it")


@contextmanager
def chromium() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def open_dashboard(browser: Any, port: int, token: str, errors: list[str]) -> Any:
    """A fresh context signed in by pasting the token; uncaught page errors are appended to `errors`."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{port}/dashboard")
    page.fill("#token-input", token)
    page.click("#login-form button")
    page.wait_for_function("window.__dashboardReady !== undefined", timeout=15_000)
    return page
