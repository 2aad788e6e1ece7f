"""`turnout rollout abort GATEWAY`: stop a config rollout, canary back on the last good set.

It reaches the running server through ReleaseService.AbortRollout on turnout's gRPC
address (the xDS port), like `status`. Why an RPC and not a marker file in the policy
directory: the abort is an instruction to one running server about its in-memory
rollout, not a policy; it takes effect at once and answers (unknown gateway, nothing
rolling out) instead of waiting for a watcher; it needs no write access to a policy
directory that is often a read-only git checkout; and it leaves nothing in the files
that someone must remember to delete before the next change. "Until the files change
again" is then the server's state: the next accepted change starts a new rollout.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import grpc

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._rollout_status import render_rollout
from turnout.cli._status_cmd import _channel, _duration_option, _rpc_detail, _stub, _unreachable
from turnout.cli._tls_options import client_credentials_from_options, client_tls_options

__all__ = ["COMMANDS"]


@click.group("rollout")
def rollout_group() -> None:
    """Staged config rollouts (a gateway's `rollout:`): canary proxies first."""


@rollout_group.command("abort")
@click.argument("gateway")
@click.option(
    "--address",
    default="127.0.0.1:18000",
    show_default=True,
    help="turnout's gRPC address (where it serves xDS and the ReleaseService).",
)
@click.option("--timeout", default="5s", show_default=True, callback=_duration_option)
@client_tls_options
def abort_command(gateway: str, address: str, timeout: float, **tls: Any) -> None:
    """Abort the config rollout under way on GATEWAY: its canary proxies go back to the
    last fully rolled-out set until the policy files change again.

    Exit 0 when aborted; 1 when GATEWAY is unknown or nothing is rolling out there;
    3 when no turnout answers at --address."""
    credentials = client_credentials_from_options(**tls)
    with _channel(address, credentials) as channel:
        try:
            answer: pb.AbortRolloutResponse = _stub(channel).AbortRollout(
                pb.AbortRolloutRequest(gateway=gateway), timeout=timeout
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                click.echo(f"error: {exc.details()}", err=True)
                sys.exit(1)
            _unreachable(address, _rpc_detail(exc))
    click.echo(f"aborted the config rollout on {gateway}")
    for line in render_rollout(pb.Status(rollout=answer.rollout)):
        click.echo(line)


COMMANDS = [rollout_group]
