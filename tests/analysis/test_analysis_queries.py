"""Custom checks (`analysis.queries`) measured by a real Prometheus and judged beside
Envoy's figures: a breach fails, a query without data (or no Prometheus) holds, and
every verdict lists each query's value with its limit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from turnout.analysis import (
    Figures,
    PrometheusSource,
    QueryResult,
    Thresholds,
    Verdict,
    judge,
    measure_queries,
)
from turnout.policy import AnalysisQuery
from turnout.testing.net import http_get, wait_until

from ._stack import PrometheusServer, prometheus_binary

pytestmark = pytest.mark.slow

#: What the exporter serves: a business metric per version (v2 fails payments).
EXPOSITION = (
    "# TYPE shop_payment_failures gauge\n"
    'shop_payment_failures{version="v1"} 0.1\n'
    'shop_payment_failures{version="v2"} 0.9\n'
)


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = EXPOSITION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping a small exporter of business metrics every second."""
    prometheus_binary()
    with ExitStack() as exits:
        exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
        exits.callback(exporter.server_close)
        exits.callback(exporter.shutdown)
        threading.Thread(target=exporter.serve_forever, daemon=True).start()
        target = f"127.0.0.1:{exporter.server_address[1]}"
        server = PrometheusServer([target], Path(tmp_path_factory.mktemp("prometheus")))
        exits.callback(server.stop)
        server.start()
        server.wait_scraping()

        def scraped() -> bool:
            status, body = http_get(f"{server.url}/api/v1/query?query=shop_payment_failures")
            return status == 200 and '"v2"' in body

        wait_until(scraped, 30, what="the exporter's series in Prometheus")
        yield server


FAILURES = 'sum(shop_payment_failures{version="$version"})'


def _figures(version: str, requests: int = 1000) -> Figures:
    """Envoy's figures of a healthy version: many requests, no errors."""
    return Figures(
        0.0, 60.0, requests=requests, errors=0, proxies=1, service="shop", version=version
    )


def _judge(url: str, *queries: AnalysisQuery, canary: str = "v2", requests: int = 1000) -> Verdict:
    async def run() -> tuple[QueryResult, ...]:
        async with PrometheusSource(url, {}) as source:
            return await measure_queries(source, queries, canary, "v1", time.time())

    results = asyncio.run(run())
    thresholds = Thresholds(min_requests=100, max_error_rate=0.01)
    return judge(_figures(canary, requests), _figures("v1"), thresholds, results)


def test_query_breach_fails_what_envoys_figures_pass(prometheus: PrometheusServer) -> None:
    """A version whose business metric exceeds `max` fails although Envoy's figures (no
    errors at all) pass, and the verdict names the query with its value."""
    verdict = _judge(prometheus.url, AnalysisQuery("payment-failures", FAILURES, max=0.5))
    assert verdict.outcome == "fail"
    assert verdict.reasons == ("payment-failures 0.9 for shop/v2 > max 0.5",)
    check = next(c for c in verdict.checks if c.name == "query:payment-failures")
    assert (check.value, check.limit, check.failed) == (pytest.approx(0.9), 0.5, True)
    assert any(c.name == "maxErrorRate" and not c.breached for c in verdict.checks)


def test_query_increase_over_stable_fails(prometheus: PrometheusServer) -> None:
    """`maxIncrease` compares the same query for stable: 0.9 against 0.1 is +0.8."""
    verdict = _judge(prometheus.url, AnalysisQuery("payment-failures", FAILURES, max_increase=0.1))
    assert verdict.outcome == "fail"
    check = next(c for c in verdict.checks if c.name == "query:payment-failures")
    assert check.value == pytest.approx(0.8)
    assert check.effect["stable"] == pytest.approx(0.1)


def test_query_within_its_limit_passes_and_is_shown(prometheus: PrometheusServer) -> None:
    """A version within every limit passes, and the verdict still shows the query's
    value beside Envoy's figures."""
    verdict = _judge(
        prometheus.url, AnalysisQuery("payment-failures", FAILURES, max=0.5), canary="v1"
    )
    assert verdict.outcome == "pass"
    assert "payment-failures 0.1 for shop/v1 (within max 0.5)" in verdict.reasons
    assert [c.name for c in verdict.checks] == ["maxErrorRate", "query:payment-failures"]


def test_query_without_data_holds(prometheus: PrometheusServer) -> None:
    """A query that returns nothing (a misspelt metric) holds the verdict: never a pass."""
    missing = AnalysisQuery("typo", 'sum(shop_payment_failurez{version="$version"})', max=1)
    verdict = _judge(prometheus.url, missing, canary="v1")
    assert verdict.outcome == "hold"
    assert verdict.reasons[0].startswith("typo: no data for shop/v1")


def test_prometheus_down_holds() -> None:
    """No Prometheus answering is no data: the verdict holds and says why."""
    verdict = _judge("http://127.0.0.1:9", AnalysisQuery("payment-failures", FAILURES, max=0.5))
    assert verdict.outcome == "hold"
    assert (
        "payment-failures: no data for shop/v2: Prometheus at http://127.0.0.1:9"
        in (verdict.reasons[0])
    )


def test_breach_fails_even_when_another_query_has_no_data(prometheus: PrometheusServer) -> None:
    """A breach is a failure whatever else is missing: no data never hides one."""
    verdict = _judge(
        prometheus.url,
        AnalysisQuery("payment-failures", FAILURES, max=0.5),
        AnalysisQuery("typo", "sum(nothing_here)", max=1),
    )
    assert verdict.outcome == "fail"


def test_query_breach_before_min_requests_holds(prometheus: PrometheusServer) -> None:
    """Too few requests to judge is too few for the queries too: a breach is shown
    among the checks, the verdict holds."""
    verdict = _judge(
        prometheus.url, AnalysisQuery("payment-failures", FAILURES, max=0.5), requests=10
    )
    assert verdict.outcome == "hold"
    assert verdict.reasons[0] == "shop/v2: 10 requests, fewer than minRequests 100"
    assert [c.name for c in verdict.checks] == ["query:payment-failures"]
