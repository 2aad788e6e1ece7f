"""Envoy itself accepts what we generate: `envoy --mode validate` on a static bootstrap."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from turnout.testing.envoy import find_envoy
from turnout.translate import translate

from ._policies import comprehensive
from ._static import static_bootstrap


@pytest.mark.e2e
def test_envoy_validates_translation(tmp_path: Path) -> None:
    """Envoy 1.40 validates every translated listener, route and cluster (exit status 0)."""
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(static_bootstrap(translate(comprehensive()).all)))
    result = subprocess.run(
        [
            find_envoy(),
            "--mode",
            "validate",
            "-c",
            str(config),
            "--log-level",
            "error",
            "--base-id",
            str(40_000 + os.getpid() % 20_000),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
