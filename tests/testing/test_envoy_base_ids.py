"""Hot-restart base ids of the Envoys turnout.testing starts: unique within a process
and across processes running at once (turnout/testing/envoy.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from turnout.testing import envoy
from turnout.testing.envoy import EnvoyError, EnvoyProcess
from turnout.testing.net import free_port


def test_processes_get_disjoint_blocks_of_valid_base_ids() -> None:
    """Two live processes never share a base id (each pid has a block of its own) and
    every id fits Envoy's 32-bit base id times ten."""
    last_pid = 2**22 - 1  # Linux's largest pid_max
    assert envoy._base_id_block(last_pid)[-1] < 2**32 // 10
    assert envoy._base_id_block(1)[0] >= 10_000_000
    for pid in (1, 4242, last_pid - 1):
        assert set(envoy._base_id_block(pid)).isdisjoint(envoy._base_id_block(pid + 1))


def test_a_base_id_held_by_a_running_envoy_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every id of the process's block held by a running Envoy but one, the next
    Envoy gets that one; with all held, making one fails clearly."""
    block = envoy._base_id_block(os.getpid())
    held = set(block) - {block[37]}
    monkeypatch.setattr(envoy, "_running_base_ids", held)
    assert envoy._next_base_id() == block[37]
    held.add(block[37])
    with pytest.raises(EnvoyError, match="no base id is free"):
        envoy._next_base_id()


@pytest.mark.e2e
def test_the_eleventh_envoy_of_a_process_runs_beside_the_first(tmp_path: Path) -> None:
    """With the first Envoy still running, the eleventh EnvoyProcess made by the same
    process gets another base id and starts (it used to get the first one's id and
    fail to bind hot restart's domain socket)."""
    port = free_port()  # nothing serves xDS there: Envoy's admin comes up regardless
    first = EnvoyProcess(port, node_id="first", workdir=tmp_path).start(wait_ready=False)
    try:
        others = [EnvoyProcess(port, node_id=f"n{i}", workdir=tmp_path) for i in range(10)]
        eleventh = others[-1]
        with eleventh.start(wait_ready=False):
            assert eleventh.running
            assert first.running
        assert len({first.base_id, *(o.base_id for o in others)}) == 11
    finally:
        first.stop()
