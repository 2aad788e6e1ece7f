"""Incremental translation: a one-service change re-translates that service only, and
the result is byte-identical to translating the whole set afresh."""

from __future__ import annotations

import dataclasses

from google.protobuf.message import Message

from turnout.policy import PolicySet
from turnout.translate import Resources, Translator, translate

from ._policies import comprehensive, split


def _with_traffic(policies: PolicySet, name: str, *shares: tuple[str, str]) -> PolicySet:
    services = tuple(
        dataclasses.replace(s, traffic=split(*shares)) if s.name == name else s
        for s in policies.services
    )
    return dataclasses.replace(policies, services=services)


def _bytes(resources: Resources) -> dict[str, list[bytes]]:
    def serialize(messages: tuple[Message, ...]) -> list[bytes]:
        return [m.SerializeToString(deterministic=True) for m in messages]

    return {
        "clusters": serialize(resources.clusters),
        "endpoints": serialize(resources.endpoints),
        "listeners": serialize(resources.listeners),
        "routes": serialize(resources.routes),
        "scoped_routes": serialize(resources.scoped_routes),
    }


def test_a_one_service_change_translates_one_service() -> None:
    """After a first set, changing one service's traffic translates that service only and
    re-assembles only the route configurations it is in: its gateway's one, or on a
    scoped gateway its host names' ones."""
    translator = Translator()
    before = comprehensive()
    translator.translate(before)
    assert translator.translated_services == len(before.services)
    # internal: its one and catalog's standby scope; public (scoped): one per host
    # name (catalog, checkout).
    assert translator.assembled_routes == 4

    after = _with_traffic(before, "search", ("v1", "70"), ("v2", "30"))
    translator.translate(after)
    assert translator.translated_services == len(before.services) + 1
    assert translator.assembled_routes == 5  # search is on internal only, with no scope

    assembled = translator.assembled_route_bytes
    catalog = _with_traffic(after, "checkout", ("v1", "50"), ("v2", "50"))
    translator.translate(catalog)
    assert translator.assembled_routes == 6  # public/checkout.example.com only
    (checkout,) = (
        r for r in translator.translate(catalog).route_parts("public") if "checkout" in r.name
    )
    assert translator.assembled_route_bytes - assembled == len(checkout.serialized)


def test_incremental_result_is_byte_identical_to_a_full_translation() -> None:
    """What an incremental translation gives serializes byte for byte like a fresh
    translation of the same set, for every gateway selection."""
    translator = Translator()
    before = comprehensive()
    translator.translate(before)
    after = _with_traffic(before, "catalog", ("v1", "60"), ("v2", "40"))
    incremental = translator.translate(after)
    fresh = translate(after)
    for gateways in (("internal",), ("public",), ("internal", "public")):
        assert _bytes(incremental.select(gateways)) == _bytes(fresh.select(gateways))
    for gateway in fresh.gateways:
        expected = [r.SerializeToString(deterministic=True) for r in fresh.select([gateway]).routes]
        assert [r.serialized for r in incremental.route_parts(gateway)] == expected


def test_an_unchanged_set_reuses_every_message() -> None:
    """Translating an equal set again translates nothing and hands back the same
    message objects (so caches keyed by them stay warm)."""
    translator = Translator()
    first = translator.translate(comprehensive())
    work = (translator.translated_services, translator.assembled_routes)
    second = translator.translate(comprehensive())
    assert (translator.translated_services, translator.assembled_routes) == work
    one, two = first.select(first.gateways), second.select(second.gateways)
    assert all(a is b for a, b in zip(one.clusters, two.clusters, strict=True))
    pairs = zip(first.route_parts("public"), second.route_parts("public"), strict=True)
    assert all(a is b for a, b in pairs)


def test_a_removed_service_leaves_the_routes_of_its_gateways() -> None:
    """Removing a service re-assembles its gateways' routes without its virtual host."""
    translator = Translator()
    before = comprehensive()
    translator.translate(before)
    after = dataclasses.replace(
        before, services=tuple(s for s in before.services if s.name != "catalog")
    )
    incremental = translator.translate(after)
    fresh = translate(after)
    assert _bytes(incremental.all) == _bytes(fresh.all)
    hosts = [v.name for r in incremental.route_parts("public") for v in r.virtual_hosts]
    assert hosts == ["checkout"]
