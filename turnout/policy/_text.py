"""Policy values written out for people: one wording everywhere turnout says them.

Traffic has two spellings, each for its place:

- :func:`traffic_text`, ``v1=95 v2=5``: what `turnout set-traffic` takes, so what the
  edit commands, the release driver's reasons (written into the files) and the reload
  log say;
- :func:`shares_text`, ``v1 95%, v2 5%``: shares for reading (`turnout diff`,
  `turnout status`), and :func:`traffic_change` for a change, ``v1 95% -> 75%``.

``traffic: instances`` is ``instances`` in the first and ``instances (by healthy
instances)`` in the second: docs/policy.md's words, its shares follow each version's
healthy instances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ._model import INSTANCES, PolicySet, Traffic

__all__ = [
    "INSTANCES_TEXT",
    "percent",
    "shares_text",
    "summarize",
    "traffic_change",
    "traffic_text",
]

INSTANCES_TEXT = "instances (by healthy instances)"
"""``traffic: instances`` where shares are read: a pool weighted by healthy instances."""

Shares = Traffic | Mapping[str, Decimal] | Iterable[tuple[str, Decimal | str]]
"""Traffic as the policy model holds it, or any (version, share) pairs in order."""


def percent(value: Decimal | float | str) -> str:
    """An exact, plain decimal string: 100 -> "100", 12.50 -> "12.5", 0.01 -> "0.01"."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.normalize(), "f")


def _pairs(traffic: Shares) -> list[tuple[str, Decimal | str]]:
    if isinstance(traffic, Mapping):
        return list(traffic.items())
    return list(traffic)  # type: ignore[arg-type]  # INSTANCES is handled by callers


def traffic_text(traffic: Shares) -> str:
    """``v1=95 v2=5`` (as `turnout set-traffic` takes it), or ``instances``."""
    if traffic == INSTANCES:
        return INSTANCES
    return " ".join(f"{version}={percent(share)}" for version, share in _pairs(traffic))


def shares_text(traffic: Shares, *, instances: bool = False) -> str:
    """``v1 95%, v2 5%``, or ``instances (by healthy instances)``; ``-`` for no shares.
    ``instances`` says the traffic is an instances pool (as the API's segments do)."""
    if instances or traffic == INSTANCES:
        return INSTANCES_TEXT
    return ", ".join(f"{version} {percent(share)}%" for version, share in _pairs(traffic)) or "-"


def traffic_change(old: Traffic, new: Traffic) -> str:
    """``v1 95% -> 75%, v2 5% -> 25%``: every version whose share moved."""
    if old == INSTANCES or new == INSTANCES:
        return f"{shares_text(old)} -> {shares_text(new)}"
    before, after = dict(old), dict(new)
    order = list(before) + [name for name in after if name not in before]
    zero = Decimal(0)
    return ", ".join(
        f"{name} {percent(before.get(name, zero))}% -> {percent(after.get(name, zero))}%"
        for name in order
        if before.get(name, zero) != after.get(name, zero)
    )


def summarize(old: PolicySet | None, new: PolicySet) -> str:
    """One line saying what changed between two sets (the reload log event, the
    change history): ``+service web; checkout traffic v1=95 v2=5 -> v1=90 v2=10``."""
    if old is None:
        return f"{len(new.gateways)} gateways, {len(new.services)} services"
    old_services: Mapping[str, Any] = {s.name: s for s in old.services}
    new_services: Mapping[str, Any] = {s.name: s for s in new.services}
    parts = [f"+service {n}" for n in sorted(new_services.keys() - old_services.keys())]
    parts += [f"-service {n}" for n in sorted(old_services.keys() - new_services.keys())]
    for name in sorted(new_services.keys() & old_services.keys()):
        before, after = old_services[name], new_services[name]
        if before.traffic != after.traffic:
            parts.append(
                f"{name} traffic {traffic_text(before.traffic)} -> {traffic_text(after.traffic)}"
            )
        elif before != after:
            parts.append(f"{name} changed")
    if {g.name: g for g in old.gateways} != {g.name: g for g in new.gateways}:
        parts.append("gateways changed")
    return "; ".join(parts) or "no change in policies"
