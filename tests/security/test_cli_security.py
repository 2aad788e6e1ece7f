"""The security options of `turnout serve`, and `turnout status` reaching it over
mutual TLS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from turnout.cli import main
from turnout.testing.control import TurnoutProcess

from .conftest import SPIFFE_A, Pki

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "stable: v1\ntraffic: {v1: 100}\n"
)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "gw.yaml").write_text(GATEWAY)
    (directory / "web.yaml").write_text(SERVICE)
    return directory


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca needs --tls-cert"),
        (
            ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"],
            "--tls-client-ca needs --identity-map",
        ),
        (["--identity-map", "ids.yaml"], "--identity-map needs --tls-client-ca"),
        (["--tls-cert", "missing.crt", "--tls-key", "missing.key"], "cannot read missing.crt"),
        (["--max-streams-per-peer", "-1"], "-1 is not in the range x>=0"),
        (["--max-request-bytes", "0"], "0 is not in the range x>=1"),
    ],
)
def test_inconsistent_security_options_are_usage_errors(
    policies: Path, args: list[str], message: str
) -> None:
    """Options that do not make sense together (or unusable files) stop `turnout serve`
    before it listens, with a message naming the options and no traceback."""
    result = CliRunner().invoke(main, ["serve", "--policies", str(policies), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert "direct cause" not in result.output


def test_a_bad_identity_map_names_the_file(pki: Pki, policies: Path, tmp_path: Path) -> None:
    """An identity map that does not parse stops `turnout serve` with the file and why."""
    cert, key = pki.server.write(tmp_path, "server")
    identities = tmp_path / "ids.yaml"
    identities.write_text("proxies:\n  https://example.org: [x]\n")
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(pki.ca_path)]
    result = CliRunner().invoke(
        main, ["serve", "--policies", str(policies), *args, "--identity-map", str(identities)]
    )
    assert result.exit_code == 2
    assert f"{identities}: proxies: 'https://example.org' is neither a SPIFFE ID" in result.output


def test_status_reaches_turnout_over_mutual_tls(pki: Pki, policies: Path, tmp_path: Path) -> None:
    """`turnout status --tls-ca --tls-cert --tls-key` reads the status of a `turnout serve`
    running with mTLS; without a client certificate it cannot (exit 3)."""
    cert, key = pki.server.write(tmp_path, "server")
    operator_cert, operator_key = pki.operator.write(tmp_path, "operator")
    identities = tmp_path / "ids.yaml"
    identities.write_text(f'proxies:\n  "{SPIFFE_A}": [default]\n')
    turnout = TurnoutProcess(
        policies,
        log_path=tmp_path / "turnout.log",
        extra_args=[
            *("--tls-cert", str(cert), "--tls-key", str(key)),
            *("--tls-client-ca", str(pki.ca_path), "--identity-map", str(identities)),
        ],
    )
    with turnout:
        address = f"localhost:{turnout.xds_port}"
        status = [sys.executable, "-m", "turnout", "status", "--address", address, "--json"]
        tls = ["--tls-ca", str(pki.ca_path)]
        ok = subprocess.run(
            [*status, *tls, "--tls-cert", str(operator_cert), "--tls-key", str(operator_key)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ok.returncode == 0, ok.stderr
        assert '"served_version"' in ok.stdout
        refused = subprocess.run(
            [*status, *tls, "--timeout", "2s"], capture_output=True, text=True, timeout=30
        )
        assert refused.returncode == 3
    log = turnout.log_path.read_text()
    assert "tls=mutual" in log
    assert "node_authorization=True" in log
