"""One XdsServer takes one callbacks object; the composition root has several."""

from __future__ import annotations

from collections.abc import Callable

from turnout.xds import StreamInfo, XdsCallbacks

__all__ = ["FanOut"]

_HOOKS = (
    "on_stream_open",
    "on_stream_close",
    "on_response",
    "on_ack",
    "on_nack",
    "on_synced",
)


class FanOut(XdsCallbacks):
    """Calls each of ``callbacks`` in order; one that raises does not stop the others
    (the server logs what reaches it, so errors are collected and the first re-raised)."""

    def __init__(self, *callbacks: XdsCallbacks) -> None:
        self._callbacks = callbacks
        # Per hook, the bound methods that do something (a hook left as XdsCallbacks'
        # no-op is skipped): the server calls hooks per response and per ACK.
        self._hooks: dict[str, tuple[Callable[..., None], ...]] = {
            hook: tuple(
                getattr(c, hook)
                for c in callbacks
                if getattr(type(c), hook, None) is not getattr(XdsCallbacks, hook)
            )
            for hook in _HOOKS
        }

    def _each(self, hook: str, *args: object) -> None:
        error: Exception | None = None
        for method in self._hooks[hook]:
            try:
                method(*args)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def on_stream_open(self, stream: StreamInfo) -> None:
        self._each("on_stream_open", stream)

    def on_stream_close(self, stream: StreamInfo) -> None:
        self._each("on_stream_close", stream)

    def on_response(
        self, stream: StreamInfo, type_url: str, version: str, resource_count: int
    ) -> None:
        self._each("on_response", stream, type_url, version, resource_count)

    def on_ack(self, stream: StreamInfo, type_url: str, version: str) -> None:
        self._each("on_ack", stream, type_url, version)

    def on_nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        self._each("on_nack", stream, type_url, version, message)

    def on_synced(self, stream: StreamInfo, version: str) -> None:
        self._each("on_synced", stream, version)
