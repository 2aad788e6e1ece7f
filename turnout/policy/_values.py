"""Readers for the policy format's own kinds of values: names, hosts, endpoints, regexes."""

from __future__ import annotations

import functools
import ipaddress
import re

import re2

from ._model import INSTANCES, Endpoint
from ._read import At, Ctx, described, hint, integer, nonempty_string, string

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: RFC 9110 token characters: header names, and RFC 6265 cookie names.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ENDPOINT_HELP = 'expected host:port, e.g. "10.0.0.5:8080", "app.internal:80" or "[::1]:8080"'


@described({"type": "string", "pattern": f"^{_DNS_LABEL.pattern}$"})
def dns_label(ctx: Ctx, at: At) -> str:
    """A service, gateway or rule name: a DNS label."""
    name = string(ctx, at)
    if not _DNS_LABEL.fullmatch(name):
        ctx.fail(
            at,
            f'invalid name "{name}": use lowercase letters, digits and "-", starting and '
            "ending with a letter or digit, at most 63 characters",
        )
    return name


@described({"type": "string", "pattern": f"^{_VERSION.pattern}$", "not": {"const": INSTANCES}})
def version_name(ctx: Ctx, at: At) -> str:
    name = string(ctx, at)
    if name == INSTANCES:
        ctx.fail(at, f'"{INSTANCES}" is reserved (it is the traffic keyword), not a version name')
    if not _VERSION.fullmatch(name):
        ctx.fail(
            at,
            f'invalid version name "{name}": use letters, digits and "-", starting with a '
            "letter or digit, at most 63 characters",
        )
    return name


@described({"type": "string"})
def version_ref(ctx: Ctx, at: At) -> str:
    """The name of a version declared under `versions:`."""
    name = string(ctx, at)
    declared = ctx.scope.versions
    if declared is not None and name not in declared:
        listed = ", ".join(declared) or "none"
        ctx.fail(at, f'unknown version "{name}"{hint(name, declared)} (versions: {listed})')
    return name


@described({"type": "string", "pattern": f"^{_TOKEN.pattern}$"})
def header_name(ctx: Ctx, at: At) -> str:
    """An HTTP header name, lower-cased (Envoy matches header names lower-cased)."""
    name = string(ctx, at)
    if not _TOKEN.fullmatch(name):
        ctx.fail(at, f'invalid header name "{name}": use HTTP token characters (no spaces or ":")')
    return name.lower()


@described({"type": "string", "pattern": f"^{_TOKEN.pattern}$"})
def cookie_name(ctx: Ctx, at: At) -> str:
    name = string(ctx, at)
    if not _TOKEN.fullmatch(name):
        ctx.fail(at, f'invalid cookie name "{name}": use token characters (no spaces, "=" or ";")')
    return name


@described({"type": "string", "minLength": 1})
def query_name(ctx: Ctx, at: At) -> str:
    return nonempty_string(ctx, at)


@described({"type": "string", "pattern": "^/"})
def http_path(ctx: Ctx, at: At) -> str:
    path = string(ctx, at)
    if not path.startswith("/"):
        ctx.fail(at, f'must start with "/", got "{path}"')
    return path


@described({"type": "string"})
def regex(ctx: Ctx, at: At) -> str:
    """A regular expression Envoy accepts: it must compile in RE2."""
    pattern = string(ctx, at)
    options = re2.Options()
    options.log_errors = False  # RE2 would otherwise write an absl log line on stderr
    try:
        re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        ctx.fail(at, f"invalid RE2 regex: {reason}")
    return pattern


@described({"type": "integer", "minimum": 1, "maximum": 65535})
def port(ctx: Ctx, at: At) -> int:
    return integer(ctx, at, 1, 65535)


@described({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
def ip_address(ctx: Ctx, at: At) -> str:
    text = string(ctx, at)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        ctx.fail(at, f'expected an IP address like "0.0.0.0" or "::", got "{text}"')


@described({"type": "string", "minLength": 1, "pattern": r"^[^\s/]+$"})
def host(ctx: Ctx, at: At) -> str:
    """A virtual-host domain, with Envoy's wildcard forms: `*`, `*.example.com`, `example.*`."""
    text = nonempty_string(ctx, at)
    if any(c.isspace() for c in text) or "/" in text:
        ctx.fail(at, f'invalid host "{text}": no spaces or "/" allowed')
    stars = text.count("*")
    if stars > 1 or (stars == 1 and text[0] != "*" and text[-1] != "*"):
        ctx.fail(
            at,
            f'invalid host "{text}": a "*" is allowed only alone or once at the start or end, '
            'e.g. "*.example.com", "example.*", "example.com:*"',
        )
    return text


@described({"type": "string", "pattern": r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):[0-9]{1,5}$"})
def endpoint(ctx: Ctx, at: At) -> Endpoint:
    """`host:port`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port."""
    text = string(ctx, at)
    if text.startswith("["):
        address, bracket, port_text = text[1:].partition("]:")
        name = address if bracket else ""
    else:
        name, _, port_text = text.rpartition(":")
    if not name or not port_text.isdigit():
        ctx.fail(at, f'invalid endpoint "{text}": {_ENDPOINT_HELP}')
    if not _valid_endpoint_host(name, bracketed=text.startswith("[")):
        extra = " (write IPv6 addresses in brackets)" if ":" in name else ""
        ctx.fail(
            at,
            f'invalid endpoint "{text}": "{name}" is not a DNS name or IP address{extra}',
        )
    number = int(port_text)
    if not 1 <= number <= 65535:
        ctx.fail(at, f'invalid endpoint "{text}": port must be between 1 and 65535')
    return Endpoint(name, number)


@functools.lru_cache(maxsize=8192)
def _valid_endpoint_host(name: str, *, bracketed: bool) -> bool:
    """Remembered: a set names the same few hosts (127.0.0.1, a cluster's DNS names)
    in thousands of endpoints, and Python's address parser takes ~20 us each."""
    if bracketed:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return False
        return True
    if re.fullmatch(r"[0-9.]+", name):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return False
        return True
    labels = name.removesuffix(".").split(".")
    return len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
