"""Golden files: the whole translation of a comprehensive policy set, as `turnout render`
would print it. Regenerate with `TURNOUT_UPDATE_GOLDEN=1 pytest tests/translate`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from turnout.translate import Resources, to_json, translate

from ._policies import comprehensive

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TURNOUT_UPDATE_GOLDEN") == "1"


def _render(resources: Resources) -> str:
    return json.dumps(to_json(resources), indent=2, sort_keys=True) + "\n"


def _selections() -> dict[str, Resources]:
    translation = translate(comprehensive())
    return {
        "all": translation.all,
        "public": translation.select(["public"]),
        "internal": translation.select(["internal"]),
    }


@pytest.mark.parametrize("selection", ["all", "public", "internal"])
def test_golden(selection: str) -> None:
    """The translation of the comprehensive policy set equals its golden file byte for byte."""
    rendered = _render(_selections()[selection])
    path = GOLDEN / f"{selection}.json"
    if UPDATE:
        path.write_text(rendered)
    assert path.exists(), f"{path} missing: run with TURNOUT_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), f"{path} differs: review, then TURNOUT_UPDATE_GOLDEN=1"
