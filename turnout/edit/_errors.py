"""Why an edit was refused. Nothing is written when one of these is raised.

EditError                 the edit cannot be made; str() says why
├── NotFoundError         no such service, rule or version (the message lists what exists)
├── PhaseError            the incremental release is not in a phase this edit applies to
├── InvalidSetError       the set is invalid: before the edit (`before`) or after it
└── GitError              --commit was asked for and git could not do it
"""

from __future__ import annotations

from turnout.policy import Problem

__all__ = ["EditError", "GitError", "InvalidSetError", "NotFoundError", "PhaseError"]


class EditError(Exception):
    """An edit that cannot be made; nothing was written."""


class NotFoundError(EditError):
    """A service, rule or version that the policy set does not have."""


class PhaseError(EditError):
    """pause/resume/promote asked of an incremental release in the wrong phase."""


class InvalidSetError(EditError):
    """The policy set is invalid: already before the edit (`before` is True), or it
    would be after it. `problems` are the loader's, `FILE:LINE: path: message`."""

    def __init__(self, problems: list[Problem], *, before: bool) -> None:
        self.problems = problems
        self.before = before
        if before:
            head = "the policy set is invalid before any edit; fix it first:"
        else:
            head = "the edit would make the policy set invalid; nothing was written:"
        super().__init__("\n".join([head, *(str(p) for p in problems)]))


class GitError(EditError):
    """`--commit` could not commit (not a git repository, git failed)."""
