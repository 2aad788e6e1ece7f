"""The dashboard's release actions: the CLI's release steps, asked for over HTTP.

Each action is the same `turnout.edit` function the CLI calls (`turnout rollback`,
`pause`, `resume`, `promote`, `set-traffic`, `approve`): the whole resulting set is validated
before anything is written, the file is replaced atomically, and when `turnout serve`
commits release steps (`--commit-releases`) the change is committed too. A preview
(dry run) returns the unified diff the action would make and a digest of it;
applying it names that digest, and is refused (nothing written) when the files would
now change differently: what is applied is what was shown. The write itself is a
compare-and-swap against the files the edit was made from (`write_if_unchanged`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from turnout.edit import (
    Edit,
    EditError,
    approve,
    commit,
    parse_shares,
    pause,
    promote,
    resume,
    rollback,
    set_traffic,
    write_if_unchanged,
)

__all__ = ["ACTIONS", "ActionError", "ActionResult", "Actions"]

log = structlog.get_logger("turnout.actions")

ACTIONS = ("rollback", "pause", "resume", "promote", "set-traffic", "approve")
"""What the dashboard can do."""


class ActionError(Exception):
    """An action was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did (or, previewed, would do)."""

    action: str
    service: str
    summary: str
    diff: str
    digest: str
    applied: bool
    changed: bool
    notes: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    commit: str = ""
    commit_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "service": self.service,
            "summary": self.summary,
            "diff": self.diff,
            "digest": self.digest,
            "applied": self.applied,
            "changed": self.changed,
            "notes": list(self.notes),
            "paths": list(self.paths),
            "commit": self.commit,
            "commit_error": self.commit_error,
        }


def _digest(diff: str) -> str:
    return hashlib.sha256(diff.encode("utf-8")).hexdigest()[:16]


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ActionError(400, f'"{name}" is required')
        return None
    if not isinstance(value, str):
        raise ActionError(400, f'"{name}" must be a string')
    return value


class Actions:
    """Release actions on one policy directory; ``on_write`` is called after a write
    (reload at once, as after the release driver's writes)."""

    def __init__(self, directory: Path, *, commit: bool, on_write: Callable[[], object]) -> None:
        self.directory = directory
        self.commit = commit
        self._on_write = on_write
        self._lock = asyncio.Lock()  # one action at a time: each sees the last one's files

    def _make(self, action: str, body: Mapping[str, Any]) -> Edit:
        directory = self.directory
        service = _text(body, "service")
        assert service is not None
        rule = _text(body, "rule", required=False)
        if action == "rollback":
            return rollback(directory, service, rule=rule)
        if action == "pause":
            return pause(directory, service)
        if action == "resume":
            return resume(directory, service)
        if action == "promote":
            version = _text(body, "version")
            assert version is not None
            return promote(directory, service, version)
        if action == "approve":
            by = _text(body, "by")  # who approves: the page asks (the token names no one)
            assert by is not None
            return approve(directory, service, by=by)
        if action == "set-traffic":
            shares = body.get("shares")
            if not isinstance(shares, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in shares.items()
            ):
                raise ActionError(400, '"shares" must map each version to an exact decimal string')
            return set_traffic(
                directory, service, parse_shares([f"{k}={v}" for k, v in shares.items()]), rule=rule
            )
        raise ActionError(404, f"unknown action {action!r}; one of {', '.join(ACTIONS)}")

    async def run(self, action: str, body: Mapping[str, Any]) -> ActionResult:
        """Preview (``dry_run``: true) or apply an action. Applying needs ``preview``,
        the digest of the diff the preview showed."""
        dry_run = bool(body.get("dry_run", False))
        async with self._lock:
            try:
                edit = await asyncio.to_thread(self._make, action, body)
            except EditError as exc:
                raise ActionError(409, str(exc)) from None
            diff = edit.diff()
            digest = _digest(diff)
            service = str(body.get("service"))
            if dry_run or not edit.changed:
                return ActionResult(
                    action, service, edit.summary, diff, digest, False, edit.changed, edit.notes
                )
            if body.get("preview") != digest:
                raise ActionError(
                    409,
                    "the files changed since the preview: this action would now make a "
                    "different change; preview it again",
                )
            try:
                await asyncio.to_thread(write_if_unchanged, edit)
            except EditError as exc:
                raise ActionError(409, str(exc)) from None
            log.info("dashboard action applied", action=action, summary=edit.summary)
            self._on_write()
            sha, error = "", ""
            if self.commit:
                try:
                    sha = await asyncio.to_thread(commit, self.directory, edit.paths, edit.message)
                except EditError as exc:
                    error = f"written but not committed: {exc}"
                    log.error("dashboard action not committed", action=action, error=str(exc))
            return ActionResult(
                action,
                service,
                edit.summary,
                diff,
                digest,
                True,
                True,
                edit.notes,
                tuple(str(p) for p in edit.paths),
                sha,
                error,
            )
