"""The live demo (`python -m turnout.demo`, what `make run` starts) runs end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from ._harness import assert_split

pytestmark = pytest.mark.e2e


def _summary(output: str) -> dict[str, Counter[str]]:
    """segment -> counts by version, from the demo's closing `summary` lines."""
    segments: dict[str, Counter[str]] = {}
    for line in output.splitlines():
        match = re.fullmatch(r"summary (.+): ((?:\S+=[\d.]+% ?)+) \(n=(\d+)\)", line)
        if match:
            n = int(match[3])
            counts: Counter[str] = Counter()
            for version, share in re.findall(r"(\S+)=([\d.]+)%", match[2]):
                counts[version] = round(float(share) * n / 100)
            segments[match[1]] = counts
    return segments


def test_demo_shows_the_example_policy_shares() -> None:
    """Eight seconds of the demo on the example policies show the default route near
    95/5, employees near 50/50, pinned requests all on v3 and about 10% mirrored to v3;
    and the demo stops everything it started."""
    result = subprocess.run(
        [sys.executable, "-m", "turnout.demo", "--duration", "8", "--no-tty", "--free-ports"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = result.stdout
    print(output[-1500:])
    assert result.returncode == 0, result.stderr + output
    assert "demo-envoy: ACKed" in output
    summary = _summary(output)
    assert sum(summary["default"].values()) > 200, output
    assert_split(summary["default"], {"v1": 95, "v2": 5})
    assert_split(summary["dogfood"], {"v1": 50, "v2": 50})
    assert summary["pinned v3"] == Counter({"v3": sum(summary["pinned v3"].values())})
    mirrored = re.search(r"summary mirrored to v3: (\d+) copies = ([\d.]+)% of (\d+)", output)
    assert mirrored, output
    copies, default = int(mirrored[1]), int(mirrored[3])
    expected = 0.10 * default
    assert abs(copies - expected) <= 4.5 * (default * 0.1 * 0.9) ** 0.5, mirrored[0]
    pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", output)]
    assert len(pids) == 2, output  # turnout and Envoy
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
