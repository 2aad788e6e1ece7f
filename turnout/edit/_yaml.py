"""Surgical YAML edits: change values in a file's text and leave every other byte alone.

ruamel.yaml composes the file into nodes that know where they were written (character
offsets of every scalar and flow collection). An edit is a list of `Splice`s over the
original text: a changed value's characters are replaced, a removed entry's line is cut
out, a new entry is inserted after the last one with the mapping's own indentation (or
appended inside the braces of a flow mapping). Nothing is re-serialized, so comments,
key order, quoting, blank lines and spacing outside the changed values stay exactly as
they were written: flow mappings stay flow, block mappings stay block.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import ReusedAnchorWarning
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._errors import EditError

_STR = "tag:yaml.org,2002:str"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
#: Words YAML 1.1 tools read as booleans (ruamel reads YAML 1.2, where they are strings).
_YAML11_BOOLS = {"y", "n", "yes", "no", "on", "off", "true", "false"}

#: A new value: a scalar already rendered as YAML text, or a mapping of such values.
Value = str | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Splice:
    """Replace text[start:end] with `text` (start == end: an insertion)."""

    start: int
    end: int
    text: str


def apply(text: str, splices: list[Splice]) -> str:
    """The text with every splice made. Splices must not overlap; an insertion at the
    end of a removed span lands where the span was."""
    ordered = sorted(splices, key=lambda s: (s.start, s.end), reverse=True)
    for earlier, later in zip(ordered[1:], ordered, strict=False):
        if earlier.end > later.start and earlier.start != earlier.end:
            raise EditError("internal error: overlapping edits")  # a bug, never user input
    for splice in ordered:
        text = text[: splice.start] + splice.text + text[splice.end :]
    return text


def documents(text: str) -> Iterator[Node]:
    """The file's documents as composed nodes (one per `---` section)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        yield from YAML(typ="rt").compose_all(text)


def find_document(text: str, kind: str, name: str) -> MappingNode | None:
    """The document of this `kind` whose `name` is `name`."""
    for node in documents(text):
        if not isinstance(node, MappingNode):
            continue
        kind_node, name_node = entry(node, "kind"), entry(node, "name")
        if scalar_text(kind_node) == kind and scalar_text(name_node) == name:
            return node
    return None


def entry(mapping: MappingNode, key: str) -> Node | None:
    """The value of `key` in a mapping node, or None."""
    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]
    return None


def scalar_text(node: Node | None) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def sequence_item(sequence: Node | None, key: str, value: str) -> MappingNode | None:
    """The mapping item of a sequence whose `key` is `value` (a rule by its name)."""
    if not isinstance(sequence, SequenceNode):
        return None
    for item in sequence.value:
        if isinstance(item, MappingNode) and scalar_text(entry(item, key)) == value:
            return item
    return None


# -- rendering values ---------------------------------------------------------------------


def plain_or_quoted(text: str) -> str:
    """`text` as a YAML string: plain when it reads back as that same string, else quoted
    (a version named `1`, `on` or `null` must be quoted to stay a string, for YAML 1.1
    readers too)."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML11_BOOLS:
        node = next(iter(documents(text)), None)
        if isinstance(node, ScalarNode) and str(node.tag) == _STR and node.value == text:
            return text
    return quoted(text)


def quoted(text: str) -> str:
    """A double-quoted YAML string (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def restyle(old: Node, text: str) -> str:
    """A new string value for `old`, written in old's quoting style where it had one."""
    if isinstance(old, ScalarNode) and old.style == "'" and "'" not in text:
        return f"'{text}'"
    if isinstance(old, ScalarNode) and old.style == '"':
        return quoted(text)
    return plain_or_quoted(text)


# -- editing mappings ---------------------------------------------------------------------


class Editor:
    """Collects splices over one file's text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.splices: list[Splice] = []

    def result(self) -> str:
        return apply(self.text, self.splices)

    def replace(self, node: Node, text: str) -> None:
        """Replace a scalar or flow collection's characters."""
        _check_editable(node)
        if isinstance(node, MappingNode | SequenceNode) and not node.flow_style:
            raise EditError(f"cannot replace a block collection at line {_line(node)} in place")
        if self.text[node.start_mark.index : node.end_mark.index] != text:
            self.splices.append(Splice(node.start_mark.index, node.end_mark.index, text))

    def set_mapping(self, value: Node, entries: Mapping[str, str]) -> None:
        """Make a mapping value hold exactly `entries` (rendered scalars), in place.

        A scalar (e.g. `traffic: instances`) becomes a flow mapping; an existing mapping
        keeps its style, the keys it keeps keep their place and spelling, removed keys
        go, new keys are added at its end."""
        if isinstance(value, MappingNode):
            current = [str(k.value) for k, _ in value.value if isinstance(k, ScalarNode)]
            updates: dict[str, Value | None] = {k: None for k in current if k not in entries}
            updates.update(entries)
            self.update(value, updates)
            return
        if isinstance(value, ScalarNode):
            self.replace(value, _flow(entries))
            return
        raise EditError(f"expected a mapping or a word at line {_line(value)}, found a list")

    def update(self, mapping: MappingNode, updates: Mapping[str, Value | None]) -> None:
        """Set (a rendered scalar, or a mapping of them), add or remove (None) entries."""
        _check_editable(mapping)
        existing = {str(k.value): (k, v) for k, v in mapping.value if isinstance(k, ScalarNode)}
        removed = [k for k, value in updates.items() if value is None and k in existing]
        added = {k: v for k, v in updates.items() if v is not None and k not in existing}
        for key, value in updates.items():
            if value is None or key not in existing:
                continue
            node = existing[key][1]
            if isinstance(value, str):
                self.replace(node, value)
            elif isinstance(node, MappingNode):
                self.update(node, value)
            else:
                self.replace(node, _flow(value))
        if mapping.flow_style:
            self._flow_entries(mapping, removed, added)
        else:
            self._block_entries(mapping, removed, added)

    # -- flow mappings: `{a: 1, b: 2}` ----------------------------------------------------

    def _flow_entries(
        self, mapping: MappingNode, removed: list[str], added: Mapping[str, Value]
    ) -> None:
        pairs = list(mapping.value)
        keys = [str(k.value) for k, _ in pairs]
        if not removed and not added:
            return
        if pairs and set(removed) >= set(keys):
            # Everything goes: write the braces anew, keeping their inner padding.
            inner = self.text[mapping.start_mark.index + 1 : mapping.end_mark.index - 1]
            pad = " " if inner.startswith(" ") else ""
            entries = ", ".join(f"{plain_or_quoted(k)}: {_inline(v)}" for k, v in added.items())
            self.splices.append(
                Splice(mapping.start_mark.index, mapping.end_mark.index, f"{{{pad}{entries}{pad}}}")
            )
            return
        kept = [index for index, key in enumerate(keys) if key not in removed]
        if kept and kept[0] > 0:  # `a: 1, b: 2, ` up to the first key that stays
            self.splices.append(
                Splice(pairs[0][0].start_mark.index, pairs[kept[0]][0].start_mark.index, "")
            )
        for index in range(kept[0] if kept else 0, len(pairs)):
            if keys[index] in removed:  # `, c: 3` after the previous value
                start, end = _end(pairs[index - 1][1]), _end(pairs[index][1])
                self.splices.append(Splice(start, end, ""))
        new = "".join(f", {plain_or_quoted(k)}: {_inline(v)}" for k, v in added.items())
        if not pairs:
            at = mapping.start_mark.index + 1
            self.splices.append(Splice(at, at, new.removeprefix(", ")))
        elif new:
            at = _end(pairs[-1][1])
            self.splices.append(Splice(at, at, new))

    # -- block mappings: one `key: value` per line ----------------------------------------

    def _block_entries(
        self, mapping: MappingNode, removed: list[str], added: Mapping[str, Value]
    ) -> None:
        pairs = list(mapping.value)
        for key_node, value_node in pairs:
            if str(key_node.value) in removed:
                start = self._line_start(key_node)
                self.splices.append(Splice(start, self._line_end(_end(value_node)), ""))
        if not added:
            return
        indent = " " * pairs[0][0].start_mark.column
        step = " " * self._indent_step(mapping)
        nl = self.newline
        lines: list[str] = []
        for key, value in added.items():
            if isinstance(value, str):
                lines.append(f"{indent}{plain_or_quoted(key)}: {value}{nl}")
                continue
            lines.append(f"{indent}{plain_or_quoted(key)}:{nl}")
            lines.extend(f"{indent}{step}{plain_or_quoted(k)}: {v}{nl}" for k, v in value.items())
        at = self._line_end(_end(_last(pairs[-1][1])))
        prefix = nl if at == len(self.text) and not self.text.endswith("\n") else ""
        self.splices.append(Splice(at, at, prefix + "".join(lines)))

    def _line_start(self, key: Node) -> int:
        start = self.text.rfind("\n", 0, key.start_mark.index) + 1
        if self.text[start : key.start_mark.index].strip():
            raise EditError(
                f"line {_line(key)}: cannot remove an entry that shares its line with another"
            )
        return start

    def _line_end(self, index: int) -> int:
        """Just past the newline ending the line that holds `index` (or the end of text)."""
        end = self.text.find("\n", index)
        return len(self.text) if end < 0 else end + 1

    def _indent_step(self, mapping: MappingNode) -> int:
        """How far this file indents a nested block mapping under its key (default 2)."""
        for key_node, value_node in mapping.value:
            if isinstance(value_node, MappingNode) and not value_node.flow_style:
                step = value_node.value[0][0].start_mark.column - key_node.start_mark.column
                if step > 0:
                    return int(step)
        return 2


def _flow(entries: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{plain_or_quoted(k)}: {v}" for k, v in entries.items()) + "}"


def _inline(value: Value) -> str:
    return value if isinstance(value, str) else _flow(value)


def _end(node: Node) -> int:
    return int(_last(node).end_mark.index)


def _last(node: Node) -> Node:
    """The node written last inside `node` (a block collection's end mark lies past
    trailing comments; its last scalar or flow collection does not)."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _last(last[1] if isinstance(last, tuple) else last)
    return node


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _check_editable(node: Node) -> None:
    """An anchored node may be shared through aliases: changing it would change them too."""
    if node.anchor is not None:
        raise EditError(
            f"line {_line(node)}: the value is anchored (&{node.anchor}) and may be shared "
            "through aliases; edit it by hand"
        )
