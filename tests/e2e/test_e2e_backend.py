"""The demo backend the end-to-end tests count on: it names its version, reports its
health as told, fails and slows down as told, and counts what it received."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from turnout.testing.backend import Backend

pytestmark = pytest.mark.e2e


@pytest.fixture
def backend() -> Iterator[Backend]:
    with Backend("v2", instance="v2-a", watch_headers=("x-user-id",)) as started:
        yield started


def url(backend: Backend, path: str) -> str:
    return f"http://{backend.address}{path}"


def test_answers_name_the_version(backend: Backend) -> None:
    """Every path answers 200 with the version in a header and in the JSON body."""
    response = httpx.get(url(backend, "/any/path?q=1"), headers={"Host": "shop.test"})
    assert response.status_code == 200
    assert response.headers["x-served-by"] == "v2"
    assert response.json() == {
        "version": "v2",
        "instance": "v2-a",
        "path": "/any/path?q=1",
        "host": "shop.test",
    }


def test_health_follows_the_flag(backend: Backend) -> None:
    """/healthz answers 200 while healthy and 503 once told to be unhealthy, and health
    checks are not counted as requests."""
    assert httpx.get(url(backend, "/healthz")).status_code == 200
    backend.healthy = False
    assert httpx.get(url(backend, "/healthz")).status_code == 503
    counts = backend.counts()
    assert (counts.health_checks, counts.requests) == (2, 0)


def test_failure_share_and_counts(backend: Backend) -> None:
    """With fail=0.3 about 30% of 1000 requests get a 503, and the backend counts them
    by path, by Host (shadow copies apart) and by watched header."""
    backend.fail = 0.3
    with httpx.Client() as client:
        statuses = [
            client.get(
                url(backend, f"/p{i % 2}"),
                headers={"Host": "a.test-shadow" if i < 100 else "a.test", "x-user-id": "u1"},
            ).status_code
            for i in range(1000)
        ]
    failed = statuses.count(503)
    assert 230 <= failed <= 370
    counts = backend.counts()
    assert counts.requests == 1000
    assert counts.failed == failed
    assert counts.by_path == {"/p0": 500, "/p1": 500}
    assert counts.shadow() == 100
    assert counts.by_header == {"x-user-id": {"u1": 1000}}
    backend.reset()
    assert backend.counts().requests == 0


def test_latency_is_added(backend: Backend) -> None:
    """latency=0.2 makes each answer take at least 200 ms."""
    backend.latency = 0.2
    started = time.monotonic()
    assert httpx.get(url(backend, "/")).status_code == 200
    assert time.monotonic() - started >= 0.2
