"""The recent policy changes, accepted and rejected: what the dashboard's History view
and the Releases timeline show (``Status.history`` in the ReleaseService).

The reload controller records one entry per reload that changed what is served (or
only what Envoy never sees, such as an incremental release's state) and per
rejection; an unchanged reload records nothing. The list is bounded: the oldest
entries go first.
"""

from __future__ import annotations

import subprocess
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from turnout.policy import PolicySet

__all__ = ["HISTORY_LIMIT", "PolicyChange", "PolicyHistory", "ReleaseTransition"]

HISTORY_LIMIT = 200
"""Entries kept (a few hundred bytes each)."""


@dataclass(frozen=True, slots=True)
class ReleaseTransition:
    """An incremental release's state as an accepted change left it."""

    service: str
    phase: str
    step: int
    reason: str
    since: datetime | None


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One reload: accepted (``version`` served from ``at``) or rejected (``version``
    went on being served)."""

    at: datetime
    accepted: bool
    version: str
    summary: str
    commit: str = ""
    releases: tuple[ReleaseTransition, ...] = ()


class PolicyHistory:
    """A bounded list of :class:`PolicyChange`, oldest first, for one policy directory.

    When the directory is in a git repository each entry names HEAD (short hash) and
    whether the directory had uncommitted changes then."""

    def __init__(self, directory: Path, limit: int = HISTORY_LIMIT) -> None:
        self.directory = directory
        self._entries: deque[PolicyChange] = deque(maxlen=limit)
        self._in_repo: bool | None = None  # looked up at the first entry

    @property
    def entries(self) -> tuple[PolicyChange, ...]:
        return tuple(self._entries)

    def accepted(self, version: str, summary: str, old: PolicySet | None, new: PolicySet) -> None:
        """A set was accepted (or only its releases' state changed)."""
        self._entries.append(
            PolicyChange(
                at=datetime.now(UTC),
                accepted=True,
                version=version,
                summary=summary,
                commit=self._commit(),
                releases=_transitions(old, new),
            )
        )

    def rejected(self, serving: str | None, summary: str) -> None:
        """A set was rejected; ``serving`` is what goes on being served."""
        self._entries.append(
            PolicyChange(
                at=datetime.now(UTC),
                accepted=False,
                version=serving or "",
                summary=summary,
                commit=self._commit(),
            )
        )

    def _commit(self) -> str:
        if self._in_repo is False:
            return ""
        head = _git(self.directory, "rev-parse", "--short", "HEAD")
        self._in_repo = head is not None
        if head is None:
            return ""
        dirty = _git(self.directory, "status", "--porcelain", "--", ".")
        return f"{head} (dirty)" if dirty else head


def _transitions(old: PolicySet | None, new: PolicySet) -> tuple[ReleaseTransition, ...]:
    """The releases whose state differs from ``old``'s."""
    before = {s.name: s.incremental for s in old.services} if old is not None else {}
    moved: list[ReleaseTransition] = []
    for service in new.services:
        release = service.incremental
        state = release.state if release is not None else None
        if state is None:
            continue
        previous = before.get(service.name)
        if previous is not None and previous.state == state:
            continue
        moved.append(
            ReleaseTransition(
                service=service.name,
                phase=state.phase,
                step=state.step,
                reason=state.reason or "",
                since=state.since,
            )
        )
    return tuple(moved)


def _git(directory: Path, *args: str) -> str | None:
    """git's output (stripped), or None when git fails (not a repository, no git)."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
