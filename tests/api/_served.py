"""The running server the api tests talk to."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from turnout.api import PolicyView, RejectionView, ReleaseService
from turnout.cache import Snapshot, SnapshotCache
from turnout.testing import AdsClient
from turnout.xds import XdsServer


@dataclass
class Served:
    """The server, its cache, the policy view the service reads, and its clients."""

    server: XdsServer
    cache: SnapshotCache
    service: ReleaseService
    port: int
    view: PolicyView = field(default_factory=lambda: PolicyView(policy_version=None))
    clients: list[AdsClient] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def proxy(self, node_id: str = "proxy-1", node_cluster: str = "edge") -> AdsClient:
        client = await AdsClient.connect(self.target, node_id=node_id, node_cluster=node_cluster)
        self.clients.append(client)
        return client

    def publish(self, snapshot: Snapshot, view: PolicyView | None = None) -> None:
        """Serve ``snapshot`` as the policy version and tell the service, as a reload does."""
        self.cache.publish(snapshot.group_version, lambda _group: snapshot)
        base = view if view is not None else self.view
        self.view = replace(
            base,
            policy_version=snapshot.group_version,
            accepted_at=datetime.now(UTC),
            reloads_accepted=self.view.reloads_accepted + 1,
        )
        self.service.policy_changed()

    def reject(self, *errors: str) -> None:
        """Record a rejected reload, as the controller does."""
        rejection = RejectionView(at=datetime.now(UTC), errors=errors)
        self.view = replace(
            self.view,
            rejected=rejection,
            last_rejected=rejection,
            reloads_rejected=self.view.reloads_rejected + 1,
        )
        self.service.policy_changed()
