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

from turnout.testing.browser import chromium_path, launch_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests (each test opens its own context). A missing
    Chromium or Playwright fails the test naming what installs it, never a skip."""
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        pytest.fail("Playwright for Python is missing: `make setup` installs the test extras")
    executable = chromium_path() or require_tool("chromium")
    with playwright_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
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
