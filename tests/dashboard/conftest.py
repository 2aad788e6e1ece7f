"""Fixtures for the dashboard's browser tests: one headless Chromium per module
(Debian's /usr/bin/chromium driven by Playwright; never `playwright install`), and
where each view's screenshot goes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from system_tools import require_tool  # tests/ (rootdir)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """$TURNOUT_CHROMIUM, else Debian's chromium: a missing one fails the test naming the
    package (tests/system_tools.py), never a skip."""
    configured = os.environ.get("TURNOUT_CHROMIUM")
    if configured:
        return configured
    return CHROMIUM if Path(CHROMIUM).exists() else require_tool("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests (each test opens its own context)."""
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        pytest.fail("Playwright for Python is missing: `make setup` installs the test extras")
    executable = _chromium()
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the views' screenshots go: $TURNOUT_SCREENSHOTS (the README's are made with
    TURNOUT_SCREENSHOTS=docs/screenshots), else a temporary directory."""
    configured = os.environ.get("TURNOUT_SCREENSHOTS")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
