"""Fixtures for the security tests: test certificates, and real grpc.aio xDS servers
over TLS and mutual TLS on 127.0.0.1:0 (always stopped)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from turnout.cache import CLUSTER_TYPE, SnapshotCache
from turnout.server import ServerCertificates
from turnout.testing import AdsClient, DeltaClient, make_snapshot
from turnout.xds import IdentityMap, Limits, StreamGuard, XdsServer

from ._certs import Authority, KeyPair

SPIFFE_A = "spiffe://example.org/ns/edge/sa/envoy-a"
SPIFFE_B = "spiffe://example.org/ns/edge/sa/envoy-b"
DNS_C = "gw-1.mesh.example.org"

IDENTITY_MAP = {
    "proxies": {
        SPIFFE_A: ["cluster-a", "cluster-a-*"],
        SPIFFE_B: ["cluster-b"],
        "*.mesh.example.org": ["mesh"],
    },
    "api": ["spiffe://example.org/ns/ops/sa/*"],
}
"""Envoy A may claim cluster-a (and cluster-a-*), B cluster-b, gw-N.mesh... mesh."""


@dataclass(frozen=True)
class Pki:
    """A CA and the certificates the tests use, as files and as bytes."""

    directory: Path
    ca: Authority
    server: KeyPair
    client_a: KeyPair
    client_b: KeyPair
    client_dns: KeyPair
    operator: KeyPair
    stranger: KeyPair
    """Envoy A's SPIFFE ID, but signed by another CA."""

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    def credentials(self, client: KeyPair | None) -> grpc.ChannelCredentials:
        """Channel credentials trusting the test CA, presenting ``client`` if given."""
        if client is None:
            return grpc.ssl_channel_credentials(self.ca.cert_pem)
        return grpc.ssl_channel_credentials(self.ca.cert_pem, client.key, client.cert)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One CA for the session, with a server certificate for localhost/127.0.0.1 and
    client certificates: SPIFFE IDs of Envoy A and B, a DNS SAN, an operator, and a
    stranger (A's SPIFFE ID from another CA)."""
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority()
    ca.write(directory)
    return Pki(
        directory=directory,
        ca=ca,
        server=ca.server(),
        client_a=ca.client(spiffe=SPIFFE_A),
        client_b=ca.client(spiffe=SPIFFE_B),
        client_dns=ca.client(dns=(DNS_C,)),
        operator=ca.client(spiffe="spiffe://example.org/ns/ops/sa/release-bot"),
        stranger=Authority("another CA").client(spiffe=SPIFFE_A),
    )


@dataclass
class SecureXds:
    """An XdsServer over TLS, its cache, certificates and the clients it handed out."""

    server: XdsServer
    cache: SnapshotCache
    certificates: ServerCertificates
    port: int
    pki: Pki
    _clients: list[AdsClient | DeltaClient] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def client(
        self,
        identity: KeyPair | None,
        node_cluster: str,
        node_id: str = "proxy-1",
        *,
        kind: str = "ads",
    ) -> AdsClient:
        """A simulated Envoy presenting ``identity`` (None: no client certificate)."""
        client = await AdsClient.connect(
            self.target,
            node_id=node_id,
            node_cluster=node_cluster,
            kind=kind,
            credentials=self.pki.credentials(identity),
        )
        self._clients.append(client)
        return client

    async def delta_client(
        self, identity: KeyPair | None, node_cluster: str, node_id: str = "proxy-1"
    ) -> DeltaClient:
        """A simulated Delta Envoy presenting ``identity``."""
        client = await DeltaClient.connect(
            self.target,
            node_id=node_id,
            node_cluster=node_cluster,
            credentials=self.pki.credentials(identity),
        )
        self._clients.append(client)
        return client


def publish_groups(cache: SnapshotCache) -> None:
    """cluster-a gets cluster `a`, cluster-b cluster `b`, mesh cluster `m`; any other
    node.cluster an empty snapshot."""
    snapshots = {
        "cluster-a": make_snapshot({"a": 100}),
        "cluster-b": make_snapshot({"b": 100}),
        "mesh": make_snapshot({"m": 100}),
    }
    empty = make_snapshot({"none": 100})
    cache.publish("v1", lambda group: snapshots.get(group, empty))


@contextlib.asynccontextmanager
async def secure_xds(
    pki: Pki,
    directory: Path,
    *,
    mutual: bool = True,
    identities: IdentityMap | None = None,
    limits: Limits | None = None,
) -> AsyncIterator[SecureXds]:
    """An XdsServer on 127.0.0.1:0 over TLS (mutual unless ``mutual=False``) with the
    server certificate written into ``directory``; by default the test identity map."""
    cert, key = pki.server.write(directory, "server")
    certificates = ServerCertificates(cert, key, pki.ca_path if mutual else None)
    if identities is None and mutual:
        identities = IdentityMap.from_config(IDENTITY_MAP)
    cache = SnapshotCache()
    publish_groups(cache)
    server = XdsServer(cache, guard=StreamGuard(identities, limits or Limits()))
    port = await server.start("127.0.0.1:0", certificates.credentials())
    running = SecureXds(server, cache, certificates, port, pki)
    try:
        yield running
    finally:
        for client in running._clients:
            with contextlib.suppress(Exception):
                await client.close()
        await server.stop(0)


async def refused(client: AdsClient | DeltaClient, *types: str) -> grpc.aio.AioRpcError:
    """Send a request of each of ``types`` (CDS by default) and return the error that
    ends the stream; AssertionError if a response arrives instead. A refusal may
    surface on a write (the handshake failed) or on the first read."""
    try:
        for type_url in types or (CLUSTER_TYPE,):
            if isinstance(client, DeltaClient):
                await client.request(type_url, subscribe=["*"])
            else:
                await client.request(type_url)
        response = await client.recv(timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"expected the stream to be refused, got {response}")
