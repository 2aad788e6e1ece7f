"""`turnout status` and `turnout wait`: clients of turnout's ReleaseService.

Both talk gRPC to the address turnout serves xDS on (`--address`). `status` can also
read the admin endpoint's `/status` (`--admin-address`), the same answer in proto3's
JSON mapping, where only the admin port is reachable. `wait` needs the
gRPC stream (WatchStatus): it never polls.

Exit codes: 0 done; 1 `wait` timed out with proxies behind, or `--policies` is
invalid; 3 no turnout answered at the address.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import grpc
from google.protobuf.json_format import ParseDict, ParseError

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.api import to_json
from turnout.cache import short_name
from turnout.cli._dark_status import render_dark, render_dark_detail
from turnout.cli._release_status import render_releases
from turnout.cli._render import seconds, table
from turnout.cli._rollout_status import render_rollout
from turnout.cli._tls_options import client_credentials_from_options, client_tls_options
from turnout.policy import parse_duration, shares_text

__all__ = ["COMMANDS", "EXIT_BEHIND", "EXIT_UNREACHABLE"]

EXIT_BEHIND = 1
EXIT_UNREACHABLE = 3

Kind = pb.StatusEvent.Kind


def _duration_option(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Click callback: a --timeout given as a duration."""
    try:
        return parse_duration(value, bare_seconds=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _unreachable(where: str, detail: str) -> NoReturn:
    click.echo(f"error: no turnout answers at {where}: {detail}", err=True)
    sys.exit(EXIT_UNREACHABLE)


def _rpc_detail(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code.name if code is not None else 'error'}: {details}"


def _stub(channel: grpc.Channel) -> Any:
    return release_pb2_grpc.ReleaseServiceStub(channel)


def _channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, credentials)


def fetch_status(
    address: str, timeout: float, credentials: grpc.ChannelCredentials | None = None
) -> pb.Status:
    """GetStatus from turnout's gRPC address (over TLS with ``credentials``); exits 3
    when nothing answers."""
    with _channel(address, credentials) as channel:
        try:
            status: pb.Status = _stub(channel).GetStatus(pb.GetStatusRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            _unreachable(address, _rpc_detail(exc))
    return status


def fetch_admin_status(admin_address: str, timeout: float) -> pb.Status:
    """The same status from the admin endpoint's /status (GetStatus's JSON mapping)."""
    url = f"http://{admin_address}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except (OSError, urllib.error.URLError) as exc:
        _unreachable(admin_address, str(getattr(exc, "reason", exc)))
    try:
        return ParseDict(json.loads(body), pb.Status(), ignore_unknown_fields=True)
    except (ValueError, ParseError) as exc:
        _unreachable(admin_address, f"{url} did not answer a turnout status: {exc}")


# -- rendering -------------------------------------------------------------------------


def _short(version: str) -> str:
    return version[:10] if version else "-"


def _ago(at: Any, now: datetime) -> str:
    return seconds(max(0.0, (now - at.ToDatetime(tzinfo=UTC)).total_seconds()))


def _when(at: Any) -> str:
    return str(at.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _release(service: pb.ServiceStatus, now: datetime) -> str:
    if not service.HasField("incremental"):
        return "-"
    inc = service.incremental
    if not inc.HasField("state"):
        return f"to {inc.to}: not started"
    state = inc.state
    step = ""
    if state.step < len(inc.steps):
        step = f" step {state.step + 1}/{len(inc.steps)} ({inc.steps[state.step]}%)"
    text = f"to {inc.to}: {state.phase}{step}"
    if state.HasField("since"):
        text += f" for {_ago(state.since, now)}"
    if state.reason:
        text += f" ({state.reason})"
    return text


def _nack_text(nack: pb.Nack) -> str:
    message = " ".join(nack.message.split())
    if len(message) > 80:
        message = message[:77] + "..."
    return f"{short_name(nack.type_url)} {_when(nack.at)}: {message}"


def render_status(status: pb.Status, now: datetime | None = None) -> str:
    """Tables for people: the served version, services and proxies."""
    now = now or datetime.now(UTC)
    lines: list[str] = []
    if status.served_version:
        accepted = (
            f", accepted {_when(status.accepted_at)} ({_ago(status.accepted_at, now)} ago)"
            if status.HasField("accepted_at")
            else ""
        )
        lines.append(f"serving policy version {status.served_version}{accepted}")
    else:
        lines.append("serving nothing yet: no valid policy set has been loaded")
    if status.policies:
        lines.append(f"policies: {status.policies}")
    lines.append(f"reloads: {status.reloads_accepted} accepted, {status.reloads_rejected} rejected")
    if status.HasField("rejected"):
        lines.append(
            f"REJECTED at {_when(status.rejected.at)}: the files on disk are not served "
            f"({len(status.rejected.errors)} error(s)):"
        )
        lines += [f"  {e}" for e in status.rejected.errors]
    elif status.HasField("last_rejected"):
        lines.append(
            f"last rejected at {_when(status.last_rejected.at)} "
            f"({len(status.last_rejected.errors)} error(s)), since fixed:"
        )
        lines += [f"  {e}" for e in status.last_rejected.errors]

    lines.append("")
    rows: list[list[str]] = []
    for service in status.services:
        for index, segment in enumerate(service.segments):
            first = index == 0
            rows.append(
                [
                    service.name if first else "",
                    service.stable if first else "",
                    f"rule {segment.name}" if segment.is_rule else segment.name,
                    shares_text(
                        [(s.version, s.percent) for s in segment.shares],
                        instances=segment.instances,
                    ),
                    f"{segment.mirror.to} {segment.mirror.percent}%"
                    if segment.HasField("mirror")
                    else "-",
                    _release(service, now) if first else "",
                ]
            )
    if rows:
        lines += table(["SERVICE", "STABLE", "SEGMENT", "SHARES", "MIRROR", "RELEASE"], rows)
    else:
        lines.append("no services")
    releases = render_releases(status, now)  # turnout/cli/_release_status.py
    if releases:
        lines += ["", *releases]
    dark = render_dark(status, now)  # turnout/cli/_dark_status.py
    if dark:
        lines += ["", *dark]
    rollout = render_rollout(status, now)  # turnout/cli/_rollout_status.py
    if rollout:
        lines += ["", *rollout]

    lines.append("")
    rows = []
    for proxy in status.proxies:
        acked = {t.type: t.acked_version for t in proxy.types}
        behind = "-"
        if proxy.behind:
            behind = _ago(proxy.behind_since, now) if proxy.HasField("behind_since") else "yes"
        rows.append(
            [
                proxy.node_id or "(no id)",
                proxy.node_cluster or "-",
                proxy.stream_kind,
                *(_short(acked.get(t, "")) for t in ("CDS", "EDS", "LDS", "RDS")),
                _short(proxy.synced_version),
                behind,
                _nack_text(proxy.last_nack) if proxy.HasField("last_nack") else "-",
            ]
        )
    if rows:
        lines += table(
            [
                "PROXY",
                "CLUSTER",
                "STREAM",
                "CDS",
                "EDS",
                "LDS",
                "RDS",
                "SYNCED",
                "BEHIND",
                "LAST NACK",
            ],
            rows,
        )
        behind_count = sum(1 for p in status.proxies if p.behind)
        lines.append(
            f"{len(status.proxies)} proxies, {behind_count} behind "
            "(CDS..RDS: content hashes ACKed per type; SYNCED: the policy version)"
        )
    else:
        lines.append("no proxies connected")
    return "\n".join(lines)


_PROXY_HEADERS = (
    *("PROXY", "CLUSTER", "STREAM", "CDS", "EDS", "LDS", "RDS"),
    *("SYNCED", "BEHIND", "LAST NACK"),
)

# -- status ----------------------------------------------------------------------------

_ADDRESS_HELP = "turnout's gRPC address (where it serves xDS and the ReleaseService)."


@click.command("status")
@click.option("--address", default="127.0.0.1:18000", show_default=True, help=_ADDRESS_HELP)
@click.option(
    "--admin-address",
    default=None,
    help="Read the status from turnout's admin HTTP endpoint (/status) instead.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--timeout", default="5s", show_default=True, callback=_duration_option)
@click.option(
    "--dark",
    "dark_service",
    default=None,
    metavar="SERVICE",
    help="Only SERVICE's dark traffic: every compared field with its examples.",
)
@client_tls_options  # --tls-ca/--tls-cert/--tls-key (turnout/cli/_tls.py)
def status_command(
    address: str,
    admin_address: str | None,
    as_json: bool,
    timeout: float,
    dark_service: str | None,
    **tls: Any,
) -> None:
    """Show what the fleet runs: per service its stable version, segments, mirrors and
    release state; per proxy what it ACKed, whether it is behind, its last NACK."""
    if admin_address is not None:
        status = fetch_admin_status(admin_address, timeout)
    else:
        status = fetch_status(address, timeout, client_credentials_from_options(**tls))
    if dark_service is not None:
        _dark_detail(status, dark_service, as_json)
    elif as_json:
        click.echo(json.dumps(to_json(status), indent=2, sort_keys=True))
    else:
        click.echo(render_status(status))


def _dark_detail(status: pb.Status, service: str, as_json: bool) -> None:
    found = [s for s in status.services if s.name == service]
    if not found:
        raise click.ClickException(f"no service {service!r} is served")
    if as_json:
        click.echo(json.dumps(to_json(found[0]).get("dark", []), indent=2, sort_keys=True))
        return
    lines = render_dark_detail(status, service)
    if not lines:
        raise click.ClickException(f"{service} has no dark traffic judged (no mirror yet?)")
    click.echo("\n".join(lines))


# -- wait ------------------------------------------------------------------------------


@dataclass
class FleetView:
    """The status as a WatchStatus client keeps it: a SNAPSHOT, then events applied."""

    served_version: str = ""
    proxies: dict[int, pb.ProxyStatus] = field(default_factory=dict)

    def apply(self, event: pb.StatusEvent) -> None:
        if event.HasField("status"):
            self.proxies = {p.stream_id: p for p in event.status.proxies}
        elif event.kind == Kind.PROXY_DISCONNECTED:
            self.proxies.pop(event.proxy.stream_id, None)
        elif event.HasField("proxy"):
            self.proxies[event.proxy.stream_id] = event.proxy
        self.served_version = event.served_version

    def behind(self, version: str) -> list[pb.ProxyStatus]:
        """Connected proxies that have not synced ``version``."""
        return [p for _, p in sorted(self.proxies.items()) if p.synced_version != version]


def _watch(
    address: str, deadline: float, credentials: grpc.ChannelCredentials | None = None
) -> Iterator[pb.StatusEvent]:
    """WatchStatus events until the deadline; reconnects if turnout restarts midway.
    Exits 3 when nothing answers at first."""
    connected = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        with _channel(address, credentials) as channel:
            call = _stub(channel).WatchStatus(pb.WatchStatusRequest(), timeout=remaining)
            try:
                for event in call:
                    connected = True
                    yield event
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
                if not connected:
                    _unreachable(address, _rpc_detail(exc))
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _describe(proxy: pb.ProxyStatus, now: datetime) -> str:
    acked = ", ".join(f"{t.type} {_short(t.acked_version)}" for t in proxy.types) or "nothing"
    text = (
        f"{proxy.node_id or '(no id)'} (cluster {proxy.node_cluster or '-'}, "
        f"{proxy.stream_kind} stream {proxy.stream_id}): has "
        f"{proxy.synced_version or 'no complete policy version'}; ACKed {acked}"
    )
    if proxy.HasField("behind_since"):
        text += f"; behind for {_ago(proxy.behind_since, now)}"
    if proxy.HasField("last_nack"):
        text += f"; last NACK {_nack_text(proxy.last_nack)}"
    return text


def _policies_version(policies: Path) -> str:
    from turnout.compile import compile_policies
    from turnout.policy import PolicySetError, load_policies

    try:
        return compile_policies(load_policies(policies)).policy_version
    except PolicySetError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"error: {policies} is invalid; turnout will not serve it", err=True)
        sys.exit(EXIT_BEHIND)


@click.command("wait")
@click.option("--address", default="127.0.0.1:18000", show_default=True, help=_ADDRESS_HELP)
@click.option("--timeout", default="60s", show_default=True, callback=_duration_option)
@click.option(
    "--version",
    "want",
    default=None,
    help="Wait for this policy version to be served and synced (default: whatever is served).",
)
@click.option(
    "--policies",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Wait for the version this policy directory compiles to (what CI just committed).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@client_tls_options
def wait_command(
    address: str, timeout: float, want: str | None, policies: Path | None, quiet: bool, **tls: Any
) -> None:
    """Block until every connected proxy has ACKed the served policy version.

    Exit 0 once they all have; 1 on timeout, naming each proxy that is behind and what
    it has; 3 when no turnout answers at --address.
    """
    if policies is not None:
        want = _policies_version(policies)
    started = time.monotonic()
    deadline = started + timeout
    fleet = FleetView()
    for event in _watch(address, deadline, client_credentials_from_options(**tls)):
        fleet.apply(event)
        target = want or fleet.served_version
        if not fleet.served_version or fleet.served_version != target:
            continue
        if not fleet.behind(target):
            if not quiet:
                count = len(fleet.proxies)
                who = f"all {count} connected proxies have" if count else "no proxies connected;"
                click.echo(
                    f"{who} synced policy version {target} ({seconds(time.monotonic() - started)})"
                )
            return
    now = datetime.now(UTC)
    target = want or fleet.served_version
    if not fleet.served_version:
        click.echo(f"timed out after {seconds(timeout)}: turnout serves no version", err=True)
    elif fleet.served_version != target:
        click.echo(
            f"timed out after {seconds(timeout)}: turnout serves {fleet.served_version}, "
            f"not {target}",
            err=True,
        )
    behind = fleet.behind(target) if target else list(fleet.proxies.values())
    if behind:
        click.echo(
            f"timed out after {seconds(timeout)}: {len(behind)} of {len(fleet.proxies)} "
            f"proxies have not synced policy version {target or '(none)'}:",
            err=True,
        )
        for proxy in behind:
            click.echo(f"  {_describe(proxy, now)}", err=True)
    sys.exit(EXIT_BEHIND)


COMMANDS = (status_command, wait_command)
