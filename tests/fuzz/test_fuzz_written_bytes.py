"""Fuzzing what translation writes as bytes: on every accepted set of the policy
fuzzer's generator (sticky services, instances, pins, every match kind, mirrors,
zero shares, incremental releases), the virtual hosts, clusters and assignments
written by hand are byte for byte their messages' deterministic serialization."""

from __future__ import annotations

import random

from turnout.policy import Endpoint, PolicySet, PolicySetError, parse_policies
from turnout.translate._clusters import service_resources
from turnout.translate._routes import virtual_host, virtual_host_bytes

from .test_fuzz_policy import _yaml
from .test_fuzz_policy import service as generated_service

SEEDS = 4000
COMPARATORS = [Endpoint("127.0.0.1", 7070)]


GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"


def _accepted(seeds: int) -> list[PolicySet]:
    """One generated service per set, on one gateway, undamaged; the accepted sets."""
    rng = random.Random(20261206)
    sets = []
    for _ in range(seeds):
        doc = generated_service(rng)
        doc.pop("gateways", None)
        try:
            sets.append(parse_policies({"gw.yaml": GATEWAY, "svc.yaml": _yaml(doc)}))
        except PolicySetError:
            continue
    return sets


def test_written_bytes_equal_the_messages_on_generated_sets() -> None:
    """For every service of every accepted generated set, with and without a
    comparator: virtual_host_bytes equals virtual_host serialized, and each cluster's
    and assignment's bytes equal its message serialized and carry its name."""
    services = [s for policies in _accepted(SEEDS) for s in policies.services]
    assert len(services) >= 300, "the generator makes too few valid services to be useful"
    kinds = {"sticky": 0, "rules": 0, "mirror": 0, "pin": 0}
    for service in services:
        kinds["sticky"] += service.sticky is not None
        kinds["rules"] += bool(service.rules)
        kinds["mirror"] += service.mirror is not None
        kinds["pin"] += service.pin_header is not None
        for comparing, comparators in ((False, []), (True, COMPARATORS)):
            written = virtual_host_bytes(service, comparing=comparing)
            message = virtual_host(service, comparing=comparing)
            assert written == message.SerializeToString(deterministic=True), service
            resources = service_resources(service, comparators)
            for cluster in resources.clusters:
                built = cluster.message()
                assert built.name == cluster.name, service
                assert built.SerializeToString(deterministic=True) == cluster.serialized, service
            for assignment in resources.assignments:
                built_assignment = assignment.message()
                assert built_assignment.cluster_name == assignment.name, service
                serialized = built_assignment.SerializeToString(deterministic=True)
                assert serialized == assignment.serialized, service
    assert all(count >= 10 for count in kinds.values()), kinds
