"""Errors raised while loading policies.

PolicyError
└── PolicySetError      a set was rejected; `.problems` lists every problem found
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PolicyError", "PolicySetError", "Problem"]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem in a policy set, printed as `FILE:LINE: field.path: message`."""

    file: str
    line: int
    path: str
    message: str

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
