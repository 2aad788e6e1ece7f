"""What a policy change will do, for a reviewer or a CI comment (`turnout diff`).

    result = diff(load_policies("old"), load_policies("new"), envoy=True)
    print(result.render())          # checkout default: v2 5% -> 25% ...
    json.dumps(result.to_json())    # the same, for machines

`revision_sources(directory, rev)` reads a policy directory as it was at a git
revision, ready for `turnout.policy.parse_policies`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnout.policy import PolicySet
from turnout.translate import translate

from ._envoy import ResourceChange, resource_changes
from ._policy import Change, policy_changes
from ._sources import DiffSourceError, revision_sources

__all__ = [
    "Change",
    "Diff",
    "DiffSourceError",
    "ResourceChange",
    "diff",
    "resource_changes",
    "revision_sources",
]


@dataclass(frozen=True, slots=True)
class Diff:
    """The changes between two valid policy sets; `envoy` is None unless asked for."""

    changes: tuple[Change, ...]
    envoy: tuple[ResourceChange, ...] | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes) or bool(self.envoy)

    def render(self) -> str:
        """The changes as lines for people, then the Envoy resources when asked for."""
        if not self.changed:
            return "no changes"
        lines = [change.text for change in self.changes]
        if self.envoy is not None:
            if lines:
                lines.append("")
            lines.append("Envoy resources:" if self.envoy else "Envoy resources: no changes")
            lines.extend(f"  {change.text}" for change in self.envoy)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "changed": self.changed,
            "changes": [change.to_json() for change in self.changes],
        }
        if self.envoy is not None:
            out["envoy"] = [change.to_json() for change in self.envoy]
        return out


def diff(old: PolicySet, new: PolicySet, *, envoy: bool = False) -> Diff:
    """Compare two valid sets; with `envoy`, translate both and compare the resources."""
    changes = tuple(policy_changes(old, new))
    if not envoy:
        return Diff(changes)
    resources = tuple(resource_changes(translate(old).all, translate(new).all))
    return Diff(changes, resources)
