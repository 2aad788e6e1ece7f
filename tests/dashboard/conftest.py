"""Fixtures for the dashboard's browser tests: one headless Chromium per module
(Debian's /usr/bin/chromium driven by Playwright; never `playwright install`), and
where each view's screenshot goes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
    path = os.environ.get("TURNOUT_CHROMIUM", CHROMIUM)
    if not Path(path).exists() and shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {path}: `apt-get install chromium`")
        pytest.skip(f"no Chromium at {path}")
    return path if Path(path).exists() else str(shutil.which("chromium"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests (each test opens its own context)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
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
