"""A fake clock, a fake metrics store and a policy directory for driver unit tests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from turnout.analysis import ENVOY_BUCKETS, Figures, Histogram
from turnout.policy import PolicySet, load_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

SERVICE = """\
kind: Service
name: checkout
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
stable: v1
traffic: {{v1: 100}}  # the release changes this
{mirror}incremental:
  to: v2
  steps: [10, 50, 100]
  interval: 10s
  analysis:
    minRequests: 100
    maxErrorRate: 0.05
    maxLatencyP99Increase: 1.5
  onFailure: {on_failure}
{extra}"""

T0 = 1_800_000_000.0  # a whole second: `since` is written to the second


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class _Sample:
    at: float
    requests: int
    errors: int
    latency: float


def _histogram(latency: float, count: int) -> Histogram:
    index = next((i for i, b in enumerate(ENVOY_BUCKETS) if latency <= b), len(ENVOY_BUCKETS))
    counts = [0] * (len(ENVOY_BUCKETS) + 1)
    counts[index] = count
    return Histogram(ENVOY_BUCKETS, tuple(counts))


@dataclass
class FakeSource:
    """Figures from samples added by the test: (service, version) -> samples in time."""

    samples: dict[tuple[str, str], list[_Sample]] = field(default_factory=lambda: defaultdict(list))
    fail_with: Exception | None = None
    asked: int = 0

    def add(
        self,
        version: str,
        at: float,
        requests: int,
        *,
        errors: int = 0,
        latency: float = 0.004,
        service: str = "checkout",
    ) -> None:
        self.samples[(service, version)].append(_Sample(at, requests, errors, latency))

    async def figures(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        self.asked += 1
        if self.fail_with is not None:
            raise self.fail_with
        end = until if until is not None else float("inf")
        requests = errors = 0
        latency = Histogram()
        for sample in self.samples.get((service, version), []):
            if since <= sample.at < end or (sample.at == end == since):
                requests += sample.requests
                errors += sample.errors
                latency = latency.merge(_histogram(sample.latency, sample.requests))
        return Figures(
            since,
            end,
            requests,
            errors,
            0,
            latency,
            1 if requests else 0,
            service,
            version,
            (f"{service}_{version}",),
        )


def write_policies(
    directory: Path,
    *,
    on_failure: str = "rollback",
    mirror: str = "",
    extra: str = "",
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gateway.yaml").write_text(GATEWAY)
    text = SERVICE.format(on_failure=on_failure, mirror=mirror, extra=extra)
    (directory / "checkout.yaml").write_text(text)
    return directory


def loader(directory: Path) -> PolicySet:
    return load_policies(directory)
