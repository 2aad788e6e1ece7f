"""`turnout serve`: the xDS server, the admin endpoint and the policy watcher, wired."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from turnout.analysis import MetricsSink, WindowStore
from turnout.api import (
    DarkView,
    ReleaseAnalysisView,
    ReleaseService,
    RolloutAbortError,
    RolloutView,
    to_json,
)
from turnout.cache import SnapshotCache
from turnout.compile import Compiler
from turnout.policy import Endpoint, PolicySet
from turnout.release import DarkJudgement, longest_window
from turnout.server._actions import Actions
from turnout.server._admin import AdminServer
from turnout.server._analysis import VersionClusters
from turnout.server._compare import Comparing
from turnout.server._controller import Controller
from turnout.server._dashboard import Dashboard
from turnout.server._driving import Driving, ReleaseOptions
from turnout.server._fanout import FanOut
from turnout.server._heap import HeapKeeper
from turnout.server._history import PolicyHistory
from turnout.server._metrics import Metrics
from turnout.server._notify import Notifier
from turnout.server._release_view import ControllerView, rollout_view
from turnout.server._rollout import STATE_FILE, ConfigRollout, RolloutError
from turnout.server._tls import SecurityCollector, ServerCertificates, metrics_node
from turnout.server._watch import watch_policies
from turnout.xds import ProxyStatus, StreamGuard, XdsServer

log = structlog.get_logger("turnout.serve")

RETENTION = 1800.0
"""The sink's windows keep at least 30 minutes of figures (more when a release needs)."""
RETENTION_MARGIN = 60.0
"""Kept beyond the longest window a release may judge (a slot, a late flush)."""

FIGURES_INTERVAL = 1.0
"""Seconds between RELEASE_FIGURES events for a release or dark judgement whose
figures moved (only while someone watches): the dashboard's charts gain a point."""

ROLLOUT_TICK = 0.25
"""Seconds between looks at a config rollout's canary."""

DRAIN_RATE = 100.0
"""Streams ended per second at shutdown (spread over at most half the grace period):
1,000 Envoys on a replica with --grace 10 reconnect over 5 s, not in one instant."""


def split_address(address: str) -> tuple[str, int]:
    """`host:port` -> (host, port); `[::1]:18000` works too."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


class App:
    """One turnout process: serves xDS and admin, reloads policies on change."""

    def __init__(
        self,
        policies: Path,
        xds_address: str = "127.0.0.1:18000",
        admin_address: str = "127.0.0.1:18080",
        debounce_ms: int = 100,
        grace_seconds: float = 5.0,
        *,
        tls: ServerCertificates | None = None,
        guard: StreamGuard | None = None,
        releases: ReleaseOptions | None = None,
        comparators: Sequence[Endpoint] = (),
        heap: HeapKeeper | None = None,
        admin_token: str | None = None,
    ) -> None:
        """``tls`` serves the xDS port (xDS, ReleaseService, metrics) over TLS, mutual
        when it has a client CA; ``guard`` authorizes nodes and applies limits;
        ``heap`` tunes garbage collection for a long-lived process (what `turnout serve`
        gives; without it, as in a test, the process's collector is left alone);
        ``admin_token`` turns the dashboard's release actions on (a bearer token)."""
        self.cache = SnapshotCache()
        self.heap = heap
        self.controller = Controller(
            policies,
            self.cache,
            history=PolicyHistory(policies),
            compiling=heap.compiling if heap is not None else contextlib.nullcontext,
        )
        # dark response diffing: mirrors with compare: copy to the comparators (--comparator)
        self.controller.compiler = Compiler(comparators)
        self.comparing = Comparing(self.controller, comparators)
        self.cache.watch(self.comparing.published)  # the comparators' targets follow
        self.metrics = Metrics(self.controller, self.cache, self._proxies)
        self.metrics.registry.register(self.comparing.collector(self._dark_judgements))
        # Envoy's MetricsService on the xDS port: per-version windows for release analysis
        # one cluster -> (service, version) map, for the sink and the driver's source
        clusters = VersionClusters(self.controller)
        self.analysis = WindowStore(clusters, retention=RETENTION)
        self.sink = MetricsSink(self.analysis)
        # staged config rollout (a gateway's rollout:): its canary proxies get a change
        # first, the rest after the bake; the last fully rolled-out set survives restarts
        self.rollout = ConfigRollout(
            self.cache,
            state_file=policies / STATE_FILE,
            figures=lambda nodes, since, name: self.analysis.node_figures(nodes, since, name=name),
        )
        self.controller.rollout = self.rollout
        # webhooks (--notify): release decisions, rejected sets, NACKs; never waited on
        self.notifier = Notifier((releases or ReleaseOptions()).webhooks)
        self.metrics.registry.register(self.notifier.collector())
        # the release driver: steps incremental releases by editing the policy files
        self.driving = Driving(
            releases or ReleaseOptions(),
            directory=policies,
            policies=self._policies_to_drive,
            store=self.analysis,
            clusters=clusters,
            on_write=self.reload,
            on_decision=self._release_decided,
            on_dark=self._dark_changed,
            comparing=self.comparing,
            on_event=self.notifier.release,
        )
        # turnout.v1.ReleaseService on the xDS port: it reads the driver's views, the
        # driver tells it of decisions (once run() drives, when both exist)
        view = ControllerView(
            self.controller,
            releases=self._release_analyses,
            driver=self._driver_state,
            dark=self._dark_views,
            health=self.sink,  # healthy endpoints per version, from Envoy's stats
            rollout=self.rollout,
        )
        self.release = ReleaseService(
            view, self._proxies, abort=self._abort_rollout, proxy=self._proxy
        )
        self.rollout.on_change = self._rollout_changed  # ROLLOUT_CHANGED, webhooks
        self._rollout_phase = ""
        if self.driving.driver is not None:  # a step held at the canary is not yet timed
            self.driving.driver.config_reached = self.rollout.reached
        if heap is not None:
            self.cache.watch(heap.published)  # a long-lived heap: frozen after each publish
        self.tls = tls
        self.guard = guard if guard is not None else StreamGuard()
        self.metrics.registry.register(SecurityCollector(self.guard, tls))
        self.xds = XdsServer(
            self.cache,
            FanOut(self.release.callbacks, self.metrics.callbacks, self.notifier.callbacks),
            handlers=[
                self.guard.restrict(self.release.handler()),
                self.guard.restrict(self.comparing.handler()),
                self.guard.restrict_to_proxies(self.sink.handler(), metrics_node),
            ],
            guard=self.guard,
        )
        actions = None
        if admin_token is not None:
            commit = (releases or ReleaseOptions()).commit
            actions = Actions(policies, commit=commit, on_write=self.reload)
        self.dashboard = Dashboard(self.release.watch, actions=actions, token=admin_token)
        self.admin = AdminServer(
            self.status,
            metrics=self.metrics.exposition,
            ready=self._serving,
            dashboard=self.dashboard,
        )
        self._xds_address = xds_address
        self._admin_address = admin_address
        self._debounce_ms = debounce_ms
        self._grace = grace_seconds
        self._stop = asyncio.Event()
        self._watching = asyncio.Event()  # set when the watcher is to stop
        self.xds_port = 0
        self.admin_port = 0

    def status(self) -> dict[str, Any]:
        """The one status, served at the admin's /status: GetStatus's answer (the
        served set, its services and releases, the reloads and rejections, every
        proxy) in proto3's JSON mapping (`turnout.api.to_json`)."""
        return to_json(self.release.status())

    def _serving(self) -> bool:
        """Whether a policy version is served (/readyz), without building the status."""
        return self.cache.policy_version is not None

    def _proxy(self, stream_id: int) -> ProxyStatus | None:
        return self.xds.proxy(stream_id)

    def _proxies(self) -> list[ProxyStatus]:
        return self.xds.proxies()

    def _policies_to_drive(self) -> PolicySet | None:
        """The served set, when it is what the files say (None while they are rejected)."""
        current = self.controller.current
        if current is None or self.controller.rejected is not None:
            return None
        return current.policies

    def _release_analyses(self) -> Mapping[str, ReleaseAnalysisView]:
        return self.driving.analyses()

    def _dark_views(self) -> Mapping[str, tuple[DarkView, ...]]:
        return self.driving.dark_views()

    def _dark_judgements(self) -> Mapping[str, tuple[DarkJudgement, ...]]:
        return self.driving.dark.judgements()

    def _release_decided(self, service: str) -> None:
        self.release.release_decided(service)

    def _dark_changed(self, service: str) -> None:
        self.release.dark_changed(service)

    def _driver_state(self) -> str:
        return self.driving.state()

    def reload(self) -> bool:
        """Reload the policies; when that changed what is served or rejected, tell the
        release service (WatchStatus), the webhooks and the analysis windows, once.

        Every path that changes the files calls this (the watcher, the release driver's
        and the dashboard's writes); a writer's own write then reaches the watcher too,
        which finds the files as last loaded and changes nothing (Controller.reload)."""
        was_served, was_rejected = self.controller.current, self.controller.rejected
        try:
            return self.controller.reload()
        finally:
            controller = self.controller
            if controller.current is not was_served or controller.rejected is not was_rejected:
                rejected = self.controller.rejected
                self.notifier.policy(rejected.errors if rejected is not None else None)
                self._size_windows()
                self.release.policy_changed()

    def _size_windows(self) -> None:
        """Keep the sink's windows for the longest a release may judge (its steps' and
        dark runs' progress deadlines), never less than the default 30 minutes."""
        current = self.controller.current
        longest = longest_window(current.policies.services) if current is not None else 0.0
        longest = max(longest, self.driving.dark.window)
        before = self.analysis.retention
        after = self.analysis.ensure_retention(longest + RETENTION_MARGIN, minimum=RETENTION)
        self.comparing.store.ensure_retention(longest + RETENTION_MARGIN, minimum=RETENTION)
        if after != before:
            log.info("analysis windows resized", retention_seconds=after, was=before)

    async def start(self) -> None:
        if not self.notifier.started:
            self.notifier.start()  # first: a set rejected at start is told too
        self.reload()
        credentials = self.tls.credentials() if self.tls is not None else None
        self.xds_port = await self.xds.start(self._xds_address, credentials)
        self.admin_port = await self.admin.start(*split_address(self._admin_address))
        log.info(
            "turnout serving",
            xds=f"{split_address(self._xds_address)[0]}:{self.xds_port}",
            admin=f"{split_address(self._admin_address)[0]}:{self.admin_port}",
            policies=str(self.controller.directory),
            version=self.controller.policy_version,
            tls="off" if self.tls is None else "mutual" if self.tls.mutual else "server",
            node_authorization=self.guard.identities is not None,
        )

    async def watch(self) -> None:
        """Reload whenever files under the policy directory change (bursts coalesced)."""
        async for _ in watch_policies(
            self.controller.directory, debounce_ms=self._debounce_ms, stop=self._watching
        ):
            self.reload()

    async def _announce_figures(self) -> None:
        """Once a second, while someone watches, a RELEASE_FIGURES event for each
        service whose release or dark figures (or verdict) moved since the last one: a
        judgement of the same figures (no traffic) is not news. And a look at the policy
        when Envoy's healthy-endpoint counts moved (they are part of each service)."""
        seen: dict[str, object] = {}
        health = -1
        while True:
            await asyncio.sleep(FIGURES_INTERVAL)
            if not self.release.watcher_count:
                seen.clear()
                health = -1
                continue
            if health != self.sink.health_version:
                # Envoy's healthy-endpoint gauges moved (or a watcher came since the last
                # look): the services' healthy/total is news, as a policy look carries it.
                health = self.sink.health_version
                self.release.policy_changed()
            marks: dict[str, object] = {
                name: (v.outcome, v.action, v.canary, v.baseline, v.error)
                for name, v in self._release_analyses().items()
            }
            for name, views in self._dark_views().items():
                dark = tuple((v.to, v.outcome, v.dark, v.light_figures, v.error) for v in views)
                marks[name] = (marks.get(name), dark)
            for name, mark in marks.items():
                if seen.get(name) != mark:
                    self.release.release_figures(name)
            seen = marks

    async def _roll(self) -> None:
        """Every ROLLOUT_TICK, look at the config rollout's canary (ACKs, NACKs, bake,
        5xx rate) and hold or promote it."""
        while True:
            await asyncio.sleep(ROLLOUT_TICK)
            if not self.rollout.active:
                continue  # idle or held: no proxy list built (10,000 streams, 4 times a second)
            try:
                self.rollout.tick(self.xds.proxies())
            except Exception:
                log.exception("config rollout tick failed")

    def _rollout_changed(self) -> None:
        """The config rollout changed phase: a ROLLOUT_CHANGED event, and a webhook when
        it was held, aborted or completed."""
        self.release.policy_changed()
        state = self.rollout.state()
        self.notifier.rollout(state, self._rollout_phase)
        self._rollout_phase = state.phase

    def _abort_rollout(self, gateway: str) -> RolloutView:
        """`turnout rollout abort GATEWAY` (ReleaseService.AbortRollout)."""
        try:
            return rollout_view(self.rollout.abort(gateway))
        except RolloutError as exc:
            raise RolloutAbortError(exc.code, str(exc)) from exc

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        watcher = asyncio.create_task(self.watch())
        rolling = asyncio.create_task(self._roll(), name="config-rollout")
        figures = asyncio.create_task(self._announce_figures(), name="release-figures")
        self.driving.start()
        try:
            await self._stop.wait()
        finally:
            self._stop.set()
            rolling.cancel()
            figures.cancel()
            await self.driving.stop()  # no release step while draining
            await self.notifier.stop()  # what is queued gets a last chance
            await self.release.close()  # WatchStatus streams would hold the drain
            await self.drain()
            self._watching.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.admin.stop()
            self.metrics.close()
            if self.heap is not None:
                self.heap.close()

    async def drain(self) -> None:
        """Shut the xDS server down gracefully, within the grace period.

        New streams are refused at once (the listener closes and connected Envoys get
        an HTTP/2 GOAWAY). Open streams go on, still receiving policy changes, until
        each has ACKed the version being served, so no Envoy moves in the middle of
        an update; then they are ended one by one over a short window
        (`XdsServer.drain`: jittered, DRAIN_RATE streams a second, at most half the
        grace), so a replica's Envoys reconnect through the Service to the other
        replicas spread out rather than in one stampede. Streams still behind when
        the grace runs out (a NACKing or stuck Envoy) are ended then.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        log.info("turnout stopping", grace_seconds=self._grace, streams=self.xds.stream_count)
        stopping = asyncio.create_task(self.xds.stop(self._grace))

        def spread() -> float:
            return min(self._grace / 2, self.xds.stream_count / DRAIN_RATE)

        while not stopping.done() and loop.time() < deadline - spread():
            given = self.cache.policy_version_for  # a config rollout's canary: another
            if all(
                p.synced_version == given(p.node_cluster, p.node_id) for p in self.xds.proxies()
            ):
                break
            await asyncio.sleep(0.05)
        window = max(0.0, min(spread(), deadline - loop.time()))
        if not stopping.done():
            ended = await self.xds.drain(window)
            log.info("xds streams drained", streams=ended, over_seconds=round(window, 2))
        await self.xds.stop(None)  # ends what is left now (grpc: a later stop shortens)
        await stopping
        log.info("xds streams ended", seconds=round(self._grace - (deadline - loop.time()), 2))

    def stop(self) -> None:
        self._stop.set()
