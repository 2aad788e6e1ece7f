"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", params=["GRPC", "DELTA_GRPC"], ids=["sotw", "delta"])
def api_type(request: pytest.FixtureRequest) -> str:
    """The ADS flavour the technique tests' Envoys speak: each runs once per flavour,
    and module scope keeps one set of processes per flavour and module."""
    value: str = request.param
    return value
