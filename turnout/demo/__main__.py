"""`python -m turnout.demo`: the live demo (see turnout.demo._live)."""

from __future__ import annotations

from turnout.demo._live import main

if __name__ == "__main__":
    raise SystemExit(main())
