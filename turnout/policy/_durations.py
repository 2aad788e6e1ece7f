"""Durations as people write them: ``500ms``, ``2s``, ``1m30s``, ``1.5h``.

One parser for every place turnout reads one: policy fields (`interval`, `ttl`,
`progressDeadline`...) and the command line (`--timeout`, `--dark-window`), which
also takes a bare number of seconds; and one writer (:func:`duration_text`) for every
message that names a duration, in the same syntax, so it can be pasted back.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["DURATION_HELP", "DURATION_PATTERN", "duration_text", "parse_duration"]

DURATION_PATTERN = r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+"
"""A duration as a regular expression (the policy schema's pattern)."""

_DURATION = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_BARE_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}

DURATION_HELP = 'e.g. "500ms", "2s", "1m30s" (units: ms, s, m, h)'


def parse_duration(text: str, *, bare_seconds: bool = False) -> float:
    """Seconds from ``500ms``, ``2s``, ``1m30s`` (parts in any of ms, s, m, h, added
    up); with ``bare_seconds`` a plain number is seconds too. A ValueError says what
    is wrong: not a duration, or not longer than 0."""
    written = text.strip() if bare_seconds else text
    if bare_seconds and _BARE_SECONDS.fullmatch(written):
        seconds = Decimal(written)
    elif _DURATION.fullmatch(written):
        seconds = sum(
            (Decimal(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(written)),
            Decimal(0),
        )
    else:
        raise ValueError(f'invalid duration "{text}": {DURATION_HELP}')
    if seconds <= 0:
        raise ValueError(f'must be longer than 0, got "{text}"')
    return float(seconds)


def duration_text(seconds: float) -> str:
    """A duration as a policy would write it: ``30s``, ``1m30s``, ``24h``, ``500ms``,
    ``1.5s`` (:func:`parse_duration` reads it back to the same seconds)."""
    total = Decimal(str(seconds))
    if total < 1:
        return f"{format((total * 1000).normalize(), 'f')}ms" if total > 0 else "0s"
    hours, rest = divmod(total, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [f"{int(hours)}h" if hours else "", f"{int(minutes)}m" if minutes else ""]
    parts.append(f"{format(rest.normalize(), 'f')}s" if rest else "")
    return "".join(parts)
