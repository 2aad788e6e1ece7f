"""The release driver's edit: one step of an incremental release in one write.

`set_release` changes a service's default traffic, optionally its stable version, and
its `incremental.state` together (one file, one atomic write, one commit), by the same
path as `turnout set-traffic` (round-trip splices, the whole set validated). It is a
compare-and-swap: `expect` is checked against the files as they are read for the edit,
and `write_if_unchanged` checks each file again right before replacing it, so an edit
made by a person since the driver last looked is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from turnout.policy import Phase, Service, percent

from ._edits import Edit, _split, _Target
from ._errors import EditError
from ._files import write_atomically
from ._yaml import restyle

__all__ = ["ConflictError", "set_release", "write_if_unchanged"]


class ConflictError(EditError):
    """The files no longer hold what the edit was based on: someone else changed them."""


def set_release(
    directory: Path,
    service: str,
    *,
    phase: Phase,
    step: int,
    reason: str,
    summary: str,
    traffic: Mapping[str, Decimal] | None = None,
    stable: str | None = None,
    expect: Callable[[Service], bool] | None = None,
    now: datetime | None = None,
) -> Edit:
    """Set the release state (phase, step, since=now, reason) and, when given, the
    default traffic (exactly `traffic`) and the stable version. ConflictError when
    `expect` does not hold for the service as the files say now."""
    target = _Target.open(directory, service)
    current = target.service
    release = current.incremental
    if release is None:
        raise EditError(f"{service} has no incremental release")
    if expect is not None and not expect(current):
        raise ConflictError(f"{service} changed in {target.file} since the driver last looked")
    if traffic is not None:
        node, _ = target.traffic_node(None)
        target.editor.set_mapping(node, {v: percent(s) for v, s in traffic.items() if s != 0})
    if stable is not None and stable != current.stable:
        field = target.field("stable")
        target.editor.replace(field, restyle(field, stable))
    target.set_state(release, phase, reason, now, step=step)
    wanted = None if traffic is None else {v: s for v, s in traffic.items() if s != 0}

    def as_intended(after: Service) -> bool:
        state = after.incremental.state if after.incremental else None
        return (
            state is not None
            and state.phase == phase
            and state.step == step
            and (wanted is None or _split(after.traffic) == wanted)
            and (stable is None or after.stable == stable)
        )

    return target.finish(summary, f"{service} is already {phase}", as_intended)


def write_if_unchanged(edit: Edit) -> None:
    """Write the edit's files, each only if it still holds exactly what the edit was
    made from; ConflictError (nothing written) otherwise."""
    for change in edit.changes:
        try:
            now = change.path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConflictError(f"cannot read {change.path} again: {exc}") from exc
        if now != change.old:
            raise ConflictError(f"{change.path} changed while the edit was being made")
    for change in edit.changes:
        write_atomically(change.path, change.new)
