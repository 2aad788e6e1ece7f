"""``turnout.v1.ReleaseService``: GetStatus and WatchStatus over grpc.aio.

How WatchStatus works: stream hooks (:class:`XdsCallbacks`) and ``policy_changed()``
only *record* what happened (which stream, which kind of event) and wake one hub
task; they never build messages. The hub runs at most once per coalescing window,
takes one copy of every proxy's state, and turns what was recorded into events, each
carrying the new state of what it is about (not a diff to apply arithmetically), so a
duplicate or a coalesced event is harmless. Events are fanned out to one bounded
queue per watcher; a watcher whose queue overflows is sent a fresh SNAPSHOT instead
of what it missed. Nothing is recorded and no hub runs while nobody watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
import structlog

from turnout._proto.v1 import release_pb2 as pb
from turnout.api._convert import (
    is_proxy,
    proxy_message,
    rollout_message,
    service_message,
    status_message,
)
from turnout.api._model import PolicySource, PolicyView, RolloutAbortError, RolloutView
from turnout.xds import ProxyStatus, StreamInfo, XdsCallbacks

__all__ = ["SERVICE_NAME", "ProxySource", "ReleaseService"]

log = structlog.get_logger("turnout.api")

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ReleaseService"].full_name
"""``turnout.v1.ReleaseService``."""

ProxySource = Callable[[], Sequence[ProxyStatus]]
"""Returns a copy of every open xDS stream's state (``XdsServer.proxies``)."""

Kind = pb.StatusEvent.Kind
_RESET = object()
"""Queued to a watcher that fell behind: send it a SNAPSHOT."""
_END = object()
"""Queued to every watcher when the service closes."""


class _Hooks(XdsCallbacks):
    """Records proxy events for the hub."""

    def __init__(self, service: ReleaseService) -> None:
        self._service = service

    def on_stream_open(self, stream: StreamInfo) -> None:
        self._service._record(stream, Kind.PROXY_CONNECTED)

    def on_stream_close(self, stream: StreamInfo) -> None:
        self._service._record(stream, Kind.PROXY_DISCONNECTED)

    def on_ack(self, stream: StreamInfo, type_url: str, version: str) -> None:
        self._service._record(stream, Kind.PROXY_ACKED)

    def on_nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        self._service._record(stream, Kind.PROXY_NACKED)

    def on_synced(self, stream: StreamInfo, version: str) -> None:
        self._service._record(stream, Kind.PROXY_SYNCED)


class _Watcher:
    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()


class ReleaseService:
    """Serves the fleet's status; plug :attr:`callbacks` into the XdsServer and call
    :meth:`policy_changed` after every reload (accepted or rejected)."""

    def __init__(
        self,
        policy: PolicySource,
        proxies: ProxySource,
        *,
        window: float = 0.005,
        max_queue: int = 10_000,
        abort: Callable[[str], RolloutView] | None = None,
        proxy: Callable[[int], ProxyStatus | None] | None = None,
    ) -> None:
        """``window``: the shortest coalescing window in seconds (it grows to twice the
        time a hub round took); ``max_queue``: events a watcher may lag before it is
        reset with a SNAPSHOT; ``abort(gateway)``: `turnout rollout abort` (raises
        RolloutAbortError; None: AbortRollout answers UNIMPLEMENTED); ``proxy(stream_id)``:
        one open stream's state (``XdsServer.proxy``), so a round of proxy events copies
        only the streams they are about, not every stream (1,000 streams ACKing a push
        make dozens of rounds)."""
        self._policy = policy
        self._proxies = proxies
        self._proxy = proxy
        self._abort = abort
        self._window = window
        self._max_queue = max_queue
        self.callbacks: XdsCallbacks = _Hooks(self)
        self._watchers: set[_Watcher] = set()
        self._pending: dict[int, list[int]] = {}
        self._infos: dict[int, StreamInfo] = {}
        self._policy_dirty = False
        self._decided: list[str] = []
        self._dark: list[str] = []
        self._figures: list[str] = []
        self._wake = asyncio.Event()
        self._hub: asyncio.Task[None] | None = None
        self._last_policy: PolicyView | None = None
        self._last_proxies: dict[int, pb.ProxyStatus] = {}
        self._closed = False

    # -- the composition root's side -------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to serve (``XdsServer(handlers=[...])``)."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "GetStatus": grpc.unary_unary_rpc_method_handler(
                    self._get_status,
                    request_deserializer=pb.GetStatusRequest.FromString,
                    response_serializer=pb.Status.SerializeToString,
                ),
                "WatchStatus": grpc.unary_stream_rpc_method_handler(
                    self._watch_status,
                    request_deserializer=pb.WatchStatusRequest.FromString,
                    response_serializer=pb.StatusEvent.SerializeToString,
                ),
                "AbortRollout": grpc.unary_unary_rpc_method_handler(
                    self._abort_rollout,
                    request_deserializer=pb.AbortRolloutRequest.FromString,
                    response_serializer=pb.AbortRolloutResponse.SerializeToString,
                ),
            },
        )

    def policy_changed(self) -> None:
        """A reload happened (accepted, rejected or unchanged): look at the policy again."""
        if self._watchers:
            self._policy_dirty = True
            self._wake.set()

    def release_decided(self, service: str) -> None:
        """The release driver decided something about ``service``'s release: one
        RELEASE_DECISION event carrying the service with its analysis."""
        if self._watchers:
            self._decided.append(service)
            self._wake.set()

    def dark_changed(self, service: str) -> None:
        """A mirror target's dark verdict changed for ``service``: one DARK_VERDICT
        event carrying the service with its dark judgements."""
        if self._watchers:
            self._dark.append(service)
            self._wake.set()

    def release_figures(self, service: str) -> None:
        """``service``'s release or dark figures moved: one RELEASE_FIGURES event
        carrying the service with its analysis and dark judgements."""
        if self._watchers:
            self._figures.append(service)
            self._wake.set()

    def status(self) -> pb.Status:
        """The current status (what GetStatus answers)."""
        return status_message(self._policy(), self._proxies())

    @property
    def watcher_count(self) -> int:
        """How many WatchStatus streams are open."""
        return len(self._watchers)

    async def close(self) -> None:
        """End every WatchStatus stream (they would hold a graceful stop for its whole
        grace period) and stop the hub."""
        self._closed = True
        for watcher in self._watchers:
            watcher.queue.put_nowait(_END)
        if self._hub is not None:
            self._hub.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hub
            self._hub = None

    # -- RPCs ------------------------------------------------------------------------

    async def _abort_rollout(
        self, request: pb.AbortRolloutRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AbortRolloutResponse:
        if self._abort is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no config rollout here")
            raise AssertionError("unreachable")  # context.abort raises
        try:
            view = self._abort(request.gateway)
        except RolloutAbortError as exc:
            code = (
                grpc.StatusCode.NOT_FOUND
                if exc.code == "not-found"
                else grpc.StatusCode.FAILED_PRECONDITION
            )
            await context.abort(code, str(exc))
            raise AssertionError("unreachable") from exc
        self.policy_changed()
        return pb.AbortRolloutResponse(rollout=rollout_message(view))

    async def _get_status(
        self, _request: pb.GetStatusRequest, _context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Status:
        return self.status()

    async def _watch_status(
        self, _request: pb.WatchStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StatusEvent]:
        if self._closed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "turnout is stopping")
        async with contextlib.aclosing(self.watch()) as events:  # ends with the call
            async for event in events:
                yield event

    async def watch(self) -> AsyncGenerator[pb.StatusEvent, None]:
        """WatchStatus's events, in process (the admin address streams them to the
        dashboard as server-sent events): a SNAPSHOT first, then one event per change;
        ends when the service closes."""
        if self._closed:
            return
        watcher = _Watcher()
        if not self._watchers:
            # Start recording from a clean slate, with this snapshot as the baseline.
            self._pending.clear()
            self._infos.clear()
            self._policy_dirty = False
            self._decided.clear()
            self._dark.clear()
            self._figures.clear()
        self._watchers.add(watcher)
        self._ensure_hub()
        sequence = 0
        try:
            item: Any = _RESET
            while item is not _END:
                if item is _RESET:
                    event = self._snapshot_event()
                else:
                    event = pb.StatusEvent()
                    event.CopyFrom(item)
                sequence += 1
                event.sequence = sequence
                yield event
                item = await watcher.queue.get()
        finally:
            self._watchers.discard(watcher)

    # -- the hub ---------------------------------------------------------------------

    def _record(self, stream: StreamInfo, kind: int) -> None:
        if not self._watchers:
            return
        kinds = self._pending.setdefault(stream.stream_id, [])
        if kind not in kinds:
            kinds.append(kind)
        self._infos[stream.stream_id] = stream
        self._wake.set()

    def _ensure_hub(self) -> None:
        if self._hub is None or self._hub.done():
            self._hub = asyncio.create_task(self._run_hub(), name="release-status-hub")

    def _snapshot_event(self) -> pb.StatusEvent:
        policy = self._policy()
        status = status_message(policy, self._proxies())
        self._last_policy = policy
        self._last_proxies = {p.stream_id: p for p in status.proxies}
        return self._event(Kind.SNAPSHOT, status.served_version, status=status)

    @staticmethod
    def _event(kind: int, served: str, **fields: Any) -> pb.StatusEvent:
        event = pb.StatusEvent(kind=kind, served_version=served, **fields)  # type: ignore[arg-type]
        event.at.GetCurrentTime()
        return event

    async def _run_hub(self) -> None:
        window = self._window
        while True:
            await self._wake.wait()
            await asyncio.sleep(window)
            self._wake.clear()
            started = time.perf_counter()
            try:
                events = self._collect()
            except Exception:
                log.exception("api.watch_failed")
                events = []
            for event in events:
                self._fan_out(event)
            window = max(self._window, 2 * (time.perf_counter() - started))

    def _fan_out(self, event: pb.StatusEvent) -> None:
        for watcher in self._watchers:
            queue = watcher.queue
            if queue.qsize() >= self._max_queue:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_RESET)
            else:
                queue.put_nowait(event)

    def _collect(self) -> list[pb.StatusEvent]:
        """Turn what was recorded since the last round into events."""
        pending, self._pending = self._pending, {}
        infos, self._infos = self._infos, {}
        policy_dirty, self._policy_dirty = self._policy_dirty, False
        decided, self._decided = self._decided, []
        dark, self._dark = self._dark, []
        figures, self._figures = self._figures, []
        if not self._watchers:
            return []
        policy = self._policy()
        served = policy.policy_version or ""
        events: list[pb.StatusEvent] = []
        previous = self._last_policy
        whole = policy_dirty and previous != policy  # a full status goes out: every proxy
        if whole or self._proxy is None:
            current = {p.stream_id: p for p in self._proxies() if is_proxy(p)}
        else:
            current = {}
            for stream_id in pending:
                found = self._proxy(stream_id)
                if found is not None and is_proxy(found):
                    current[stream_id] = found
        if whole:
            events += self._policy_events(previous, policy, current.values())
        elif policy_dirty and previous is not None:
            events += self._endpoint_events(previous, policy)
        self._last_policy = policy
        services = {s.name: s for s in policy.services}
        for name in decided:
            if name in services:
                events.append(
                    self._event(
                        Kind.RELEASE_DECISION, served, service=service_message(services[name])
                    )
                )
        for name in dict.fromkeys(dark):
            if name in services:
                events.append(
                    self._event(Kind.DARK_VERDICT, served, service=service_message(services[name]))
                )
        for name in dict.fromkeys(figures):
            if name in services:
                events.append(
                    self._event(
                        Kind.RELEASE_FIGURES, served, service=service_message(services[name])
                    )
                )
        for stream_id, kinds in pending.items():
            status = current.get(stream_id)
            if status is not None:
                message = proxy_message(
                    status, policy.policy_version, policy.accepted_at, policy.assignment
                )
            else:
                message = self._last_proxies.get(stream_id) or _gone(infos[stream_id])
            for kind in kinds:
                events.append(self._event(kind, served, proxy=message))
            if status is None:
                self._last_proxies.pop(stream_id, None)
            else:
                self._last_proxies[stream_id] = message
        return events

    def _policy_events(
        self, previous: PolicyView | None, policy: PolicyView, proxies: Any
    ) -> list[pb.StatusEvent]:
        served = policy.policy_version or ""
        events: list[pb.StatusEvent] = []
        changed_version = previous is None or previous.policy_version != policy.policy_version
        if changed_version or (previous is not None and previous.rejected != policy.rejected):
            status = status_message(policy, proxies)
            kind = Kind.VERSION_SERVED if changed_version else Kind.POLICY_REJECTED
            events.append(self._event(kind, served, status=status))
            self._last_proxies = {p.stream_id: p for p in status.proxies}
        if (
            not changed_version
            and previous is not None
            and _rollout_mark(previous) != _rollout_mark(policy)
        ):
            events.append(
                self._event(Kind.ROLLOUT_CHANGED, served, status=status_message(policy, proxies))
            )
        before = {s.name: s.incremental for s in previous.services} if previous else {}
        for service in policy.services:
            if service.incremental != before.get(service.name):
                events.append(
                    self._event(Kind.RELEASE_CHANGED, served, service=service_message(service))
                )
        return events

    def _endpoint_events(self, previous: PolicyView, policy: PolicyView) -> list[pb.StatusEvent]:
        """Services whose healthy-endpoint counts moved (ServiceView.endpoints is left
        out of the view's equality: a live count is not a policy change)."""
        before = {s.name: s.endpoints for s in previous.services}
        served = policy.policy_version or ""
        return [
            self._event(Kind.ENDPOINTS_CHANGED, served, service=service_message(service))
            for service in policy.services
            if service.name in before and service.endpoints != before[service.name]
        ]


def _rollout_mark(policy: PolicyView) -> tuple[str, str, str, str] | None:
    """What a ROLLOUT_CHANGED event is about: the phase, the set, why."""
    rollout = policy.rollout
    if rollout is None:
        return None
    return (rollout.phase, rollout.version, rollout.last_good_version, rollout.reason)


def _gone(info: StreamInfo) -> pb.ProxyStatus:
    """The little we know of a stream that came and went within one round."""
    message = pb.ProxyStatus(
        stream_id=info.stream_id,
        node_id=info.node_id,
        node_cluster=info.node_cluster,
        stream_kind=info.kind,
    )
    message.connected_at.FromDatetime(datetime.now(UTC))
    return message
