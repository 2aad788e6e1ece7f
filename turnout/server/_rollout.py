"""Staged rollout of policy changes: a gateway's canary proxies first, the rest after a bake.

    accepted set ──► ConfigRollout.publish ──► cache.publish(last good, staged=new → canary)
                         tick, every 0.25 s: the canary's ACKs and NACKs, the bake, the
                         canary's 5xx rate against the rest's (Envoy's own, per proxy)
                                        └──► promote: cache.publish(new), to everyone

Which proxies. A change *concerns* the gateways with a ``rollout:`` whose config it
changes (their snapshot differs from the last fully rolled-out set's). A proxy given
none of those gets the new set at once (nothing it runs is being rolled out); one given
some is *canary* when its node.cluster or node.id matches the ``canary`` globs of each
of them, and is *the rest* otherwise: it keeps the last fully rolled-out set, the one
it connected to or is given on connecting, until the canary has ACKed every type (no
NACK), the longest ``bake`` of those gateways has passed since, and the canary's 5xx
rate is not significantly (99%, Fisher's exact test, as the release judge does) above
the rest's by more than the smallest ``maxErrorRateIncrease``. The bake starts when
every connected canary proxy has ACKed the set; with no canary proxy connected it waits.

A NACK or a failed check holds the change (the canary keeps it, the rest never see it)
until the files change again or ``abort`` puts the canary back on the last good set.
Several changes while one bakes: the newest replaces it and its bake restarts. A change
that only makes things safer (every changed share moves toward ``stable``, release state
written) goes everywhere at once, and so does a set whose gateways have no ``rollout:``.

The last fully rolled-out set is kept in a state file (the texts of its policy files and
its version, written atomically on every promotion), so a restart in the middle of a
bake serves the rest that set again, and the canary the files' set with a new bake.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog

from turnout.analysis import Figures, Thresholds, Verdict, judge
from turnout.cache import SnapshotCache, Staged, short_name
from turnout.compile import Compiled, Compiler
from turnout.policy import (
    PolicySet,
    PolicySetError,
    Rollout,
    Service,
    Traffic,
    parse_policies,
    summarize,
)
from turnout.server._controller import _resolver
from turnout.xds import ProxyStatus

__all__ = ["ConfigRollout", "RolloutError", "RolloutState", "only_safer"]

log = structlog.get_logger("turnout.rollout")

Phase = Literal["", "waiting", "baking", "held", "aborted"]
Role = Literal["", "canary", "rest"]

STATE_FILE = ".turnout/rollout.json"
"""Where the last fully rolled-out set is kept, under the policy directory by default
(a hidden directory: the loader never reads it, the watcher ignores it)."""


class RolloutError(Exception):
    """``abort`` refused: ``code`` is "not-found" (no such gateway) or "not-rolling"."""

    def __init__(self, code: Literal["not-found", "not-rolling"], message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class RolloutState:
    """The rollout as status shows it (turnout.api turns it into pb.ConfigRollout)."""

    configured: bool
    """Whether any gateway of the served set has a ``rollout:``."""
    phase: Phase
    gateways: tuple[str, ...]
    version: str
    last_good_version: str
    started_at: float | None
    bake_started_at: float | None
    bake_seconds: float
    baked_seconds: float
    reason: str
    canary: tuple[str, ...]
    canary_figures: Figures | None
    rest_figures: Figures | None
    max_error_rate_increase: float
    summary: str

    def progress(self) -> str:
        """One line: "baking 40s of 2m", "held: why", "waiting: why", "aborted: why"."""
        if self.phase == "baking":
            return f"baking {_span(self.baked_seconds)} of {_span(self.bake_seconds)}"
        if self.phase:
            return f"{self.phase}: {self.reason}" if self.reason else self.phase
        return "idle"


class ConfigRollout:
    """Publishes each accepted set to the cache, staged through the canary ring when a
    gateway with ``rollout:`` changes (see the module docstring)."""

    def __init__(
        self,
        cache: SnapshotCache,
        *,
        state_file: Path | None = None,
        figures: Callable[[Sequence[str], float, str], Figures] | None = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], object] | None = None,
    ) -> None:
        """``figures(node_ids, since, name)``: those proxies' requests and 5xx since
        ``since`` (``WindowStore.node_figures``); None: the 5xx check is not made.
        ``on_change`` is called whenever the phase changes (status events)."""
        self.cache = cache
        self.state_file = state_file
        self._figures = figures
        self._clock = clock
        self.on_change = on_change
        self.good: Compiled | None = None
        self.baking: Compiled | None = None
        self.phase: Phase = ""
        self.reason = ""
        self.rolling: tuple[str, ...] = ()
        self.summary = ""
        self.started_at: float | None = None
        self.bake_started_at: float | None = None
        self._verdict: Verdict | None = None
        self._canary: tuple[str, ...] = ()
        self._sources: Mapping[str, str] = {}
        self._restored = False
        self._reached: dict[str, float] = {}
        """Per service, when its config last changed on every proxy (by a promotion)."""

    # -- publishing --------------------------------------------------------------------

    def publish(self, compiled: Compiled, sources: Mapping[str, str], compiler: Compiler) -> str:
        """Serve an accepted set: to everyone, or to the canary with the rest on the last
        fully rolled-out set. ``sources`` are its files' texts (kept when it becomes the
        last good set); ``compiler`` compiled it (and compiles a restored set). Returns
        "everywhere" or "canary"."""
        if not self._restored:
            self._restored = True
            self.good = self._restore(compiler)
        good = self.good
        rolling = _rolling(good, compiled) if good is not None else ()
        if not rolling:
            self._promote(compiled, sources, "no gateway with rollout: changes")
            return "everywhere"
        assert good is not None  # rolling is empty without a last good set
        safer = only_safer(good.policies, compiled.policies)
        if safer:
            self._promote(compiled, sources, f"only safer ({safer}): everywhere at once")
            return "everywhere"
        replaced = self.baking.policy_version if self.baking is not None and self.phase else None
        self.baking, self._sources, self.rolling = compiled, sources, rolling
        self.summary = summarize(good.policies, compiled.policies)
        self.started_at, self.bake_started_at = self._clock(), None
        self._verdict, self._canary = None, ()
        self._set_phase("waiting", "for the canary proxies to ACK")
        self._publish_staged()
        log.info(
            "config rollout started: canary first",
            version=compiled.policy_version,
            last_good=good.policy_version,
            gateways=list(rolling),
            bake_seconds=self.bake_seconds,
            replaced=replaced,
            summary=self.summary,
        )
        return "canary"

    def _publish_staged(self) -> None:
        good, baking = self.good, self.baking
        assert good is not None
        assert baking is not None
        staged = Staged(
            baking.policy_version,
            _resolver(baking),
            lambda cluster, node: self.role(cluster, node) != "rest",
        )
        self.cache.publish(good.policy_version, _resolver(good), staged=staged)

    def _promote(self, compiled: Compiled, sources: Mapping[str, str], why: str) -> None:
        """``compiled`` becomes the last good set and everyone's."""
        ended = self.phase
        if self.good is not None:
            now, before = self._clock(), {s.name: s for s in self.good.policies.services}
            for service in compiled.policies.services:
                if _config(service) != _config(before.get(service.name)):
                    self._reached[service.name] = now
        self.good, self.baking = compiled, None
        self.rolling, self._canary, self._verdict = (), (), None
        self.started_at = self.bake_started_at = None
        self.cache.publish(compiled.policy_version, _resolver(compiled))
        self._save(compiled, sources)
        self.reason = why
        self._set_phase("", why)
        if ended:
            log.info("config rollout: everywhere", version=compiled.policy_version, why=why)

    # -- the canary ring ---------------------------------------------------------------

    def role(self, node_cluster: str, node_id: str) -> Role:
        """ "canary" or "rest" for a proxy a rollout under way concerns, else ""."""
        baking = self.baking
        if baking is None or not self.phase or self.phase == "aborted":
            return ""
        rolling = [
            g
            for g in baking.policies.gateways
            if g.name in self.rolling and g.rollout is not None and g.serves(node_cluster)
        ]
        if not rolling:
            return ""
        canary = all(
            g.rollout is not None and g.rollout.is_canary(node_cluster, node_id) for g in rolling
        )
        return "canary" if canary else "rest"

    def reached(self, service: Service) -> float | None:
        """When ``service``'s current config reached every proxy: None while a rollout
        holds it at the canary, 0.0 when it has been everywhere since turnout started
        (the release driver counts a step's interval from then: Driver.config_reached)."""
        good, baking = self.good, self.baking
        if baking is not None and self.phase and good is not None:
            before = {s.name: s for s in good.policies.services}
            if _config(service) != _config(before.get(service.name)):
                return None
        return self._reached.get(service.name, 0.0)

    @property
    def bake_seconds(self) -> float:
        return max((g.rollout.bake_seconds for g in self._rolling_gateways()), default=0.0)

    @property
    def max_error_rate_increase(self) -> float:
        limits = [g.rollout.max_error_rate_increase for g in self._rolling_gateways()]
        return min(limits, default=0.0)

    def _rolling_gateways(self) -> list[_RolloutGateway]:
        baking = self.baking
        if baking is None:
            return []
        return [
            _RolloutGateway(g.name, g.rollout)
            for g in baking.policies.gateways
            if g.name in self.rolling and g.rollout is not None
        ]

    # -- deciding ----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether a change waits for the canary or bakes (what :meth:`tick` looks at)."""
        return self.baking is not None and self.phase in ("waiting", "baking")

    def tick(self, proxies: Sequence[ProxyStatus]) -> None:
        """Look at the canary once: its ACKs and NACKs, the bake, its 5xx rate; hold or
        promote. Cheap when nothing is rolling out."""
        baking = self.baking
        if baking is None or self.phase not in ("waiting", "baking"):
            return
        now = self._clock()
        started = self.started_at or now
        canary = [p for p in proxies if self.role(p.node_cluster, p.node_id) == "canary"]
        rest = [p for p in proxies if self.role(p.node_cluster, p.node_id) == "rest"]
        self._canary = tuple(sorted({p.node_id for p in canary}))
        for proxy in canary:
            for status in proxy.types.values():
                nack = status.last_nack
                if nack is not None and nack.at.timestamp() >= started:
                    first = nack.message.splitlines()[0] if nack.message else ""
                    self._hold(
                        f"canary {proxy.node_id} NACKed {short_name(status.type_url)}: {first}"
                    )
                    return
        if not canary:
            self._set_phase("waiting", "no canary proxy connected")
            return
        behind = [p.node_id for p in canary if p.synced_version != baking.policy_version]
        if self.phase == "waiting":
            if behind:
                self._set_phase("waiting", f"for {', '.join(sorted(set(behind)))} to ACK")
                return
            self.bake_started_at = now
            self._set_phase("baking", "every canary proxy ACKed")
            log.info(
                "config rollout: canary ACKed, baking",
                version=baking.policy_version,
                canary=list(self._canary),
                seconds_since_change=round(now - started, 3),
            )
        since = self.bake_started_at if self.bake_started_at is not None else now
        verdict = self._judge(canary, rest, since)
        if verdict is not None and verdict.outcome == "fail":
            self._hold(f"canary 5xx: {verdict.reason}")
            return
        if now - since < self.bake_seconds or behind:
            return
        good = self.good
        self._promote(
            baking,
            self._sources,
            f"baked {_span(self.bake_seconds)}"
            + (f"; {verdict.reason}" if verdict is not None else ""),
        )
        log.info(
            "config rollout complete",
            version=baking.policy_version,
            last_good=good.policy_version if good is not None else None,
            verdict=verdict.reason if verdict is not None else None,
        )

    def _judge(
        self, canary: Sequence[ProxyStatus], rest: Sequence[ProxyStatus], since: float
    ) -> Verdict | None:
        if self._figures is None:
            return None
        c = self._figures([p.node_id for p in canary], since, "canary proxies")
        r = self._figures([p.node_id for p in rest], since, "the rest")
        thresholds = Thresholds(
            min_requests=0, max_error_rate_increase=self.max_error_rate_increase
        )
        self._verdict = judge(c, r, thresholds)
        return self._verdict

    def _hold(self, why: str) -> None:
        baking = self.baking
        self._set_phase("held", why)
        log.error(
            "config rollout held: the rest stay on the last good set",
            version=baking.policy_version if baking is not None else None,
            last_good=self.good.policy_version if self.good is not None else None,
            reason=why,
        )

    def abort(self, gateway: str) -> RolloutState:
        """``turnout rollout abort GATEWAY``: the canary goes back to the last good set
        until the files change again."""
        known = self.baking or self.good
        if known is None or gateway not in {g.name for g in known.policies.gateways}:
            raise RolloutError("not-found", f"no gateway {gateway!r} is served")
        if self.phase not in ("waiting", "baking", "held") or gateway not in self.rolling:
            raise RolloutError("not-rolling", f"no config rollout is under way on {gateway}")
        good = self.good
        assert good is not None
        self.cache.publish(good.policy_version, _resolver(good))
        self._set_phase(
            "aborted", "by turnout rollout abort; the canary is back on the last good set"
        )
        log.warning(
            "config rollout aborted: every proxy on the last good set",
            gateway=gateway,
            version=self.baking.policy_version if self.baking is not None else None,
            last_good=good.policy_version,
        )
        return self.state()

    def _set_phase(self, phase: Phase, reason: str) -> None:
        changed = phase != self.phase
        self.phase, self.reason = phase, reason
        if changed and self.on_change is not None:
            self.on_change()

    # -- status ------------------------------------------------------------------------

    def state(self) -> RolloutState:
        good, baking = self.good, self.baking
        served = baking or good
        configured = served is not None and any(
            g.rollout is not None for g in served.policies.gateways
        )
        now = self._clock()
        verdict = self._verdict
        return RolloutState(
            configured=configured,
            phase=self.phase,
            gateways=self.rolling,
            version=baking.policy_version if baking is not None and self.phase else "",
            last_good_version=good.policy_version if good is not None else "",
            started_at=self.started_at if self.phase else None,
            bake_started_at=self.bake_started_at if self.phase else None,
            bake_seconds=self.bake_seconds if self.phase else 0.0,
            baked_seconds=(
                now - self.bake_started_at
                if self.phase == "baking" and self.bake_started_at is not None
                else 0.0
            ),
            reason=self.reason,
            canary=self._canary if self.phase else (),
            canary_figures=verdict.canary if verdict is not None and self.phase else None,
            rest_figures=verdict.baseline if verdict is not None and self.phase else None,
            max_error_rate_increase=self.max_error_rate_increase if self.phase else 0.0,
            summary=self.summary if self.phase else "",
        )

    # -- the state file ----------------------------------------------------------------

    def _save(self, compiled: Compiled, sources: Mapping[str, str]) -> None:
        """Keep the last fully rolled-out set across restarts (only where a gateway has
        a rollout: otherwise there is nothing to hold back)."""
        path = self.state_file
        if path is None:
            return
        if not any(g.rollout is not None for g in compiled.policies.gateways):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        body = {
            "version": compiled.policy_version,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "sources": dict(sources),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".rollout-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(body, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except OSError as exc:
            log.error("config rollout: cannot write the state file", path=str(path), error=str(exc))

    def _restore(self, compiler: Compiler) -> Compiled | None:
        path = self.state_file
        if path is None or not path.exists():
            return None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            sources = body["sources"]
            compiled = compiler.compile(parse_policies(sources))
        except (OSError, ValueError, KeyError, TypeError, PolicySetError) as exc:
            log.error(
                "config rollout: the state file is unusable; the files' set goes everywhere",
                path=str(path),
                error=str(exc),
            )
            return None
        if compiled.policy_version != body.get("version"):
            log.warning(
                "config rollout: the last good set compiles to another version than recorded",
                recorded=body.get("version"),
                compiled=compiled.policy_version,
            )
        self._sources = sources
        log.info(
            "config rollout: last good set restored",
            version=compiled.policy_version,
            path=str(path),
        )
        return compiled


@dataclass(frozen=True, slots=True)
class _RolloutGateway:
    name: str
    rollout: Rollout


def _rolling(good: Compiled, new: Compiled) -> tuple[str, ...]:
    """The gateways with ``rollout:`` in ``new`` whose config differs from ``good``'s."""
    before = {g.name for g in good.policies.gateways}
    return tuple(
        g.name
        for g in new.policies.gateways
        if g.rollout is not None
        and g.name in before
        and new.for_gateways((g.name,)).group_version != good.for_gateways((g.name,)).group_version
    )


def _config(service: Service | None) -> Service | None:
    """What of a service reaches Envoy: all but its incremental release's state."""
    if service is None or service.incremental is None:
        return service
    return replace(service, incremental=replace(service.incremental, state=None))


def only_safer(old: PolicySet, new: PolicySet) -> str:
    """What makes ``new`` only safer than ``old`` ("rollback of checkout", "release state
    of web"), or "" when it is not: the same gateways and services, every difference a
    share moved toward ``stable`` (no other version's share grows) or an incremental
    release's state."""
    if old.gateways != new.gateways:
        return ""
    before = {s.name: s for s in old.services}
    if set(before) != {s.name for s in new.services}:
        return ""
    moved: list[str] = []
    state: list[str] = []
    for service in new.services:
        was = before[service.name]
        if was == service:
            continue
        if not _toward_stable_only(was, service):
            return ""
        (moved if _config(was) != _config(service) else state).append(service.name)
    parts = [f"rollback of {', '.join(moved)}"] if moved else []
    parts += [f"release state of {', '.join(state)}"] if state else []
    return "; ".join(parts)


def _toward_stable_only(old: Service, new: Service) -> bool:
    if len(old.rules) != len(new.rules) or old.stable != new.stable:
        return False
    rules = tuple(
        replace(rule, traffic=new_rule.traffic)
        for rule, new_rule in zip(old.rules, new.rules, strict=True)
    )
    incremental = old.incremental
    if incremental is not None and new.incremental is not None:
        incremental = replace(incremental, state=new.incremental.state)
    if replace(old, traffic=new.traffic, rules=rules, incremental=incremental) != new:
        return False
    pairs = [(old.traffic, new.traffic)]
    pairs += [(a.traffic, b.traffic) for a, b in zip(old.rules, new.rules, strict=True)]
    return all(_toward(a, b, new.stable) for a, b in pairs)


def _toward(old: Traffic, new: Traffic, stable: str) -> bool:
    """``new`` gives no version but ``stable`` more than ``old`` did."""
    if old == new:
        return True
    if isinstance(old, str) or isinstance(new, str):
        return False
    was = dict(old)
    return all(share <= was.get(version, 0) for version, share in new if version != stable)


def _span(seconds: float) -> str:
    """40.2 -> "40s", 120 -> "2m", 90 -> "1m30s", 2.5 -> "2.5s"."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest}s"
    return f"{minutes}m" if not rest else f"{minutes}m{rest}s"
