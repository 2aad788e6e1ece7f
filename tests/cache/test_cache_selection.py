"""Selections of named resources and interned name sets: computed once per snapshot,
shared by every stream asking for the same names."""

from __future__ import annotations

from turnout.cache import ENDPOINT_TYPE, content_version, intern_names
from turnout.testing import make_snapshot


def test_interned_name_sets_are_one_object() -> None:
    """Equal name sets intern to the same object, whatever their order or container."""
    one = intern_names(["b", "a"])
    two = intern_names(("a", "b", "a"))
    assert one is two
    assert one == frozenset({"a", "b"})
    assert intern_names(["a"]) is not one


def test_select_returns_the_named_resources_and_their_hash() -> None:
    """A selection holds exactly the existing named resources and their content version."""
    snapshot = make_snapshot({"a": 50, "b": 50}, extra_clusters=["c"])
    selection = snapshot.select(ENDPOINT_TYPE, intern_names(["a", "c", "missing"]))
    assert sorted(selection.resources) == ["a", "c"]
    current = snapshot.resources(ENDPOINT_TYPE)
    assert selection.version == content_version([current["a"], current["c"]])


def test_select_is_computed_once_per_snapshot_and_names() -> None:
    """Asking twice for the same names gives the very same selection object; another
    snapshot computes its own."""
    snapshot = make_snapshot({"a": 50, "b": 50})
    names = intern_names(["a", "b"])
    assert snapshot.select(ENDPOINT_TYPE, names) is snapshot.select(ENDPOINT_TYPE, names)
    other = make_snapshot({"a": 50, "b": 50})
    mine, theirs = snapshot.select(ENDPOINT_TYPE, names), other.select(ENDPOINT_TYPE, names)
    assert theirs is not mine
    assert theirs.version == mine.version


def test_the_whole_type_selected_hashes_as_the_type_version() -> None:
    """Selecting every name of a type gives the type's version."""
    snapshot = make_snapshot({"a": 50, "b": 50})
    names = intern_names(snapshot.resources(ENDPOINT_TYPE))
    assert snapshot.select(ENDPOINT_TYPE, names).version == snapshot.type_version(ENDPOINT_TYPE)
