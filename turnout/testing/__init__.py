"""Helpers for testing turnout, for its own tests and for users'.

- In process, without Envoy (:mod:`turnout.testing._xds`, re-exported here): an xDS
  server on ``127.0.0.1:0`` and simulated Envoys (SotW and Delta) over real gRPC.
- Real processes: :mod:`turnout.testing.envoy` (a real Envoy and its bootstrap),
  :mod:`turnout.testing.control` (a `turnout serve` process), :mod:`turnout.testing.backend`
  (HTTP backends that name their version), :mod:`turnout.testing.net` (free ports,
  HTTP GETs, waiting for a condition).
"""

from __future__ import annotations

from turnout.testing._xds import (
    AdsClient,
    DeltaClient,
    RunningXds,
    assignment,
    decode,
    decode_delta,
    eds_cluster,
    eventually,
    make_snapshot,
    rds_listener,
    resource_names,
    running_xds,
    weighted_routes,
)

__all__ = [
    "AdsClient",
    "DeltaClient",
    "RunningXds",
    "assignment",
    "decode",
    "decode_delta",
    "eds_cluster",
    "eventually",
    "make_snapshot",
    "rds_listener",
    "resource_names",
    "running_xds",
    "weighted_routes",
]
