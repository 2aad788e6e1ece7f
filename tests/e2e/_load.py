"""Load through Envoy for the failover and chaos tests: `hey` (Debian's package) at a
steady rate, or a few client threads when the exact failure moments matter."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from system_tools import require_tool  # tests/ (rootdir)

from ._harness import served_by, wait_until

__all__ = ["Hey", "HeyResult", "Traffic", "require_hey"]


def require_hey() -> str:
    """The `hey` binary; the test fails naming Debian's package when it is missing."""
    return require_tool("hey")


@dataclass
class HeyResult:
    """What hey counted: answers by status code and failed requests by error."""

    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    output: str = ""

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def failed(self) -> int:
        return self.total - self.ok

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.total} requests in {self.seconds:.1f}s ({self.rate:.0f}/s), "
            f"{self.ok} 2xx, {self.failed} failed"
            + (f": {dict(self.statuses)} {dict(self.errors)}" if self.failed else "")
        )


class Hey:
    """`hey` sending ``rate`` requests/s for ``host`` to 127.0.0.1:port until stopped
    (or ``limit`` seconds, whichever is first)."""

    def __init__(
        self, port: int, host: str, *, rate: int = 1000, workers: int = 20, limit: float = 120
    ) -> None:
        self.command = [
            require_hey(),
            *("-z", f"{int(limit)}s", "-c", str(workers), "-q", str(max(1, rate // workers))),
            *("-t", "5", "-host", host, "-disable-compression"),
            f"http://127.0.0.1:{port}/",
        ]
        self._process: subprocess.Popen[str] | None = None
        self._started = 0.0

    def start(self) -> Hey:
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._started = time.monotonic()
        return self

    def stop(self) -> HeyResult:
        """Interrupt hey (it then prints its report) and parse the report."""
        process, self._process = self._process, None
        assert process is not None, "hey was not started"
        seconds = time.monotonic() - self._started
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return parse_hey(output, seconds)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.MULTILINE)


def parse_hey(output: str, seconds: float) -> HeyResult:
    """hey's summary report -> counts (status codes; errors by message)."""
    result = HeyResult(seconds=seconds, output=output)
    for code, count in _STATUS.findall(output):
        result.statuses[int(code)] += int(count)
    _, _, errors = output.partition("Error distribution:")
    for count, message in _ERROR.findall(errors):
        result.errors[message.strip()] += int(count)
    if "Summary:" not in output:
        raise AssertionError(f"hey printed no report:\n{output[-2000:]}")
    return result


class Traffic:
    """``threads`` clients sending requests for ``host`` back to back until stopped;
    answers are counted by the version that served them (failures by their kind)."""

    def __init__(self, port: int, host: str, threads: int = 4) -> None:
        self.port = port
        self.host = host
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"traffic-{i}")
            for i in range(threads)
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=5.0, trust_env=False
        ) as client:
            while not self._stop.is_set():
                try:
                    answer = served_by(client.get("/", headers={"Host": self.host}))
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                    with self._lock:
                        self.errors.append(f"{time.monotonic():.3f} {exc!r}")
                with self._lock:
                    self.counts[answer] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def wait_flowing(self, answers: int = 200, timeout: float = 10.0) -> None:
        """Wait until ``answers`` more answers than now are counted: traffic flows."""
        start = self.total
        wait_until(
            lambda: self.total >= start + answers, timeout, what=f"{answers} answers through Envoy"
        )

    def failures(self, ok: frozenset[str]) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self.counts.items() if k not in ok}

    def stop(self) -> Counter[str]:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        with self._lock:
            return Counter(self.counts)
