"""The gateway-size axis: the fleet benchmark over services per gateway x proxies x
protocol, in one table.

Each cell is one ``bench.fleet`` run (its own `turnout serve` process and simulated
Envoys, every one of them SotW or every one Delta) on a gateway of S services x 3
versions with exact host names (so the gateway routes by scoped RDS, a route
configuration per service): connect, then ``--changes`` one-service traffic changes by
file write. Per cell: p50/p99/max from the write to each proxy's ACK, bytes each proxy
received per change (counted at the clients), server memory per idle stream, connect
time, and (with ``--reconnect``) the SIGKILL-and-restart storm.

The simulated Envoys share ``--channels`` TCP connections per client process, which
spreads grpc core's per-connection memory over ~30 streams; a real Envoy opens its own.
So each cell also connects a second fleet with one connection per proxy (connect only,
its own `turnout serve`) and prints that server's memory per idle stream as ``KB/conn``
(``--no-own-connections`` skips it).

    python -m bench scale                        # make bench: {1, 500} x 1,000, both
    python -m bench scale --full                 # {1, 500, 5,000} x {1,000, 10,000}
    python -m bench scale --sizes 500 --proxies 10000 --reconnect

Each cell's connect (and reconnect) is given time in proportion to streams x services
(``fleet.connect_budget``), so the 5,000-service cells print figures instead of
timing out. The reconnect storm is in sync when turnout's /metrics counts every proxy
connected and none behind: a proxy reconnecting with what the server has is sent
nothing, so only the server can tell.

The 10,000-proxy cells are heavy for a 2-core machine that also runs the simulated
fleet (minutes each); the default is the subset `make bench` can afford.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench import fleet

PROTOCOLS = {"sotw": 0, "delta": 1}
"""Protocol -> the fleet's ``delta_every`` (0: every stream SotW; 1: every one Delta)."""


@dataclass(frozen=True)
class Cell:
    services: int
    streams: int
    protocol: str
    figures: dict[str, float]


def run(
    services: Sequence[int] = (1, 500),
    streams: Sequence[int] = (1000,),
    protocols: Sequence[str] = ("sotw", "delta"),
    *,
    changes: int = 3,
    reconnect: bool = False,
    clients: int = 2,
    channels: int = 16,
    own_connections: bool = True,
) -> list[Cell]:
    """Run every cell, then print the table; ``own_connections`` adds each cell's
    memory per idle stream with one TCP connection per proxy (``kb_per_connection``)."""
    scenarios = ("connect", "convergence", *(("reconnect",) if reconnect else ()))
    cells: list[Cell] = []
    for count in streams:
        for size in services:
            for protocol in protocols:
                result = fleet.run(
                    count,
                    clients=clients,
                    channels=channels,
                    services=size,
                    changes=changes,
                    delta_every=PROTOCOLS[protocol],
                    scenarios=scenarios,
                )
                figures = dict(result.figures)
                if own_connections:
                    alone = fleet.run(
                        count,
                        clients=clients,
                        channels=-(-count // clients),
                        services=size,
                        delta_every=PROTOCOLS[protocol],
                        scenarios=("connect",),
                    )
                    if "kb_per_stream" in alone.figures:
                        figures["kb_per_connection"] = alone.figures["kb_per_stream"]
                cells.append(Cell(size, count, protocol, figures))
    print_table(cells)
    return cells


def print_table(cells: Sequence[Cell]) -> None:
    """The cells as one table (missing figures as '-')."""
    print("\n== scale: one-service traffic change, file write -> every proxy's ACK ==")
    header = (
        f"{'services':>8} {'proxies':>8} {'proto':>5} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'B/proxy/change':>14} {'KB/stream':>9} {'KB/conn':>7} {'connect s':>9} "
        f"{'reconnect s':>11}"
    )
    print(header)
    for cell in cells:
        f = cell.figures

        def show(key: str, width: int, digits: int = 0, f: dict[str, float] = f) -> str:
            value = f.get(key)
            return f"{'-':>{width}}" if value is None else f"{value:>{width},.{digits}f}"

        print(
            f"{cell.services:>8,} {cell.streams:>8,} {cell.protocol:>5} {show('p50_ms', 7)} "
            f"{show('p99_ms', 7)} {show('max_ms', 7)} {show('bytes_per_change', 14)} "
            f"{show('kb_per_stream', 9, 1)} {show('kb_per_connection', 7, 1)} "
            f"{show('connect_s', 9, 1)} "
            f"{show('reconnect_s', 11, 1)}",
            flush=True,
        )
