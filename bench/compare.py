"""Dark response diffing: how many mirrored requests one comparator compares a second,
and what comparing does to the light path's latency.

One `turnout serve --comparator`, one `turnout compare`, one real Envoy, catalog
backends (two light v1 instances, one dark v3) and Debian's `hey` on this machine.
First `rate` mirrored requests a second for `seconds` (throughput). Then two `hey`
runs at once at the same rate: `on` requests are mirrored (100%, compare) to the
comparator, `off` requests match a rule without a mirror; both reach the same light
instances, so their latencies, side by side, show what mirroring and comparing cost
the light path (at equal rates: hey's own latency grows with its rate). Then the same
with the comparator killed (a dead comparator).

Compared a second = the comparator's `compared` over the run (turnout's status) /
seconds; skipped ("busy") and Envoy's own count of copies sent to the comparator are
printed beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from turnout.testing.comparator import ComparatorProcess
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port, http_get, wait_until

HOST = "shop.example.com"


class _BackendProcess:
    """A catalog backend in its own process (`python -m turnout.testing.backend`): the
    bench's backends must not share one interpreter's lock with each other."""

    def __init__(self, version: str, instance: str) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "turnout.testing.backend",
                "--version",
                version,
                "--instance",
                instance,
                "--port",
                str(self.port),
                "--catalog",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: http_get(f"http://{self.address}/healthz")[0] == 200,
            10,
            what=f"backend {instance}",
            retry_on=(OSError,),
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _policy(port: int, light: list[_BackendProcess], dark: _BackendProcess) -> str:
    endpoints = ", ".join(f'"{b.address}"' for b in light)
    return (
        f"kind: Gateway\nname: public\nport: {port}\naddress: 127.0.0.1\n---\n"
        f"kind: Service\nname: shop\nhosts: [{HOST}]\n"
        f'versions:\n  v1: {{endpoints: [{endpoints}]}}\n  v3: {{endpoints: ["{dark.address}"]}}\n'
        "stable: v1\ntraffic: {v1: 100}\n"
        'rules:\n  - name: off\n    match: {headers: {x-compare: "off"}}\n    traffic: {v1: 100}\n'
        "mirror: {to: v3, percent: 100, compare: {}}\n"
    )


def _hey(port: int, rate: int, seconds: float, off: bool) -> subprocess.Popen[str]:
    workers = max(1, rate // 10)
    command = [
        "hey",
        "-z",
        f"{seconds:g}s",
        "-c",
        str(workers),
        "-q",
        str(rate / workers),
        "-host",
        HOST,
        *(["-H", "x-compare: off"] if off else []),
        f"http://127.0.0.1:{port}/items/a",
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _copies(envoy: EnvoyProcess) -> int:
    """Envoy's own count of copies it sent to the comparators (answered or not)."""
    stats = envoy.stats("shop__compare")
    return stats.get("cluster.shop__compare.upstream_rq_completed", 0)


def _latency(output: str) -> dict[str, float]:
    found = {
        f"p{q}": float(ms) * 1000
        for q, ms in re.findall(r"\s(\d+)% in ([\d.]+) secs", output)
        if q in ("50", "99")
    }
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    found["rps"] = float(rps.group(1)) if rps else 0.0
    codes = re.findall(r"\[(\d+)\]\s+(\d+) responses", output)
    found["non200"] = float(sum(int(n) for code, n in codes if code != "200"))
    return found


def _comparison(turnout: TurnoutProcess) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "turnout",
            "status",
            "--json",
            "--address",
            f"127.0.0.1:{turnout.xds_port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"turnout status: {done.stderr[-2000:]}")
    status = json.loads(done.stdout)
    (service,) = status["services"]
    dark = (service.get("dark") or [{}])[0]
    return dict(dark.get("comparison", {}))


def _phase(name: str, port: int, on: int, off: int, seconds: float) -> None:
    kinds = [("on ", on, False), ("off", off, True)]
    runs = [(kind, _hey(port, rate, seconds, off=o)) for kind, rate, o in kinds if rate]
    outputs = [(kind, run.communicate()[0]) for kind, run in runs]
    for kind, output in outputs:
        figures = _latency(output)
        print(
            f"  {name} compare {kind}: {figures['rps']:.0f} req/s, light p50 "
            f"{figures.get('p50', 0):.2f} ms, p99 {figures.get('p99', 0):.2f} ms, "
            f"non-200 {figures['non200']:.0f}"
        )


def _settled(turnout: TurnoutProcess) -> int:
    """turnout's count of compared copies once it stops growing (the comparator reports
    every second; what is still in flight lands within its timeout)."""
    last = -1
    while True:
        now = int(_comparison(turnout).get("compared", 0) or 0)
        if now == last:
            return now
        last = now
        time.sleep(1.5)


def _direct(turnout: TurnoutProcess, comparator: ComparatorProcess, copies: int) -> None:
    """The comparator alone: `hey` sends it copies as Envoy would (the mark and the
    `-shadow` Host), 20 at a time, as fast as it takes them; compared a second and its
    CPU time per copy."""
    before = _settled(turnout)
    cpu = _cpu_seconds(comparator.pid)
    done = subprocess.run(
        [
            "hey",
            "-n",
            str(copies),
            "-c",
            "20",
            "-host",
            f"{HOST}-shadow",
            "-H",
            "x-turnout-compare: shop/default",
            f"http://{comparator.address}/items/a",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    total = re.search(r"Total:\s+([\d.]+) secs", done.stdout)
    took = float(total.group(1)) if total else 0.0
    compared = _settled(turnout) - before
    cpu = _cpu_seconds(comparator.pid) - cpu
    print(
        f"  comparator alone: {compared} of {copies} copies compared while hey sent them in "
        f"{took:.1f}s = {compared / max(took, 1e-9):.0f}/s (straight to it as Envoy would, 20 "
        f"at a time; light and dark backends here); {cpu / max(compared, 1) * 1000:.2f} "
        f"CPU-ms per copy = {compared / max(cpu, 1e-9):.0f} copies per CPU-second; load "
        f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def run(rate: int = 600, side: int = 250, seconds: float = 20.0, direct: int = 10_000) -> None:
    if shutil.which("hey") is None:
        print("bench compare needs Debian's hey (apt-get install hey)")
        return
    print(
        f"\n== compare: one comparator; {rate} mirrored req/s, then {side} mirrored (compare "
        f"on) beside {side} not mirrored (off), then the same with the comparator dead; "
        f"{seconds:g}s per phase =="
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="turnout-bench-")))
        light = [_BackendProcess("v1", f"v1-{i}") for i in (1, 2)]
        dark = _BackendProcess("v3", "v3")
        for backend in [*light, dark]:
            stack.callback(backend.stop)
        policies = workdir / "policies"
        policies.mkdir()
        port = free_port()
        (policies / "shop.yaml").write_text(_policy(port, light, dark))
        comparator_port = free_port()
        turnout = TurnoutProcess(
            policies,
            log_path=workdir / "turnout.log",
            extra_args=(
                "--comparator",
                f"127.0.0.1:{comparator_port}",
                "--dark-window",
                "30m",
            ),
        ).start()
        stack.callback(turnout.stop)
        comparator = ComparatorProcess(
            turnout.xds_port, port=comparator_port, log_path=workdir / "compare.log"
        ).start()
        stack.callback(comparator.stop)
        comparator.wait_ready()
        envoy = EnvoyProcess(
            turnout.xds_port, node_id="bench-compare", workdir=workdir / "envoy", concurrency=2
        )
        stack.enter_context(envoy)
        envoy.wait_for_listener(port)
        _direct(turnout, comparator, copies=direct)
        before, cpu = _copies(envoy), _cpu_seconds(comparator.pid)
        compared_before = _settled(turnout)
        _phase("throughput:      ", port, rate, 0, seconds)
        sent = _copies(envoy) - before
        found = _comparison(turnout)
        compared = _settled(turnout) - compared_before
        cpu = _cpu_seconds(comparator.pid) - cpu
        print(
            f"  compared {compared} in {seconds:g}s = {compared / seconds:.0f}/s by one "
            f"comparator (Envoy sent it {sent} copies; skipped {found.get('skipped') or 'none'}"
            f"; differing beyond noise {found.get('differing', 0)}, noise "
            f"{found.get('noise', 0)}); load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        print(
            f"  the comparator used {cpu:.1f} CPU-seconds: {cpu / max(compared, 1) * 1000:.2f} ms "
            f"per compared copy, i.e. {compared / max(cpu, 1e-9):.0f} copies per CPU-second "
            "(one core's worth of a comparator process)"
        )
        _phase("side by side:    ", port, side, side, seconds)
        comparator.stop()
        _phase("comparator dead: ", port, side, side, seconds)
        print(
            "  command: python -m bench compare   (turnout serve, turnout compare, Envoy, "
            "backends and hey on this machine)"
        )
