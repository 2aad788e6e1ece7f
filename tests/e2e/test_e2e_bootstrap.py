"""The Envoy bootstrap users run (envoy/bootstrap.yaml) and the one the harness renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.testing.envoy import render_bootstrap, validate_config

pytestmark = pytest.mark.e2e

BOOTSTRAP = Path(__file__).resolve().parents[2] / "envoy" / "bootstrap.yaml"


def test_bootstrap_file_is_the_rendered_default() -> None:
    """envoy/bootstrap.yaml is exactly render_bootstrap()'s output for the defaults
    (turnout on 127.0.0.1:18000), so the file and the harness cannot drift apart."""
    assert BOOTSTRAP.read_text() == render_bootstrap()


def test_bootstrap_file_passes_envoy_validate() -> None:
    """`envoy --mode validate -c envoy/bootstrap.yaml` accepts the file."""
    validate_config(BOOTSTRAP)


def test_rendered_bootstrap_with_dns_name_and_odd_node_passes_validate(tmp_path: Path) -> None:
    """A bootstrap for turnout at a DNS name, with a node id YAML 1.1 would read as a
    boolean, is accepted by Envoy."""
    config = tmp_path / "bootstrap.yaml"
    config.write_text(render_bootstrap("turnout.internal", 18001, 0, "on", "no"))
    assert 'id: "on"' in config.read_text()
    validate_config(config)
