"""`turnout compare` (the comparator process) and `turnout serve --comparator`."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from turnout.cli._tls_options import client_credentials_from_options, client_tls_options
from turnout.policy import Endpoint

__all__ = ["COMMANDS", "comparator_option", "parse_endpoint"]

F = TypeVar("F", bound=Callable[..., Any])


def parse_endpoint(text: str) -> Endpoint:
    """`host:port` (`[::1]:8080` for IPv6) -> Endpoint; ValueError when it is not."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return Endpoint(host, int(port))


def _endpoints(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    try:
        return tuple(parse_endpoint(v) for v in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def comparator_option(command: F) -> F:
    """`--comparator HOST:PORT` (repeatable) on `turnout serve`."""
    return click.option(
        "--comparator",
        "comparators",
        multiple=True,
        metavar="HOST:PORT",
        callback=_endpoints,
        help="Where comparators (turnout compare) listen: mirrors with compare: copy to "
        "them (repeatable; a name, e.g. a Kubernetes Service, is resolved by Envoy).",
    )(command)


_SIZE = re.compile(r"(\d+)\s*(k|kb|kib|m|mb|mib)?", re.IGNORECASE)
_UNITS = {"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: expected bytes, e.g. 1048576, 256KiB or 1MiB")
    unit = (match[2] or "").lower()
    return int(match[1]) * _UNITS.get(unit, 1)


@click.command("compare")
@click.option(
    "--xds-address",
    default="127.0.0.1:18000",
    show_default=True,
    help="turnout's gRPC (xDS) port: the comparator gets its targets there and reports there.",
)
@click.option(
    "--listen",
    default="0.0.0.0:8080",
    show_default=True,
    help="Where Envoy's copies arrive (what turnout serve --comparator names).",
)
@click.option("--name", default="", help="This comparator's name in turnout's status.")
@click.option(
    "--max-body",
    default="1MiB",
    show_default=True,
    help="Largest request or answer body compared (bigger ones are skipped).",
)
@click.option(
    "--max-in-flight",
    type=int,
    default=256,
    show_default=True,
    help="Comparisons at once; copies beyond are skipped (counted as busy).",
)
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds each call to light or dark may take.",
)
@click.option("--examples", type=int, default=3, show_default=True, help="Examples kept per field.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
@click.option("--log-level", default="info", show_default=True)
@client_tls_options
def compare_command(
    xds_address: str,
    listen: str,
    name: str,
    max_body: str,
    max_in_flight: int,
    timeout: float,
    examples: int,
    log_format: str,
    log_level: str,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Compare the dark version's answers with light's, on Envoy's mirrored copies."""
    from turnout.compare import Comparator, ComparatorOptions
    from turnout.server import configure_logging

    configure_logging("json" if log_format == "json" else "console", log_level)
    try:
        parse_endpoint(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    options = ComparatorOptions(
        xds_address=xds_address,
        listen=listen,
        name=name or f"{socket.gethostname()}/{listen}",
        max_body=_size(max_body),
        max_in_flight=max_in_flight,
        timeout=timeout,
        examples=examples,
        credentials=client_credentials_from_options(
            tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key
        ),
    )

    async def run() -> None:
        comparator = Comparator(options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, comparator.stop)
        await comparator.run()

    asyncio.run(run())


COMMANDS = [compare_command]
