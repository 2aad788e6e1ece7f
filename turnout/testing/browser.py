"""A headless Chromium for browser tests and benchmarks: Debian's `/usr/bin/chromium`
driven by Playwright for Python (never `playwright install`: its own browser download
is not needed, and not reachable where turnout is built)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium_path", "launch_chromium"]

CHROMIUM = "/usr/bin/chromium"
"""Where Debian's package puts it; $TURNOUT_CHROMIUM overrides."""

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """The Chromium to drive ($TURNOUT_CHROMIUM, /usr/bin/chromium, or `chromium` on
    PATH); None when there is none."""
    configured = os.environ.get("TURNOUT_CHROMIUM", CHROMIUM)
    if Path(configured).exists():
        return configured
    return shutil.which("chromium")


def launch_chromium(playwright: Any, executable: str | None = None) -> Any:
    """A headless Chromium browser from a started ``sync_playwright()``."""
    path = executable or chromium_path()
    if path is None:
        raise FileNotFoundError(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
