"""One driver among replicas: a Kubernetes Lease (coordination.k8s.io/v1), held by
the replica that drives releases.

A small client of the API server over HTTPS with the pod's service account token (no
Kubernetes library), following client-go's leader election:

- every `retry` seconds: read the Lease; create it if missing (holder: us); renew it
  if we hold it (`renewTime`); take it over if its holder has not renewed for
  `duration` seconds *as observed by our own clock* (the record unchanged that long:
  no trust in the other replica's clock); else follow;
- every write carries the `resourceVersion` read, so of two replicas racing for an
  expired Lease the API server lets one win (409 Conflict for the other);
- we lead only while our last successful renewal is younger than `renew_deadline`
  (shorter than `duration`): an API server we cannot reach makes us stop driving
  before anyone else may take over;
- on shutdown a leader gives the Lease up (empty holder), so another replica takes
  over at its next retry instead of after `duration`.

Needs RBAC: get, create, update on `leases` in the namespace (deploy/ has the Role).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog

__all__ = ["Lease", "LeaseConfig", "LeaseError"]

log = structlog.get_logger("turnout.release.lease")

_SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class LeaseError(RuntimeError):
    """The Lease could not be read or written (the API server's answer says why)."""


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """Where the Lease is and who we are. `in_cluster()` reads the pod's environment."""

    server: str  # https://host:port of the API server
    namespace: str
    name: str = "turnout-release-driver"
    identity: str = ""
    token_path: Path | None = _SERVICE_ACCOUNT / "token"
    ca_path: Path | None = _SERVICE_ACCOUNT / "ca.crt"
    duration: float = 15.0  # leaseDurationSeconds
    renew_deadline: float = 10.0
    retry: float = 2.0

    @classmethod
    def in_cluster(cls, name: str = "turnout-release-driver", **overrides: Any) -> LeaseConfig:
        """From KUBERNETES_SERVICE_HOST/PORT, the service account's namespace, token
        and CA, and the pod's name (POD_NAME, else the host name) as identity."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise LeaseError(
                "--leader-election kubernetes needs to run in a pod "
                "(KUBERNETES_SERVICE_HOST is not set)"
            )
        namespace_file = _SERVICE_ACCOUNT / "namespace"
        try:
            namespace = namespace_file.read_text().strip()
        except OSError as exc:
            raise LeaseError(f"cannot read the pod's namespace ({namespace_file}): {exc}") from exc
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        identity = os.environ.get("POD_NAME") or socket.gethostname()
        return cls(server=server, namespace=namespace, name=name, identity=identity, **overrides)

    @property
    def url(self) -> str:
        base = f"{self.server.rstrip('/')}/apis/coordination.k8s.io/v1/namespaces/{self.namespace}"
        return f"{base}/leases"


def _micro_time(at: datetime) -> str:
    """Kubernetes' MicroTime: RFC 3339 with microseconds, UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lease:
    """Leader election on one Lease; `is_leader()` says whether we drive now."""

    def __init__(
        self,
        config: LeaseConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not config.renew_deadline < config.duration:
            raise ValueError("renew_deadline must be shorter than the lease duration")
        self.config = config
        self._clock = clock
        self._wall = wall
        self._session: aiohttp.ClientSession | None = None
        self._renewed_at: float | None = None  # our clock, last successful acquire/renew
        self._observed: tuple[str, float] | None = None  # (resourceVersion, when first seen)
        self.holder: str | None = None  # who holds it, as last read

    def is_leader(self) -> bool:
        """True while our last successful renewal is younger than the renew deadline."""
        renewed = self._renewed_at
        return renewed is not None and self._clock() - renewed < self.config.renew_deadline

    # -- HTTP ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        path = self.config.token_path
        if path is not None:
            try:  # read every time: projected tokens are rotated on disk
                headers["Authorization"] = f"Bearer {path.read_text().strip()}"
            except OSError as exc:
                raise LeaseError(f"cannot read the service account token {path}: {exc}") from exc
        return headers

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.config.server.startswith("https:"):
            return False
        ca = self.config.ca_path
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)

    async def _request(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.retry * 2),
                connector=aiohttp.TCPConnector(ssl=self._ssl()),
                trust_env=False,
            )
        try:
            async with self._session.request(
                method, url, json=body, headers=self._headers()
            ) as response:
                payload = await response.json(content_type=None)
                return response.status, payload
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise LeaseError(f"{method} {url}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- election --------------------------------------------------------------------

    def _spec(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time(self._wall())
        spec = dict(previous or {})
        ours = spec.get("holderIdentity") == self.config.identity
        spec["holderIdentity"] = self.config.identity
        spec["leaseDurationSeconds"] = round(self.config.duration)
        spec["renewTime"] = now
        if not ours:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if previous else 0
            )
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One round: create, renew or take over the Lease if we may. True if we hold it."""
        url = f"{self.config.url}/{self.config.name}"
        status, lease = await self._request("GET", url)
        if status == 404:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                "spec": self._spec(None),
            }
            status, created = await self._request("POST", self.config.url, body)
            if status in (200, 201):
                return self._won(created)
            if status == 409:  # another replica created it first
                return self._lost()
            raise LeaseError(f"creating Lease {self.config.name}: HTTP {status}: {created}")
        if status != 200:
            raise LeaseError(f"reading Lease {self.config.name}: HTTP {status}: {lease}")
        spec = lease.get("spec") or {}
        metadata = lease.get("metadata") or {}
        holder = spec.get("holderIdentity") or ""
        self.holder = holder or None
        version = str(metadata.get("resourceVersion", ""))
        now = self._clock()
        if self._observed is None or self._observed[0] != version:
            self._observed = (version, now)
        ours = holder == self.config.identity
        duration = float(spec.get("leaseDurationSeconds") or self.config.duration)
        expired = not holder or now - self._observed[1] >= duration
        if not ours and not expired:
            return self._lost()
        body = {**lease, "spec": self._spec(spec)}
        status, updated = await self._request("PUT", url, body)
        if status == 200:
            return self._won(updated)
        if status == 409:  # written by someone else since we read it
            return self._lost()
        raise LeaseError(f"updating Lease {self.config.name}: HTTP {status}: {updated}")

    def _won(self, lease: Any) -> bool:
        was = self.is_leader()
        self._renewed_at = self._clock()
        self.holder = self.config.identity
        metadata = lease.get("metadata") if isinstance(lease, dict) else None
        if isinstance(metadata, dict):
            self._observed = (str(metadata.get("resourceVersion", "")), self._clock())
        if not was:
            log.info("release lease acquired", lease=self.config.name, identity=self.holder)
        return True

    def _lost(self) -> bool:
        if self._renewed_at is not None:
            log.info("release lease lost", lease=self.config.name, holder=self.holder)
        self._renewed_at = None
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire or renew every `retry` seconds until `stop`; then give it up."""
        try:
            while not stop.is_set():
                try:
                    await self.try_acquire_or_renew()
                except LeaseError as exc:
                    log.warning("release lease round failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.retry)
        finally:
            with contextlib.suppress(LeaseError):
                await self.release()
            await self.close()

    async def release(self) -> None:
        """Give the Lease up if we hold it (empty holder), for a fast takeover."""
        if not self.is_leader():
            return
        self._renewed_at = None
        url = f"{self.config.url}/{self.config.name}"
        status, lease = await self._request("GET", url)
        if status != 200 or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
            return
        spec = {**lease["spec"], "holderIdentity": "", "renewTime": _micro_time(self._wall())}
        status, _ = await self._request("PUT", url, {**lease, "spec": spec})
        if status == 200:
            log.info("release lease given up", lease=self.config.name)
