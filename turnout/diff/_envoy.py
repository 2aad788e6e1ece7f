"""The Envoy resources a policy change adds, removes and changes (`turnout diff --envoy`).

Both sides are translated with `turnout.translate` (every gateway's resources) and
compared by type and name on their deterministic serialization: a resource whose
bytes differ is changed. A changed route configuration also says which routes (by
virtual host and route name) were added, removed or changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from turnout.translate import Resources

__all__ = ["ResourceChange", "resource_changes"]


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """`action` is added, removed or changed; `type` cluster, endpoint, listener, scope
    (a ScopedRouteConfiguration: a host name's routes on a scoped gateway) or route (a
    route configuration); `details` list changed routes as `+vhost/route` etc."""

    action: str
    type: str
    name: str
    details: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.action]
        more = f" ({', '.join(self.details)})" if self.details else ""
        return f"{sign} {self.type} {self.name}{more}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "type": self.type, "name": self.name}
        if self.details:
            out["details"] = list(self.details)
        return out


def _named(resources: Resources) -> dict[str, dict[str, Message]]:
    return {
        "listener": {m.name: m for m in resources.listeners},
        "scope": {m.name: m for m in resources.scoped_routes},
        "route": {m.name: m for m in resources.routes},
        "cluster": {m.name: m for m in resources.clusters},
        "endpoint": {m.cluster_name: m for m in resources.endpoints},
    }


def _bytes(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


def resource_changes(old: Resources, new: Resources) -> list[ResourceChange]:
    """Every added, removed or changed resource: by type (listener, scope, route,
    cluster, endpoint), then added, removed, changed, each sorted by name."""
    before, after = _named(old), _named(new)
    changes: list[ResourceChange] = []
    for kind in before:
        was, now = before[kind], after[kind]
        changes.extend(ResourceChange("added", kind, n) for n in sorted(now.keys() - was.keys()))
        changes.extend(ResourceChange("removed", kind, n) for n in sorted(was.keys() - now.keys()))
        for name in sorted(was.keys() & now.keys()):
            if _bytes(was[name]) != _bytes(now[name]):
                details = _route_details(was[name], now[name]) if kind == "route" else ()
                changes.append(ResourceChange("changed", kind, name, details))
    return changes


def _routes(config: Message) -> dict[str, tuple[str, Message]]:
    """Route name (`checkout/default`) -> (its virtual host, the route), and
    `vhost NAME` -> (NAME, the virtual host without its routes), in config order."""
    out: dict[str, tuple[str, Message]] = {}
    for vhost in getattr(config, "virtual_hosts", ()):
        bare = type(vhost)()
        bare.CopyFrom(vhost)
        del bare.routes[:]
        out[f"vhost {vhost.name}"] = (vhost.name, bare)
        for index, route in enumerate(vhost.routes):
            out[route.name or f"{vhost.name}#{index}"] = (vhost.name, route)
    return out


def _route_details(old: Message, new: Message) -> tuple[str, ...]:
    """`+vhost x`, `-route`, `~route` ...: a whole virtual host added or removed is one
    entry (its routes are not listed)."""
    before, after = _routes(old), _routes(new)
    vhosts_before = {vhost for vhost, _ in before.values()}
    vhosts_after = {vhost for vhost, _ in after.values()}

    def shown(key: str, vhost: str, others: set[str]) -> bool:
        return key.startswith("vhost ") or vhost in others

    details = [
        f"+{k}"
        for k, (v, _) in sorted(after.items())
        if k not in before and shown(k, v, vhosts_before)
    ]
    details += [
        f"-{k}"
        for k, (v, _) in sorted(before.items())
        if k not in after and shown(k, v, vhosts_after)
    ]
    details += [
        f"~{k}"
        for k in sorted(before.keys() & after.keys())
        if _bytes(before[k][1]) != _bytes(after[k][1])
    ]
    order_was = [k for k in before if k in after]
    order_now = [k for k in after if k in before]
    if order_was != order_now:
        details.append("routes reordered")
    return tuple(details)
