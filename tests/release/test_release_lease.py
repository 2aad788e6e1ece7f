"""Leader election on a Kubernetes Lease, against a minimal fake of the API server's
Lease endpoints over HTTPS (no real API server can run here): create, renew, take
over an expired Lease, optimistic concurrency, giving it up, the token and the CA."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from system_tools import require_tool  # tests/ (rootdir)

from turnout.release import Lease, LeaseConfig, LeaseError

TOKEN = "service-account-token"
NAMESPACE = "releases"
PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"


class FakeApiServer:
    """The Lease endpoints of a Kubernetes API server: GET, POST (409 if it exists),
    PUT (409 unless metadata.resourceVersion is the stored one); a bearer token is
    required. `down` makes every request fail with 503."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.down = False
        self.requests: list[str] = []
        self.before_put: Callable[[], None] | None = None  # e.g. another writer first

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", PATH, self.create)
        app.router.add_route("GET", PATH + "/{name}", self.get)
        app.router.add_route("PUT", PATH + "/{name}", self.put)
        return app

    def _refused(self, request: web.Request) -> web.Response | None:
        self.requests.append(f"{request.method} {request.path}")
        if self.down:
            return web.json_response({"kind": "Status", "code": 503}, status=503)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        return None

    def _stored(self, lease: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        lease = {**lease, "metadata": {**lease["metadata"], "resourceVersion": str(self.version)}}
        self.leases[lease["metadata"]["name"]] = lease
        return lease

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        if body["metadata"]["name"] in self.leases:
            return web.json_response({"kind": "Status", "reason": "AlreadyExists"}, status=409)
        return web.json_response(self._stored(body), status=201)

    async def get(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        lease = self.leases.get(request.match_info["name"])
        if lease is None:
            return web.json_response({"kind": "Status", "reason": "NotFound"}, status=404)
        return web.json_response(lease)

    async def put(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        if self.before_put is not None:
            self.before_put()
        stored = self.leases.get(request.match_info["name"])
        if stored is None:
            return web.json_response({"kind": "Status", "reason": "NotFound"}, status=404)
        if body["metadata"].get("resourceVersion") != stored["metadata"]["resourceVersion"]:
            return web.json_response({"kind": "Status", "reason": "Conflict"}, status=409)
        return web.json_response(self._stored(body))

    def holder(self, name: str = "turnout-release-driver") -> str:
        return str(self.leases[name]["spec"]["holderIdentity"])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl), the certificate being its CA."""
    openssl = require_tool("openssl")
    cert, key = directory / "api.crt", directory / "api.key"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[FakeApiServer, str, Path]]:
    fake = FakeApiServer()
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    (tmp_path / "token").write_text(TOKEN + "\n")
    try:
        yield fake, f"https://127.0.0.1:{port}", cert
    finally:
        await runner.cleanup()


def replica(
    api: tuple[FakeApiServer, str, Path],
    identity: str,
    tmp_path: Path,
    *,
    token: Path | None = None,
    ca: Path | None = None,
) -> tuple[Lease, Clock]:
    _, server, server_ca = api
    clock = Clock()
    lease = Lease(
        LeaseConfig(
            server=server,
            namespace=NAMESPACE,
            identity=identity,
            token_path=token or tmp_path / "token",
            ca_path=ca or server_ca,
        ),
        clock=clock,
    )
    return lease, clock


async def test_first_replica_creates_the_lease_and_leads(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """A missing Lease is created with us as holder; a second replica then follows."""
    fake = api[0]
    one, _ = replica(api, "turnout-0", tmp_path)
    two, _ = replica(api, "turnout-1", tmp_path)
    try:
        assert await one.try_acquire_or_renew()
        assert one.is_leader()
        assert fake.holder() == "turnout-0"
        assert fake.leases["turnout-release-driver"]["spec"]["leaseDurationSeconds"] == 15
        assert not await two.try_acquire_or_renew()
        assert not two.is_leader()
        assert two.holder == "turnout-0"
    finally:
        await one.close()
        await two.close()


async def test_leader_renews_and_follower_waits(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """While the leader renews, a follower never takes over, however long it waits."""
    fake = api[0]
    one, clock_one = replica(api, "turnout-0", tmp_path)
    two, clock_two = replica(api, "turnout-1", tmp_path)
    try:
        await one.try_acquire_or_renew()
        for _ in range(20):
            clock_one.now += 2
            clock_two.now += 2
            assert await one.try_acquire_or_renew()
            assert not await two.try_acquire_or_renew()
        assert fake.holder() == "turnout-0"
        assert fake.leases["turnout-release-driver"]["spec"].get("leaseTransitions", 0) == 0
    finally:
        await one.close()
        await two.close()


async def test_follower_takes_over_a_lease_not_renewed_for_its_duration(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """A Lease unchanged for leaseDurationSeconds by the follower's own clock is taken
    over (whatever renewTime says); the old leader then learns it lost."""
    fake = api[0]
    one, clock_one = replica(api, "turnout-0", tmp_path)
    two, clock_two = replica(api, "turnout-1", tmp_path)
    try:
        await one.try_acquire_or_renew()
        assert not await two.try_acquire_or_renew()  # observed now
        clock_two.now += 14.9
        assert not await two.try_acquire_or_renew()
        clock_two.now += 0.2
        assert await two.try_acquire_or_renew()
        assert fake.holder() == "turnout-1"
        assert fake.leases["turnout-release-driver"]["spec"]["leaseTransitions"] == 1
        clock_one.now += 15.1
        assert not one.is_leader()  # it could not renew within the renew deadline
        assert not await one.try_acquire_or_renew()
    finally:
        await one.close()
        await two.close()


async def test_only_one_of_two_racing_replicas_wins(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """Two replicas taking over the same expired Lease: the API server's
    resourceVersion check lets exactly one win."""
    fake = api[0]
    old, _ = replica(api, "turnout-old", tmp_path)
    one, clock_one = replica(api, "turnout-0", tmp_path)
    two, clock_two = replica(api, "turnout-1", tmp_path)
    try:
        await old.try_acquire_or_renew()
        await one.try_acquire_or_renew()
        await two.try_acquire_or_renew()
        clock_one.now += 16
        clock_two.now += 16
        stale = fake.leases["turnout-release-driver"]
        assert await one.try_acquire_or_renew()
        # two reads the Lease as it was before one's write, and writes after it
        newer = fake.leases["turnout-release-driver"]
        fake.leases["turnout-release-driver"] = stale

        def one_wrote_first() -> None:
            fake.leases["turnout-release-driver"] = newer

        fake.before_put = one_wrote_first
        assert not await two.try_acquire_or_renew()
        assert fake.holder() == "turnout-0"
        assert one.is_leader()
        assert not two.is_leader()
    finally:
        await old.close()
        await one.close()
        await two.close()


async def test_giving_up_lets_another_replica_lead_at_once(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """On shutdown the leader empties the holder, so a follower takes over at its next
    round instead of after the lease duration."""
    fake = api[0]
    one, _ = replica(api, "turnout-0", tmp_path)
    two, _ = replica(api, "turnout-1", tmp_path)
    try:
        await one.try_acquire_or_renew()
        assert not await two.try_acquire_or_renew()
        await one.release()
        assert not one.is_leader()
        assert fake.holder() == ""
        assert await two.try_acquire_or_renew()
        assert fake.holder() == "turnout-1"
    finally:
        await one.close()
        await two.close()


async def test_an_unreachable_api_server_ends_leadership_before_the_lease_expires(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """When renewals fail, the leader stops leading after renew_deadline (10s), before
    any other replica may take over (15s)."""
    fake = api[0]
    one, clock = replica(api, "turnout-0", tmp_path)
    try:
        await one.try_acquire_or_renew()
        fake.down = True
        clock.now += 9.9
        with pytest.raises(LeaseError, match="HTTP 503"):
            await one.try_acquire_or_renew()
        assert one.is_leader()
        clock.now += 0.2
        assert not one.is_leader()
    finally:
        await one.close()


async def test_requests_carry_the_token_and_check_the_ca(
    api: tuple[FakeApiServer, str, Path], tmp_path: Path
) -> None:
    """Without the right token the API server refuses; without its CA the TLS
    handshake fails: both are errors, never leadership."""
    fake = api[0]
    (tmp_path / "wrong").write_text("nope")
    bad_token, _ = replica(api, "turnout-0", tmp_path, token=tmp_path / "wrong")
    (tmp_path / "other").mkdir()
    other_ca, _ = self_signed(tmp_path / "other")
    bad_ca, _ = replica(api, "turnout-1", tmp_path, ca=other_ca)
    try:
        with pytest.raises(LeaseError, match="HTTP 401"):
            await bad_token.try_acquire_or_renew()
        with pytest.raises(LeaseError, match="certificate"):
            await bad_ca.try_acquire_or_renew()
        assert not bad_token.is_leader()
        assert not bad_ca.is_leader()
        assert fake.leases == {}
    finally:
        await bad_token.close()
        await bad_ca.close()


def test_in_cluster_config_needs_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    """--leader-election kubernetes outside a pod is a clear error."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(LeaseError, match="needs to run in a pod"):
        LeaseConfig.in_cluster()
