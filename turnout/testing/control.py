"""`turnout serve` as a subprocess, for the demo and the end-to-end tests.

The harness drives the real command line (`python -m turnout serve ...`) so the tests
exercise what a user runs, and can stop it with SIGTERM or SIGKILL and start it again
on the same ports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from turnout.testing.net import free_port, http_get, wait_until

__all__ = ["TurnoutError", "TurnoutProcess", "proxies_settled"]


class TurnoutError(RuntimeError):
    """turnout failed to start or exited."""


class TurnoutProcess:
    """`python -m turnout serve --policies DIR` on 127.0.0.1 ports (free ones unless
    given). start() waits for the admin's /healthz; the log goes to `log_path`."""

    def __init__(
        self,
        policies: str | os.PathLike[str],
        *,
        xds_port: int | None = None,
        admin_port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.policies = Path(policies)
        self.xds_port = xds_port if xds_port is not None else free_port()
        self.admin_port = admin_port if admin_port is not None else free_port()
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="turnout-")) / "turnout.log"
        self.log_path = Path(log_path)
        self.extra_args = tuple(extra_args)
        self.env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "turnout",
            "serve",
            "--policies",
            str(self.policies),
            "--xds-address",
            f"127.0.0.1:{self.xds_port}",
            "--admin-address",
            f"127.0.0.1:{self.admin_port}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 20.0) -> TurnoutProcess:
        """Start turnout (again, on the same ports) and wait until /healthz answers."""
        if self.running:
            raise TurnoutError("already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        env = {**os.environ, **self.env} if self.env is not None else None
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C goes to whoever started us
        )

        def healthy() -> bool:
            self._check_alive()
            status, _ = http_get(self.admin_url("/healthz"), timeout=1.0)
            return status == 200

        try:
            # a refused connection is "not yet"; turnout having exited (TurnoutError) is
            # an error at once, with its log
            wait_until(healthy, timeout, what="turnout's /healthz", retry_on=(OSError,))
        except BaseException:
            self.kill()
            raise
        return self

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise TurnoutError(
                f"turnout exited with {self._process.returncode}; log {self.log_path}:\n"
                f"{self.log_tail()}"
            )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait (SIGKILL after `timeout`); returns the exit code."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL and wait; returns the exit code."""
        return self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: signal.Signals, timeout: float) -> int | None:
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10.0)
            code = process.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> TurnoutProcess:
        return self.start() if not self.running else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def status(self) -> dict[str, Any]:
        """The parsed /status: GetStatus's answer in proto3's JSON mapping (field names
        as in protos/turnout/v1/release.proto, every field present; uint64 counts and
        stream ids are strings, times RFC 3339; an unset message, such as `rejected`,
        is absent)."""
        code, body = http_get(self.admin_url("/status"), timeout=3.0)
        if code != 200:
            raise TurnoutError(f"/status answered {code}: {body[:500]}")
        result: dict[str, Any] = json.loads(body)
        return result

    def wait_settled(
        self, node_ids: Sequence[str], timeout: float = 10.0, version: str | None = None
    ) -> dict[str, Any]:
        """Wait until /status serves a version (`version` if given) and every named
        Envoy is connected and has ACKed everything sent to it; return that status."""

        def settled() -> dict[str, Any] | None:
            self._check_alive()
            status = self.status()
            if not status["served_version"]:
                return None
            if version is not None and status["served_version"] != version:
                return None
            return status if proxies_settled(status, node_ids) else None

        return wait_until(settled, timeout, what=f"proxies {list(node_ids)} to ACK")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def proxies_settled(status: Mapping[str, Any], node_ids: Sequence[str]) -> bool:
    """Whether each named Envoy has a stream in `status["proxies"]` on which every
    resource type was sent and ACKed at the same version, and none is behind."""
    proxies = status.get("proxies") or []
    for node_id in node_ids:
        streams = [p for p in proxies if p.get("node_id") == node_id]
        if not streams or not any(_stream_settled(p) for p in streams):
            return False
    return True


def _stream_settled(proxy: Mapping[str, Any]) -> bool:
    types = proxy.get("types") or []
    if not types:
        return False
    for state in types:
        sent = state.get("sent_version")
        if not sent or state.get("acked_version") != sent:
            return False
        if state.get("behind_since") is not None:
            return False
    return True
