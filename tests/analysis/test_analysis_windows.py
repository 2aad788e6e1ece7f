"""Per-proxy counter deltas and the sliding windows summed across proxies."""

from __future__ import annotations

import pytest

from turnout.analysis import CounterDeltas, Histogram, WindowStore

CLUSTERS = {"checkout_v1": ("checkout", "v1"), "checkout_v2": ("checkout", "v2")}


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_first_report_is_a_baseline() -> None:
    """What a proxy counted before turnout heard from it belongs to no window."""
    deltas = CounterDeltas()
    assert deltas.update("e1", {"a": 500.0}, uptime=100, at=1.0) is None
    assert deltas.update("e1", {"a": 530.0}, uptime=101, at=2.0) == {"a": 30.0}


def test_unchanged_counters_give_no_delta() -> None:
    """Only counters that moved appear in the increments."""
    deltas = CounterDeltas()
    deltas.update("e1", {"a": 5.0, "b": 7.0}, uptime=1, at=1.0)
    assert deltas.update("e1", {"a": 5.0, "b": 9.0}, uptime=2, at=2.0) == {"b": 2.0}


def test_counter_reset_counts_the_new_value() -> None:
    """A counter lower than before was reset: its increment is its whole value."""
    deltas = CounterDeltas()
    deltas.update("e1", {"a": 500.0, "b": 10.0}, uptime=None, at=1.0)
    assert deltas.update("e1", {"a": 20.0, "b": 12.0}, uptime=None, at=2.0) == {"a": 20.0, "b": 2.0}


def test_uptime_going_down_marks_a_restart() -> None:
    """After a restart every counter counts from zero, even one above its old value."""
    deltas = CounterDeltas()
    deltas.update("e1", {"a": 5.0, "b": 10.0}, uptime=300, at=1.0)
    assert deltas.update("e1", {"a": 8.0, "b": 3.0}, uptime=2, at=2.0) == {"a": 8.0, "b": 3.0}


def test_new_counter_from_known_proxy_counts_whole() -> None:
    """Envoy reports a counter once used, so one first seen was zero in the last report."""
    deltas = CounterDeltas()
    deltas.update("e1", {"a": 5.0}, uptime=1, at=1.0)
    assert deltas.update("e1", {"a": 5.0, "errors": 3.0}, uptime=2, at=2.0) == {"errors": 3.0}


def test_reconnect_keeps_the_baseline_and_proxies_are_separate() -> None:
    """A node's baseline survives its stream (the gap is covered by the next report),
    and two proxies' counters never mix."""
    deltas = CounterDeltas()
    deltas.update("e1", {"a": 10.0}, uptime=1, at=1.0)
    deltas.update("e2", {"a": 1000.0}, uptime=1, at=1.0)
    # e1's stream broke; it reconnects later having counted 25 more
    assert deltas.update("e1", {"a": 35.0}, uptime=9, at=9.0) == {"a": 25.0}
    assert deltas.update("e2", {"a": 1001.0}, uptime=9, at=9.0) == {"a": 1.0}
    assert deltas.nodes == 2


def test_stale_nodes_are_forgotten() -> None:
    """A node silent for longer than forget_after starts again from a baseline."""
    deltas = CounterDeltas(forget_after=60.0)
    deltas.update("old", {"a": 1.0}, uptime=1, at=0.0)
    deltas.update("new", {"a": 1.0}, uptime=1, at=100.0)
    assert deltas.nodes == 1
    assert deltas.update("old", {"a": 9.0}, uptime=2, at=101.0) is None


def test_window_sums_slots_and_proxies() -> None:
    """Figures over a window add every proxy's increments in the slots it overlaps."""
    clock = Clock()
    store = WindowStore(CLUSTERS, clock=clock)
    store.add("checkout_v2", "e1", 1000.2, requests=10, errors=1)
    store.add("checkout_v2", "e2", 1000.7, requests=5, errors=2, resets=1)
    store.add("checkout_v2", "e1", 1003.5, requests=7)
    store.add("checkout_v1", "e1", 1003.5, requests=100)
    figures = store.figures_now("checkout", "v2", since=1000.0, until=1004.0)
    assert (figures.requests, figures.errors, figures.resets) == (22, 3, 1)
    assert figures.proxies == 2
    assert figures.clusters == ("checkout_v2",)
    assert (figures.service, figures.version) == ("checkout", "v2")
    later = store.figures_now("checkout", "v2", since=1001.0, until=1004.0)
    assert later.requests == 7
    assert later.proxies == 1  # only e1 reported since 1001


def test_window_edges_round_outwards_to_the_resolution() -> None:
    """A slot that overlaps [since, until) counts whole; one outside does not."""
    store = WindowStore(CLUSTERS, resolution=5.0, clock=Clock())
    store.add("checkout_v1", "e1", 1002.0, requests=1)  # slot [1000, 1005)
    store.add("checkout_v1", "e1", 1007.0, requests=10)  # slot [1005, 1010)
    assert store.figures_now("checkout", "v1", 1004.0, 1006.0).requests == 11
    assert store.figures_now("checkout", "v1", 1005.0, 1010.0).requests == 10
    assert store.figures_now("checkout", "v1", 1010.0, 1020.0).requests == 0


def test_until_defaults_to_now() -> None:
    """Without `until` the window ends at the store's clock."""
    clock = Clock(2000.0)
    store = WindowStore(CLUSTERS, clock=clock)
    store.add("checkout_v1", "e1", 1999.5, requests=4)
    figures = store.figures_now("checkout", "v1", 1990.0)
    assert figures.until == 2000.0
    assert figures.requests == 4


def test_retention_drops_old_slots() -> None:
    """Slots older than the retention are dropped as newer ones arrive."""
    store = WindowStore(CLUSTERS, resolution=1.0, retention=10.0, clock=Clock())
    store.add("checkout_v1", "e1", 1000.0, requests=1)
    store.add("checkout_v1", "e1", 1009.0, requests=2)
    assert store.figures_now("checkout", "v1", 0.0, 2000.0).requests == 3
    store.add("checkout_v1", "e1", 1010.0, requests=4)
    assert store.figures_now("checkout", "v1", 0.0, 2000.0).requests == 6


def test_latency_histograms_add_up() -> None:
    """Latency histograms from several proxies and slots merge into one."""
    bounds = (0.01, 0.1)
    store = WindowStore(CLUSTERS, clock=Clock())
    store.add("checkout_v1", "e1", 1000.0, latency=Histogram(bounds, (3, 1, 0)))
    store.add("checkout_v1", "e2", 1000.0, latency=Histogram(bounds, (1, 0, 2)))
    store.add("checkout_v1", "e1", 1001.0, latency=Histogram(bounds, (0, 4, 0)))
    latency = store.figures_now("checkout", "v1", 999.0, 1002.0).latency
    assert latency.bounds == bounds
    assert latency.counts == (4, 5, 2)


def test_unmapped_clusters_are_not_kept() -> None:
    """Only clusters the map gives a version to are stored (not turnout_xds, not pools)."""
    store = WindowStore(CLUSTERS, clock=Clock())
    assert not store.add("turnout_xds", "e1", 1000.0, requests=5)
    assert store.add("checkout_v1", "e1", 1000.0, requests=5)
    assert store.clusters() == ["checkout_v1"]
    assert store.reporters() == {"e1": 1000.0}


def test_callable_map_follows_changes() -> None:
    """A callable map is asked each time, so a version added later is found."""
    known: dict[str, tuple[str, str]] = {}
    store = WindowStore(known.get, clock=Clock())
    assert not store.add("search_v9", "e1", 1000.0, requests=1)
    known["search_v9"] = ("search", "v9")
    assert store.add("search_v9", "e1", 1000.0, requests=2)
    assert store.figures_now("search", "v9", 990.0, 1001.0).requests == 2


def test_several_clusters_of_one_version_are_summed() -> None:
    """If the map gives two clusters the same version, its figures add both."""
    store = WindowStore({"a": ("s", "v1"), "b": ("s", "v1")}, clock=Clock())
    store.add("a", "e1", 1000.0, requests=1)
    store.add("b", "e1", 1000.0, requests=2)
    figures = store.figures_now("s", "v1", 990.0, 1001.0)
    assert figures.requests == 3
    assert figures.clusters == ("a", "b")


async def test_figures_is_the_async_source_interface() -> None:
    """`await store.figures(...)` answers what figures_now does."""
    store = WindowStore(CLUSTERS, clock=Clock())
    store.add("checkout_v1", "e1", 1000.0, requests=3)
    figures = await store.figures("checkout", "v1", 990.0, 1001.0)
    assert figures.requests == 3


def test_store_validates_resolution() -> None:
    """A resolution must be positive and no longer than the retention."""
    with pytest.raises(ValueError, match="resolution"):
        WindowStore(CLUSTERS, resolution=0.0)
    with pytest.raises(ValueError, match="resolution"):
        WindowStore(CLUSTERS, resolution=10.0, retention=5.0)


def test_node_figures_sum_the_named_proxies_over_every_known_cluster() -> None:
    """Per-proxy figures: the named nodes' requests and errors over every mapped
    cluster in the window, other proxies, unknown clusters and older slots left out."""
    clock = Clock(1000.0)
    store = WindowStore(CLUSTERS, clock=clock)
    store.add("checkout_v1", "canary-1", 990.0, requests=50, errors=50)
    store.add("checkout_v1", "canary-1", 1000.0, requests=10, errors=1)
    store.add("checkout_v2", "canary-1", 1001.0, requests=10, errors=5)
    store.add("checkout_v1", "canary-2", 1001.0, requests=4)
    store.add("checkout_v1", "edge-1", 1001.0, requests=100, errors=2)
    store.add("unknown", "canary-1", 1001.0, requests=1000, errors=1000)
    clock.now = 1002.0
    canary = store.node_figures(["canary-1", "canary-2", "absent"], 999.0, name="canary")
    assert (canary.requests, canary.errors, canary.proxies) == (24, 6, 2)
    assert canary.name == "canary"
    rest = store.node_figures(["edge-1"], 999.0)
    assert (rest.requests, rest.errors) == (100, 2)
