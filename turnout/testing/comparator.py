"""`turnout compare` as a subprocess, for the demo, the end-to-end tests and the bench.

with ComparatorProcess(xds_port, port=free_port()) as comparator:
    comparator.wait_ready()      # connected to turnout and sent its targets
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from turnout.testing.net import free_port, http_get, wait_until

__all__ = ["ComparatorProcess"]


class ComparatorProcess:
    """`python -m turnout compare --xds-address 127.0.0.1:XDS --listen 127.0.0.1:PORT`."""

    def __init__(
        self,
        xds_port: int,
        *,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.xds_port = xds_port
        self.port = port if port is not None else free_port()
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="turnout-compare-")) / "compare.log"
        self.log_path = Path(log_path)
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        """What `turnout serve --comparator` names."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "turnout",
            "compare",
            "--xds-address",
            f"127.0.0.1:{self.xds_port}",
            "--listen",
            self.address,
            "--name",
            f"comparator-{self.port}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 20.0) -> ComparatorProcess:
        """Start it and wait until its /healthz answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def healthy() -> bool:
            self._check_alive()
            status, _ = http_get(f"http://{self.address}/healthz", timeout=1.0)
            return status == 200

        try:
            wait_until(healthy, timeout, what="the comparator's /healthz", retry_on=(OSError,))
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until it is connected to turnout and has its targets (/readyz)."""

        def ready() -> bool:
            self._check_alive()
            status, _ = http_get(f"http://{self.address}/readyz", timeout=1.0)
            return status == 200

        wait_until(
            ready,
            timeout,
            what="the comparator connected to turnout (/readyz)",
            retry_on=(OSError,),
        )

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(
                f"turnout compare exited with {self._process.returncode}: {self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ComparatorProcess:
        return self.start() if self._process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
