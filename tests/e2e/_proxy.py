"""A TCP proxy the test controls, standing in for a Kubernetes Service in front of
turnout replicas: each new connection goes to the first upstream (in the order
given) that accepts it, the upstreams can be switched, and every connection in
flight can be dropped at once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from types import TracebackType

__all__ = ["TcpProxy"]


class TcpProxy:
    """Listens on 127.0.0.1 (a free port); runs its own event loop in a thread."""

    def __init__(self, upstreams: Sequence[int]) -> None:
        self._upstreams = list(upstreams)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.port = 0
        self.accepted = 0
        """Connections accepted from clients so far."""
        self.routed: dict[int, int] = {}
        """Connections forwarded, by upstream port."""

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def switch(self, upstreams: Sequence[int], *, drop: bool = True) -> int:
        """Send new connections to ``upstreams`` (first that accepts); with ``drop``,
        abort every connection in flight (both sides), as a failed replica would.
        Returns how many connections were dropped."""
        self._upstreams = list(upstreams)
        return self.drop() if drop else 0

    def drop(self) -> int:
        """Abort every connection in flight; returns how many there were."""
        return self._call(self._drop())

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    # -- on the proxy's loop -------------------------------------------------------

    def _call(self, coroutine: object) -> int:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        result: int = future.result(10)
        return result

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _close(self) -> int:
        if self._server is not None:
            self._server.close()
        return await self._drop()

    async def _drop(self) -> int:
        pairs = list(self._pairs)
        for down, up in pairs:
            down.transport.abort()
            up.transport.abort()
        self._pairs.clear()
        return len(pairs)

    async def _handle(self, down_reader: asyncio.StreamReader, down: asyncio.StreamWriter) -> None:
        self.accepted += 1
        for port in list(self._upstreams):
            try:
                up_reader, up = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue  # like a Service whose endpoint is gone: try the next one
            self.routed[port] = self.routed.get(port, 0) + 1
            pair = (down, up)
            self._pairs.add(pair)
            try:
                await asyncio.gather(_pipe(down_reader, up, down), _pipe(up_reader, down, up))
            finally:
                self._pairs.discard(pair)
            return
        down.transport.abort()  # no upstream accepts: refuse


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter
) -> None:
    """Copy until either side ends, then close both (gRPC needs no half-close)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        for side in (writer, other):
            with contextlib.suppress(Exception):
                side.close()
