"""Fixtures for the dashboard's browser tests: one headless Chromium per module
(Debian's /usr/bin/chromium driven by Playwright; never `playwright install`), and
where each view's screenshot goes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnout.testing.browser import CHROMIUM, chromium_path, launch_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests (each test opens its own context)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium`")
        pytest.skip(f"no Chromium at {CHROMIUM}")
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
