"""Helpers for testing turnout, for its own tests and for users'.

- In process, without Envoy (:mod:`turnout.testing._xds`, re-exported here): an xDS
  server on ``127.0.0.1:0`` and simulated Envoys (SotW and Delta) over real gRPC.
- Real processes: :mod:`turnout.testing.envoy` (a real Envoy and its bootstrap),
  :mod:`turnout.testing.control` (a `turnout serve` process), :mod:`turnout.testing.backend`
  (HTTP backends that name their version), :mod:`turnout.testing.net` (free ports,
  HTTP GETs).
- Waiting for a condition instead of sleeping (:mod:`turnout.testing._wait`):
  :func:`wait_until` from plain code, :func:`eventually` from coroutines; both poll a
  probe, return what it found, and raise TimeoutError naming what never happened.
"""

from __future__ import annotations

from turnout.testing._wait import eventually, wait_until
from turnout.testing._xds import (
    AdsClient,
    DeltaClient,
    RunningXds,
    assignment,
    decode,
    decode_delta,
    eds_cluster,
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
    "wait_until",
    "weighted_routes",
]
