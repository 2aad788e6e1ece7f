"""The release edits: set-traffic, promote, rollback, pause and resume.

Each edit reads the whole policy directory, refuses to touch a set that is already
invalid, finds the service's document in whichever file holds it, changes only the
values it must (see `_yaml`), validates the whole resulting set in memory, and checks
that the edited file reads back as intended. It returns an `Edit`: nothing is written
until `Edit.write()`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ruamel.yaml.nodes import MappingNode, Node

from turnout.policy import (
    INSTANCES,
    Incremental,
    Phase,
    PolicySet,
    PolicySetError,
    Service,
    Traffic,
    parse_policies,
    percent,
    traffic_text,
)

from ._errors import EditError, InvalidSetError, NotFoundError, PhaseError
from ._files import FileChange, policy_files, write_atomically
from ._yaml import (
    Editor,
    Value,
    entry,
    find_document,
    plain_or_quoted,
    quoted,
    restyle,
    sequence_item,
)

__all__ = [
    "Edit",
    "approve",
    "parse_shares",
    "pause",
    "promote",
    "resume",
    "rollback",
    "set_traffic",
]

#: Phases in which an incremental release is under way (a rollback ends it).
_UNDER_WAY: tuple[Phase, ...] = ("pending", "running", "waiting", "holding", "paused", "failed")

#: Phases in which an approval can be recorded (the release has not ended).
_APPROVABLE: tuple[Phase, ...] = ("pending", "dark", "running", "waiting", "paused", "holding")


@dataclass(frozen=True, slots=True)
class Edit:
    """What an edit changes. `summary` names the change (the commit message follows it);
    no `changes` means the files already say what was asked."""

    summary: str
    changes: tuple[FileChange, ...]
    policies: PolicySet  # the set after the edit
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def message(self) -> str:
        """The commit message: `turnout: checkout traffic v1=90 v2=10 (was v1=95 v2=5)`."""
        return f"turnout: {self.summary}"

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(change.path for change in self.changes)

    def diff(self) -> str:
        return "".join(change.diff() for change in self.changes)

    def write(self) -> None:
        """Write every changed file atomically."""
        for change in self.changes:
            write_atomically(change.path, change.new)


# -- reading the command line's values ------------------------------------------------------


def parse_shares(pairs: Sequence[str]) -> dict[str, Decimal]:
    """`["v1=90", "v2=10"]` -> {"v1": 90, "v2": 10}, in the order given."""
    if not pairs:
        raise EditError("give the new shares as VERSION=PERCENT, e.g. v1=90 v2=10")
    shares: dict[str, Decimal] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name or not text:
            raise EditError(f'"{pair}": write a share as VERSION=PERCENT, e.g. v2=10')
        try:
            share = Decimal(text)
        except InvalidOperation:
            raise EditError(f'"{pair}": "{text}" is not a number') from None
        if not share.is_finite():
            raise EditError(f'"{pair}": "{text}" is not a number')
        if name in shares:
            raise EditError(f'version "{name}" is given twice')
        shares[name] = share
    return shares


# -- the edits ------------------------------------------------------------------------------


def set_traffic(
    directory: Path, service: str, shares: Mapping[str, Decimal], *, rule: str | None = None
) -> Edit:
    """Make the default route's (or a rule's) traffic exactly `shares`."""
    target = _Target.open(directory, service)
    node, old = target.traffic_node(rule)
    target.editor.set_mapping(node, {name: percent(share) for name, share in shares.items()})
    wanted = {name: share for name, share in shares.items() if share != 0}
    segment = f"{service} rule {rule}" if rule else service
    summary = f"{segment} traffic {traffic_text(shares)} (was {traffic_text(old)})"
    unchanged = f"{segment} traffic is already {traffic_text(shares)}"
    return target.finish(
        summary,
        unchanged,
        lambda after: _split(_segment(after, rule)) == wanted,
    )


def promote(directory: Path, service: str, version: str, *, now: datetime | None = None) -> Edit:
    """All default traffic to `version` and `stable: version`; an incremental release to
    `version` is marked promoted."""
    target = _Target.open(directory, service)
    current = target.service
    target.require_version(version)
    traffic, old_traffic = target.traffic_node(None)
    target.editor.set_mapping(traffic, {version: "100"})
    stable = target.field("stable")
    target.editor.replace(stable, restyle(stable, version))
    parts = [f"traffic {version}=100 (was {traffic_text(old_traffic)})"]
    if current.stable != version:
        parts.append(f"stable {version} (was {current.stable})")
    release = current.incremental
    phase = _phase(release)
    if release is not None and release.to == version and phase != "promoted":
        last = len(release.steps) - 1
        target.set_state(release, "promoted", "promoted by turnout promote", now, step=last)
        parts.append(f"incremental release to {version} promoted")
    elif (
        release is not None
        and release.to != version
        and phase in ("running", "waiting", "holding", "paused")
    ):
        raise PhaseError(
            f"{service} has an incremental release to {release.to} under way ({phase}); "
            f"promote {release.to}, or roll it back first (turnout rollback {service})"
        )
    notes = tuple(
        f"rule {rule.name} keeps its own traffic: {traffic_text(rule.traffic)}"
        for rule in current.rules
        if rule.traffic != ((version, Decimal(100)),)
    )

    def promoted(after: Service) -> bool:
        state = after.incremental.state if after.incremental else None
        promotes_release = release is not None and release.to == version
        state_ok = not promotes_release or (state is not None and state.phase == "promoted")
        return (
            after.stable == version
            and _split(after.traffic) == {version: Decimal(100)}
            and state_ok
        )

    return target.finish(
        f"promote {service} to {version}: " + ", ".join(parts),
        f"{service} is already promoted to {version}",
        promoted,
        notes,
    )


def rollback(
    directory: Path, service: str, *, rule: str | None = None, now: datetime | None = None
) -> Edit:
    """The default route's (or a rule's) traffic back to {stable: 100}. An incremental
    release under way is marked rolled back (not restarted); mirrors are left alone."""
    target = _Target.open(directory, service)
    current = target.service
    stable = current.stable
    node, old = target.traffic_node(rule)
    target.editor.set_mapping(node, {stable: "100"})
    segment = f"{service} rule {rule}" if rule else service
    parts = [f"traffic {stable}=100 (was {traffic_text(old)})"]
    release = current.incremental
    ends_release = (
        rule is None
        and release is not None
        and release.to != stable
        and _phase(release) in _UNDER_WAY
    )
    if ends_release and release is not None:
        step = release.state.step if release.state else 0
        target.set_state(release, "rolled-back", "rolled back by turnout rollback", now, step=step)
        parts.append(f"incremental release to {release.to} rolled back")

    def rolled_back(after: Service) -> bool:
        state = after.incremental.state if after.incremental else None
        state_ok = not ends_release or (state is not None and state.phase == "rolled-back")
        return _split(_segment(after, rule)) == {stable: Decimal(100)} and state_ok

    return target.finish(
        f"roll back {segment} to {stable}: " + ", ".join(parts),
        f"{segment} is already at {stable}=100",
        rolled_back,
    )


def pause(directory: Path, service: str, *, now: datetime | None = None) -> Edit:
    """A running incremental release -> paused (the driver stops stepping it)."""
    return _flip(directory, service, "running", "paused", "pause", now)


def resume(directory: Path, service: str, *, now: datetime | None = None) -> Edit:
    """A paused incremental release -> running (the current step is observed afresh)."""
    return _flip(directory, service, "paused", "running", "resume", now)


def approve(directory: Path, service: str, *, by: str, now: datetime | None = None) -> Edit:
    """Record a person's approval of the next `approve` gate of the service's incremental
    release in `incremental.state.approvals` (who, when). A release waiting at the gate
    goes on at the driver's next tick (a pass advances); a gate still ahead is approved
    in advance. Phase, step and since are left to the driver."""
    target = _Target.open(directory, service)
    release = target.service.incremental
    if release is None:
        raise PhaseError(f"{service} has no incremental release to approve")
    phase = _phase(release)
    if phase not in _APPROVABLE:
        raise PhaseError(
            f"cannot approve {service}: its incremental release to {release.to} is {phase}"
        )
    if not release.gates:
        raise PhaseError(
            f"{service}'s incremental release to {release.to} has no approve gate "
            "(write one in steps, e.g. [5, 25, approve, 50, 100])"
        )
    state = release.state
    step = state.step if state is not None else 0
    ahead = [gate for gate in release.gates if gate > step]
    pending = [gate for gate in ahead if release.gated(gate)]
    if not pending:
        done = [state.approval(g) for g in release.gates if state is not None]
        said = "; ".join(f"step {a.step + 1} by {a.by}" for a in done if a is not None)
        return Edit(
            f"nothing to change: every approve gate ahead of {service} is approved ({said})"
            if ahead
            else f"nothing to change: {service} has no approve gate ahead of step {step + 1}",
            (),
            target.policies,
        )
    gate = pending[0]
    when = _timestamp(now)
    records = [*(state.approvals if state is not None else ()), None]
    rendered = ", ".join(
        f"{{step: {gate if a is None else a.step}, "
        f"by: {plain_or_quoted(by if a is None else a.by)}, "
        f"at: {quoted(when if a is None else _timestamp(a.at) if a.at else '')}}}"
        for a in records
    )
    incremental = target.field("incremental")
    if not isinstance(incremental, MappingNode):
        raise EditError(f"{target.file}: {service}'s incremental is not a mapping")
    state_node = entry(incremental, "state")
    if isinstance(state_node, MappingNode):
        target.editor.update(state_node, {"approvals": f"[{rendered}]"})
    else:
        target.editor.update(
            incremental, {"state": {"phase": "pending", "approvals": f"[{rendered}]"}}
        )
    where = f"step {gate + 1} of {len(release.steps)} ({percent(release.steps[gate])}%)"
    then = "the release goes on" if phase == "waiting" else "approved ahead of the gate"
    summary = f"approve {service}: {where} of the release to {release.to}, by {by} ({then})"

    def approved(edited: Service) -> bool:
        after = edited.incremental.state if edited.incremental else None
        record = after.approval(gate) if after is not None else None
        return record is not None and record.by == by

    return target.finish(summary, f"{service} is already approved", approved)


def _flip(
    directory: Path, service: str, before: Phase, after: Phase, verb: str, now: datetime | None
) -> Edit:
    target = _Target.open(directory, service)
    release = target.service.incremental
    if release is None:
        raise PhaseError(f"{service} has no incremental release to {verb}")
    phase = _phase(release)
    if phase != before:
        where = "has not started (no incremental.state)" if release.state is None else f"is {phase}"
        raise PhaseError(
            f"cannot {verb} {service}: its incremental release to {release.to} {where}; "
            f"{verb} applies to a {before} release only"
        )
    step = release.state.step if release.state else 0
    done = {"pause": "paused", "resume": "resumed"}[verb]
    target.set_state(release, after, f"{done} by turnout {verb}", now, step=None)
    where = f"step {step + 1} of {len(release.steps)} ({percent(release.steps[step])}%)"
    summary = f"{verb} {service}: incremental release to {release.to} {after} at {where}"

    def flipped(edited: Service) -> bool:
        state = edited.incremental.state if edited.incremental else None
        return state is not None and state.phase == after and state.step == step

    return target.finish(summary, f"{service} is already {after}", flipped)


# -- finding and checking -------------------------------------------------------------------


def _phase(release: Incremental | None) -> Phase | None:
    if release is None:
        return None
    return release.state.phase if release.state else "pending"


def _segment(service: Service, rule: str | None) -> Traffic:
    if rule is None:
        return service.traffic
    return next(r.traffic for r in service.rules if r.name == rule)


def _split(traffic: Traffic) -> dict[str, Decimal] | None:
    return None if traffic == INSTANCES else dict(traffic)


def _listing(what: str, names: Sequence[str], wanted: str) -> str:
    close = difflib.get_close_matches(wanted, list(names), n=1)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"{hint} ({what}: {', '.join(names) or 'none'})"


def _timestamp(now: datetime | None) -> str:
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")


class _Target:
    """One service's document in the file that holds it, being edited."""

    def __init__(
        self, directory: Path, files: dict[str, str], policies: PolicySet, service: Service
    ) -> None:
        self.files = files
        self.policies = policies
        self.service = service
        assert service.location is not None  # the loader always sets it
        self.file = service.location.file
        self.path = Path(self.file)
        document = find_document(files[self.file], "Service", service.name)
        if document is None:  # the loader found it there: only a race could get here
            raise EditError(f"{self.file} no longer holds service {service.name}")
        self.document = document
        self.editor = Editor(files[self.file])

    @classmethod
    def open(cls, directory: Path, name: str) -> _Target:
        files = policy_files(directory)
        try:
            policies = parse_policies(files)
        except PolicySetError as exc:  # its problems, carried over: the cause repeats them
            raise InvalidSetError(exc.problems, before=True) from None
        names = [s.name for s in policies.services]
        if name not in names:
            raise NotFoundError(
                f'no service "{name}" in {directory}{_listing("services", names, name)}'
            )
        return cls(directory, files, policies, policies.service(name))

    def field(self, key: str, mapping: MappingNode | None = None) -> Node:
        node = entry(mapping if mapping is not None else self.document, key)
        if node is None:  # valid, so it is there: written through a merge key (<<)
            raise EditError(
                f"{self.file}: {self.service.name}'s {key} is not written in its own document "
                "(a merge key?); edit it by hand"
            )
        return node

    def require_version(self, version: str) -> None:
        names = [v.name for v in self.service.versions]
        if version not in names:
            raise NotFoundError(
                f'{self.service.name} has no version "{version}"'
                + _listing("versions", names, version)
            )

    def traffic_node(self, rule: str | None) -> tuple[Node, Traffic]:
        """The `traffic` node of the default route or of a rule, and its current value."""
        if rule is None:
            return self.field("traffic"), self.service.traffic
        names = [r.name for r in self.service.rules]
        if rule not in names:
            raise NotFoundError(
                f'{self.service.name} has no rule "{rule}"' + _listing("rules", names, rule)
            )
        item = sequence_item(self.field("rules"), "name", rule)
        if item is None:
            raise EditError(f"{self.file}: rule {rule} is not written in place; edit it by hand")
        return self.field("traffic", item), _segment(self.service, rule)

    def set_state(
        self,
        release: Incremental,
        phase: Phase,
        reason: str,
        now: datetime | None,
        *,
        step: int | None,
    ) -> None:
        """Write `incremental.state`: the phase, since now, the reason (and step)."""
        incremental = self.field("incremental")
        if not isinstance(incremental, MappingNode):
            raise EditError(f"{self.file}: {self.service.name}'s incremental is not a mapping")
        state = entry(incremental, "state")
        values: dict[str, str] = {"phase": phase}
        if step is not None or release.state is None:
            values["step"] = str(step or 0)
        values["since"] = _timestamp(now)
        values["reason"] = reason
        if isinstance(state, MappingNode):
            rendered: dict[str, Value | None] = {
                key: restyle(old, text) if (old := entry(state, key)) is not None else quoted(text)
                for key, text in values.items()
            }
            rendered["phase"] = restyle(entry(state, "phase") or state, phase)
            if "step" in rendered:
                rendered["step"] = values["step"]
            self.editor.update(state, rendered)
        else:
            new = {**values, "since": quoted(values["since"]), "reason": quoted(reason)}
            self.editor.update(incremental, {"state": new})

    def finish(
        self,
        summary: str,
        unchanged: str,
        check: Callable[[Service], bool],
        notes: tuple[str, ...] = (),
    ) -> Edit:
        """Validate the whole edited set, check the service reads back as intended."""
        old = self.files[self.file]
        new = self.editor.result()
        if new == old:
            return Edit(f"nothing to change: {unchanged}", (), self.policies, notes)
        try:
            after = parse_policies({**self.files, self.file: new})
        except PolicySetError as exc:  # its problems, carried over: the cause repeats them
            raise InvalidSetError(exc.problems, before=False) from None
        if not check(after.service(self.service.name)):
            raise EditError(
                f"internal error: {self.file} does not read back as intended after the edit; "
                "nothing was written"
            )
        return Edit(summary, (FileChange(self.path, old, new),), after, notes)
