"""Hooks into stream events, so metrics and audit logs plug in without xds importing them."""

from __future__ import annotations

from turnout.xds._status import StreamInfo

__all__ = ["XdsCallbacks"]


class XdsCallbacks:
    """Stream event hooks; every method is a no-op here, subclass and override the ones you need.

    They run on the event loop inside the stream's handling: keep them quick and
    non-blocking. An exception raised by a hook is logged and otherwise ignored.
    """

    def on_stream_open(self, stream: StreamInfo) -> None:
        """A stream sent its first request (so its node is known)."""

    def on_stream_close(self, stream: StreamInfo) -> None:
        """A stream that was opened ended, for whatever reason."""

    def on_response(
        self, stream: StreamInfo, type_url: str, version: str, resource_count: int
    ) -> None:
        """A response is being written to the stream."""

    def on_ack(self, stream: StreamInfo, type_url: str, version: str) -> None:
        """The proxy accepted the response it was last sent for this type."""

    def on_nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        """The proxy rejected the response it was last sent for this type."""

    def on_synced(self, stream: StreamInfo, version: str) -> None:
        """The proxy has now ACKed every type it requested of policy ``version``
        (the cache's version): ``ProxyStatus.synced_version`` just became ``version``."""
