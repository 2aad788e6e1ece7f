"""The release driver's options of `turnout serve`:

turnout serve [--no-drive-releases] [--commit-releases]
              [--metrics-source sink|prometheus --prometheus-url URL]
              [--leader-election none|kubernetes --lease-name NAME]
              [--dark-window 5m] [--notify FILE]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from turnout.policy import parse_duration
from turnout.release import DEFAULT_DARK_WINDOW
from turnout.server import NotifyConfigError, ReleaseOptions, Webhook, load_webhooks

__all__ = ["pop_release_options", "release_options"]

_OPTION_NAMES = (
    "drive_releases",
    "commit_releases",
    "metrics_source",
    "prometheus_url",
    "leader_election",
    "lease_name",
    "dark_window",
    "notify",
)


def release_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The release driver's options of `turnout serve`."""
    options = [
        click.option(
            "--drive-releases/--no-drive-releases",
            default=True,
            show_default=True,
            help="Step incremental releases (incremental: in the policies) by their analysis.",
        ),
        click.option(
            "--commit-releases",
            is_flag=True,
            help="git-commit each release step the driver writes (the policy directory "
            "must be in a git repository).",
        ),
        click.option(
            "--metrics-source",
            type=click.Choice(["sink", "prometheus"]),
            default="sink",
            show_default=True,
            help="Where release figures come from: Envoy's stats streamed to turnout "
            "(sink), or a Prometheus scraping Envoy.",
        ),
        click.option(
            "--prometheus-url",
            default=None,
            help="Prometheus' HTTP API, e.g. http://prom:9090: release figures with "
            "--metrics-source prometheus, and the custom checks of analysis.queries.",
        ),
        click.option(
            "--leader-election",
            type=click.Choice(["none", "kubernetes"]),
            default="none",
            show_default=True,
            help="With several replicas: only the holder of a Kubernetes Lease drives releases.",
        ),
        click.option(
            "--lease-name",
            default="turnout-release-driver",
            show_default=True,
            help="The Lease (in the pod's namespace) for --leader-election kubernetes.",
        ),
        click.option(
            "--dark-window",
            default="5m",
            show_default=True,
            callback=_dark_window,
            help="Every mirror target is judged against the light versions over this "
            "last stretch of time (e.g. 90s, 10m).",
        ),
        click.option(
            "--notify",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="A YAML file of webhooks (url, secretEnv, events) told of release steps, "
            "holds, rollbacks, rejected policy sets and proxy NACKs.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _dark_window(ctx: click.Context, param: click.Parameter, value: str | float) -> float:
    try:
        return value if isinstance(value, float) else parse_duration(value, bare_seconds=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def pop_release_options(values: dict[str, Any]) -> ReleaseOptions:
    """Take the release options out of a command's keyword arguments."""
    mine = {name: values.pop(name) for name in _OPTION_NAMES if name in values}
    webhooks: tuple[Webhook, ...] = ()
    if mine.get("notify") is not None:
        try:
            webhooks = load_webhooks(mine["notify"])
        except NotifyConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--notify") from None
    options = ReleaseOptions(
        drive=bool(mine.get("drive_releases", True)),
        commit=bool(mine.get("commit_releases", False)),
        metrics_source=mine.get("metrics_source") or "sink",
        prometheus_url=mine.get("prometheus_url"),
        leader_election=mine.get("leader_election") or "none",
        lease_name=mine.get("lease_name") or "turnout-release-driver",
        dark_window=float(mine.get("dark_window") or DEFAULT_DARK_WINDOW),
        webhooks=webhooks,
    )
    if options.drive and options.metrics_source == "prometheus" and not options.prometheus_url:
        raise click.UsageError("--metrics-source prometheus needs --prometheus-url")
    return options
