"""Dark response diffing in the status: `DarkAnalysis.comparison`."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from turnout._proto.v1 import release_pb2 as pb
from turnout.analysis import Comparison

__all__ = ["CompareView", "comparison_message"]


@dataclass(frozen=True, slots=True)
class CompareView:
    """A mirror target's comparison (classified: noise told apart), its `maxDiffRate`,
    and why there is none (`error`)."""

    comparison: Comparison | None
    max_diff_rate: float
    light: str = ""
    comparators: int = 0
    error: str = ""


def _at(seconds: float) -> Timestamp:
    at = Timestamp()
    at.FromNanoseconds(int(seconds * 1e9))
    return at


def comparison_message(view: CompareView) -> pb.Comparison:
    """The proto of one comparison."""
    found = view.comparison
    message = pb.Comparison(
        light=view.light or (found.light if found is not None else ""),
        max_diff_rate=view.max_diff_rate,
        comparators=view.comparators,
        error=view.error,
    )
    if found is None:
        return message
    message.compared = found.compared
    message.differing = found.differing
    message.noise = found.noise
    if found.differing_rate is not None:
        message.differing_rate = found.differing_rate
    for name, count in found.skipped.items():
        message.skipped[name] = count
    for field in found.fields:
        message.fields.append(
            pb.FieldDiff(
                field=field.field,
                differing=field.differing,
                noise=field.noise,
                beyond_noise=field.beyond_noise,
                examples=[
                    pb.DiffExample(
                        method=e.method,
                        path=e.path,
                        query=e.query,
                        light=e.light,
                        other=e.other,
                        kind=e.kind,
                        at=_at(e.at),
                    )
                    for e in field.examples
                ],
            )
        )
    return message
