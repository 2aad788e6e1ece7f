"""Certificate files changed on disk: new connections get the new certificate, open
streams keep going, and a half-written update is not taken."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import grpc
import pytest

from turnout.cache import CLUSTER_TYPE
from turnout.server import CertificateError, ServerCertificates, channel_credentials
from turnout.testing import AdsClient, make_snapshot, resource_names

from ._certs import Authority, KeyPair
from .conftest import Pki, SecureXds, refused, secure_xds


def replace(path: Path, data: bytes) -> None:
    """Write ``path`` in one rename, as a Secret update or cert-manager does."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def connect(xds: SecureXds, trust: bytes, node_id: str) -> AdsClient:
    """Envoy A trusting only ``trust`` (a CA certificate) for turnout's certificate."""
    client = await AdsClient.connect(
        xds.target,
        node_id=node_id,
        node_cluster="cluster-a",
        credentials=grpc.ssl_channel_credentials(
            trust, xds.pki.client_a.key, xds.pki.client_a.cert
        ),
    )
    xds._clients.append(client)
    return client


async def test_a_rotated_server_certificate_is_picked_up_without_dropping_streams(
    pki: Pki, tmp_path: Path
) -> None:
    """After the server certificate and key are replaced by ones from a new CA, a new
    connection is handed the new certificate (only a client trusting the new CA gets
    in), while a stream opened before the rotation keeps receiving updates."""
    new_ca = Authority("rotated CA")
    async with secure_xds(pki, tmp_path) as xds:
        before = await connect(xds, pki.ca.cert_pem, "before")
        await before.bootstrap()

        rotated = new_ca.server()
        replace(tmp_path / "server.key", rotated.key)
        replace(tmp_path / "server.crt", rotated.cert)

        after = await connect(xds, new_ca.cert_pem, "after")
        assert resource_names((await after.bootstrap())[CLUSTER_TYPE]) == ["a"]
        assert xds.certificates.reloads == 1
        stale_trust = await connect(xds, pki.ca.cert_pem, "stale-trust")
        assert (await refused(stale_trust)).code() == grpc.StatusCode.UNAVAILABLE

        # the stream from before the rotation still works: it is sent the next publish
        split = make_snapshot({"a": 50, "a2": 50})
        xds.cache.publish("v2", lambda _group: split)
        update = await before.recv(timeout=5)
        assert update.type_url == CLUSTER_TYPE
        assert resource_names(update) == ["a", "a2"]
        assert sorted(p.node_id for p in xds.server.proxies()) == ["after", "before"]


async def test_a_half_written_update_keeps_the_old_certificate(pki: Pki, tmp_path: Path) -> None:
    """A new certificate whose key has not been written yet (the pair does not match) is
    not taken: new connections still get the old certificate; once the key arrives the
    new pair is served."""
    new_ca = Authority("rotated CA")
    async with secure_xds(pki, tmp_path) as xds:
        rotated = new_ca.server()
        replace(tmp_path / "server.crt", rotated.cert)  # the key is still the old one

        old_trust = await connect(xds, pki.ca.cert_pem, "old-trust")
        assert resource_names((await old_trust.bootstrap())[CLUSTER_TYPE]) == ["a"]
        assert xds.certificates.reloads == 0

        replace(tmp_path / "server.key", rotated.key)
        new_trust = await connect(xds, new_ca.cert_pem, "new-trust")
        assert resource_names((await new_trust.bootstrap())[CLUSTER_TYPE]) == ["a"]
        assert xds.certificates.reloads == 1


async def test_a_rotated_client_ca_admits_clients_of_the_new_ca(pki: Pki, tmp_path: Path) -> None:
    """Adding a second CA to the client CA file lets proxies with certificates from it in
    on their next connection, with their identity authorized as before."""
    new_ca = Authority("second client CA")
    client = new_ca.client(spiffe="spiffe://example.org/ns/edge/sa/envoy-a")
    async with secure_xds(pki, tmp_path) as xds:
        credentials = grpc.ssl_channel_credentials(pki.ca.cert_pem, client.key, client.cert)
        early = await AdsClient.connect(
            xds.target, node_id="early", node_cluster="cluster-a", credentials=credentials
        )
        xds._clients.append(early)
        assert (await refused(early)).code() == grpc.StatusCode.UNAVAILABLE

        replace(pki.ca_path, pki.ca.cert_pem + new_ca.cert_pem)
        try:
            late = await AdsClient.connect(
                xds.target, node_id="late", node_cluster="cluster-a", credentials=credentials
            )
            xds._clients.append(late)
            assert resource_names((await late.bootstrap())[CLUSTER_TYPE]) == ["a"]
        finally:
            replace(pki.ca_path, pki.ca.cert_pem)  # the session's PKI is shared


def test_unusable_files_are_refused_at_start(pki: Pki, tmp_path: Path) -> None:
    """A key that is not the certificate's, a missing file, or a CA file that is not
    PEM is refused when turnout starts, naming the files, with the error underneath
    (ssl's, the OS's) kept as the cause."""
    cert, _key = pki.server.write(tmp_path, "server")
    _other_cert, other_key = Authority().server().write(tmp_path, "other")
    with pytest.raises(CertificateError, match="not a certificate and its private key") as bad:
        ServerCertificates(cert, other_key)
    assert isinstance(bad.value.__cause__, ssl.SSLError)
    with pytest.raises(CertificateError, match="cannot read") as missing:
        ServerCertificates(cert, tmp_path / "missing.key")
    assert isinstance(missing.value.__cause__, FileNotFoundError)
    garbage = tmp_path / "garbage-ca.crt"
    garbage.write_text("not a certificate")
    with pytest.raises(CertificateError, match="not a PEM CA"):
        ServerCertificates(cert, tmp_path / "server.key", garbage)


def test_unreadable_client_files_name_the_file_and_keep_the_cause(tmp_path: Path) -> None:
    """Client credentials (`turnout status --tls-ca`) from a missing file fail naming
    it, with the OS error as the cause."""
    with pytest.raises(CertificateError, match=r"cannot read .*missing-ca\.pem") as missing:
        channel_credentials(tmp_path / "missing-ca.pem", None, None)
    assert isinstance(missing.value.__cause__, FileNotFoundError)


def test_unchanged_files_are_not_reloaded(pki: Pki, tmp_path: Path) -> None:
    """grpc's fetcher answers None (keep what you have) while the files are unchanged,
    and a new configuration once, after they change."""
    cert, key = pki.server.write(tmp_path, "server")
    certificates = ServerCertificates(cert, key)
    assert certificates._fetch() is None
    assert certificates._fetch() is None
    replace(cert, KeyPair(pki.server.cert + b"\n", pki.server.key).cert)  # same pair, new bytes
    assert certificates._fetch() is not None
    assert certificates._fetch() is None
    assert certificates.reloads == 1
