"""TLS for the xDS port: certificate files, reloaded when they change on disk; the
identity map file.

grpc calls the fetcher given to ``grpc.dynamic_ssl_server_credentials`` on every new
connection, from one of its own threads (not the event loop). :class:`ServerCertificates`
answers it with a ``stat`` of the files: ``None`` ("keep what you have") while they
are unchanged, a new configuration once they changed and form a usable set. So new
handshakes use the new certificate at once, and connections already open (and their
streams) go on with the one they were made with: nothing is dropped.

A half-written update (a key that no longer matches the certificate, a truncated
file) is not taken: the previous certificate keeps being served and the problem is
logged once per change; the next change that makes the set whole again is picked up.
Kubernetes updates a mounted Secret by swapping a symlink, which changes what ``stat``
sees through the path: it is picked up like any other write.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from envoy.config.core.v3.base_pb2 import Node
from google.protobuf.message import DecodeError
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from turnout.xds import IdentityMap, IdentityMapError, StreamGuard

__all__ = [
    "CertificateError",
    "SecurityCollector",
    "ServerCertificates",
    "channel_credentials",
    "load_identity_map",
    "metrics_node",
]

log = structlog.get_logger("turnout.tls")

_Signature = tuple[tuple[int, int, int], ...]


class CertificateError(ValueError):
    """Certificate files that cannot be served (missing, unreadable, mismatched)."""


@dataclass(frozen=True)
class _Material:
    cert: bytes
    key: bytes
    client_ca: bytes | None


def _read_material(cert: Path, key: Path, client_ca: Path | None) -> _Material:
    """Read and check the files: the key matches the certificate, the CA parses."""
    paths = (cert, key, client_ca)
    material = _read(paths)
    # The ssl module checks a pair only from files. Check the files themselves, then
    # read them again: if anything changed meanwhile (an update being written), the
    # set is not taken now; the next handshake looks again. No copy of the key is made.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(
            f"{cert} and {key} are not a certificate and its private key "
            f"({getattr(exc, 'reason', None) or exc})"
        ) from exc
    if material.client_ca is not None:
        try:
            ssl.create_default_context().load_verify_locations(
                cadata=material.client_ca.decode("ascii", "replace")
            )
        except (ssl.SSLError, ValueError) as exc:
            raise CertificateError(f"{client_ca}: not a PEM CA certificate ({exc})") from exc
    if _read(paths) != material:
        raise CertificateError(f"{cert}, {key}: changed while being read")
    return material


def _read(paths: tuple[Path, Path, Path | None]) -> _Material:
    cert, key, client_ca = paths
    try:
        return _Material(
            cert.read_bytes(),
            key.read_bytes(),
            client_ca.read_bytes() if client_ca is not None else None,
        )
    except OSError as exc:
        raise CertificateError(f"cannot read {exc.filename}: {exc.strerror}") from exc


class ServerCertificates:
    """The server's certificate and key files (and the client CA for mutual TLS)."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        """Read the files now; raise :class:`CertificateError` if they cannot be served."""
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._material = _read_material(cert, key, client_ca)
        self._refused: _Signature | None = None
        self.reloads = 0
        """How many times changed files were taken (for tests and logs)."""

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate the client CA signed."""
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that pick up changed files on the next handshake."""
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(self._material),
            self._fetch,
            require_client_authentication=self.mutual,
        )

    def _paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())

    def _stat(self) -> _Signature:
        signature = []
        for path in self._paths():
            try:
                st = path.stat()
            except OSError:
                signature.append((-1, -1, -1))
            else:
                signature.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(signature)

    def _configuration(self, material: _Material) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(material.key, material.cert)], root_certificates=material.client_ca
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's fetcher: a new configuration when the files changed, else None.

        Runs on a grpc thread for every new connection: a stat of two or three files,
        and a read only after a change. It must never raise into grpc.
        """
        try:
            with self._lock:
                signature = self._stat()
                if signature == self._signature or signature == self._refused:
                    return None
                try:
                    material = _read_material(self.cert, self.key, self.client_ca)
                except CertificateError as exc:
                    self._refused = signature
                    log.error("tls.reload_refused", error=str(exc), keeping="previous certificate")
                    return None
                self._signature, self._refused = signature, None
                if material == self._material:
                    return None
                self._material = material
                self.reloads += 1
            log.info("tls.reloaded", cert=str(self.cert), reloads=self.reloads)
            return self._configuration(material)
        except Exception:  # grpc would fail the handshake; keep serving the old one
            log.exception("tls.reload_failed")
            return None


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Client credentials for turnout's port: verify it with ``ca`` (else the system
    roots), and present ``cert``/``key`` when the server wants mutual TLS."""
    if (cert is None) != (key is None):
        raise CertificateError("a client certificate needs its key (and a key its certificate)")
    try:
        return grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes() if ca is not None else None,
            private_key=key.read_bytes() if key is not None else None,
            certificate_chain=cert.read_bytes() if cert is not None else None,
        )
    except OSError as exc:
        raise CertificateError(f"cannot read {exc.filename}: {exc.strerror}") from exc


def load_identity_map(path: Path) -> IdentityMap:
    """Read an identity map file (YAML); raise IdentityMapError naming the file."""
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IdentityMapError(f"{path}: {exc.strerror}") from exc
    except YAMLError as exc:
        raise IdentityMapError(f"{path}: not YAML: {exc}") from exc
    try:
        return IdentityMap.from_config(data)
    except IdentityMapError as exc:
        # The same error, now naming the file: the cause would repeat it.
        raise IdentityMapError(f"{path}: {exc}") from None


def metrics_node(message: Any) -> Node | None:
    """The node an Envoy ``StreamMetricsMessage`` names (its identifier), if any: what
    the identity map checks before turnout takes a proxy's stats for release analysis."""
    if not message.HasField("identifier") or not message.identifier.node:
        return None
    try:
        return Node.FromString(message.identifier.node)
    except DecodeError:
        return None


class SecurityCollector(Collector):
    """Prometheus metrics of the guard and the certificates, read at scrape time."""

    def __init__(self, guard: StreamGuard, certificates: ServerCertificates | None) -> None:
        self._guard = guard
        self._certificates = certificates

    def collect(self) -> Iterable[Metric]:
        rejected = CounterMetricFamily(
            "turnout_xds_streams_rejected",
            "Streams ended by node authorization or a limit, by gRPC status code.",
            labels=["code"],
        )
        for code in ("PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"):
            rejected.add_metric([code], self._guard.rejected[code])
        yield rejected
        if self._certificates is not None:
            yield CounterMetricFamily(
                "turnout_tls_certificate_reloads",
                "Times changed certificate files were taken for new connections.",
                value=self._certificates.reloads,
            )
