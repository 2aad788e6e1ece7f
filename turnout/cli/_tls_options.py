"""The TLS, identity and limit options of `turnout serve`, and the client TLS options of
`turnout status` and `turnout wait`: click's side of turnout.server's TLS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc
import structlog

from turnout.server import (
    CertificateError,
    ServerCertificates,
    channel_credentials,
    load_identity_map,
)
from turnout.xds import IdentityMapError, Limits, StreamGuard

__all__ = [
    "client_credentials_from_options",
    "client_tls_options",
    "security_from_options",
    "security_options",
]

log = structlog.get_logger("turnout.tls")

F = TypeVar("F", bound=Callable[..., Any])

# -- `turnout serve` options -----------------------------------------------------------

_FLAGS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--tls-cert",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Serve the xDS port over TLS with this certificate (PEM); reloaded on change.",
    ),
    click.option(
        "--tls-key",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The private key of --tls-cert (PEM).",
    ),
    click.option(
        "--tls-client-ca",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Mutual TLS: clients need a certificate this CA signed (needs --identity-map).",
    ),
    click.option(
        "--identity-map",
        type=click.Path(dir_okay=False, path_type=Path),
        help="YAML: which certificate identities (SPIFFE ID, DNS SAN) may claim which "
        "node.cluster, and who may call the ReleaseService.",
    ),
    click.option(
        "--max-request-bytes",
        type=click.IntRange(min=1),
        default=Limits().max_request_bytes,
        show_default=True,
        help="Largest DiscoveryRequest accepted; a larger one ends its stream.",
    ),
    click.option(
        "--max-streams-per-peer",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Open xDS streams allowed from one IP address (0: no limit).",
    ),
    click.option(
        "--max-streams-per-node",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Open xDS streams allowed per node.id (0: no limit).",
    ),
    click.option(
        "--max-requests-per-second",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="Requests read per second on one xDS stream past a burst (0: no limit).",
    ),
)


def security_options(command: F) -> F:
    """Add the TLS, identity and limit options to a click command."""
    for flag in reversed(_FLAGS):
        command = flag(command)
    return command


def security_from_options(
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    identity_map: Path | None,
    max_request_bytes: int,
    max_streams_per_peer: int,
    max_streams_per_node: int,
    max_requests_per_second: float,
) -> tuple[ServerCertificates | None, StreamGuard]:
    """The certificates and the stream guard the options ask for (click errors when
    they do not make sense together or the files are unusable)."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_client_ca is not None and tls_cert is None:
        raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
    if tls_client_ca is not None and identity_map is None:
        raise click.UsageError(
            "--tls-client-ca needs --identity-map: which certificate identities may "
            "claim which node.cluster"
        )
    if identity_map is not None and tls_client_ca is None:
        raise click.UsageError(
            "--identity-map needs --tls-client-ca: identities come from client certificates"
        )
    tls = None
    if tls_cert is not None and tls_key is not None:
        try:
            tls = ServerCertificates(tls_cert, tls_key, tls_client_ca)
        except CertificateError as exc:
            raise click.BadParameter(str(exc), param_hint="--tls-cert/--tls-key") from exc
    identities = None
    if identity_map is not None:
        try:
            identities = load_identity_map(identity_map)
        except IdentityMapError as exc:
            raise click.BadParameter(str(exc), param_hint="--identity-map") from exc
    limits = Limits(
        max_request_bytes=max_request_bytes,
        max_streams_per_peer=max_streams_per_peer,
        max_streams_per_node=max_streams_per_node,
        max_requests_per_second=max_requests_per_second,
    )
    if tls is None:
        log.warning("xds.insecure", detail="no TLS: any client may claim any node.cluster")
    return tls, StreamGuard(identities, limits)


# -- client options (`turnout status`, `turnout wait`) ---------------------------------

_CLIENT_FLAGS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--tls-ca",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="TURNOUT_TLS_CA",
        help="Reach turnout over TLS, verifying it with this CA (PEM) [env TURNOUT_TLS_CA].",
    ),
    click.option(
        "--tls-cert",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="TURNOUT_TLS_CERT",
        help="Client certificate for mutual TLS (PEM) [env TURNOUT_TLS_CERT].",
    ),
    click.option(
        "--tls-key",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="TURNOUT_TLS_KEY",
        help="The private key of --tls-cert [env TURNOUT_TLS_KEY].",
    ),
)


def client_tls_options(command: F) -> F:
    """Add --tls-ca/--tls-cert/--tls-key to a command that calls turnout's gRPC port."""
    for flag in reversed(_CLIENT_FLAGS):
        command = flag(command)
    return command


def client_credentials_from_options(
    *, tls_ca: Path | None, tls_cert: Path | None, tls_key: Path | None
) -> grpc.ChannelCredentials | None:
    """Channel credentials for the options (None: plaintext, as without TLS)."""
    if tls_ca is None and tls_cert is None and tls_key is None:
        return None
    try:
        return channel_credentials(tls_ca, tls_cert, tls_key)
    except CertificateError as exc:
        raise click.BadParameter(str(exc), param_hint="--tls-cert/--tls-key") from exc
