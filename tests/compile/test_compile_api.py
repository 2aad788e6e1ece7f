"""The public surface of turnout.compile."""

from __future__ import annotations

import turnout.compile


def test_public_surface() -> None:
    """turnout.compile exports exactly its documented names, all importable."""
    assert sorted(turnout.compile.__all__) == sorted(
        [
            "Compiled",
            "Compiler",
            "compile_policies",
            "resources_by_type",
        ]
    )
    for name in turnout.compile.__all__:
        assert hasattr(turnout.compile, name)
