"""The fleet benchmark: thousands of simulated Envoys on one `turnout serve` process.

turnout runs as its own process (the real command line) on a policy directory of S
services x 3 versions behind one gateway, one file per service. Simulated Envoys
(``bench._fleet_client``: SotW ADS streams, optionally a share of Delta ones) run in a
few client processes over loopback, a few channels each. Scenarios, in order:

- connect: N streams connect and ACK their full config; time, server RSS and CPU,
  server memory per idle stream above the process's baseline;
- convergence: one service's traffic share changes by a policy *file write*; per
  stream, the time from the write until it ACKed the new routes (p50, p99, max);
- NACK storm: every 10th stream NACKs everything; the rest converge as before, and
  nothing is resent in a loop (responses are counted for a while after);
- reconnect storm: turnout is killed (SIGKILL) and started again; time until every
  stream is back in sync, and whether any proxy's config changed (content-hashed
  versions: a restarted turnout sends exactly what the proxies already have).

    python -m bench fleet                       # 1,000 streams (part of `make bench`)
    python -m bench fleet --streams 10000       # the full fleet

The machine has 2 cores for the server *and* the simulated fleet: the client
processes' CPU time is printed too. By default 2 client processes of 16 channels
each: the server sees 32 TCP connections (as with 4 x 8), and half as many event
loops and grpc poller threads compete with it for the cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from turnout.testing.control import TurnoutProcess
from turnout.testing.net import free_port, http_get

GATEWAY = "kind: Gateway\nname: public\nport: {port}\naddress: 127.0.0.1\n"
SERVICE = """kind: Service
name: {name}
hosts: ["{name}.example.com"]
versions:
  v1: {{endpoints: ["127.0.0.1:{p1}"]}}
  v2: {{endpoints: ["127.0.0.1:{p2}"]}}
  v3: {{endpoints: ["127.0.0.1:{p3}"]}}
stable: v1
traffic: {{v1: {v1}, v2: {v2}}}
rules:
  - name: dogfood
    match: {{headers: {{x-employee: "true"}}}}
    traffic: {{v1: 50, v2: 50}}
mirror: {{to: v3, percent: 10}}
"""
CHANGED = 7
"""The service whose traffic share changes (the last one, on a smaller gateway: a
change must never add a service)."""

_TICK = os.sysconf("SC_CLK_TCK")


def write_policies(directory: Path, services: int, gateway_port: int) -> None:
    """A gateway and `services` services x 3 versions, one file each."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gateway.yaml").write_text(GATEWAY.format(port=gateway_port))
    for i in range(services):
        write_service(directory, i, v2=5)


def write_service(directory: Path, index: int, v2: int) -> None:
    """Write service `index` with `v2` percent on v2, atomically (as an editor would)."""
    name = f"svc{index:05d}"
    text = SERVICE.format(
        name=name, p1=20000 + index, p2=30000 + index, p3=40000 + index, v1=100 - v2, v2=v2
    )
    path = directory / f"{name}.yaml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def proc_rss(pid: int) -> int:
    """Resident set size of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class ClientProcess:
    """One `python -m bench._fleet_client` process, driven over its stdin/stdout."""

    def __init__(self) -> None:
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._fleet_client"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=root,
            text=True,
            bufsize=1,
        )

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"fleet client exited with {self.process.poll()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu(self) -> float:
        return proc_cpu(self.process.pid)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send({"cmd": "quit"})
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Fleet:
    clients: list[ClientProcess] = field(default_factory=list)

    def ask(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        """Send to every client, then gather every answer (they work in parallel)."""
        for client in self.clients:
            client.send(command)
        return [client.receive() for client in self.clients]

    def state(self) -> dict[str, Any]:
        answers = self.ask({"cmd": "state"})
        return {
            "open": sum(a["open"] for a in answers),
            "synced": sum(a["synced"] for a in answers),
            "changed": sum(a["changed"] for a in answers),
            "expect_changed": sum(a["expect_changed"] for a in answers),
            "reconnects": sum(a["reconnects"] for a in answers),
            "received": sum(a["received"] for a in answers),
        }

    def changed(self) -> dict[str, Any]:
        """Streams that ACKed the marked change, and how many should (counted as the
        ACKs arrive: cheap to poll while the change converges)."""
        answers = self.ask({"cmd": "changed"})
        return {
            "changed": sum(a["changed"] for a in answers),
            "expect_changed": sum(a["expect_changed"] for a in answers),
        }

    def report(self) -> list[dict[str, Any]]:
        return [p for a in self.ask({"cmd": "report"}) for p in a["proxies"]]

    def wait(
        self,
        what: str,
        done: Any,
        timeout: float,
        interval: float = 0.05,
        *,
        poll: Callable[[], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = (poll or self.state)()
            if done(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not done within {timeout:.0f}s: {state}")
            time.sleep(interval)

    def cpu(self) -> float:
        return sum(c.cpu() for c in self.clients)


def connect_fleet(
    fleet: Fleet, port: int, streams: int, *, channels: int, delta_every: int = 0
) -> None:
    """Open `streams` simulated Envoys (group "edge") spread over the fleet's clients."""
    clients = len(fleet.clients)
    per_client = [streams // clients + (i < streams % clients) for i in range(clients)]
    first = 0
    for client, count in zip(fleet.clients, per_client, strict=True):
        client.send(
            {
                "cmd": "connect",
                "port": port,
                "count": count,
                "first": first,
                "channels": channels,
                "group": "edge",
                "delta_every": delta_every,
            }
        )
        first += count
    for client in fleet.clients:
        client.receive()


def connect_budget(streams: int, services: int) -> float:
    """Seconds a fleet is given to connect (or reconnect): it grows with what each
    stream is sent (about a cluster, an assignment and a route configuration per
    service), so a 5,000-service cell is not cut off where a 1-service one is not
    (1,000 x 500 took 6-10 s, 10,000 x 500 80-150 s on the loaded 2-core machine)."""
    return 60.0 + streams * (1 + services / 100) * 0.004


def _profile(pid: int, what: str) -> subprocess.Popen[bytes] | None:
    """With ``BENCH_PYSPY`` naming a py-spy binary, sample turnout (``pid``) until
    :func:`_end_profile` (``BENCH_PYSPY_RATE`` samples a second, default 50): collapsed
    stacks in ``BENCH_PROFILE_DIR`` (default /tmp), ``turnout-{what}-{pid}.txt`` (feed
    them to a flame graph, or ``sort | head``); ``what``: reconnect, convergence."""
    binary = os.environ.get("BENCH_PYSPY")
    if not binary:
        return None
    out = Path(os.environ.get("BENCH_PROFILE_DIR", "/tmp")) / f"turnout-{what}-{pid}.txt"
    print(f"  profiling turnout ({pid}) into {out}", flush=True)
    rate = os.environ.get("BENCH_PYSPY_RATE", "50")
    command = [binary, "record", "--pid", str(pid), "--rate", rate, "--format", "raw"]
    return subprocess.Popen(
        [*command, "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _end_profile(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        profiler.wait(30)


def _wait_server_synced(turnout: TurnoutProcess, streams: int, timeout: float) -> None:
    """Poll :func:`_server_synced` so that scraping takes at most a tenth of turnout's
    time: a scrape copies every stream's status (0.1-0.4 s at 10,000 streams on the
    loaded machine), and polling every 0.1 s took a third of turnout's CPU during a
    storm, every 0.5 s a fifth."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            if _server_synced(turnout, streams):
                return
        took = time.monotonic() - started
        if time.monotonic() > deadline:
            raise TimeoutError(f"reconnect: not every proxy synced at turnout in {timeout:.0f}s")
        time.sleep(max(0.1, 9 * took))


def _whole(proxy: dict[str, Any], served: str | None) -> bool:
    """Whether a /status proxy is synced to ``served`` with five types, each ACKed."""
    types = proxy.get("types") or []
    return (
        proxy.get("synced_version") == served
        and len(types) == 5
        and all(t["sent_version"] == t["acked_version"] for t in types)
    )


def _last_synced_at(turnout: TurnoutProcess, streams: int, timeout: float) -> float:
    """Once /status lists ``streams`` proxies, each synced with all five types sent and
    ACKed at one version, the latest ``synced_at`` among them, as a Unix time.

    /metrics counts a proxy synced on the types it asked for so far, and a proxy
    reconnecting with what turnout has asks type by type without being answered: its
    last requests may not be read yet. turnout moves ``synced_at`` to when the last
    type was found in sync."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = http_get(turnout.admin_url("/status"), timeout=60.0)
        status = json.loads(body) if code == 200 else {}
        proxies = status.get("proxies") or []
        served = status.get("served_version")

        if len(proxies) >= streams and all(_whole(p, served) for p in proxies):
            stamps = [p["synced_at"] for p in proxies]
            return max(datetime.fromisoformat(stamp).timestamp() for stamp in stamps)
        if time.monotonic() > deadline:
            raise TimeoutError("reconnect: not every proxy has its five types in sync")
        time.sleep(1.0)


def _server_synced(turnout: TurnoutProcess, streams: int) -> bool:
    """Whether turnout's /metrics counts ``streams`` proxies connected and none behind."""
    code, body = http_get(turnout.admin_url("/metrics"), timeout=5.0)
    if code != 200:
        return False
    connected = behind = 0.0
    for line in body.splitlines():
        if line.startswith("turnout_proxies_connected{"):
            connected += float(line.rsplit(" ", 1)[1])
        elif line.startswith("turnout_proxies_behind "):
            behind = float(line.rsplit(" ", 1)[1])
    return connected >= streams and behind == 0


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Row:
    scenario: str
    figures: str
    bar: str = ""


@dataclass
class Results:
    streams: int
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    """The headline numbers, for tables (``bench.scale``): connect_s, kb_per_stream,
    p50_ms/p99_ms/max_ms, bytes_per_change (per proxy, counted at the clients),
    reconnect_s."""

    def add(self, scenario: str, figures: str, bar: str = "") -> None:
        self.rows.append(Row(scenario, figures, bar))
        print(f"  {scenario:<22} {figures}  {bar}", flush=True)


def _converge(
    fleet: Fleet,
    policies: Path,
    change: int,
    *,
    index: int = CHANGED,
    nack_every: int = 0,
    timeout: float = 60.0,
) -> tuple[list[float], list[dict[str, Any]], float]:
    """Write one service's new share; per-stream seconds from the write to its ACK."""
    fleet.ask({"cmd": "mark", "nack_every": nack_every})
    started = time.monotonic()
    write_service(policies, index, v2=5 + change)
    # Each ACK is timestamped by its client as it happens: polling only tells when to
    # stop, and it polls counters, so it takes nothing from the streams it measures.
    fleet.wait(
        f"change {change}",
        lambda s: s["changed"] >= s["expect_changed"],
        timeout,
        interval=0.02,
        poll=fleet.changed,
    )
    done = time.monotonic() - started
    report = fleet.report()
    latencies = [p["changed_at"] - started for p in report if p["changed_at"] is not None]
    return latencies, report, done


@contextlib.contextmanager
def _fleet(clients: int) -> Iterator[Fleet]:
    fleet = Fleet([ClientProcess() for _ in range(clients)])
    try:
        yield fleet
    finally:
        for client in fleet.clients:
            client.close()


def run(
    streams: int = 1000,
    *,
    clients: int = 2,
    channels: int = 16,
    services: int = 100,
    changes: int = 5,
    debounce_ms: int = 20,
    delta_every: int = 0,
    scenarios: Sequence[str] = ("connect", "convergence", "nack", "reconnect"),
) -> Results:
    """Run the fleet scenarios against one `turnout serve`; print and return the table."""
    results = Results(streams)
    print(
        f"\n== fleet: {streams:,} simulated Envoys ({clients} client processes x {channels} "
        f"channels), {services} services x 3 versions, debounce {debounce_ms} ms ==",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="turnout-fleet-")))
        policies = workdir / "policies"
        write_policies(policies, services, free_port())
        changed = min(CHANGED, services - 1)
        turnout = TurnoutProcess(
            policies,
            log_path=workdir / "turnout.log",
            extra_args=["--log-level", "warning", "--debounce-ms", str(debounce_ms)],
        ).start(timeout=120)
        stack.callback(turnout.stop)
        turnout.wait_settled([], timeout=120)
        time.sleep(0.5)
        assert turnout.pid is not None
        base_rss, base_cpu = proc_rss(turnout.pid), proc_cpu(turnout.pid)
        fleet = stack.enter_context(_fleet(clients))

        # -- connect ----------------------------------------------------------------
        started = time.monotonic()
        connect_fleet(fleet, turnout.xds_port, streams, channels=channels, delta_every=delta_every)
        budget = connect_budget(streams, services)
        fleet.wait("connect", lambda s: s["synced"] >= streams, timeout=budget)
        connect_s = time.monotonic() - started
        cpu = proc_cpu(turnout.pid) - base_cpu
        time.sleep(2.0)
        rss = proc_rss(turnout.pid)
        per_stream = (rss - base_rss) / streams
        results.add(
            "connect",
            f"{streams:,} streams synced in {connect_s:.1f} s; server CPU {cpu:.1f} s, "
            f"RSS {base_rss / 2**20:.0f} -> {rss / 2**20:.0f} MB "
            f"({per_stream / 1024:.1f} KB per idle stream)",
            f"[bar <= 32 KB/stream: {'met' if per_stream <= 32 * 1024 else 'MISSED'}]",
        )
        results.figures.update(connect_s=connect_s, kb_per_stream=per_stream / 1024)

        # -- convergence --------------------------------------------------------------
        if "convergence" in scenarios:
            pooled: list[float] = []
            slowest: list[float] = []
            received: list[float] = []
            cpu_before, fleet_cpu_before = proc_cpu(turnout.pid), fleet.cpu()
            profiler = _profile(turnout.pid, "convergence")
            for change in range(1, changes + 1):
                latencies, _report, _done = _converge(fleet, policies, change, index=changed)
                pooled += latencies
                slowest.append(max(latencies))
                time.sleep(0.3)
                # Everything each proxy received for this change (counted at the client
                # from the mark, so the quiet 0.3 s after the last ACK is included).
                report = fleet.report()
                received.append(sum(p["bytes"] for p in report) / max(1, len(report)))
            server_cpu = (proc_cpu(turnout.pid) - cpu_before) / changes
            fleet_cpu = (fleet.cpu() - fleet_cpu_before) / changes
            _end_profile(profiler)
            p99 = _percentile(pooled, 0.99)
            per_change = sum(received) / len(received)
            results.figures.update(
                p50_ms=_percentile(pooled, 0.5) * 1000,
                p99_ms=p99 * 1000,
                max_ms=max(pooled) * 1000,
                bytes_per_change=per_change,
            )
            bar = 1.5 if streams > 1000 else 0.1
            results.add(
                "convergence",
                f"file write -> ACK, {changes} changes x {streams:,} streams: "
                f"first {min(pooled) * 1000:.0f} ms, "
                f"p50 {_percentile(pooled, 0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                f"max {max(pooled) * 1000:.0f} ms (slowest change "
                f"{max(slowest) * 1000:.0f} ms); {per_change:,.0f} bytes per proxy per "
                f"change; per change CPU: server {server_cpu:.2f} s, clients {fleet_cpu:.2f} s",
                f"[bar p99 <= {bar * 1000:.0f} ms: {'met' if p99 <= bar else 'MISSED'}]",
            )

        # -- NACK storm ---------------------------------------------------------------
        if "nack" in scenarios:
            latencies, report, _done = _converge(
                fleet, policies, changes + 1, index=changed, nack_every=10
            )
            time.sleep(2.0)  # anything resent in a loop would arrive now
            report = fleet.report()
            nackers = [p for p in report if p["nack"]]
            others = [p for p in report if not p["nack"]]
            resent = sum(max(0, p["responses"] - 1) for p in report)
            results.add(
                "NACK storm",
                f"{len(nackers):,} streams NACK: the other {len(others):,} converged p50 "
                f"{_percentile(latencies, 0.5) * 1000:.0f} ms, p99 "
                f"{_percentile(latencies, 0.99) * 1000:.0f} ms; responses after the change: "
                f"{sum(p['responses'] for p in report):,} for {len(report):,} streams, "
                f"{sum(p['nacks'] for p in nackers):,} NACKs",
                f"[no resend loop: {'met' if resent == 0 else f'MISSED ({resent} extra)'}]",
            )
            # everyone accepts again; the next change reaches the NACKers too
            _converge(fleet, policies, changes + 2, index=changed)

        # -- reconnect storm ----------------------------------------------------------
        if "reconnect" in scenarios:
            before = {i: p["versions"] for i, p in enumerate(fleet.report())}
            fleet.ask({"cmd": "mark", "nack_every": 0})  # count what the storm sends
            killed, killed_at = time.monotonic(), time.time()
            turnout.kill()
            fleet.wait("streams broken", lambda s: s["open"] < streams, timeout=30)
            turnout.start(timeout=120)
            up = time.monotonic()
            assert turnout.pid is not None
            cpu_up, fleet_cpu_up = proc_cpu(turnout.pid), fleet.cpu()
            profiler = _profile(turnout.pid, "reconnect")
            # In sync is the server's word: a SotW proxy that reconnects with the
            # versions it has is sent nothing, so it cannot tell "in sync" from "not
            # answered yet" (neither can Envoy). Every stream open again (its requests
            # written) at the clients, and every proxy connected and synced at turnout.
            fleet.wait(
                "reconnect: streams open",
                lambda s: s["open"] >= streams,
                timeout=budget,
                interval=0.1,
            )
            opened = time.monotonic()
            _wait_server_synced(turnout, streams, budget)
            # The polls are seconds apart at 10,000 streams: the moment is the last
            # proxy's synced_at, as turnout stamped it.
            synced = killed + _last_synced_at(turnout, streams, budget) - killed_at
            seen = time.monotonic()
            server_cpu = proc_cpu(turnout.pid) - cpu_up
            fleet_cpu = fleet.cpu() - fleet_cpu_up
            _end_profile(profiler)
            results.figures["reconnect_s"] = synced - killed
            report = fleet.report()
            after = {i: p["versions"] for i, p in enumerate(report)}
            changed = sum(1 for i in before if before[i] != after[i])
            sent = sum(p["bytes"] for p in report) / max(1, len(report))
            responses = sum(p["responses"] for p in report) / max(1, len(report))
            results.add(
                "reconnect storm",
                f"SIGKILL -> all {streams:,} back in sync {synced - killed:.1f} s "
                f"(turnout's synced_at; the bench saw it at {seen - killed:.1f} s) "
                f"(restart took {up - killed:.1f} s; every stream open "
                f"{opened - up:.1f} s after /healthz, synced at turnout {synced - opened:.1f} s "
                f"later; CPU after /healthz: server {server_cpu:.1f} s, clients "
                f"{fleet_cpu:.1f} s); per proxy {responses:.1f} responses, {sent:,.0f} "
                f"bytes; proxies whose config "
                f"changed: {changed}; server RSS {proc_rss(turnout.pid) / 2**20:.0f} MB",
                f"[bar <= 15 s: {'met' if synced - killed <= 15 and changed == 0 else 'MISSED'}]",
            )

        status = turnout.status()
        proxies = status.get("proxies") or []
        served = status["served_version"]
        synced_in_status = sum(1 for p in proxies if p.get("synced_version") == served)
        results.add(
            "/status",
            f"{len(proxies):,} proxies listed, {synced_in_status:,} synced to {served}",
        )
    return results
