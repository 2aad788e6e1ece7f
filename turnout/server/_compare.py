"""Dark response diffing inside `turnout serve`: the comparators' side of the xDS port.

`turnout serve --comparator HOST:PORT` (repeatable; a name such as a Kubernetes
Service works) says where the comparators listen: the translation then copies each
mirror with `compare:` to them (`turnout.translate`), and this module

- serves `turnout.v1.CompareService/Connect`: a comparator says who it is, is sent
  the mirror targets (`compare_targets`, again whenever the served policies change)
  and streams its figures back every second into the `CompareStore`;
- exports the comparison on `/metrics` (from the dark judgements, so the figures are
  the ones `turnout status` shows).

The addresses are configured rather than registered by the comparators: the
translation stays a pure function of the policy files and the options, so every
replica serves the same config with the same content hashes, and a comparator
restarting (a new pod IP behind the same Service) changes nothing Envoy is sent. A
comparator connects to one replica (through turnout's Service), so, like Envoy's
metrics stream, each replica judges on what reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import grpc
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from turnout._proto.v1 import release_pb2 as pb
from turnout.analysis import CompareStore
from turnout.api import CompareView
from turnout.policy import Endpoint, PolicySet, Service
from turnout.release import DarkJudgement, compare_light
from turnout.server._controller import Controller
from turnout.translate import route_name

__all__ = ["COMPARE_SERVICE", "Comparing", "compare_targets", "compare_view"]

log = structlog.get_logger("turnout.compare")

COMPARE_SERVICE = "turnout.v1.CompareService"

_RECHECK = 1.0  # seconds between looks at the served policies for each comparator stream
_FIELDS_EXPORTED = 20  # per target on /metrics: the most differing fields beyond noise


def _segments(service: Service) -> list[tuple[str, Any, Any]]:
    return [(route_name(service.name, "default"), service.traffic, service.mirror)] + [
        (route_name(service.name, "rule", rule.name), rule.traffic, rule.mirror)
        for rule in service.rules
    ]


def compare_targets(policies: PolicySet) -> list[pb.CompareTarget]:
    """Every mirror with `compare:` of the set, as the comparators are sent them."""
    targets = []
    for service in policies.services:
        for route, traffic, mirror in _segments(service):
            if mirror is None or mirror.compare is None or mirror.percent <= 0:
                continue
            light = compare_light(service, traffic, mirror.to)
            if light is None:
                continue
            compare = mirror.compare
            targets.append(
                pb.CompareTarget(
                    route=route,
                    service=service.name,
                    to=mirror.to,
                    light=light,
                    light_endpoints=[str(e) for e in service.version(light).endpoints],
                    dark_endpoints=[str(e) for e in service.version(mirror.to).endpoints],
                    methods=compare.methods,
                    ignore=compare.ignore,
                    headers=compare.headers,
                    redact=compare.redact,
                )
            )
    return targets


def compare_view(
    judgement: DarkJudgement, comparators: int, configured: bool
) -> CompareView | None:
    """A dark judgement's comparison as the ReleaseService's view (None without `compare:`)."""
    rate = judgement.target.thresholds.max_diff_rate
    if rate is None:
        return None
    verdict = judgement.verdict
    comparison = verdict.comparison if verdict is not None else None
    error = ""
    if not configured:
        error = "no comparator configured (turnout serve --comparator HOST:PORT)"
    elif not comparators:
        error = "no comparator connected (turnout compare --xds-address ...)"
    return CompareView(comparison, rate, judgement.target.compared_with, comparators, error)


class Comparing:
    """The comparators of one `turnout serve`: where they listen, their stream, their
    figures."""

    def __init__(self, controller: Controller, comparators: Sequence[Endpoint] = ()) -> None:
        self.comparators = tuple(comparators)
        self.store = CompareStore()
        self._controller = controller
        self._changed: set[asyncio.Event] = set()
        self._version = ""

    @property
    def configured(self) -> bool:
        return bool(self.comparators)

    def _targets(self) -> pb.CompareTargets:
        current = self._controller.current
        if current is None:
            return pb.CompareTargets()
        return pb.CompareTargets(
            version=current.policy_version, targets=compare_targets(current.policies)
        )

    def published(self, *_args: object) -> None:
        """A new policy version is served (a cache watch): send the targets again."""
        for changed in self._changed:
            changed.set()

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to serve (``XdsServer(handlers=[...])``)."""
        return grpc.method_handlers_generic_handler(
            COMPARE_SERVICE,
            {
                "Connect": grpc.stream_stream_rpc_method_handler(
                    self._connect,
                    request_deserializer=pb.CompareReport.FromString,
                    response_serializer=pb.CompareTargets.SerializeToString,
                )
            },
        )

    async def _connect(
        self, requests: AsyncIterator[pb.CompareReport], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.CompareTargets]:
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return
        name = first.comparator or context.peer()
        changed = asyncio.Event()
        self._changed.add(changed)
        self.store.connected(name)
        log.info("comparator connected", comparator=name, listen=first.listen, peer=context.peer())
        reading = asyncio.create_task(self._read(name, requests, first))
        sent: object = None
        try:
            while not reading.done():
                changed.clear()
                current = self._controller.current
                basis = current.policies if current is not None else None
                if basis is not sent:  # a reload may change targets but not Envoy's config
                    sent = basis
                    yield self._targets()
                waiting = asyncio.create_task(changed.wait())
                await asyncio.wait(
                    {waiting, reading}, timeout=_RECHECK, return_when=asyncio.FIRST_COMPLETED
                )
                waiting.cancel()
        finally:
            self._changed.discard(changed)
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await reading
            self.store.disconnected(name)
            log.info("comparator disconnected", comparator=name)

    async def _read(
        self, name: str, requests: AsyncIterator[pb.CompareReport], first: pb.CompareReport
    ) -> None:
        self.store.reported(name, first.targets)
        async for report in requests:
            self.store.reported(name, report.targets)

    def collector(
        self, judgements: Callable[[], Mapping[str, Sequence[DarkJudgement]]]
    ) -> Collector:
        """`/metrics`: the comparison of each mirror target over the dark window."""
        return _CompareCollector(self, judgements)


class _CompareCollector(Collector):
    def __init__(
        self,
        comparing: Comparing,
        judgements: Callable[[], Mapping[str, Sequence[DarkJudgement]]],
    ) -> None:
        self._comparing = comparing
        self._judgements = judgements

    def collect(self) -> Iterable[Metric]:
        store = self._comparing.store
        yield GaugeMetricFamily(
            "turnout_comparators_connected",
            "Comparators (turnout compare) streaming to this turnout",
            value=len(store.comparators),
        )
        reports = CounterMetricFamily(
            "turnout_compare_reports", "Reports received from comparators"
        )
        reports.add_metric([], store.reports)
        yield reports
        labels = ["service", "to"]
        compared = GaugeMetricFamily(
            "turnout_compare_compared",
            "Mirrored requests compared over the dark window",
            labels=labels,
        )
        differing = GaugeMetricFamily(
            "turnout_compare_differing",
            "Compared requests whose dark answer differs beyond noise, over the dark window",
            labels=labels,
        )
        noise = GaugeMetricFamily(
            "turnout_compare_noise",
            "Compared requests whose two light answers differed, over the dark window",
            labels=labels,
        )
        fields = GaugeMetricFamily(
            "turnout_compare_field_differing",
            "Compared requests whose dark answer differs in this field (beyond noise)",
            labels=[*labels, "field"],
        )
        for service, found in sorted(self._judgements().items()):
            for judgement in found:
                verdict = judgement.verdict
                comparison = verdict.comparison if verdict is not None else None
                if comparison is None:
                    continue
                key = [service, judgement.target.to]
                compared.add_metric(key, comparison.compared)
                differing.add_metric(key, comparison.differing)
                noise.add_metric(key, comparison.noise)
                beyond = [f for f in comparison.fields if f.beyond_noise][:_FIELDS_EXPORTED]
                for field in beyond:
                    fields.add_metric([*key, field.field], field.differing)
        yield from (compared, differing, noise, fields)
