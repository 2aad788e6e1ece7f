"""The policy loader's fast path (libyaml through ruamel.yaml.clib, turnout/policy/_loader.py)
against ruamel's pure-Python parser: the same tags, the same readings, the same problems."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from turnout.policy import PolicySet, PolicySetError, _loader, parse_policies
from turnout.policy._read import tag_of

TAGGED = """\
plain: [v1, 95, 3.5, true, null, ~, 0x1F, 0o17, 1_000, .inf, yes, 2001-12-14, "", '']
quoted: ["v1", '95', "true"]
tagged: [!!str 95, !!int "7", !custom x, ! 5, !<tag:yaml.org,2002:str> 3]
maps: {a: {b: [1]}, ? [k]: v}
anchored: &x {c: 1}
merged: {<<: *x, d: 2}
"""


def _nodes(node: Node) -> list[Node]:
    found, stack, seen = [], [node], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        if isinstance(node, MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return found


def _outcome(sources: dict[str, str]) -> object:
    _loader._read_file.cache_clear()
    try:
        return parse_policies(sources)
    except PolicySetError as exc:
        return [str(p) for p in exc.problems]
    finally:
        _loader._read_file.cache_clear()


def test_every_node_has_the_tag_the_pure_parser_gives_it() -> None:
    """Plain, quoted, explicitly tagged, anchored and merged nodes composed by libyaml
    carry the tags ruamel's own parser gives them, and tag_of reads them as str() does."""
    fast = _loader._fast_documents(TAGGED)
    assert fast is not None
    pure = list(YAML(typ="rt").compose_all(TAGGED))
    fast_nodes, pure_nodes = _nodes(fast[0]), _nodes(pure[0])
    assert len(fast_nodes) == len(pure_nodes) > 40
    for a, b in zip(fast_nodes, pure_nodes, strict=True):
        assert (tag_of(a), a.start_mark.line, a.start_mark.column) == (
            str(b.tag),
            b.start_mark.line,
            b.start_mark.column,
        ), b
        assert tag_of(a) == str(a.tag)


def test_a_yaml_1_1_directive_is_honoured_on_both_parsers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A document under `%YAML 1.1` reads by YAML 1.1's rules with or without libyaml,
    as ruamel reads it: `0o10` is a string there, not the number eight."""
    sources = {"a.yaml": "%YAML 1.1\n---\nkind: Gateway\nname: public\nport: 0o10\n"}
    fast = _outcome(sources)
    monkeypatch.setattr(_loader, "_C_YAML", None)
    assert fast == _outcome(sources)
    assert fast == ['a.yaml:5: port: expected an integer, got the string "0o10"']
    assert isinstance(_outcome({"a.yaml": sources["a.yaml"][len("%YAML 1.1\n---\n") :]}), PolicySet)


def test_a_plain_scalar_tag_is_remembered_but_not_a_long_one() -> None:
    """The tag memo keeps short plain texts (repeated names, numbers) and not prose,
    so a set of long values does not grow it."""
    long = "x" * (_loader._PLAIN_TAGS_LONGEST + 1)
    documents = _loader._fast_documents(f"a: short-{id(long)}\nb: {long}\n")
    assert documents is not None
    assert f"short-{id(long)}" in _loader._PLAIN_TAGS
    assert long not in _loader._PLAIN_TAGS
