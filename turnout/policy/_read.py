"""Reading composed YAML nodes into values, recording every problem on the way.

The loader works on ruamel.yaml's composed node graph rather than constructed objects:
every node carries its line, a scalar keeps the exact text it was written as (so
`33.33` becomes `Decimal("33.33")`, not a float), and a duplicate key is a problem
reported at its own line instead of an exception that abandons the document.

A reader either returns a value or records a `Problem` and raises `Invalid`, which
abandons only the value being read: the caller goes on reading the next field, so
one pass reports every problem in a set.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, NoReturn, TypeVar

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import BaseResolver

from ._durations import DURATION_PATTERN, parse_duration
from ._errors import Problem

T = TypeVar("T")

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MERGE = _TAG + "merge"
_STR_TAG = BaseResolver.DEFAULT_SCALAR_TAG


class Invalid(Exception):  # noqa: N818 (a signal between readers, never seen by users)
    """A problem was recorded for the value being read; abandon that value."""


@dataclass
class Scope:
    """What the document being read has declared so far, for checks across fields.

    `versions` maps each declared version name to its number of endpoints
    (None until `versions` has been read, or when it could not be read at all:
    then references to versions are not checked, to avoid reporting one mistake
    many times).
    """

    versions: dict[str, int] | None = None
    stable: str | None = None


@dataclass
class Ctx:
    """The file being read, the problems found so far and the current scope."""

    file: str
    problems: list[Problem]
    scope: Scope = field(default_factory=Scope)

    def report(self, line: int, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, path, message))

    def fail(self, at: At, message: str) -> NoReturn:
        self.report(at.line, at.path, message)
        raise Invalid


class At(NamedTuple):
    """A node, the field path leading to it and the line to report about it.

    A named tuple rather than a frozen dataclass: a 2,000-file set makes 150,000 of
    them, and a frozen dataclass takes three times as long to make."""

    node: Node
    path: str
    line: int

    def item(self, index: int, node: Node) -> At:
        return At(node, f"{self.path}[{index}]", node.start_mark.line + 1)


def tag_of(node: Node) -> str:
    """A node's tag as text, as `str(node.tag)` gives it, without ruamel's Node.tag
    making the text anew on every look (a 2,000-file set looks 150,000 times)."""
    tag = node.ctag
    if tag is _STR_TAG:  # most nodes: ruamel's one default tag for str
        return STR
    text = tag.trval
    return text if text is not None else "None"


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Entry(NamedTuple):
    """One `key: value` of a mapping, with the key's text (a named tuple, as `At`)."""

    name: str
    key: At
    value: At


def describe(node: Node) -> str:
    """How a node reads in a message: `a list`, `the number 5`, ..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag, text = tag_of(node), str(node.value)
    kinds = {STR: "the string", INT: "the number", FLOAT: "the number", BOOL: "the boolean"}
    if tag == NULL:
        return "nothing (null)"
    if tag in kinds:
        return f'{kinds[tag]} "{text}"' if tag == STR else f"{kinds[tag]} {text}"
    return f"{text!r} (tagged {tag})"


def hint(word: str, choices: Iterable[str]) -> str:
    """`; did you mean "x"?` when a choice is close to `word`, else ``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def _quote_it(node: Node) -> str:
    plain = isinstance(node, ScalarNode) and tag_of(node) in (INT, FLOAT, BOOL)
    return f'; quote it: "{node.value}"' if plain else ""


# -- collections ---------------------------------------------------------------------


def entries(ctx: Ctx, at: At) -> list[Entry]:
    """The entries of a mapping node, merge keys applied, duplicates reported."""
    node = at.node
    if not isinstance(node, MappingNode):
        ctx.fail(at, f"expected a mapping, got {describe(node)}")
    path = at.path
    seen: dict[str, int] = {}
    result: list[Entry] = []
    merged: list[Entry] = []
    for key_node, value_node in node.value:
        key_tag = tag_of(key_node)
        key_line = key_node.start_mark.line + 1
        if key_tag == _MERGE:
            merged.extend(_merged(ctx, At(value_node, path, key_line)))
            continue
        if key_tag != STR or not isinstance(key_node, ScalarNode):
            _bad_key(ctx, path, key_node, key_line)
            continue
        name = str(key_node.value)
        child = f"{path}.{name}" if path else name
        if name in seen:
            ctx.report(key_line, child, f'duplicate key "{name}" (first at line {seen[name]})')
            continue
        seen[name] = key_line
        value_line = (
            value_node.start_mark.line + 1 if isinstance(value_node, ScalarNode) else key_line
        )
        result.append(Entry(name, At(key_node, child, key_line), At(value_node, child, value_line)))
    if merged:
        result.extend(e for e in merged if e.name not in seen)
    return result


def _bad_key(ctx: Ctx, path: str, key_node: Node, key_line: int) -> None:
    text = key_node.value if isinstance(key_node, ScalarNode) else "?"
    ctx.report(
        key_line,
        join(path, str(text)),
        f"keys must be strings, got {describe(key_node)}{_quote_it(key_node)}",
    )


def _merged(ctx: Ctx, at: At) -> list[Entry]:
    """Entries brought in by a `<<: *anchor` merge key (a mapping or a list of them)."""
    sources = at.node.value if isinstance(at.node, SequenceNode) else [at.node]
    result: list[Entry] = []
    for source in sources:
        if not isinstance(source, MappingNode):
            ctx.report(at.line, at.path, "a merge key (<<) needs a mapping or a list of them")
            continue
        names = {e.name for e in result}
        result.extend(e for e in entries(ctx, At(source, at.path, at.line)) if e.name not in names)
    return result


def items(ctx: Ctx, at: At, *, nonempty: str | None = None) -> list[At]:
    """The items of a list node; `nonempty` is the message when an empty list is wrong."""
    if not isinstance(at.node, SequenceNode):
        ctx.fail(at, f"expected a list, got {describe(at.node)}")
    if nonempty and not at.node.value:
        ctx.fail(at, nonempty)
    return [at.item(i, node) for i, node in enumerate(at.node.value)]


def each(ctx: Ctx, ats: Iterable[At], read: Callable[[Ctx, At], T]) -> list[T]:
    """Read every node (reporting every problem); Invalid if any of them failed."""
    values: list[T] = []
    failed = False
    for at in ats:
        try:
            values.append(read(ctx, at))
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    return values


Reader = Callable[[Ctx, At], Any]

#: A JSON Schema (draft 2020-12) fragment, or a table of fields (an object's schema).
Schema = Mapping[str, Any]

_SCHEMAS: dict[Callable[..., Any], Schema] = {}

R = TypeVar("R", bound=Callable[..., Any])


def described(schema: Schema) -> Callable[[R], R]:
    """Declare what a reader accepts as JSON Schema (a fragment, or the table of fields
    it reads): `turnout schema` is generated from the same tables the loader reads by,
    so the schema an editor checks against is the loader's. The schema is structural
    (types, names, enums, ranges, patterns); checks across fields stay the loader's."""

    def mark(read: R) -> R:
        _SCHEMAS[read] = schema
        return read

    return mark


def schema_of(read: Callable[..., Any]) -> Schema | None:
    return _SCHEMAS.get(read)


@dataclass(frozen=True, slots=True)
class Field:
    """How one field of a mapping is read; `required` fields must be present. `schema`
    describes the value for `turnout schema` (default: the reader's, see `described`)."""

    read: Reader
    required: bool = False
    schema: Schema | None = None

    def value_schema(self) -> Schema | None:
        return self.schema if self.schema is not None else schema_of(self.read)


@dataclass
class Fields:
    """What `read_mapping` found: values read, where each key was, and whether all was fine."""

    at: At
    values: dict[str, Any]
    where: dict[str, At]
    ok: bool


def read_mapping(ctx: Ctx, at: At, spec: Mapping[str, Field]) -> Fields:
    """Read a mapping field by field, in `spec` order (so later fields can rely on the
    scope set by earlier ones). Unknown and missing fields are reported; Invalid only
    when the node is not a mapping at all."""
    before = len(ctx.problems)
    found = {e.name: e for e in entries(ctx, at)}
    misspelt = set()
    for name, entry in found.items():
        if name not in spec:
            close = difflib.get_close_matches(name, list(spec), n=1)
            misspelt.update(close)
            ctx.report(entry.key.line, entry.key.path, f'unknown field "{name}"{hint(name, spec)}')
    values: dict[str, Any] = {}
    for name, spec_field in spec.items():
        given = found.get(name)
        if given is None:
            if spec_field.required and name not in misspelt:  # already said "did you mean"
                ctx.report(at.line, join(at.path, name), "required field is missing")
            continue
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager per field)
            values[name] = spec_field.read(ctx, given.value)
        except Invalid:
            pass
    where = {name: e.value for name, e in found.items()}
    return Fields(at, values, where, ok=len(ctx.problems) == before)


def valid(fields: Fields) -> dict[str, Any]:
    """The values of a mapping read without any problem, else Invalid."""
    if not fields.ok:
        raise Invalid
    return fields.values


def one_of(ctx: Ctx, at: At, kinds: tuple[str, ...]) -> Entry:
    """The single entry of a mapping that must hold exactly one of `kinds`."""
    found = entries(ctx, at)
    known = [e for e in found if e.name in kinds]
    for e in found:
        if e.name not in kinds:
            ctx.report(e.key.line, e.key.path, f'unknown field "{e.name}"{hint(e.name, kinds)}')
    listed = ", ".join(kinds)
    if len(known) != 1 or len(known) != len(found):
        if not found:
            ctx.fail(at, f"expected one of: {listed}")
        if len(known) > 1:
            given = " and ".join(e.name for e in known)
            ctx.fail(at, f"give exactly one of {listed} (got {given})")
        raise Invalid
    return known[0]


# -- scalars ---------------------------------------------------------------------------


def integers(low: int, high: int | None = None) -> Schema:
    """The schema of `integer(ctx, at, low, high)`."""
    return {"type": "integer", "minimum": low, **({"maximum": high} if high is not None else {})}


def words(choices: tuple[str, ...]) -> Schema:
    """The schema of `word(ctx, at, choices)`."""
    return {"enum": list(choices)}


@described({"type": "string"})
def string(ctx: Ctx, at: At) -> str:
    node = at.node
    if not (isinstance(node, ScalarNode) and tag_of(node) == STR):
        ctx.fail(at, f"expected a string, got {describe(node)}{_quote_it(node)}")
    return str(node.value)


@described({"type": "string", "minLength": 1})
def nonempty_string(ctx: Ctx, at: At) -> str:
    text = string(ctx, at)
    if not text:
        ctx.fail(at, "must not be empty")
    return text


def word(ctx: Ctx, at: At, choices: tuple[str, ...]) -> str:
    text = string(ctx, at)
    if text not in choices:
        listed = " or ".join(choices)
        ctx.fail(at, f'expected {listed}, got "{text}"{hint(text, choices)}')
    return text


@described({"type": "boolean"})
def boolean(ctx: Ctx, at: At) -> bool:
    node = at.node
    if not (isinstance(node, ScalarNode) and tag_of(node) == BOOL):
        ctx.fail(at, f"expected true or false, got {describe(node)}")
    return str(node.value).lower() == "true"


def integer(ctx: Ctx, at: At, low: int, high: int | None = None) -> int:
    node = at.node
    if not (isinstance(node, ScalarNode) and tag_of(node) == INT):
        ctx.fail(at, f"expected an integer, got {describe(node)}")
    text = str(node.value).replace("_", "")
    try:
        value = int(text, 0)
    except ValueError:
        value = int(text, 10)  # YAML 1.2 reads "010" as decimal ten
    if value < low or (high is not None and value > high):
        ctx.fail(at, f"must be {_range(low, high)}, got {value}")
    return value


def _range(low: int, high: int | None) -> str:
    if high is not None:
        return f"between {low} and {high}"
    return "a positive integer" if low == 1 else f"at least {low}"


@described({"type": "number"})
def number(ctx: Ctx, at: At) -> Decimal:
    """A number, exactly as written (`0.1` is `Decimal("0.1")`)."""
    node = at.node
    tag = tag_of(node) if isinstance(node, ScalarNode) else ""
    if tag == INT:
        return Decimal(integer(ctx, at, -(2**63)))
    if tag != FLOAT:
        ctx.fail(at, f"expected a number, got {describe(node)}")
    try:
        value = Decimal(str(node.value).replace("_", ""))
    except InvalidOperation:
        ctx.fail(at, f"expected a number, got {describe(node)}")
    if not value.is_finite():
        ctx.fail(at, f"must be a finite number, got {node.value}")
    return value


def show(value: Decimal) -> str:
    """A decimal as people write it: 90, 33.33, 0.5 (not 9E+1 or 90.00)."""
    return format(value.normalize(), "f")


@described({"type": "number", "minimum": 0, "maximum": 100})
def percent(ctx: Ctx, at: At) -> Decimal:
    """A share or percentage: 0 to 100 with at most two decimals."""
    value = number(ctx, at)
    if not Decimal(0) <= value <= Decimal(100):
        ctx.fail(at, f"must be between 0 and 100, got {show(value)}")
    if value != value.quantize(Decimal("0.01")):
        ctx.fail(at, f"at most two decimals are allowed, got {show(value)}")
    return value


@described({"type": "number", "minimum": 0, "maximum": 1})
def fraction(ctx: Ctx, at: At) -> float:
    """A rate between 0 and 1."""
    value = number(ctx, at)
    if not Decimal(0) <= value <= Decimal(1):
        ctx.fail(at, f"must be between 0 and 1, got {show(value)}")
    return float(value)


@described({"type": "string", "pattern": f"^{DURATION_PATTERN}$"})
def duration(ctx: Ctx, at: At) -> float:
    """A positive duration like `500ms`, `2s`, `1m30s`, `1.5s`; returns seconds."""
    node = at.node
    if isinstance(node, ScalarNode) and tag_of(node) in (INT, FLOAT):
        ctx.fail(at, f'a duration needs a unit, e.g. "{node.value}s" (units: ms, s, m, h)')
    try:
        return parse_duration(string(ctx, at))
    except ValueError as exc:
        ctx.fail(at, str(exc))
