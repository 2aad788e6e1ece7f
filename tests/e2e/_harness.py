"""The end-to-end harness: real backends, `turnout serve` and a real Envoy, wired together.

A `Stack` is one policy directory served by one turnout subprocess to one or more
Envoys; tests send real HTTP requests through an Envoy gateway and count answers by
the version that served them.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from turnout.testing.backend import Backend
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port, wait_until

PIN_HEADER = "x-turnout-version"


def gateway_yaml(port: int, name: str = "public") -> str:
    """A Gateway document listening on 127.0.0.1:port."""
    return f"kind: Gateway\nname: {name}\nport: {port}\naddress: 127.0.0.1\n"


def endpoints_yaml(backends: Iterable[Backend]) -> str:
    """A YAML flow list of the backends' addresses, e.g. ["127.0.0.1:4001"]."""
    return "[" + ", ".join(f'"{b.address}"' for b in backends) + "]"


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's content in one rename, as an editor or CI checkout would."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class Stack:
    """One policy directory, its turnout process and the Envoys it configures."""

    policy_dir: Path
    gateway_port: int
    turnout: TurnoutProcess
    envoys: list[EnvoyProcess] = field(default_factory=list)
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def envoy(self) -> EnvoyProcess:
        return self.envoys[0]

    @property
    def node_ids(self) -> list[str]:
        return [e.node_id for e in self.envoys]

    def client(self, port: int | None = None) -> httpx.Client:
        """A keep-alive client to the gateway, or to another Envoy listener's `port`
        (closed with the stack)."""
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port or self.gateway_port}",
            timeout=httpx.Timeout(5.0),
            trust_env=False,
        )
        self._clients.append(client)
        return client

    def write(self, name: str, text: str) -> None:
        write_atomically(self.policy_dir / name, text)

    def close(self) -> None:
        for client in self._clients:
            client.close()


def launch_stack(
    exits: ExitStack,
    workdir: Path,
    files: Mapping[str, str],
    gateway_port: int,
    *,
    envoys: Sequence[tuple[str, int]] | None = None,
    api_type: str = "GRPC",
    turnout_args: Sequence[str] = (),
) -> Stack:
    """Write `files` into workdir/policies, start turnout on them and one Envoy per
    (node cluster, gateway port) in `envoys` (default: one "edge" Envoy serving
    `gateway_port`), each speaking `api_type` ADS ("GRPC" or "DELTA_GRPC"), and wait
    until each Envoy's gateway listener accepts connections. `turnout_args` are added
    to `turnout serve`'s command line.
    Everything started is stopped when `exits` closes."""
    policy_dir = workdir / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (policy_dir / name).write_text(text)
    turnout = TurnoutProcess(policy_dir, log_path=workdir / "turnout.log", extra_args=turnout_args)
    exits.callback(turnout.kill)
    turnout.start()
    stack = Stack(policy_dir, gateway_port, turnout)
    exits.callback(stack.close)
    for index, (node_cluster, port) in enumerate(envoys or [("edge", gateway_port)]):
        envoy = EnvoyProcess(
            turnout.xds_port,
            node_id=f"e2e-envoy-{index + 1}",
            node_cluster=node_cluster,
            workdir=workdir / f"envoy-{index + 1}",
            api_type=api_type,
        )
        exits.callback(envoy.stop)
        envoy.start()
        envoy.wait_for_listener(port)
        stack.envoys.append(envoy)
    return stack


def start_backends(exits: ExitStack, version: str, count: int = 1, **kwargs: Any) -> list[Backend]:
    """`count` backends of one version on free ports, stopped when `exits` closes."""
    backends = []
    for index in range(count):
        backend = Backend(version, instance=f"{version}-{index + 1}", **kwargs)
        exits.callback(backend.stop)
        backends.append(backend.start())
    return backends


def served_by(response: httpx.Response) -> str:
    """The version that answered (the backend's x-served-by), or "HTTP <status>"
    when Envoy or a backend answered with an error."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    return response.headers.get("x-served-by", "(none)")


def count_versions(
    client: httpx.Client,
    host: str,
    n: int,
    *,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> Counter[str]:
    """Send `n` requests for `host` through the gateway; count answers by version."""
    request_headers = {"Host": host, **(headers or {})}
    counts: Counter[str] = Counter()
    for _ in range(n):
        counts[served_by(client.get(path, headers=request_headers, params=params))] += 1
    return counts


def tolerance(share: float, n: int, sigmas: float = 4.5) -> float:
    """Allowed deviation in percentage points for an observed share of n requests:
    `sigmas` binomial standard deviations (at least half a point), so a correct split
    fails about once in 10^5 checks while a split 10 points off is still caught."""
    p = share / 100
    return max(0.5, sigmas * math.sqrt(p * (1 - p) / n) * 100)


def assert_split(counts: Counter[str], expected: Mapping[str, float]) -> None:
    """Every answer came from a version in `expected`, each within tolerance of its
    share (versions expected at 0 must not appear at all)."""
    n = sum(counts.values())
    assert n > 0, "no requests counted"
    unexpected = {v: c for v, c in counts.items() if expected.get(v, 0) == 0 and c}
    assert not unexpected, f"answers from unexpected versions or errors: {dict(counts)}"
    for version, share in expected.items():
        observed = 100 * counts.get(version, 0) / n
        allowed = tolerance(share, n)
        assert abs(observed - share) <= allowed, (
            f"{version}: {observed:.1f}% of {n}, expected {share}% ± {allowed:.1f}; "
            f"all counts {dict(counts)}"
        )


def shares(counts: Counter[str]) -> dict[str, float]:
    n = sum(counts.values()) or 1
    return {version: round(100 * c / n, 1) for version, c in sorted(counts.items())}


def wait_backend_requests(backend: Backend, at_least: int, timeout: float = 10.0) -> int:
    """Wait until `backend` has counted `at_least` requests; return its count."""

    def enough() -> int | None:
        requests = backend.counts().requests
        return requests if requests >= at_least else None

    try:
        return wait_until(enough, timeout, what=f"{backend.instance} to get {at_least} requests")
    except TimeoutError:
        return backend.counts().requests


__all__ = [
    "PIN_HEADER",
    "Stack",
    "assert_split",
    "count_versions",
    "endpoints_yaml",
    "free_port",
    "gateway_yaml",
    "launch_stack",
    "served_by",
    "shares",
    "start_backends",
    "tolerance",
    "wait_backend_requests",
    "wait_until",
    "write_atomically",
]
