"""Surgical YAML edits: only the changed values' characters change, in any layout."""

from __future__ import annotations

import pytest
from ruamel.yaml.nodes import MappingNode, Node

from turnout.edit import EditError
from turnout.edit._yaml import Editor, documents, entry, plain_or_quoted, restyle


def root(text: str) -> MappingNode:
    node = next(iter(documents(text)))
    assert isinstance(node, MappingNode)
    return node


def child(text: str, *keys: str) -> Node:
    node: Node | None = root(text)
    for key in keys:
        assert isinstance(node, MappingNode)
        node = entry(node, key)
    assert node is not None
    return node


def set_mapping(text: str, entries: dict[str, str], *keys: str) -> str:
    editor = Editor(text)
    editor.set_mapping(child(text, *keys), entries)
    return editor.result()


def test_flow_mapping_value_change_touches_only_the_numbers() -> None:
    """Changing shares in a flow mapping keeps its spacing and the line's comment."""
    text = "a: 1\ntraffic: { v1: 95 ,  v2: 5 }   # keep\nb: 2\n"
    assert set_mapping(text, {"v1": "90", "v2": "10"}, "traffic") == (
        "a: 1\ntraffic: { v1: 90 ,  v2: 10 }   # keep\nb: 2\n"
    )


def test_flow_mapping_gains_and_loses_keys_in_place() -> None:
    """A removed key goes with its comma, a new key is appended inside the braces."""
    text = "traffic: {v1: 80, v2: 10, v3: 10}  # c\n"
    assert set_mapping(text, {"v1": "90", "v4": "10"}, "traffic") == (
        "traffic: {v1: 90, v4: 10}  # c\n"
    )
    assert set_mapping(text, {"v3": "100"}, "traffic") == "traffic: {v3: 100}  # c\n"
    assert set_mapping(text, {"v2": "50", "v3": "50"}, "traffic") == (
        "traffic: {v2: 50, v3: 50}  # c\n"
    )


def test_flow_mapping_replaced_whole_keeps_inner_padding() -> None:
    """When every key goes, the braces are rewritten with the same inner padding."""
    text = "traffic: { v2: 100 }\n"
    assert set_mapping(text, {"v1": "100"}, "traffic") == "traffic: { v1: 100 }\n"


def test_block_mapping_keeps_comments_and_indentation() -> None:
    """Block entries change value in place; removed lines go; new ones use the indent."""
    text = "traffic:\n    v1: 50   # half\n    # between\n    v2: 50\nnext: 1\n"
    assert set_mapping(text, {"v1": "90", "v3": "10"}, "traffic") == (
        "traffic:\n    v1: 90   # half\n    # between\n    v3: 10\nnext: 1\n"
    )


def test_scalar_becomes_a_flow_mapping() -> None:
    """`traffic: instances` becomes a flow mapping, the rest of the line untouched."""
    text = "traffic: instances  # canary\n"
    assert set_mapping(text, {"v1": "100"}, "traffic") == "traffic: {v1: 100}  # canary\n"


def test_new_nested_mapping_in_a_block_parent_is_block() -> None:
    """A new nested mapping under a block mapping is written block style, after the
    parent's last entry (even a nested one) and before trailing comments."""
    text = "incremental:\n  to: v2\n  analysis:\n    minRequests: 5\n# after\n"
    editor = Editor(text)
    node = child(text, "incremental")
    assert isinstance(node, MappingNode)
    editor.update(node, {"state": {"phase": "paused", "step": "0"}})
    assert editor.result() == (
        "incremental:\n"
        "  to: v2\n"
        "  analysis:\n"
        "    minRequests: 5\n"
        "  state:\n"
        "    phase: paused\n"
        "    step: 0\n"
        "# after\n"
    )


def test_new_nested_mapping_in_a_flow_parent_is_flow() -> None:
    """A new nested mapping inside a flow mapping is appended as a flow mapping."""
    text = "incremental: {to: v2, steps: [1, 100]}\n"
    editor = Editor(text)
    node = child(text, "incremental")
    assert isinstance(node, MappingNode)
    editor.update(node, {"state": {"phase": "paused"}})
    assert editor.result() == "incremental: {to: v2, steps: [1, 100], state: {phase: paused}}\n"


def test_crlf_and_missing_final_newline_are_kept() -> None:
    """A CRLF file stays CRLF, and a file without a final newline gets only what it needs."""
    text = "traffic:\r\n  v1: 100"
    assert set_mapping(text, {"v1": "90", "v2": "10"}, "traffic") == (
        "traffic:\r\n  v1: 90\r\n  v2: 10\r\n"
    )


def test_anchored_values_are_refused() -> None:
    """A value with an anchor may be shared through aliases, so it is not edited."""
    text = "traffic: &split {v1: 100}\nother: *split\n"
    with pytest.raises(EditError, match="anchored"):
        set_mapping(text, {"v1": "90", "v2": "10"}, "traffic")


@pytest.mark.parametrize(
    ("name", "written"),
    [("v1", "v1"), ("blue-green", "blue-green"), ("1", '"1"'), ("on", '"on"'), ("null", '"null"')],
)
def test_names_are_quoted_only_when_yaml_would_misread_them(name: str, written: str) -> None:
    """A version name is written plain unless YAML would read it as a number, bool or null."""
    assert plain_or_quoted(name) == written


def test_restyle_keeps_the_quoting_the_value_had() -> None:
    """A new value keeps the old value's quoting: single, double or plain."""
    text = "a: 'v1'\nb: \"v1\"\nc: v1\n"
    assert [restyle(child(text, key), "v2") for key in "abc"] == ["'v2'", '"v2"', "v2"]
