"""The Delta bootstrap users run (envoy/bootstrap-delta.yaml): rendered, valid, and
exactly the SotW bootstrap but for the ADS api_type."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.testing.envoy import render_bootstrap, validate_config

pytestmark = pytest.mark.e2e

ENVOY_DIR = Path(__file__).resolve().parents[2] / "envoy"
DELTA_BOOTSTRAP = ENVOY_DIR / "bootstrap-delta.yaml"


def test_delta_bootstrap_file_is_the_rendered_default() -> None:
    """envoy/bootstrap-delta.yaml is render_bootstrap(api_type="DELTA_GRPC")'s output,
    so the file and the harness cannot drift apart."""
    assert DELTA_BOOTSTRAP.read_text() == render_bootstrap(api_type="DELTA_GRPC")


def test_delta_bootstrap_differs_from_sotw_only_in_api_type() -> None:
    """Apart from its header comment, the Delta bootstrap is the SotW one with
    `api_type: DELTA_GRPC`."""
    sotw = [line for line in render_bootstrap().splitlines() if not line.startswith("#")]
    delta = [
        line
        for line in render_bootstrap(api_type="DELTA_GRPC").splitlines()
        if not line.startswith("#")
    ]
    changed = [(a, b) for a, b in zip(sotw, delta, strict=True) if a != b]
    assert changed == [("    api_type: GRPC", "    api_type: DELTA_GRPC")]


def test_delta_bootstrap_file_passes_envoy_validate() -> None:
    """`envoy --mode validate -c envoy/bootstrap-delta.yaml` accepts the file."""
    validate_config(DELTA_BOOTSTRAP)


def test_unknown_api_type_is_refused() -> None:
    """render_bootstrap refuses an api_type other than GRPC or DELTA_GRPC."""
    with pytest.raises(ValueError, match="api_type"):
        render_bootstrap(api_type="REST")
