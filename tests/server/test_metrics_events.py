"""One structured log event per accepted or rejected policy change, and the hook fan-out."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog.testing

from turnout.cache import SnapshotCache
from turnout.server import Controller, FanOut, rejection_summary
from turnout.xds import StreamInfo, XdsCallbacks

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: %s\ntraffic: {v1: %s, v2: %s}\n"
)


def test_each_policy_change_is_one_event_with_version_and_one_line_summary(
    tmp_path: Path,
) -> None:
    """An accepted reload and a rejected one each log exactly one event carrying the
    version (the new one, or the one still served) and a one-line summary."""
    (tmp_path / "gw.yaml").write_text(GATEWAY)
    (tmp_path / "web.yaml").write_text(SERVICE % ("v1", 100, 0))
    controller = Controller(tmp_path, SnapshotCache())
    assert controller.reload()
    served = controller.policy_version

    with structlog.testing.capture_logs() as events:
        (tmp_path / "web.yaml").write_text(SERVICE % ("v1", 90, 10))
        assert controller.reload()
        (tmp_path / "web.yaml").write_text(SERVICE % ("v9", 90, 5))
        assert not controller.reload()
    accepted, rejected = events
    new = controller.policy_version
    assert new != served
    assert accepted["event"] == "policy set accepted"
    assert accepted["version"] == new
    assert accepted["summary"] == "web traffic v1=100 -> v1=90 v2=10"
    assert rejected["event"].startswith("policy set rejected")
    assert rejected["log_level"] == "error"
    assert rejected["version"] == new
    assert len(rejected["errors"]) == 2
    summary = rejected["summary"]
    assert summary.startswith("2 error(s): ")
    assert summary.endswith(" (and 1 more)")
    assert "\n" not in summary


def test_rejection_summary_is_one_line_whatever_the_error() -> None:
    """A multi-line problem is folded onto one line; one error has no '(and N more)'."""
    assert rejection_summary(["a.yaml:1: x:\n  bad\tvalue"]) == "1 error(s): a.yaml:1: x: bad value"
    assert rejection_summary([]) == "rejected"


class _Recorder(XdsCallbacks):
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    def on_synced(self, stream: StreamInfo, version: str) -> None:
        self.log.append(f"{self.name}:{version}")
        if self.fail:
            raise RuntimeError(self.name)


def test_fan_out_calls_every_hook_even_when_one_raises() -> None:
    """FanOut calls each callbacks object in order; one raising does not stop the rest,
    and its error still reaches the server (which logs it)."""
    log: list[str] = []
    fan = FanOut(_Recorder(log, "a", fail=True), _Recorder(log, "b"))
    with pytest.raises(RuntimeError, match="a"):
        fan.on_synced(StreamInfo(1, "ads", "n", "c"), "v1")
    assert log == ["a:v1", "b:v1"]
