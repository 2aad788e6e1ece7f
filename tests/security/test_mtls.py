"""xDS over TLS and mutual TLS: who is let in, and which node.cluster each may claim."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from turnout.cache import CLUSTER_TYPE, LISTENER_TYPE
from turnout.testing import resource_names
from turnout.xds import IdentityMap

from .conftest import Pki, refused, secure_xds


async def test_tls_serves_a_client_that_trusts_the_ca(pki: Pki, tmp_path: Path) -> None:
    """Over server-only TLS, a client that verifies turnout's certificate gets its config."""
    async with secure_xds(pki, tmp_path, mutual=False) as xds:
        client = await xds.client(None, "cluster-a")
        accepted = await client.bootstrap()
        assert resource_names(accepted[CLUSTER_TYPE]) == ["a"]


async def test_a_plaintext_client_cannot_talk_to_a_tls_port(pki: Pki, tmp_path: Path) -> None:
    """A client speaking plaintext HTTP/2 to the TLS port gets no response, only UNAVAILABLE."""
    async with secure_xds(pki, tmp_path, mutual=False) as xds:
        channel = grpc.aio.insecure_channel(xds.target)
        try:
            call = channel.stream_stream(
                "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
            )()
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call.read()
            assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await channel.close()
        assert xds.server.stream_count == 0


async def test_mutual_tls_refuses_a_client_without_a_certificate(pki: Pki, tmp_path: Path) -> None:
    """With mutual TLS the handshake fails for a client presenting no certificate: its
    stream ends UNAVAILABLE before any handler runs, and nothing is sent."""
    async with secure_xds(pki, tmp_path) as xds:
        client = await xds.client(None, "cluster-a")
        failure = await refused(client)
        assert failure.code() == grpc.StatusCode.UNAVAILABLE
        assert xds.server.stream_count == 0
        assert xds.server.proxies() == []


async def test_mutual_tls_refuses_a_certificate_from_another_ca(pki: Pki, tmp_path: Path) -> None:
    """A certificate carrying Envoy A's SPIFFE ID but signed by another CA fails the
    handshake: the SAN is only believed once the CA has vouched for it."""
    async with secure_xds(pki, tmp_path) as xds:
        client = await xds.client(pki.stranger, "cluster-a")
        failure = await refused(client)
        assert failure.code() == grpc.StatusCode.UNAVAILABLE
        assert xds.server.stream_count == 0


async def test_a_matching_spiffe_identity_is_served(pki: Pki, tmp_path: Path) -> None:
    """Envoy A's certificate claiming cluster-a (and a cluster-a-* glob) is served that
    group's config."""
    async with secure_xds(pki, tmp_path) as xds:
        exact = await xds.client(pki.client_a, "cluster-a", "a-1")
        assert resource_names((await exact.bootstrap())[CLUSTER_TYPE]) == ["a"]
        globbed = await xds.client(pki.client_a, "cluster-a-canary", "a-2")
        await globbed.request(CLUSTER_TYPE)
        assert resource_names(await globbed.recv()) == ["none"]  # no gateway for it, but allowed
        assert sorted(p.node_id for p in xds.server.proxies()) == ["a-1", "a-2"]


async def test_a_certificate_for_a_claiming_b_is_denied_and_sent_nothing(
    pki: Pki, tmp_path: Path
) -> None:
    """Envoy A's certificate claiming cluster-b ends with PERMISSION_DENIED naming what
    A may claim; no response of any type was sent first, and no proxy was recorded."""
    async with secure_xds(pki, tmp_path) as xds:
        client = await xds.client(pki.client_a, "cluster-b", node_id="proxy-b-1")
        failure = await refused(client, CLUSTER_TYPE, LISTENER_TYPE)  # an error, no response
        assert failure.code() == grpc.StatusCode.PERMISSION_DENIED
        details = failure.details() or ""
        assert "cluster-b" in details
        assert "cluster-a" in details  # what this identity may claim instead
        assert client._responses.empty()
        assert xds.server.proxies() == []
        assert xds.server.guard.rejected["PERMISSION_DENIED"] == 1
        # the node id alone proves nothing: B's own certificate with the same node id is fine
        honest = await xds.client(pki.client_b, "cluster-b", node_id="proxy-b-1")
        assert resource_names((await honest.bootstrap())[CLUSTER_TYPE]) == ["b"]


async def test_delta_streams_are_authorized_the_same_way(pki: Pki, tmp_path: Path) -> None:
    """A Delta stream claiming a node.cluster its certificate may not claim is denied
    without a response; the matching one is served."""
    async with secure_xds(pki, tmp_path) as xds:
        denied = await xds.delta_client(pki.client_b, "cluster-a")
        assert (await refused(denied)).code() == grpc.StatusCode.PERMISSION_DENIED
        allowed = await xds.delta_client(pki.client_b, "cluster-b")
        await allowed.request(CLUSTER_TYPE, subscribe=["*"])
        response = await allowed.recv()
        assert [r.name for r in response.resources] == ["b"]


async def test_a_dns_san_identity_is_matched_by_label_glob(pki: Pki, tmp_path: Path) -> None:
    """A DNS SAN gw-1.mesh.example.org matches `*.mesh.example.org` and may claim mesh,
    but not cluster-a."""
    async with secure_xds(pki, tmp_path) as xds:
        mesh = await xds.client(pki.client_dns, "mesh", "gw-1")
        assert resource_names((await mesh.bootstrap())[CLUSTER_TYPE]) == ["m"]
        other = await xds.client(pki.client_dns, "cluster-a", "gw-1b")
        assert (await refused(other)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_identity_no_rule_names_is_denied(pki: Pki, tmp_path: Path) -> None:
    """A valid certificate whose identity the map does not name may claim nothing."""
    async with secure_xds(pki, tmp_path) as xds:
        client = await xds.client(pki.operator, "cluster-a")
        failure = await refused(client)
        assert failure.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no node.cluster" in (failure.details() or "")


async def test_an_identity_map_refuses_peers_without_certificates(pki: Pki, tmp_path: Path) -> None:
    """With an identity map but TLS that does not ask for client certificates, every
    stream is denied (fail closed), whatever node it claims."""
    identities = IdentityMap.from_config({"proxies": {"*.example.org": ["*"]}})
    async with secure_xds(pki, tmp_path, mutual=False, identities=identities) as xds:
        client = await xds.client(None, "cluster-a")
        failure = await refused(client)
        assert failure.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "client certificate is required" in (failure.details() or "")
