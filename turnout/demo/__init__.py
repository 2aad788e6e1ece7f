"""Demo and end-to-end harness: real Envoy processes, version-naming HTTP backends,
and the live `python -m turnout.demo`.

Nothing here is imported by the control plane itself; tests and the demo use it to
drive real processes.
"""

from __future__ import annotations

__all__: list[str] = []
