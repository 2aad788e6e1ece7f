"""What a state-of-the-world stream (``_stream``) and a Delta stream (``_delta``) share:
who is on the stream, its status, the reader/writer pair that runs it, and the hooks.

The protocols differ in what a request means and what the writer sends; that is the
subclasses' ``handle_request`` and ``next_response``. Everything else is here once.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

import structlog
from envoy.config.core.v3.base_pb2 import Node

from turnout.cache import ORDER, Snapshot, short_name
from turnout.xds._callbacks import XdsCallbacks
from turnout.xds._security import StreamRejectedError
from turnout.xds._source import SnapshotSource
from turnout.xds._status import NackRecord, ProxyStatus, StreamInfo, TypeStatus
from turnout.xds._tasks import Wake, run_stream

__all__ = ["StreamBase", "now"]

log = structlog.get_logger("turnout.xds")


def now() -> datetime:
    """The current time, in UTC (status timestamps)."""
    return datetime.now(UTC)


class TypeStateLike(Protocol):
    """What the shared code reads of a stream's per-type state."""

    type_url: str
    requested: bool
    acked_version: str | None
    desired_version: str | None
    behind_since: datetime | None
    last_nack: NackRecord | None

    def status(self) -> TypeStatus: ...


StateT = TypeVar("StateT", bound=TypeStateLike)
RequestT = TypeVar("RequestT")


class StreamBase(Generic[StateT, RequestT]):
    """The state and the two tasks of one xDS stream (ADS or one per-type service)."""

    def __init__(
        self,
        *,
        stream_id: int,
        kind: str,
        type_urls: tuple[str, ...],
        cache: SnapshotSource,
        callbacks: XdsCallbacks,
        nonce_prefix: str,
        new_state: Callable[[str], StateT],
    ) -> None:
        self.stream_id = stream_id
        self.kind = kind
        self.connected_at = now()
        self._ads = len(type_urls) > 1
        self._types = tuple(t for t in ORDER if t in type_urls)
        self._default_type = type_urls[0] if not self._ads else ""
        self._cache = cache
        self._callbacks = callbacks
        self._states: dict[str, StateT] = {t: new_state(t) for t in self._types}
        self._nonces = itertools.count(1)
        self._nonce_prefix = f"{nonce_prefix}{stream_id:x}."
        self._info: StreamInfo | None = None
        self._node_known = False
        self.node_id = ""
        self.node_cluster = ""
        self.wake = Wake()
        self.synced_version: str | None = None
        """The policy version (the cache's) this proxy has ACKed every requested type of."""
        self.synced_at: datetime | None = None
        self.admit: Callable[[Node], None] | None = None
        """Called with the node before the stream takes it; raises StreamRejectedError to
        end the stream before anything is sent (node authorization, ``_security``)."""

    # -- what the protocol decides -------------------------------------------------------

    def handle_request(self, request: RequestT) -> None:
        """Record what one request says and wake the writer."""
        raise NotImplementedError

    def next_response(self) -> bytes | None:
        """The next response to write, already recorded as sent; None if nothing is due."""
        raise NotImplementedError

    def _accept(self, type_url: str, node: Node) -> StateT | None:
        """The state of a request's type, taking the node from the stream's first
        request (Envoy sends it on the first request only; later ones may omit it);
        None for a type this stream does not serve (logged, ignored)."""
        # An ADS stream multiplexes the types by type_url; on a per-type stream the
        # service implies it, and a request may leave it empty.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#aggregated-discovery-service
        type_url = type_url or self._default_type
        state = self._states.get(type_url)
        if state is None:
            log.warning(
                "xds.unknown_type",
                stream_id=self.stream_id,
                node_id=self.node_id or node.id,
                type_url=type_url,
                kind=self.kind,
            )
            return None
        # Only the first request of a stream is sure to carry the node; later ones may
        # omit it or repeat it unchanged, so checking the first one is enough.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#basic-protocol-overview
        if not self._node_known:
            if self.admit is not None:
                self.admit(node)  # node authorization: raises to refuse the stream
            self._node_known = True
            self.node_id = node.id
            self.node_cluster = node.cluster
            log.info(
                "xds.stream_open",
                stream_id=self.stream_id,
                kind=self.kind,
                node_id=self.node_id,
                node_cluster=self.node_cluster,
            )
            self._call("on_stream_open", self.info)
        return state

    # -- who and how it stands -------------------------------------------------------------

    @property
    def info(self) -> StreamInfo:
        """Who is on this stream (fixed once the first request named the node)."""
        info = self._info
        if info is None or info.node_id != self.node_id or info.node_cluster != self.node_cluster:
            info = self._info = StreamInfo(
                self.stream_id, self.kind, self.node_id, self.node_cluster
            )
        return info

    @property
    def opened(self) -> bool:
        """Whether the first request (carrying the node) has arrived."""
        return self._node_known

    def status(self) -> ProxyStatus:
        """A copy of this stream's state."""
        return ProxyStatus(
            stream_id=self.stream_id,
            node_id=self.node_id,
            node_cluster=self.node_cluster,
            kind=self.kind,
            connected_at=self.connected_at,
            types={t: s.status() for t, s in self._states.items() if s.requested},
            synced_version=self.synced_version,
            synced_at=self.synced_at,
        )

    # -- running ---------------------------------------------------------------------------

    async def serve(
        self,
        requests: AsyncIterator[RequestT],
        write: Callable[[bytes], Awaitable[None]],
    ) -> StreamRejectedError | None:
        """Run until the proxy closes its side or the RPC is cancelled, then release all
        (a write in flight is let finish: ``_tasks``). Returns the refusal that ended
        the stream, if one did: the server ends the RPC with its status."""
        watch = self._cache.watch(self.wake.set)
        try:
            ended = await run_stream(self.stream_id, self._read(requests), self._write, write)
            if isinstance(ended, StreamRejectedError):
                return ended
            if ended is not None:
                log.info(
                    "xds.stream_error",
                    stream_id=self.stream_id,
                    node_id=self.node_id,
                    error=repr(ended),
                )
            return None
        finally:
            watch.cancel()
            if self._node_known:
                log.info(
                    "xds.stream_close",
                    stream_id=self.stream_id,
                    kind=self.kind,
                    node_id=self.node_id,
                    node_cluster=self.node_cluster,
                )
                self._call("on_stream_close", self.info)

    async def _read(self, requests: AsyncIterator[RequestT]) -> None:
        async for request in requests:
            self.handle_request(request)
            # Hold nothing while awaiting the next one: an idle stream would otherwise
            # keep its proxy's last request (a SotW ACK repeats every subscribed name).
            del request

    async def _write(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        while True:
            # Clear before computing: a wake-up that lands while we compute or send is
            # not lost, it makes the next wait return at once.
            self.wake.clear()
            frame = self.next_response()
            if frame is None:
                await self.wake.wait()
            else:
                # Everything about this response was recorded before this await; the
                # reader may change state meanwhile, the next loop sees it.
                await write(frame)

    # -- shared helpers --------------------------------------------------------------------

    def _snapshot(self) -> Snapshot | None:
        try:
            return self._cache.snapshot_for(self.node_cluster, self.node_id)
        except Exception:
            log.exception(
                "xds.resolve_failed", node_cluster=self.node_cluster, stream_id=self.stream_id
            )
            return None

    def _track_behind(self, state: StateT, version: str) -> None:
        state.desired_version = version
        if state.acked_version == version:
            state.behind_since = None
        elif state.behind_since is None:
            state.behind_since = now()

    def _record_nack(self, state: StateT, version: str, message: str) -> None:
        """Keep a NACK for status (proxy, type, version, Envoy's message), log it and
        tell the hooks."""
        state.last_nack = NackRecord(version=version, message=message, at=now())
        log.warning(
            "xds.nack",
            stream_id=self.stream_id,
            node_id=self.node_id,
            node_cluster=self.node_cluster,
            type=short_name(state.type_url),
            version=version,
            message=message,
        )
        self._call("on_nack", self.info, state.type_url, version, message)

    def _call(self, hook: str, *args: object) -> None:
        try:
            getattr(self._callbacks, hook)(*args)
        except Exception:
            log.exception("xds.callback_failed", hook=hook, stream_id=self.stream_id)
