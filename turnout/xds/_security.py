"""Who may open an xDS stream, claim which node, and how much it may ask.

Decisions, each where it bites below:

- **Identity comes from the certificate, never from the node.** With mutual TLS, the
  peer's identity is what its verified certificate says: the SPIFFE ID (the one URI
  SAN of an SVID, as grpc reports it in ``peer_spiffe_id``) and the DNS SANs. A
  proxy's ``node.id`` is only a name for status; ``node.cluster`` selects what it is
  sent, so it is the claim to check: an :class:`IdentityMap` says which node.cluster
  globs each identity may claim. Without a match the stream ends with
  PERMISSION_DENIED before anything is sent (the stream learns its node only once
  :meth:`Admission.admit` has accepted it, and sends nothing before that).
- **Fail closed.** With an identity map, a peer presenting no certificate (plain TLS
  or no TLS) is refused, and a certificate no rule names is refused.
- **Limits end one stream, never the process** (CVE-2022-23635 was an
  unauthenticated crash of istiod's xDS port). A request larger than
  ``max_request_bytes`` ends its stream with RESOURCE_EXHAUSTED; bytes that are not
  a request end it with INVALID_ARGUMENT; a peer address (or a node id) over its
  stream budget is refused with RESOURCE_EXHAUSTED. The size is checked where the
  request is parsed, so it bounds xDS only: Envoy's metrics stream on the same port
  keeps grpc's server-wide limit.
- **The request rate is throttled, not punished.** Past its burst, a stream's requests
  are read no faster than ``max_requests_per_second``: the reader waits for a token,
  HTTP/2 flow control pushes back on the peer, and a chatty Envoy is slowed, never
  disconnected (a disconnect would only make it reconnect and ask again).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import grpc.aio
import structlog
from envoy.config.core.v3.base_pb2 import Node
from google.protobuf.message import DecodeError, Message

__all__ = [
    "Admission",
    "IdentityMap",
    "IdentityMapError",
    "Limits",
    "PeerIdentity",
    "StreamGuard",
    "StreamRejectedError",
    "peer_identity",
]

log = structlog.get_logger("turnout.xds")

M = TypeVar("M", bound=Message)

GRPC_DEFAULT_MAX_RECEIVE = 4 * 1024 * 1024
"""grpc's own limit on a received message (all services of the server)."""


class StreamRejectedError(Exception):
    """Ends one RPC with ``code`` and ``details`` (raised anywhere in its handling)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


# -- identity ------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerIdentity:
    """What the transport says about the other end of one RPC."""

    address: str
    """The peer's host (IP address) without the port, or the whole peer string."""
    transport: str = "insecure"
    """grpc's ``transport_security_type``: ``ssl`` for TLS, else ``insecure``..."""
    spiffe_id: str | None = None
    """The SPIFFE ID of a verified client certificate (its single ``spiffe://`` URI SAN)."""
    dns_names: tuple[str, ...] = ()
    """The DNS SANs of a verified client certificate."""
    common_name: str | None = None
    """The subject CN (logged for people; never used to authorize)."""

    @property
    def authenticated(self) -> bool:
        """Whether the peer presented a certificate that names it (SPIFFE ID or DNS SAN)."""
        return self.spiffe_id is not None or bool(self.dns_names)

    def describe(self) -> str:
        """A short text for logs and error details."""
        if self.spiffe_id is not None:
            return self.spiffe_id
        if self.dns_names:
            return "DNS:" + ",".join(self.dns_names)
        if self.common_name is not None:
            return f"CN={self.common_name} (no SPIFFE ID or DNS SAN)"
        return "no client certificate" if self.transport == "ssl" else "no TLS"


def peer_identity(context: grpc.aio.ServicerContext[Any, Any]) -> PeerIdentity:
    """The identity of the peer of ``context``, from grpc's auth context."""
    auth: Mapping[str, Sequence[bytes]] = context.auth_context() or {}

    def values(key: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in auth.get(key, ())]

    transport = (values("transport_security_type") or ["insecure"])[0]
    spiffe = values("peer_spiffe_id")
    common_name = values("x509_common_name")
    return PeerIdentity(
        address=peer_host(context.peer() or ""),
        transport=transport,
        spiffe_id=spiffe[0] if spiffe else None,
        dns_names=tuple(values("peer_dns")),
        common_name=common_name[0] if common_name else None,
    )


def peer_host(peer: str) -> str:
    """``ipv4:10.0.0.1:5000`` -> ``10.0.0.1``, ``ipv6:[::1]:5000`` -> ``::1``; others as given."""
    scheme, sep, rest = peer.partition(":")
    if not sep or scheme not in ("ipv4", "ipv6"):
        return peer
    rest = rest.replace("%5B", "[").replace("%5D", "]")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit():
        return rest
    return host.strip("[]")


# -- the identity map ----------------------------------------------------------------


class IdentityMapError(ValueError):
    """An identity map that cannot be used; the message says where and why."""


def _segment_glob(pattern: str, separator: str) -> re.Pattern[str]:
    """``*`` matches within one segment (never ``separator``); the rest is literal."""
    parts = (re.escape(p) for p in pattern.split("*"))
    return re.compile(f"[^{re.escape(separator)}]*".join(parts))


def _cluster_glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; the rest is literal."""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.DOTALL)


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str]
    spiffe: bool

    @classmethod
    def parse(cls, text: str) -> _Pattern:
        if text.startswith("spiffe://"):
            return cls(text, _segment_glob(text, "/"), spiffe=True)
        if not text or "/" in text or ":" in text:
            raise IdentityMapError(
                f"{text!r} is neither a SPIFFE ID (spiffe://trust-domain/path) nor a DNS name"
            )
        return cls(text.lower(), _segment_glob(text.lower(), "."), spiffe=False)

    def matches(self, identity: PeerIdentity) -> bool:
        if self.spiffe:
            return identity.spiffe_id is not None and bool(self.regex.fullmatch(identity.spiffe_id))
        return any(self.regex.fullmatch(name.lower()) for name in identity.dns_names)


@dataclass(frozen=True)
class _Rule:
    identity: _Pattern
    clusters: tuple[re.Pattern[str], ...]
    cluster_text: tuple[str, ...]


@dataclass(frozen=True)
class IdentityMap:
    """Which certificate identities may claim which node.cluster values, and which may
    call turnout's own API (the ReleaseService) on the xDS port.

    Built from configuration like this (the ``--identity-map`` file)::

        proxies:
          "spiffe://example.org/ns/edge/sa/envoy": [edge, edge-*]
          "*.gateways.example.org": [gateways]
        api:
          - "spiffe://example.org/ns/ops/sa/*"

    A key starting with ``spiffe://`` matches the certificate's SPIFFE ID, any other
    key its DNS SANs (case-insensitively). In identities ``*`` matches within one path
    segment or one DNS label, so ``.../sa/*`` never matches ``.../sa/x/y``; in
    node.cluster globs ``*`` matches anything. A node is allowed when some rule whose
    identity matches lists a glob matching its node.cluster. ``api`` lists the
    identities that may call the ReleaseService; without it, any client whose
    certificate the CA verifies may (it is read-only).
    """

    rules: tuple[_Rule, ...] = ()
    api: tuple[_Pattern, ...] | None = None

    @classmethod
    def from_config(cls, data: object) -> IdentityMap:
        """Build from parsed YAML/JSON; raise IdentityMapError naming what is wrong."""
        if not isinstance(data, Mapping):
            raise IdentityMapError("an identity map is a mapping with `proxies:` (and `api:`)")
        unknown = sorted(str(k) for k in data if k not in ("proxies", "api"))
        if unknown:
            raise IdentityMapError(f"unknown key(s) {', '.join(unknown)}: expected proxies, api")
        proxies = data.get("proxies")
        if not isinstance(proxies, Mapping) or not proxies:
            raise IdentityMapError(
                "`proxies:` must map identities to the node.cluster globs they may claim"
            )
        rules = []
        for key, globs in proxies.items():
            if not isinstance(key, str):
                raise IdentityMapError(f"proxies: identity {key!r} is not a string")
            if isinstance(globs, str):
                globs = [globs]
            if not isinstance(globs, Sequence) or not globs:
                raise IdentityMapError(f"proxies: {key}: give a list of node.cluster globs")
            texts = []
            for glob in globs:
                if not isinstance(glob, str) or not glob:
                    raise IdentityMapError(f"proxies: {key}: {glob!r} is not a node.cluster glob")
                texts.append(glob)
            try:
                pattern = _Pattern.parse(key)
            except IdentityMapError as exc:
                # The same error, now naming its section: the cause would repeat it.
                raise IdentityMapError(f"proxies: {exc}") from None
            rules.append(
                _Rule(pattern, tuple(_cluster_glob(t) for t in texts), cluster_text=tuple(texts))
            )
        api: tuple[_Pattern, ...] | None = None
        if "api" in data:
            entries = data["api"]
            if isinstance(entries, str) or not isinstance(entries, Sequence):
                raise IdentityMapError("`api:` must be a list of identities")
            try:
                api = tuple(_Pattern.parse(str(e)) for e in entries)
            except IdentityMapError as exc:
                raise IdentityMapError(f"api: {exc}") from None  # the same error, named
        return cls(tuple(rules), api)

    def allows(self, identity: PeerIdentity, node_cluster: str) -> bool:
        """Whether ``identity`` may claim ``node_cluster``."""
        return any(
            rule.identity.matches(identity)
            and any(glob.fullmatch(node_cluster) for glob in rule.clusters)
            for rule in self.rules
        )

    def claimable(self, identity: PeerIdentity) -> list[str]:
        """The node.cluster globs ``identity`` may claim (for error messages)."""
        return [g for r in self.rules if r.identity.matches(identity) for g in r.cluster_text]

    def allows_api(self, identity: PeerIdentity) -> bool:
        """Whether ``identity`` may call the ReleaseService."""
        if self.api is None:
            return identity.authenticated
        return any(p.matches(identity) for p in self.api)


# -- limits and the guard ------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Per-stream and per-peer budgets; 0 means no limit."""

    max_request_bytes: int = GRPC_DEFAULT_MAX_RECEIVE
    """The largest DiscoveryRequest accepted (bytes, serialized)."""
    max_streams_per_peer: int = 0
    """Open xDS streams allowed from one peer address (IP)."""
    max_streams_per_node: int = 0
    """Open xDS streams allowed to claim one node.id."""
    max_requests_per_second: float = 0.0
    """Requests read per second on one stream, past a burst of one second's worth."""

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_streams_per_peer", "max_streams_per_node"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_requests_per_second < 0:
            raise ValueError("max_requests_per_second must be >= 0")


@dataclass
class StreamGuard:
    """Admits xDS streams: node authorization (with an :class:`IdentityMap`) and
    :class:`Limits`. One per :class:`XdsServer`; it counts the streams it admitted."""

    identities: IdentityMap | None = None
    limits: Limits = field(default_factory=Limits)
    _per_peer: Counter[str] = field(default_factory=Counter)
    _per_node: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    """Streams refused so far, by status code name."""

    def server_options(self) -> tuple[tuple[str, Any], ...]:
        """grpc server options these limits need (a larger receive limit, if asked)."""
        size = self.limits.max_request_bytes
        if size > GRPC_DEFAULT_MAX_RECEIVE:
            return (("grpc.max_receive_message_length", size),)
        return ()

    def parser(self, message_type: type[M]) -> Callable[[bytes], M]:
        """A request deserializer that enforces the size limit and turns bytes that
        are not a ``message_type`` into INVALID_ARGUMENT."""
        limit = self.limits.max_request_bytes
        name = message_type.DESCRIPTOR.name

        def parse(data: bytes) -> M:
            if limit and len(data) > limit:
                raise StreamRejectedError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{name} of {len(data)} bytes exceeds the limit of {limit} bytes",
                )
            try:
                return message_type.FromString(data)
            except DecodeError as exc:
                # The details carry the decode error's text; as a cause it would only keep
                # protobuf's frames alive with the refusal.
                raise StreamRejectedError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"malformed {name}: {exc}"
                ) from None

        return parse

    def open(self, context: grpc.aio.ServicerContext[Any, Any], stream_id: int) -> Admission:
        """Admit a new stream from the peer of ``context`` (raises StreamRejectedError over
        the per-peer budget); :meth:`Admission.close` when the stream ends."""
        identity = peer_identity(context)
        admission = Admission(self, identity, stream_id)
        limit = self.limits.max_streams_per_peer
        if limit and self._per_peer[identity.address] >= limit:
            admission.reject(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{identity.address} already has {limit} xDS streams open (the limit)",
            )
        self._per_peer[identity.address] += 1
        admission._peer_counted = True
        return admission

    def restrict(self, handler: grpc.GenericRpcHandler) -> grpc.GenericRpcHandler:
        """``handler`` (turnout's API) answering PERMISSION_DENIED to peers the identity
        map's ``api:`` does not allow (unchanged when there is no identity map)."""
        if self.identities is None:
            return handler
        return _Restricted(handler, self.identities, node_of=None)

    def restrict_to_proxies(
        self, handler: grpc.GenericRpcHandler, node_of: Callable[[Any], Node | None]
    ) -> grpc.GenericRpcHandler:
        """``handler`` (a client-streaming service proxies call, such as Envoy's
        MetricsService) checked like an xDS stream: the node ``node_of`` finds in the
        first message must be one the peer may claim, else PERMISSION_DENIED before
        the handler sees it (unchanged when there is no identity map)."""
        if self.identities is None:
            return handler
        return _Restricted(handler, self.identities, node_of=node_of)

    def _release(self, counter: Counter[str], key: str) -> None:
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]


class Admission:
    """One xDS stream's standing with the :class:`StreamGuard`."""

    def __init__(self, guard: StreamGuard, identity: PeerIdentity, stream_id: int) -> None:
        self.guard = guard
        self.identity = identity
        self.stream_id = stream_id
        self._peer_counted = False
        self._node_id: str | None = None

    def reject(self, code: grpc.StatusCode, details: str, node: Node | None = None) -> None:
        """Log and raise :class:`StreamRejectedError`."""
        self.guard.rejected[code.name] += 1
        log.warning(
            "xds.stream_rejected",
            stream_id=self.stream_id,
            peer=self.identity.address,
            identity=self.identity.describe(),
            node_id=node.id if node is not None else None,
            node_cluster=node.cluster if node is not None else None,
            code=code.name,
            reason=details,
        )
        raise StreamRejectedError(code, details)

    def admit(self, node: Node) -> None:
        """Called once, with the node of the stream's first request, before the stream
        uses it: raise StreamRejectedError unless the peer may claim it."""
        identities = self.guard.identities
        if identities is not None and not identities.allows(self.identity, node.cluster):
            if not self.identity.authenticated:
                why = f"a client certificate is required ({self.identity.describe()})"
            else:
                allowed = identities.claimable(self.identity)
                why = f"{self.identity.describe()} may claim " + (
                    ", ".join(allowed) if allowed else "no node.cluster"
                )
            self.reject(
                grpc.StatusCode.PERMISSION_DENIED,
                f"node.cluster {node.cluster!r} refused: {why}",
                node,
            )
        limit = self.guard.limits.max_streams_per_node
        if limit and self.guard._per_node[node.id] >= limit:
            self.reject(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"node.id {node.id!r} already has {limit} xDS streams open (the limit)",
                node,
            )
        self.guard._per_node[node.id] += 1
        self._node_id = node.id

    def requests(self, requests: AsyncIterator[M]) -> AsyncIterator[M]:
        """``requests``, throttled to the rate limit (as they are when there is none)."""
        rate = self.guard.limits.max_requests_per_second
        if not rate:
            return requests
        return _throttled(requests, rate)

    def close(self) -> None:
        """The stream ended: release what it held of the budgets."""
        if self._peer_counted:
            self._peer_counted = False
            self.guard._release(self.guard._per_peer, self.identity.address)
        if self._node_id is not None:
            self.guard._release(self.guard._per_node, self._node_id)
            self._node_id = None


async def _throttled(requests: AsyncIterator[M], rate: float) -> AsyncIterator[M]:
    """A token bucket of ``max(rate, 1)`` tokens refilled at ``rate`` per second."""
    loop = asyncio.get_running_loop()
    burst = max(rate, 1.0)
    tokens = burst
    last = loop.time()
    async for request in requests:
        now = loop.time()
        tokens = min(burst, tokens + (now - last) * rate)
        last = now
        if tokens < 1.0:
            await asyncio.sleep((1.0 - tokens) / rate)
            now = loop.time()
            tokens = min(burst, tokens + (now - last) * rate)
            last = now
        tokens -= 1.0
        yield request
        del request  # held while awaiting the next, an idle stream would keep it


# -- restricting the other services on the port ------------------------------------


class _Restricted(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc has no type hints
    """Wraps every method of a generic handler with an identity check: the API rule,
    or (with ``node_of``) the node the first request claims."""

    def __init__(
        self,
        inner: grpc.GenericRpcHandler,
        identities: IdentityMap,
        node_of: Callable[[Any], Node | None] | None,
    ) -> None:
        self._inner = inner
        self._identities = identities
        self._node_of = node_of

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = getattr(handler_call_details, "method", "?")
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behavior = getattr(handler, kind)
            if behavior is not None:
                make = getattr(grpc, f"{kind}_rpc_method_handler")
                result: grpc.RpcMethodHandler = make(
                    self._wrap(behavior, method, streaming=kind.startswith("stream_")),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
                return result
        return handler

    def _denied(self, identity: PeerIdentity, method: str, node: Node | None) -> str | None:
        if self._node_of is None:
            if self._identities.allows_api(identity):
                return None
            why = f"{identity.describe()} may not call {method}"
        elif node is not None and self._identities.allows(identity, node.cluster):
            return None
        elif node is None:
            why = f"{method}: the first message names no node"
        else:
            why = f"{identity.describe()} may not claim node.cluster {node.cluster!r}"
        log.warning("grpc.denied", method=method, peer=identity.address, reason=why)
        return why

    async def _checked(
        self, requests: AsyncIterator[Any], identity: PeerIdentity, method: str
    ) -> AsyncIterator[Any]:
        first = True
        async for request in requests:
            if first:
                first = False
                assert self._node_of is not None
                denied = self._denied(identity, method, self._node_of(request))
                if denied is not None:
                    raise StreamRejectedError(grpc.StatusCode.PERMISSION_DENIED, denied)
            yield request

    def _wrap(
        self, behavior: Callable[..., Any], method: str, *, streaming: bool
    ) -> Callable[..., Any]:
        by_node = self._node_of is not None and streaming

        async def check(request: Any, context: Any) -> Any:
            identity = peer_identity(context)
            if by_node:
                return self._checked(request, identity, method)
            if self._node_of is None:
                denied = self._denied(identity, method, None)
            elif not self._identities.claimable(identity):  # a unary call proxies make
                denied = f"{identity.describe()} is no proxy the identity map names"
            else:
                denied = None
            if denied is not None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, denied)
            return request

        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                request = await check(request, context)
                try:
                    async for item in behavior(request, context):
                        yield item
                except StreamRejectedError as exc:
                    await context.abort(exc.code, exc.details)

            return stream

        async def call(request: Any, context: Any) -> Any:
            request = await check(request, context)
            try:
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
            except StreamRejectedError as exc:
                await context.abort(exc.code, exc.details)

        return call
