"""The release dashboard in a real browser, against a real `turnout serve`, a real Envoy
and real backends: what the page shows is what turnout serves, live, and its actions
change the files (and so Envoy's traffic) only with the token, from the page itself.

Each view is saved as a screenshot (see conftest: $TURNOUT_SCREENSHOTS).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e._harness import assert_split, count_versions, write_atomically  # tests/ (rootdir)

from turnout.policy import load_policies
from turnout.testing.backend import Backend
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port

pytestmark = pytest.mark.e2e

HOST = "shop.example.com"
TOKEN = "dashboard-test-token-0123456789abcdef"
RELEASE = (
    "incremental:\n  to: v2\n  steps: [50, approve, 100]\n  interval: 120s\n"
    "  analysis: {minRequests: 20, maxErrorRate: 0.05, maxLatencyP99: 250ms}\n"
    "  onFailure: rollback\n"
)


@dataclass
class Stack:
    policy_dir: Path
    file: Path
    gateway_port: int
    backends: dict[str, Backend]
    turnout: TurnoutProcess

    @property
    def url(self) -> str:
        return self.turnout.admin_url("/")

    def shop(self, traffic: str = "{v1: 90, v2: 10}", extra: str = "") -> str:
        v1, v2 = self.backends["v1"], self.backends["v2"]
        return (
            f"kind: Gateway\nname: public\nport: {self.gateway_port}\naddress: 127.0.0.1\n"
            "---\nkind: Service\nname: shop\n"
            f"hosts: [{HOST}]\n"
            "versions:\n"
            f'  v1: {{endpoints: ["{v1.address}"]}}\n'
            f'  v2: {{endpoints: ["{v2.address}"]}}\n'
            "stable: v1\n"
            f"traffic: {traffic}\n"
            "rules:\n  - name: dogfood\n    match: {headers: {x-employee: 'true'}}\n"
            "    traffic: {v1: 50, v2: 50}\n" + extra
        )

    def write(self, text: str) -> None:
        write_atomically(self.file, text)

    def served(self) -> str:
        status = httpx.get(self.turnout.admin_url("/api/v1/status"), trust_env=False).json()
        return str(status.get("served_version", ""))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Backends v1 and v2, `turnout serve --admin-token-file` and one Envoy."""
    workdir = tmp_path_factory.mktemp("dashboard")
    with ExitStack() as exits:
        backends = {}
        for version in ("v1", "v2"):
            backend = Backend(version, instance=f"{version}-1")
            exits.callback(backend.stop)
            backends[version] = backend.start()
        policy_dir = workdir / "policies"
        policy_dir.mkdir()
        token_file = workdir / "token"
        token_file.write_text(TOKEN + "\n")
        turnout = TurnoutProcess(
            policy_dir,
            log_path=workdir / "turnout.log",
            extra_args=["--log-format", "json", "--admin-token-file", str(token_file)],
        )
        stack = Stack(policy_dir, policy_dir / "shop.yaml", free_port(), backends, turnout)
        stack.file.write_text(stack.shop())
        exits.callback(turnout.kill)
        turnout.start()
        envoy = EnvoyProcess(
            turnout.xds_port,
            node_id="dashboard-envoy",
            workdir=workdir / "envoy",
            stats_flush_interval="1s",
        )
        exits.callback(envoy.stop)
        envoy.start()
        envoy.wait_for_listener(stack.gateway_port)
        yield stack


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page (nothing shared between tests: no token kept)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"


def open_dashboard(page: Any, url: str, view: str = "services") -> None:
    """Load the page and wait until it painted from GetStatus and its stream is live."""
    page.goto(f"{url}#{view}")
    page.wait_for_function("() => window.turnoutDashboard && window.turnoutDashboard.state.status")
    page.wait_for_selector("#live.up")


def shares_text(page: Any, segment: str = "default") -> str:
    locator = page.locator(f'.card[data-service="shop"] .segment[data-segment="{segment}"] .shares')
    return str(locator.inner_text()).strip()


class Load:
    """About `rate` requests/s for the shop through the gateway, until stopped."""

    def __init__(self, port: int, rate: float) -> None:
        self._port, self._period = port, 1.0 / rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self._port}", timeout=5.0, trust_env=False
        ) as client:
            while not self._stop.wait(self._period):
                with suppress(httpx.HTTPError):
                    client.get("/", headers={"Host": HOST})


def test_the_services_view_shows_the_served_shares(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    """The page shows each segment's shares in Envoy's match order, as Envoy serves them,
    and each version's healthy/total endpoints as Envoy reports them."""
    stack.write(stack.shop())
    open_dashboard(page, stack.url)
    page.wait_for_function(
        "() => document.querySelector('.card[data-service=shop] .segment[data-segment=default]')"
        "?.innerText.includes('v1 90% v2 10%')"
    )
    segments = page.locator('.card[data-service="shop"] .segname').all_inner_texts()
    assert segments == ["default", "dogfood"]  # the order Envoy matches them in
    assert shares_text(page, "dogfood") == "v1 50% v2 50%"
    assert "x-turnout-version" in page.locator('.card[data-service="shop"] .head').inner_text()
    page.wait_for_function(  # healthy/total: Envoy's membership_healthy, once it reported
        "() => document.querySelector('.card[data-service=shop] .versions')"
        "?.innerText.includes('1/1')",
        timeout=10000,
    )
    versions = page.locator('.card[data-service="shop"] .versions').inner_text()
    assert "v1" in versions
    assert "/1" in versions
    assert "stable" in versions
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.gateway_port}", trust_env=False) as c:
        assert_split(count_versions(c, HOST, 300), {"v1": 90, "v2": 10})
    page.screenshot(path=str(screenshots / "services.png"), full_page=True)


def test_a_policy_edit_appears_without_a_reload_within_two_seconds(stack: Stack, page: Any) -> None:
    """A file write is pushed to the open page (no reload, no polling) in under 2 s."""
    stack.write(stack.shop())
    open_dashboard(page, stack.url)
    page.wait_for_function(
        "() => document.querySelector('.segment[data-segment=default]')"
        "?.innerText.includes('v1 90%')"
    )
    page.evaluate("() => { window.__sameDocument = true; }")
    started = time.monotonic()
    stack.write(stack.shop("{v1: 70, v2: 30}"))
    page.wait_for_function(
        "() => document.querySelector('.card[data-service=shop] .segment[data-segment=default]')"
        "?.innerText.includes('v1 70% v2 30%')",
        timeout=2000,
    )
    took = time.monotonic() - started
    print(f"file write -> shown in the page: {took * 1000:.0f} ms")
    assert page.evaluate("() => window.__sameDocument === true")  # never reloaded


def test_a_rejected_edit_shows_every_file_line_error(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    """A rejected set is shown at the top with its FILE:LINE errors, and that the previous
    set is still served (its shares stay on the page)."""
    stack.write(stack.shop("{v1: 70, v2: 30}"))
    open_dashboard(page, stack.url)
    served = stack.served()
    broken = stack.shop("{v1: 70, v2: 20}", extra="mirror: {to: v9, percent: 5}\n")
    line = broken.splitlines().index("traffic: {v1: 70, v2: 20}") + 1
    stack.write(broken)
    banner = page.locator("#rejected")
    banner.wait_for(state="visible", timeout=5000)
    text = banner.inner_text()
    assert f"{stack.file}:{line}: traffic: shares sum to 90, not 100" in text
    assert re.search(rf"{re.escape(str(stack.file))}:\d+: mirror\.to: ", text), text
    assert "The previous set is still served" in text
    assert served in text
    assert shares_text(page) == "v1 70% v2 30%"
    page.screenshot(path=str(screenshots / "rejected.png"), full_page=True)
    stack.write(stack.shop("{v1: 70, v2: 30}"))
    banner.wait_for(state="hidden", timeout=5000)


def test_a_running_release_chart_gains_points_and_shows_its_verdict(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    """An incremental release under way: its charts gain a point a second from the
    pushed events, and the judge's verdict is shown."""
    stack.write(stack.shop("{v1: 100}", extra=RELEASE))
    open_dashboard(page, stack.url, "releases")
    with Load(stack.gateway_port, rate=40):
        page.wait_for_selector('.card[data-release="shop"] [data-verdict="pass"]', timeout=30000)
        chart = page.locator('[data-chart="shop|release|rps"]')
        before = int(chart.get_attribute("data-points") or 0)
        page.wait_for_function(
            f"() => Number(document.querySelector('[data-chart=\"shop|release|rps\"]')"
            f".dataset.points) >= {before + 3}",
            timeout=10000,
        )
        info = page.locator('.card[data-release="shop"] .info').inner_text()
        assert page.locator('.card[data-release="shop"] .step.gate').inner_text() == "approve"
        assert "running" in info
        assert "50%" in info
        page.screenshot(path=str(screenshots / "releases.png"), full_page=True)


def test_with_the_token_rollback_changes_the_file_and_envoys_traffic(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    """With the token, rollback previews its diff, then writes the file through the CLI's
    edit path; Envoy's traffic follows and the page shows the fleet taking it."""
    stack.write(stack.shop("{v1: 50, v2: 50}"))
    open_dashboard(page, stack.url)
    page.wait_for_function(
        "() => document.querySelector('.segment[data-segment=default]')"
        "?.innerText.includes('v1 50% v2 50%')"
    )
    page.fill("#token", TOKEN)
    page.click('button[data-action="rollback"][data-service="shop"]:not([data-rule])')
    diff = page.locator("#action-diff")
    diff.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#action-diff').innerText.length > 0")
    assert "+traffic: {v1: 100}" in diff.inner_text()
    assert "-traffic: {v1: 50, v2: 50}" in diff.inner_text()
    assert stack.shop("{v1: 50, v2: 50}") == stack.file.read_text()  # a preview writes nothing
    page.screenshot(path=str(screenshots / "action-preview.png"))
    page.click("#action-apply")
    landing = page.locator("#landing")
    landing.wait_for(state="visible")
    page.wait_for_function(
        "() => /1\\/1 proxies synced in/.test(document.querySelector('#landing').innerText)",
        timeout=5000,
    )
    assert load_policies(stack.policy_dir).service("shop").traffic == (("v1", 100),)
    assert "traffic: {v1: 100}" in stack.file.read_text()
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.gateway_port}", trust_env=False) as c:
        assert count_versions(c, HOST, 50) == {"v1": 50}
    assert shares_text(page) == "v1 100%"
    page.screenshot(path=str(screenshots / "action-landed.png"), full_page=True)


def test_the_fleet_and_history_views(stack: Stack, page: Any, screenshots: Path) -> None:
    """The fleet view lists the Envoy with its cluster, stream kind, ACKed versions and
    state; the history view lists accepted and rejected changes, newest first."""
    open_dashboard(page, stack.url, "fleet")
    row = page.locator('#fleet-rows tr:has-text("dashboard-envoy")')
    row.wait_for()
    text = row.inner_text()
    assert "edge" in text
    assert "ads" in text
    assert "synced" in text
    assert page.locator('[data-count="total"] b').inner_text() == "1"
    page.fill("#fleet-filter", "no-such-proxy")
    page.wait_for_function("() => !document.querySelector('#fleet-rows tr')")
    page.fill("#fleet-filter", "dashboard")
    row.wait_for()
    page.screenshot(path=str(screenshots / "fleet.png"), full_page=True)
    page.click('nav a[data-view="history"]')
    page.locator("#history-rows tr").first.wait_for()
    assert page.locator('#history-rows tr[data-accepted="no"]').count() >= 1
    newest = page.locator("#history-rows tr").first.inner_text()
    assert "accepted" in newest
    assert re.search(r"shop traffic .*-> v1=100", newest), newest  # the rollback, newest first
    page.screenshot(path=str(screenshots / "history.png"), full_page=True)


def test_a_cross_site_request_is_refused_even_with_the_token(stack: Stack, page: Any) -> None:
    """Another origin's page cannot act: a request carrying the token needs a CORS
    preflight that is never granted, and one without it is refused; nothing is written."""
    before = stack.file.read_text()
    other = f"http://{stack.backends['v1'].address}/"
    page.goto(other)  # a page of another origin (a backend's)
    action = stack.turnout.admin_url("/api/v1/actions/rollback")
    outcome = page.evaluate(
        """async ([url, token]) => {
            try {
                const r = await fetch(url, {method: "POST", headers: {
                    "Content-Type": "application/json", "Authorization": "Bearer " + token},
                    body: JSON.stringify({service: "shop"})});
                return "answered " + r.status;
            } catch (e) { return "blocked"; }
        }""",
        [action, TOKEN],
    )
    assert outcome == "blocked"
    page.evaluate(
        """async (url) => { await fetch(url, {method: "POST", mode: "no-cors",
            body: JSON.stringify({service: "shop"})}); }""",
        action,
    )
    body = json.dumps({"service": "shop"})
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(trust_env=False) as client:
        assert (
            client.post(action, content=body, headers={**auth, "Origin": other[:-1]}).status_code
            == 403
        )
        assert (
            client.post(
                action, content=body, headers={**auth, "Sec-Fetch-Site": "cross-site"}
            ).status_code
            == 403
        )
        assert (
            client.post(
                action, content=body, headers={"Content-Type": "application/json"}
            ).status_code
            == 401
        )
        wrong = {**auth, "Authorization": "Bearer not-the-token-at-all-000000"}
        assert client.post(action, content=body, headers=wrong).status_code == 401
        assert client.request("OPTIONS", action).status_code == 405  # no preflight granted
        assert client.post(stack.turnout.admin_url("/status")).status_code == 405
    assert stack.file.read_text() == before


def test_without_the_token_file_the_dashboard_is_read_only(
    stack: Stack, page: Any, screenshots: Path, tmp_path: Path
) -> None:
    """Without --admin-token-file: no enabled control, the page says read-only, and the
    action endpoints answer 403 whatever the request carries."""
    turnout = TurnoutProcess(stack.policy_dir, log_path=tmp_path / "turnout.log")
    try:
        turnout.start()
        open_dashboard(page, turnout.admin_url("/"))
        page.locator('.card[data-service="shop"]').wait_for()
        assert "read-only" in page.locator("#read-only").inner_text()
        assert page.locator("button[data-action]").count() > 0
        assert page.locator("button[data-action]:enabled").count() == 0
        assert page.locator("#token").count() == 0
        status = page.evaluate(
            """async (token) => (await fetch("/api/v1/actions/rollback", {method: "POST",
                headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token},
                body: JSON.stringify({service: "shop", dry_run: true})})).status""",
            TOKEN,
        )
        assert status == 403
        page.screenshot(path=str(screenshots / "read-only.png"), full_page=True)
    finally:
        turnout.stop()
