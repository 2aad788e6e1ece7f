"""Mangled policy files are rejected with problems, never with an unexpected exception."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from turnout.policy import PolicySetError, parse_policies

FIXTURE = Path(__file__).parent / "fixtures" / "valid"
FILES = {
    str(path.relative_to(FIXTURE)): path.read_text()
    for path in sorted(FIXTURE.rglob("*.y*ml"))
    if not any(part.startswith(".") for part in path.relative_to(FIXTURE).parts)
}
VALUES = [
    "", "0", "-1", "true", "null", "[]", "{}", "[1, 2]", "{a: 1}", '"x"', "1.5", "1e400",
    ".nan", "0x10", "2024-01-01", "*", "&a x", "*a", "!!binary aGk=", "'(?=x)'",
    "{<<: {p: 1}}", "- a", ": :", "instances", "v1", "[v1]", "x: y: z", "100", "'*.*'",
]  # fmt: skip


def mangle(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        line, choice = lines[index], rng.random()
        if ":" in line and choice < 0.6:
            lines[index] = line[: line.index(":") + 1] + " " + rng.choice(VALUES)
        elif choice < 0.8:
            del lines[index]
        else:
            lines.insert(index, lines[rng.randrange(len(lines))])
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(4))
def test_mangled_files_give_problems_not_crashes(seed: int) -> None:
    """Random edits to a valid set parse, or raise PolicySetError with located problems."""
    rng = random.Random(seed)
    rejected: list[PolicySetError] = []
    for _ in range(100):
        name = rng.choice(sorted(FILES))
        try:
            parse_policies({**FILES, name: mangle(FILES[name], rng)})
        except PolicySetError as exc:
            rejected.append(exc)
    assert len(rejected) > 50
    assert all(error.problems for error in rejected)
    assert all(p.file in FILES and p.line >= 0 for e in rejected for p in e.problems)
