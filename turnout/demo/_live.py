"""The live demo: turnout, a real Envoy and demo backends, with the shares each segment of
traffic receives redrawn every second.

    python -m turnout.demo [--policies examples/policies] [--duration S] [--no-tty]

It starts a backend for every endpoint the policies name, `turnout serve` on the
policies, and an Envoy taking its config from turnout; then it sends steady traffic
for each segment of one service (default route, each rule, pinned to a version with
no share) and counts which version answered, plus the mirrored copies the dark
version receives. Edit the policy files while it runs and watch the shares move.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from turnout.policy import Match, PolicySet, PolicySetError, Service, load_policies
from turnout.testing.backend import Backend
from turnout.testing.comparator import ComparatorProcess
from turnout.testing.control import TurnoutError, TurnoutProcess, proxies_settled
from turnout.testing.envoy import EnvoyError, EnvoyProcess
from turnout.testing.net import free_port

__all__ = ["main"]

ERROR = "error"
BAR_WIDTH = 30
SHORT_TYPES = {"Cluster": "CDS", "ClusterLoadAssignment": "EDS", "Listener": "LDS"}


def default_policies() -> Path:
    """examples/policies of the source checkout, else ./examples/policies."""
    here = Path(__file__).resolve().parents[2] / "examples" / "policies"
    return here if here.is_dir() else Path("examples/policies")


# -- policies ---------------------------------------------------------------------------


def move_to_free_ports(source: Path, target: Path) -> None:
    """Copy the policy files from `source` to `target`, moving every gateway port and
    every 127.0.0.1/localhost endpoint port to a free one (the same old port always to
    the same new port)."""
    mapping: dict[int, int] = {}

    def new_port(old: str) -> str:
        return str(mapping.setdefault(int(old), free_port()))

    for path in sorted(source.iterdir()):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        text = path.read_text()
        text = re.sub(
            r"\b(127\.0\.0\.1|localhost):(\d+)", lambda m: f"{m[1]}:{new_port(m[2])}", text
        )
        text = re.sub(r"(?m)^(port:\s*)(\d+)", lambda m: f"{m[1]}{new_port(m[2])}", text)
        (target / path.name).write_text(text)


@dataclass(frozen=True)
class Segment:
    """A kind of request sent to the service, e.g. employees (`x-employee: true`)."""

    name: str
    label: str
    headers: Mapping[str, str]
    path: str = "/"


def segments_for(service: Service, host: str) -> list[Segment]:
    """The default route, each rule a request can be built for, and a request pinned
    to the last deployed version that the default split gives no share."""
    segments = [Segment("default", "no rule matches", {"Host": host})]
    for rule in service.rules:
        request = _request_for_rule(rule.match)
        if request is not None:
            headers, path = request
            label = ", ".join(f"{k}: {v}" for k, v in headers.items()) or path
            segments.append(Segment(rule.name, label, {"Host": host, **headers}, path))
    shares = dict(service.traffic) if not isinstance(service.traffic, str) else {}
    unreleased = [v.name for v in service.versions if not shares.get(v.name)]
    if service.pin_header and unreleased and not isinstance(service.traffic, str):
        pinned = unreleased[-1]
        segments.append(
            Segment(
                f"pinned {pinned}",
                f"{service.pin_header}: {pinned}",
                {"Host": host, service.pin_header: pinned},
            )
        )
    return segments


def _request_for_rule(match: Match) -> tuple[dict[str, str], str] | None:
    headers: dict[str, str] = {}
    for name, value in match.headers:
        if value.kind not in ("exact", "prefix", "present"):
            return None
        headers[name] = value.value or "1"
    cookies = []
    for name, value in match.cookies:
        if value.kind not in ("exact", "prefix"):
            return None
        cookies.append(f"{name}={value.value}")
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    query = []
    for name, value in match.query:
        if value.kind not in ("exact", "prefix", "present"):
            return None
        query.append(f"{name}={value.value or '1'}")
    path = "/"
    if match.path is not None:
        if match.path.kind == "regex":
            return None
        path = match.path.value
    if query:
        path += "?" + "&".join(query)
    return headers, path


# -- traffic ----------------------------------------------------------------------------


@dataclass
class Meter:
    """Answers of one segment: recent ones with their time, and totals."""

    segment: Segment
    recent: deque[tuple[float, str]] = field(default_factory=deque)
    totals: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, version: str) -> None:
        with self.lock:
            self.recent.append((time.monotonic(), version))
            self.totals[version] += 1

    def window(self, seconds: float) -> Counter[str]:
        cutoff = time.monotonic() - seconds
        with self.lock:
            while self.recent and self.recent[0][0] < cutoff:
                self.recent.popleft()
            return Counter(version for _, version in self.recent)

    def total(self) -> Counter[str]:
        with self.lock:
            return Counter(self.totals)


def send_steadily(meter: Meter, port: int, rate: float, stop: threading.Event) -> None:
    """Send the segment's request `rate` times a second until `stop`; record answers."""
    connection: http.client.HTTPConnection | None = None
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", meter.segment.path, headers=dict(meter.segment.headers))
            response = connection.getresponse()
            response.read()
            version = response.getheader("x-served-by") if response.status == 200 else None
            meter.record(version or ERROR)
        except (OSError, http.client.HTTPException):
            meter.record(ERROR)
            connection.close()
            connection = None
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()
    if connection is not None:
        connection.close()


@dataclass
class MirrorMeter:
    """Mirrored copies received by the dark version's backends, sampled over time."""

    version: str
    backends: Sequence[Backend]
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def sample(self) -> int:
        copies = sum(b.counts().shadow() for b in self.backends)
        self.samples.append((time.monotonic(), copies))
        return copies

    def window(self, seconds: float) -> int:
        now = self.sample()
        cutoff = time.monotonic() - seconds
        while len(self.samples) > 1 and self.samples[1][0] <= cutoff:
            self.samples.popleft()
        return now - self.samples[0][1]


# -- drawing ----------------------------------------------------------------------------


def bar(share: float) -> str:
    """A bar of BAR_WIDTH cells for a share in percent, in eighths of a cell."""
    eighths = round(share / 100 * BAR_WIDTH * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else "")).ljust(BAR_WIDTH)


def percentages(counts: Counter[str]) -> list[tuple[str, float, int]]:
    n = sum(counts.values())
    if not n:
        return []
    errors_last = sorted(counts, key=lambda v: (v == ERROR, v))
    return [(v, 100 * counts[v] / n, counts[v]) for v in errors_last]


def proxy_summary(status: Mapping[str, Any] | None) -> str:
    if status is None:
        return "turnout: not answering"
    version = status.get("served_version") or "none"
    parts = [f"turnout serves {str(version)[:12]}"]
    rejected = status.get("rejected")
    if rejected:
        errors = rejected.get("errors") or []
        parts.append(f"REJECTED edit ({len(errors)} error(s): {errors[0] if errors else ''})")
    proxies = status.get("proxies") or []
    for proxy in proxies:
        state = "ACKed" if proxies_settled(status, [proxy["node_id"]]) else "updating"
        nacks = [t for t in proxy.get("types", []) if t.get("last_nack")]
        if nacks:
            state += f", {len(nacks)} NACK(s)"
        parts.append(f"{proxy['node_id']}: {state}")
    if not proxies:
        parts.append("no Envoy connected")
    return "; ".join(parts)


@dataclass
class Screen:
    out: TextIO
    tty: bool
    window: float
    started: float = field(default_factory=time.monotonic)

    def draw(
        self, title: str, meters: Sequence[Meter], mirror: MirrorMeter | None, status: str
    ) -> None:
        if self.tty:
            self._draw_table(title, meters, mirror, status)
        else:
            self._draw_line(meters, mirror, status)

    def _mirror_text(self, meters: Sequence[Meter], mirror: MirrorMeter | None) -> str:
        if mirror is None:
            return ""
        copies = mirror.window(self.window)
        default = sum(meters[0].window(self.window).values())
        share = 100 * copies / default if default else 0.0
        return f"{copies} copies = {share:.1f}% of default requests"

    def _draw_table(
        self, title: str, meters: Sequence[Meter], mirror: MirrorMeter | None, status: str
    ) -> None:
        lines = [title, f"shares over the last {self.window:.0f} s", ""]
        for meter in meters:
            rows = percentages(meter.window(self.window)) or [("-", 0.0, 0)]
            for index, (version, share, n) in enumerate(rows):
                name = meter.segment.name if index == 0 else ""
                label = f"({meter.segment.label})" if index == 1 else ""
                first = name or label
                lines.append(f"  {first:<24} {version:>6} {bar(share)} {share:5.1f}%  {n:>4}")
            if len(rows) == 1:
                lines.append(f"  ({meter.segment.label})")
        if mirror is not None:
            lines.append(
                f"  {'mirrored to ' + mirror.version:<24} {self._mirror_text(meters, mirror)}"
            )
        lines += ["", f"  {status}", "", "  Edit the policy files to move traffic; Ctrl-C stops."]
        self.out.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
        self.out.flush()

    def _draw_line(self, meters: Sequence[Meter], mirror: MirrorMeter | None, status: str) -> None:
        parts = []
        for meter in meters:
            shares = " ".join(f"{v} {s:.1f}%" for v, s, _ in percentages(meter.window(self.window)))
            parts.append(f"{meter.segment.name}: {shares or '-'}")
        if mirror is not None:
            parts.append(f"mirrored to {mirror.version}: {self._mirror_text(meters, mirror)}")
        elapsed = time.monotonic() - self.started
        self.out.write(f"[{elapsed:5.1f}s] " + " | ".join(parts) + f" | {status}\n")
        self.out.flush()

    def summary(self, meters: Sequence[Meter], mirror: MirrorMeter | None) -> None:
        """Totals over the whole run, one `summary` line per segment."""
        lines = []
        for meter in meters:
            totals = meter.total()
            shares = " ".join(f"{v}={s:.1f}%" for v, s, _ in percentages(totals))
            lines.append(f"summary {meter.segment.name}: {shares} (n={sum(totals.values())})")
        if mirror is not None:
            copies = mirror.sample()
            default = sum(meters[0].total().values())
            share = 100 * copies / default if default else 0.0
            lines.append(
                f"summary mirrored to {mirror.version}: {copies} copies = {share:.1f}% "
                f"of {default} default requests"
            )
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()


# -- running ----------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (so cleanup runs in order) while inside."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m turnout.demo",
        description="turnout + a real Envoy + demo backends, with live traffic shares.",
    )
    parser.add_argument(
        "--policies", type=Path, default=None, help="policy directory (default: examples/policies)"
    )
    parser.add_argument("--service", default="checkout", help="service to send traffic to")
    parser.add_argument(
        "--duration", type=float, default=None, help="run this many seconds of traffic, then exit"
    )
    parser.add_argument(
        "--no-tty", action="store_true", help="print plain lines instead of redrawing a table"
    )
    parser.add_argument(
        "--rate", type=float, default=50.0, help="requests per second per segment (default 50)"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=5.0,
        help="seconds of recent answers the shares are computed over",
    )
    parser.add_argument("--xds-port", type=int, default=18000)
    parser.add_argument("--admin-port", type=int, default=18080, help="turnout's admin port")
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="copy the policies to a temporary directory with every gateway "
        "and endpoint port moved to a free one, and use free ports for "
        "turnout too (lets the demo run beside anything)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    started: dict[str, int] = {}
    code = 1
    with stop_on_signals(stop):
        with ExitStack() as exits:
            try:
                code = run(args, stop, exits, out, started)
            except (PolicySetError, TurnoutError, EnvoyError, OSError) as exc:
                print(f"demo failed: {exc}", file=sys.stderr)
        stopped = ", ".join(f"{name} (pid {pid})" for name, pid in started.items())
        print(f"demo: stopped {stopped or 'nothing'}", file=out, flush=True)
    return code


def run(
    args: argparse.Namespace,
    stop: threading.Event,
    exits: ExitStack,
    out: TextIO,
    started: dict[str, int],
) -> int:
    """Start everything (registering its cleanup on `exits` and its pid in `started`),
    then send traffic and draw until `stop` or the duration ends."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    source = args.policies or default_policies()
    workdir = Path(tempfile.mkdtemp(prefix="turnout-demo-"))
    exits.callback(shutil.rmtree, workdir, ignore_errors=True)
    policies_dir = source
    xds_port, admin_port = args.xds_port, args.admin_port
    if args.free_ports:
        policies_dir = workdir / "policies"
        policies_dir.mkdir()
        move_to_free_ports(source, policies_dir)
        xds_port, admin_port = free_port(), free_port()
    policies = load_policies(policies_dir)
    service = policies.service(args.service)
    host = next((h for h in service.hosts if "*" not in h), f"{service.name}.example.com")
    gateway_port = next(g.port for g in policies.gateways if g.name in service.gateways)

    backends = start_backends(policies, exits)
    say(
        f"demo: {sum(len(b) for b in backends.values())} backends for "
        f"{len(policies.services)} services from {source}"
    )
    comparator_port = free_port()
    turnout = TurnoutProcess(
        policies_dir,
        xds_port=xds_port,
        admin_port=admin_port,
        log_path=workdir / "turnout.log",
        extra_args=("--comparator", f"127.0.0.1:{comparator_port}"),
    )
    exits.callback(turnout.stop)
    turnout.start()
    started["turnout"] = turnout.pid or 0
    # one comparator: mirrors with `compare:` copy to it and it judges v3's answers
    comparator = ComparatorProcess(xds_port, port=comparator_port, log_path=workdir / "compare.log")
    exits.callback(comparator.stop)
    comparator.start()
    say(f"demo: comparator (turnout compare) on {comparator.address}")
    say(
        f"demo: turnout serving xDS on 127.0.0.1:{xds_port}, admin http://127.0.0.1:{admin_port}/status"
    )
    envoy = EnvoyProcess(xds_port, node_id="demo-envoy", node_cluster="edge", workdir=workdir)
    exits.callback(envoy.stop)
    envoy.start()
    started["Envoy"] = envoy.pid or 0
    envoy.wait_for_listener(gateway_port)
    say(
        f"demo: Envoy gateway on 127.0.0.1:{gateway_port}, admin http://127.0.0.1:{envoy.admin_port}"
    )

    meters = [Meter(segment) for segment in segments_for(service, host)]
    mirror = None
    if service.mirror is not None:
        mirror = MirrorMeter(service.mirror.to, backends.get((service.name, service.mirror.to), []))
        mirror.sample()
    threads = [
        threading.Thread(
            target=send_steadily,
            args=(m, gateway_port, args.rate, stop),
            daemon=True,
            name=f"traffic-{m.segment.name}",
        )
        for m in meters
    ]
    for thread in threads:
        thread.start()

    def join_traffic() -> None:
        stop.set()
        for thread in threads:
            thread.join(5)

    exits.callback(join_traffic)
    screen = Screen(out, tty=not args.no_tty and out.isatty(), window=args.window)
    title = (
        f"turnout demo: {service.name} ({host}) through Envoy on :{gateway_port}, "
        f"{args.rate:g} req/s per segment"
    )
    deadline = time.monotonic() + args.duration if args.duration is not None else None
    while not stop.wait(1.0):
        try:
            status: dict[str, Any] | None = turnout.status()
        except (OSError, TurnoutError):
            status = None
        screen.draw(title, meters, mirror, proxy_summary(status))
        if deadline is not None and time.monotonic() >= deadline:
            break
    join_traffic()
    time.sleep(0.2)  # let the last mirrored copies land
    screen.summary(meters, mirror)
    return 0


def start_backends(policies: PolicySet, exits: ExitStack) -> dict[tuple[str, str], list[Backend]]:
    """A backend on every local endpoint the policies name, by (service, version)."""
    backends: dict[tuple[str, str], list[Backend]] = {}
    for service in policies.services:
        for version in service.versions:
            for index, endpoint in enumerate(version.endpoints):
                if endpoint.host not in ("127.0.0.1", "localhost"):
                    continue
                backend = Backend(
                    version.name,
                    port=endpoint.port,
                    instance=f"{service.name}-{version.name}-{index + 1}",
                )
                try:
                    backend.start()
                except OSError as exc:
                    raise OSError(
                        f"cannot start a backend on {endpoint}: {exc} "
                        "(is another demo running? try --free-ports)"
                    ) from exc
                exits.callback(backend.stop)
                backends.setdefault((service.name, version.name), []).append(backend)
    return backends
