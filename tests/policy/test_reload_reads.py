"""What a reload of a policy directory reads again (turnout/policy/_loader.py): only
files whose stat changed, yet never a stale text, and unchanged services as the very
same objects."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import pytest

from turnout.policy import _loader, load_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = """kind: Service
name: {name}
hosts: [{name}.example.com]
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
stable: v1
traffic: {{v1: {v1}, v2: {v2}}}
"""


def _write(directory: Path, name: str, v1: int, v2: int) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(SERVICE.format(name=name, v1=v1, v2=v2), encoding="utf-8")
    return path


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _shares(directory: Path, name: str) -> tuple[tuple[str, object], ...]:
    (service,) = [s for s in load_policies(directory).services if s.name == name]
    assert not isinstance(service.traffic, str)
    return tuple(service.traffic)


def test_a_same_size_rewrite_in_the_same_instant_is_read(tmp_path: Path) -> None:
    """A file rewritten with the same size and the same modification time as when it
    was last read (a second write within one timestamp tick) is still read again."""
    (tmp_path / "gateway.yaml").write_text(GATEWAY, encoding="utf-8")
    path = _write(tmp_path, "checkout", 95, 5)
    stamp = path.stat().st_mtime_ns
    assert _shares(tmp_path, "checkout")[1][1] == 5
    _write(tmp_path, "checkout", 90, 10)
    os.utime(path, ns=(stamp, stamp))  # same size, same mtime: only the racy rule sees it
    assert _shares(tmp_path, "checkout")[1][1] == 10


def test_an_old_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    """A file whose stat is unchanged and that was old when read is taken from the last
    read: its service is the very same object, while an edited file's is new."""
    (tmp_path / "gateway.yaml").write_text(GATEWAY, encoding="utf-8")
    for name in ("checkout", "search"):
        _age(_write(tmp_path, name, 95, 5), 3600)
    first = {s.name: s for s in load_policies(tmp_path).services}
    _write(tmp_path, "search", 50, 50)
    second = {s.name: s for s in load_policies(tmp_path).services}
    assert second["checkout"] is first["checkout"]
    assert second["search"] is not first["search"]
    assert second["search"].traffic != first["search"].traffic


def test_a_removed_file_is_gone_from_the_next_load(tmp_path: Path) -> None:
    """Deleting a policy file removes its service on the next load (nothing cached
    outlives its file)."""
    (tmp_path / "gateway.yaml").write_text(GATEWAY, encoding="utf-8")
    _age(_write(tmp_path, "checkout", 95, 5), 3600)
    _age(_write(tmp_path, "search", 95, 5), 3600)
    assert {s.name for s in load_policies(tmp_path).services} == {"checkout", "search"}
    (tmp_path / "search.yaml").unlink()
    assert {s.name for s in load_policies(tmp_path).services} == {"checkout"}


def test_unchanged_files_are_not_parsed_again_in_a_set_larger_than_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload after a one-file edit parses that file only, even when the set has more
    files than the loader's cache of readings holds (here shrunk to 2 for 5 files; a
    5,000-file set used to be parsed whole on every reload)."""
    parsed: list[str] = []
    unwrapped = _loader._read_file.__wrapped__

    def counted(file: str, text: str) -> object:
        parsed.append(Path(file).name)
        return unwrapped(file, text)

    monkeypatch.setattr(_loader, "_read_file", functools.lru_cache(maxsize=2)(counted))
    (tmp_path / "gateway.yaml").write_text(GATEWAY, encoding="utf-8")
    for name in ("a", "b", "c", "d"):
        _age(_write(tmp_path, name, 95, 5), 3600)
    _age(tmp_path / "gateway.yaml", 3600)
    first = {s.name: s for s in load_policies(tmp_path).services}
    assert len(parsed) == 5
    parsed.clear()
    _write(tmp_path, "c", 50, 50)
    second = {s.name: s for s in load_policies(tmp_path).services}
    assert parsed == ["c.yaml"]
    assert all(second[name] is first[name] for name in ("a", "b", "d"))
    assert second["c"].traffic != first["c"].traffic


def test_reading_services_leaves_nothing_behind_in_the_schema_registry() -> None:
    """Reading documents registers no reader for `turnout schema` (a reader made per
    document stayed registered for good: 2,000 per 2,000-file load, for a server's
    lifetime)."""
    from turnout.policy import _read, parse_policies

    before = len(_read._SCHEMAS)
    for i in range(20):
        parse_policies({"gw.yaml": GATEWAY, "s.yaml": SERVICE.format(name=f"s{i}", v1=95, v2=5)})
    assert len(_read._SCHEMAS) == before
