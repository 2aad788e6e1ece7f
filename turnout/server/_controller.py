"""The reload path: policy files -> validated set -> compiled snapshot -> published.

A set is published only when it loads, validates, translates and passes the snapshot
consistency check; otherwise it is rejected whole, its errors are kept for `/status`,
and what is being served is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from turnout.cache import InconsistentSnapshotError, Snapshot, SnapshotCache
from turnout.compile import Compiled, Compiler
from turnout.policy import PolicySet, PolicySetError, load_policies, loaded_sources, summarize
from turnout.server._history import PolicyHistory

if TYPE_CHECKING:
    from turnout.server._rollout import ConfigRollout

log = structlog.get_logger("turnout.reload")


@dataclass(slots=True)
class Rejection:
    at: str
    errors: list[str]


@dataclass(slots=True)
class Controller:
    """Loads the policy directory and publishes every accepted set to the cache."""

    directory: Path
    cache: SnapshotCache
    current: Compiled | None = None
    rejected: Rejection | None = None
    last_rejected: Rejection | None = None
    accepted_at: str | None = None
    reloads: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "rejected": 0})
    compiler: Compiler = field(default_factory=Compiler)
    history: PolicyHistory | None = None
    """When set, every accepted change and rejection is recorded (the dashboard's History)."""
    rollout: ConfigRollout | None = None
    """When set, accepted sets are published through it (a gateway's ``rollout:``: the
    canary proxies first); otherwise straight to every proxy."""
    compiling: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    """Entered around each load and compile: the server process's tuning for it (``turnout
    serve`` pauses the cyclic collector, ``HeapKeeper.compiling``); nothing by default."""

    def reload(self) -> bool:
        """Load, validate, translate and publish; False when the set was rejected.
        Files that say what the served set says (nothing rejected since) are left at
        that: no compile, no publish."""
        started = time.perf_counter()
        try:
            # The load makes as many objects as the compile (2,000 files: ~400,000
            # nodes read and dropped), so the collector's pause covers both.
            with self.compiling():
                policies = load_policies(self.directory)
                if self._unchanged(policies):
                    return True
                compiled = self.compiler.compile(policies)
        except PolicySetError as exc:
            return self._reject([str(p) for p in exc.problems])
        except InconsistentSnapshotError as exc:
            return self._reject([f"{self.directory}: translated config is inconsistent: {exc}"])
        previous = self.current
        self.rejected = None
        if previous is not None and previous.policy_version == compiled.policy_version:
            if previous.policies != compiled.policies:
                # Only what Envoy never sees changed (e.g. an incremental release's
                # state): the same snapshot is served, the files' policies are current.
                self.current = compiled
                summary = summarize(previous.policies, compiled.policies)
                log.info(
                    "policy set changed; Envoy's config unchanged",
                    version=compiled.policy_version,
                    summary=summary,
                )
                if self.history is not None:
                    self.history.accepted(
                        compiled.policy_version, summary, previous.policies, compiled.policies
                    )
                return True
            log.info("policy set unchanged", version=compiled.policy_version)
            return True
        if self.rollout is not None:
            how = self.rollout.publish(compiled, loaded_sources(self.directory), self.compiler)
        else:
            self.cache.publish(compiled.policy_version, _resolver(compiled))
            how = "everywhere"
        self.current = compiled
        self.accepted_at = _now()
        self.reloads["accepted"] += 1
        summary = summarize(previous.policies if previous else None, compiled.policies)
        log.info(
            "policy set accepted",
            version=compiled.policy_version,
            previous=previous.policy_version if previous else None,
            summary=summary,
            to=how,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if self.history is not None:
            old = previous.policies if previous else None
            self.history.accepted(compiled.policy_version, summary, old, compiled.policies)
        return True

    def _unchanged(self, policies: PolicySet) -> bool:
        """Whether ``policies`` is the set being served with nothing rejected since: the
        files say what they said at the last reload (as when a writer's own write reaches
        the watcher after the writer reloaded). Nothing to compile, publish or tell."""
        current = self.current
        if self.rejected is not None or current is None or policies != current.policies:
            return False
        log.debug("policy files unchanged since the last reload", version=current.policy_version)
        return True

    def _reject(self, errors: list[str]) -> bool:
        self.rejected = self.last_rejected = Rejection(_now(), errors)
        self.reloads["rejected"] += 1
        serving = self.current.policy_version if self.current else None
        log.error(
            "policy set rejected; still serving the last good set",
            version=serving,
            serving=serving,
            summary=rejection_summary(errors),
            errors=errors,
        )
        if self.history is not None:
            self.history.rejected(serving, rejection_summary(errors))
        return False

    @property
    def policy_version(self) -> str | None:
        """The version of the set being served (None before the first good load)."""
        return self.current.policy_version if self.current else None


def _resolver(compiled: Compiled) -> Callable[[str], Snapshot]:
    """node.cluster -> the checked snapshot of the gateways that Envoy gets, built once
    per gateway set (:meth:`Compiled.for_gateways`)."""

    def resolve(node_cluster: str) -> Snapshot:
        return compiled.for_gateways(compiled.policies.gateways_for(node_cluster))

    return resolve


def rejection_summary(errors: Sequence[str]) -> str:
    """One line for the reject log event: how many problems, and the first."""
    if not errors:
        return "rejected"
    first = " ".join(errors[0].split())
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{len(errors)} error(s): {first}{more}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
