"""The commands the tests run that are not Python (Debian's hey, prometheus, chromium,
openssl; kubectl from the test extras): found, or the test fails naming the package and
how to install it. A missing tool is never a skip: a skipped test passes nothing, and
tests/conftest.py fails any skip that slips through."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

PACKAGE_LIST = Path(__file__).resolve().parents[1] / ".ci" / "system-packages.txt"
"""command, Debian package, what needs it: what `make system` (.ci/system-packages)
installs."""


def debian_packages() -> dict[str, tuple[str, str]]:
    """command -> (its Debian package, what needs it), from .ci/system-packages.txt
    (the packages listed by a file they install, not a command, left out)."""
    packages: dict[str, tuple[str, str]] = {}
    for line in PACKAGE_LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            command, package, why = line.split(maxsplit=2)
            if not command.startswith("/"):
                packages[command] = (package, why)
    return packages


def find_tool(command: str) -> str | None:
    """Where `command` is: on PATH, beside this Python (the venv's bin), or in
    /usr/bin or /usr/sbin."""
    beside = [str(Path(sys.executable).parent), "/usr/bin", "/usr/sbin"]
    return shutil.which(command) or shutil.which(command, path=os.pathsep.join(beside))


def require_tool(command: str) -> str:
    """The path of `command`; when it is missing the test fails, naming the package
    that brings it and the command that installs it."""
    found = find_tool(command)
    if found is not None:
        return found
    debian = debian_packages()
    if command in debian:
        package, why = debian[command]
        pytest.fail(
            f"`{command}` is not installed: {why} need(s) Debian's {package} package. "
            f"`make system` installs it (as root: apt-get install {package}).",
            pytrace=False,
        )
    pytest.fail(
        f"`{command}` is not installed: `make setup` installs it with the test extras "
        "(pip install -e '.[test]').",
        pytrace=False,
    )
