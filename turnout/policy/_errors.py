"""Errors raised while loading policies.

PolicyError
└── PolicySetError      a set was rejected; `.problems` lists every problem found
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PolicyError", "PolicySetError", "Problem"]


def one_line(text: str) -> str:
    """``text`` as it is when every character is printable; else with the ones that
    are not escaped as a Python repr would: line breaks (``\\n``, ``\\u2028``...),
    tabs and control characters (``\\x1f``), and backslashes doubled so an escape
    cannot be mistaken for the characters it is made of. A problem quotes what the
    file says, and a quoted value must not break the problem's line or hide a
    character the reader cannot see."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem in a policy set, printed as `FILE:LINE: field.path: message`, always
    on one line (:func:`one_line` is applied to the file, path and message)."""

    file: str
    line: int
    path: str
    message: str

    def __post_init__(self) -> None:
        for name in ("file", "path", "message"):
            text = getattr(self, name)
            if not text.isprintable():
                object.__setattr__(self, name, one_line(text))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(Exception):
    """Base class of every policy error."""


class PolicySetError(PolicyError):
    """A policy set was rejected whole. `problems` holds every problem, sorted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
