"""Loading a policy set: files -> YAML documents -> drafts -> set-wide checks -> PolicySet.

A set is accepted or rejected whole: every problem found anywhere is collected and
raised at once as `PolicySetError`.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from ._documents import GatewayDraft, Named, ServiceDraft, read_gateway, read_service
from ._errors import PolicySetError, Problem
from ._model import Gateway, PolicySet, Service
from ._read import NULL, STR, At, Ctx, describe, hint, line_of, tag_of

__all__ = ["load_policies", "parse_policies"]

_KINDS = ("Gateway", "Service")
_SUFFIXES = (".yaml", ".yml")


def load_policies(directory: str | Path) -> PolicySet:
    """Read and validate every *.yaml / *.yml file under `directory` (recursively,
    hidden files and directories skipped). Problems name files as joined from
    `directory`, e.g. `policies/checkout.yaml`."""
    root = Path(directory)
    if not root.is_dir():
        raise PolicySetError([Problem(str(root), 0, "", "not a directory")])
    problems: list[Problem] = []
    previous = _TEXTS.get(str(root), {})
    texts: dict[str, _Text] = {}
    for path in _policy_files(root):
        try:
            texts[path] = _read_text(path, previous.get(path))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(path, 0, "", f"cannot read: {exc}"))
    _TEXTS[str(root)] = texts
    known = _READS.get(str(root), {})
    reads: dict[str, tuple[str, _FileRead]] = {}
    for path, read in texts.items():
        before = known.get(path)
        text = read.text
        reads[path] = before if before and before[0] == text else (text, _read_file(path, text))
    _READS[str(root)] = reads
    return _parse({path: read for path, (_, read) in reads.items()}, problems, origin=str(root))


@dataclass(frozen=True, slots=True)
class _Text:
    """A policy file's text as last read, and what its stat said then."""

    stat: tuple[int, int, int]
    read_at_ns: int
    text: str


_TEXTS: dict[str, dict[str, _Text]] = {}
"""Per policy directory, each file's last read text: a reload re-reads only the files
whose stat changed (2,000 reads were most of a one-file change's cost)."""

_READS: dict[str, dict[str, tuple[str, _FileRead]]] = {}
"""Per policy directory, each file's reading and the text it read: an unchanged file is
not read again however many files the set has (`_read_file`'s cache holds 4,096
readings, and a 5,000-file set going round it re-parsed every file on every reload)."""

_RACY_NS = 2_000_000_000
"""A file modified this close to when it was read may have changed again within the
same timestamp tick without its stat showing it (git's "racy" entries): such a text is
read again until it is older than this."""


def _read_text(path: str, before: _Text | None) -> _Text:
    status = os.stat(path)
    stat = (status.st_mtime_ns, status.st_size, status.st_ino)
    if before is not None and before.stat == stat and before.read_at_ns - stat[0] > _RACY_NS:
        return before
    read_at_ns = time.time_ns()
    with open(path, encoding="utf-8") as file:
        return _Text(stat, read_at_ns, file.read())


def loaded_sources(directory: str | Path) -> dict[str, str]:
    """{file: text} of what the last :func:`load_policies` of `directory` read (files
    named as it names them): exactly the texts of the set it returned, e.g. to keep a
    served set across a restart. Empty before any load."""
    return {path: text.text for path, text in _TEXTS.get(str(Path(directory)), {}).items()}


def parse_policies(sources: Mapping[str, str]) -> PolicySet:
    """Validate a set given as {file name: YAML text}, e.g. an edited set in memory."""
    return _parse(
        {file: _read_file(file, text) for file, text in sources.items()}, [], "<policies>"
    )


def _policy_files(root: Path) -> list[str]:
    found: list[str] = []
    _scan(os.fspath(root), found)
    return sorted(found)


def _scan(directory: str, found: list[str]) -> None:
    """The policy files under ``directory`` as os.walk would find them (an unreadable
    directory is skipped, a symlinked one listed but not entered), hidden names
    skipped; one scandir pass, without os.walk's lists of names (a third of a reload's
    walk over 2,000 files)."""
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not entry.is_symlink():
                _scan(entry.path, found)
        elif name.endswith(_SUFFIXES):
            found.append(entry.path)


@dataclass(frozen=True, slots=True)
class _FileRead:
    """What one file holds: its documents' drafts and problems."""

    file: str
    problems: tuple[Problem, ...]
    gateways: tuple[GatewayDraft, ...]
    services: tuple[ServiceDraft, ...]
    documents: int
    broken_yaml: bool


def _parse(files: Mapping[str, _FileRead], problems: list[Problem], origin: str) -> PolicySet:
    reads = [files[file] for file in sorted(files)]
    for read in reads:
        problems.extend(read.problems)
    if not any(read.documents for read in reads) and not problems:
        problems.append(Problem(origin, 0, "", "no policy documents found (*.yaml, *.yml)"))
    gateways = _unique(problems, "gateway", [(r.file, d) for r in reads for d in r.gateways])
    services = _unique(problems, "service", [(r.file, d) for r in reads for d in r.services])
    _check_ports(problems, gateways)
    # A gateway may hide in an unreadable file: then don't call references unknown.
    complete = not any(read.broken_yaml for read in reads)
    placed = _resolve_gateways(problems, services, gateways, check=complete)
    _check_hosts(problems, placed)
    if problems:
        raise PolicySetError(problems)
    return PolicySet(
        gateways=tuple(sorted((d.gateway for _, d in gateways if d.gateway), key=_name)),
        services=tuple(sorted((p.service for p in placed), key=_name)),
    )


def _name(item: Gateway | Service) -> str:
    return item.name


@functools.lru_cache(maxsize=4096)
def _read_file(file: str, text: str) -> _FileRead:
    """Read one file. A file's reading depends on its name and text only, so it is cached:
    re-validating a large set after an edit re-reads only the files that changed (about
    0.2 ms for a 15-line service: its YAML composed, then read into the model)."""
    ctx = Ctx(file, [])
    gateways: list[GatewayDraft] = []
    services: list[ServiceDraft] = []
    documents = 0
    broken = False
    try:
        for node in _documents(text):
            if isinstance(node, ScalarNode) and tag_of(node) == NULL and not node.value:
                continue  # an empty document, e.g. after a trailing `---`
            documents += 1
            draft = _read_document(ctx, node)
            if isinstance(draft, GatewayDraft):
                gateways.append(draft)
            elif isinstance(draft, ServiceDraft):
                services.append(draft)
    except YAMLError as exc:
        broken = True
        ctx.report(*_yaml_error(exc, text))
    return _FileRead(file, tuple(ctx.problems), tuple(gateways), tuple(services), documents, broken)


def _documents(text: str) -> Iterator[Node]:
    """The file's documents, one at a time (a syntax error only ends the rest of the file).

    Parsed by libyaml (ruamel.yaml.clib's C parser, about 10x faster: 2,000 files load
    in about half a second) into the same ruamel nodes, tagged by the same YAML 1.2
    rules, with the same marks. A file libyaml refuses is parsed again by ruamel's
    pure-Python parser, so what is reported, and where, is always ruamel's wording.
    """
    fast = _fast_documents(text)
    if fast is not None:
        yield from fast
        return
    stream = YAML(typ="rt").compose_all(text)
    while True:
        with warnings.catch_warnings():
            # A reused anchor is valid YAML (the later one wins); keep it off stderr.
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            node = next(stream, None)
        if node is None:
            return
        _place_empty_values(node, text)
        yield node


def _place_empty_values(root: Node, text: str) -> None:
    """Put each empty value (`key:` and nothing) on its key's line, where libyaml puts
    it and where a person looks: ruamel's pure parser marks it at the next token,
    which can be lines further down."""
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias repeats a node; a merge can make a cycle
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if (
                    isinstance(value, ScalarNode)
                    and value.value == ""
                    and value.start_mark.line != key.end_mark.line
                    and text[key.end_mark.index :].lstrip(" ").startswith(":")
                ):
                    value.start_mark = key.end_mark
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def _fast_documents(text: str) -> list[Node] | None:
    """Every document of ``text`` composed by the C parser; None when it is not
    installed or refuses the text (the pure parser then says why)."""
    if _C_YAML is None or any(c in text for c in _PURE_ONLY):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            composer = _C_YAML(text)
            documents = []
            while composer.check_node():
                documents.append(composer.get_node())
            return documents
    except YAMLError:
        return None


_PLAIN_TAGS: dict[str, Tag] = {}
"""Each plain scalar's YAML 1.2 tag, by its text: a policy set repeats the same few
hundred values (v1, 95, true, ...) and ruamel's resolver works each out again, at
~10 us a scalar."""
_PLAIN_TAGS_MAX = 20_000
_PLAIN_TAGS_LONGEST = 64
"""Longer texts (prose, rarely repeated) are resolved each time, not kept."""
_RESOLVER = VersionedResolver(version=(1, 2))
"""ruamel's YAML 1.2 core-schema rules, asked once per new plain scalar text."""
_SCALAR, _SEQUENCE, _MAPPING = (
    VersionedResolver.DEFAULT_SCALAR_TAG,
    VersionedResolver.DEFAULT_SEQUENCE_TAG,
    VersionedResolver.DEFAULT_MAPPING_TAG,
)


def _resolve(kind: Any, value: Any, implicit: Any) -> Tag:
    """The tag of an untagged node (or one tagged `!`), as ruamel's YAML 1.2 resolver
    gives it to a YAML 1.2 document: a plain scalar by the core schema's patterns, a
    quoted scalar str, a collection seq or map (a text with a `%YAML` directive is
    the pure parser's, `_PURE_ONLY`)."""
    if kind is ScalarNode:
        if not implicit[0]:
            return _SCALAR
        tag = _PLAIN_TAGS.get(value)
        if tag is None:
            tag = _RESOLVER.resolve(ScalarNode, value, (True, False))
            if len(value) <= _PLAIN_TAGS_LONGEST:
                if len(_PLAIN_TAGS) >= _PLAIN_TAGS_MAX:
                    _PLAIN_TAGS.clear()
                _PLAIN_TAGS[value] = tag
        return tag
    return _SEQUENCE if kind is SequenceNode else _MAPPING


def _c_yaml() -> type[Any] | None:
    """A composer over libyaml (ruamel.yaml.clib), making the same ruamel nodes with the
    same marks as ruamel's own composer over it, without ruamel's per-text setup (a
    loader class built per text, a resolver per text asking for its YAML version per
    node)."""
    try:
        from _ruamel_yaml import CParser  # type: ignore[import-not-found]
    except ImportError:  # ruamel.yaml.clib is a dependency, but ruamel runs without it
        return None

    class Composer(CParser):  # type: ignore[misc]
        """libyaml's parser composing nodes; the tag resolution is `_resolve`'s."""

        resolve = staticmethod(_resolve)

        def descend_resolver(self, parent: Any, index: Any) -> None:
            """No path-dependent tags (ruamel's yaml_path_resolvers) are used."""

        def ascend_resolver(self) -> None:
            """No path-dependent tags are used."""

    return Composer


_C_YAML = _c_yaml()
_PURE_ONLY = ("\x85", "\u2028", "\u2029", "\t", "%YAML")
"""What the two parsers disagree on, so a text with one takes the pure parser: line
breaks to libyaml (YAML 1.1) that YAML 1.2 reads as ordinary characters (the lines
would be numbered differently), tabs, which libyaml lets into plain scalars where
ruamel refuses them, and a `%YAML` directive, which ruamel honours (`%YAML 1.1` reads
`0o10` as a string and `yes` as true) and the composer over libyaml does not."""


def _yaml_lines(text: str) -> int:
    """How many lines ``text`` has as YAML (and the problems' line numbers) count
    them: LF, CRLF and a lone CR each end one."""
    return text.count("\n") + text.count("\r") - text.count("\r\n") + 1


def _yaml_error(exc: YAMLError, text: str) -> tuple[int, str, str]:
    """The line, path and message of a YAML error in ``text``."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 0
        reason = exc.problem or exc.context or "invalid YAML"
        return line, "", f"invalid YAML: {reason}"
    if isinstance(exc, ReaderError) and isinstance(exc.position, int):
        # A character YAML does not allow (a control character): the reader gives its
        # offset in the text, not a line, and its message spans two lines.
        line = _yaml_lines(text[: exc.position])
        what = (
            f"character #x{exc.character:04x}"
            if isinstance(exc.character, int)
            else repr(exc.character)
        )
        return line, "", f"invalid YAML: unacceptable {what}: {exc.reason}"
    return 0, "", f"invalid YAML: {exc}"


def _read_document(ctx: Ctx, node: Node) -> GatewayDraft | ServiceDraft | None:
    at = At(node, "", line_of(node))
    if not isinstance(node, MappingNode):
        ctx.report(at.line, "", f"a policy document must be a mapping, got {describe(node)}")
        return None
    kind = _kind(ctx, at)
    if kind == "Gateway":
        return read_gateway(ctx, at)
    if kind == "Service":
        return read_service(ctx, at)
    return None


def _kind(ctx: Ctx, at: At) -> str | None:
    listed = " or ".join(_KINDS)
    for key, value in at.node.value:
        if isinstance(key, ScalarNode) and key.value == "kind":
            if not (isinstance(value, ScalarNode) and tag_of(value) == STR):
                ctx.report(line_of(value), "kind", f"expected {listed}, got {describe(value)}")
                return None
            if value.value not in _KINDS:
                ctx.report(
                    line_of(value),
                    "kind",
                    f'unknown kind "{value.value}"{hint(value.value, _KINDS)} (expected {listed})',
                )
                return None
            return str(value.value)
    ctx.report(at.line, "kind", f"required field is missing ({listed})")
    return None


# -- set-wide checks -------------------------------------------------------------------

D = TypeVar("D", GatewayDraft, ServiceDraft)


def _unique(problems: list[Problem], what: str, drafts: list[tuple[str, D]]) -> list[tuple[str, D]]:
    """The drafts with a name, first definition of each name only; later ones reported."""
    first: dict[str, tuple[str, Named]] = {}
    kept: list[tuple[str, D]] = []
    for file, draft in drafts:
        name = draft.name
        if name is None:
            continue
        before = first.get(name.value)
        if before is not None:
            where = f"{before[0]}:{before[1].line}"
            message = f'{what} "{name.value}" is already defined at {where}'
            problems.append(Problem(file, name.line, name.path, message))
            continue
        first[name.value] = (file, name)
        kept.append((file, draft))
    return kept


def _check_ports(problems: list[Problem], gateways: list[tuple[str, GatewayDraft]]) -> None:
    """Two gateways one Envoy could get must not listen on the same address and port."""
    valid = [(file, d, d.gateway) for file, d in gateways if d.gateway is not None]
    for index, (file, draft, gateway) in enumerate(valid):
        for other_file, _, other in valid[:index]:
            if other.port != gateway.port or not _same_address(gateway, other):
                continue
            reason = _proxies_overlap(other, gateway)
            if reason is None:
                continue
            message = (
                f'gateways "{gateway.name}" and "{other.name}" ({other_file}:'
                f"{_line(other)}) both listen on {_listen(gateway)} and could be given to the "
                f"same Envoy: {reason}"
            )
            problems.append(Problem(file, draft.port_line, "port", message))
            break


def _line(item: Gateway | Service) -> int:
    return item.location.line if item.location else 0


def _listen(gateway: Gateway) -> str:
    address = f"[{gateway.address}]" if ":" in gateway.address else gateway.address
    return f"{address}:{gateway.port}"


def _same_address(a: Gateway, b: Gateway) -> bool:
    first, second = ipaddress.ip_address(a.address), ipaddress.ip_address(b.address)
    return first == second or first.is_unspecified or second.is_unspecified


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _proxies_overlap(a: Gateway, b: Gateway) -> str | None:
    """Why some Envoy's node.cluster could match both gateways' `proxies`, or None."""
    for gateway in (a, b):
        if "*" in gateway.proxies:
            return f'the proxies of "{gateway.name}" include "*"'
    shared = sorted(set(a.proxies) & set(b.proxies))
    if shared:
        return f'both list "{shared[0]}" in proxies'
    for one, two in ((a, b), (b, a)):
        for glob in one.proxies:
            for literal in two.proxies:
                if not _is_glob(literal) and fnmatch.fnmatchcase(literal, glob):
                    return f'"{glob}" of "{one.name}" matches "{literal}" of "{two.name}"'
    return None


@dataclass(frozen=True, slots=True)
class _Placed:
    """A valid service with its gateways resolved."""

    file: str
    draft: ServiceDraft
    service: Service


def _resolve_gateways(
    problems: list[Problem],
    services: list[tuple[str, ServiceDraft]],
    gateways: list[tuple[str, GatewayDraft]],
    *,
    check: bool,
) -> list[_Placed]:
    """Check every service's `gateways` and fill in the default (every gateway)."""
    names = sorted({d.name.value for _, d in gateways if d.name is not None})
    every = tuple(names)
    placed: list[_Placed] = []
    for file, draft in services:
        if draft.gateways is None:
            if check and not names:
                message = "no Gateway is defined, so this service would be served nowhere"
                problems.append(Problem(file, draft.line, "gateways", message))
            chosen = every
        else:
            if check:
                _check_refs(problems, file, draft.gateways, names)
            chosen = tuple(ref.value for ref in draft.gateways)
        if draft.service is not None:
            placed.append(_Placed(file, draft, _placed_service(draft.service, chosen)))
    return placed


def _placed_service(service: Service, gateways: tuple[str, ...]) -> Service:
    """``service`` on ``gateways``: the very object of the last load when neither
    changed (a file that was not edited reads to the same draft), so an unchanged
    service is the same object from one load to the next."""
    key = id(service)
    known = _PLACED.get(key)
    if known is not None and known[0] is service and known[1].gateways == gateways:
        return known[1]
    if len(_PLACED) > _PLACED_MAX:
        _PLACED.clear()
    placed = replace(service, gateways=gateways)
    _PLACED[key] = (service, placed)
    return placed


_PLACED: dict[int, tuple[Service, Service]] = {}
_PLACED_MAX = 20_000


def _check_refs(
    problems: list[Problem], file: str, refs: tuple[Named, ...], names: list[str]
) -> None:
    listed = ", ".join(names) or "none are defined"
    for ref in refs:
        if ref.value not in names:
            message = f'unknown gateway "{ref.value}"{hint(ref.value, names)} (gateways: {listed})'
            problems.append(Problem(file, ref.line, ref.path, message))


def _check_hosts(problems: list[Problem], placed: list[_Placed]) -> None:
    """On one gateway, a host (case-insensitive) belongs to one service only."""
    claims: dict[tuple[str, str], tuple[_Placed, Named]] = {}
    for item in placed:
        for host in item.draft.hosts:
            for gateway in item.service.gateways:
                key = (gateway, host.value.lower())
                if key not in claims:
                    claims[key] = (item, host)
                    continue
                other, other_host = claims[key]
                message = (
                    f'host "{host.value}" of service "{item.service.name}" is also claimed by '
                    f'service "{other.service.name}" ({other.file}:{other_host.line}) '
                    f'on gateway "{gateway}"'
                )
                problems.append(Problem(item.file, host.line, host.path, message))
                break
