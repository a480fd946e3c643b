"""Placement over a pool of hosts: one server per host, spread over zones, within capacity, least loaded."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusters.domain.placement import HostLoad, PlacementError, place

pytestmark = pytest.mark.unit


def host(name, zone, instances=0, memory=0, cap=4, cap_mb=4096, down=False):
    return HostLoad(name, zone, cap, cap_mb, instances, memory, down)


def test_three_servers_go_to_three_hosts_in_three_zones_least_loaded_first():
    pool = [host("a1", "a", instances=2), host("a2", "a"), host("b1", "b"), host("c1", "c", instances=1)]
    assert place(pool, 3, 256) == ["a2", "b1", "c1"]


def test_down_and_full_hosts_take_nothing_and_the_error_says_why():
    pool = [host("a1", "a", down=True), host("b1", "b", instances=4), host("c1", "c", memory=4000)]
    with pytest.raises(PlacementError, match="no host has room"):
        place(pool, 1, 256)
    with pytest.raises(PlacementError, match="every host is down or already runs"):
        place([host("a1", "a", down=True)], 1, 256)


def test_a_new_replica_avoids_the_clusters_hosts_and_zones():
    pool = [host("a1", "a"), host("a2", "a"), host("b1", "b", instances=3)]
    assert place(pool, 1, 256, used_hosts=["a1"], used_zones=["a"]) == ["b1"]


def test_a_named_host_must_exist_be_up_and_free():
    pool = [host("a1", "a"), host("b1", "b", down=True)]
    assert place(pool, 1, 256, required_host="a1") == ["a1"]
    for name, message in (("zz", "no host named"), ("b1", "is down")):
        with pytest.raises(PlacementError, match=message):
            place(pool, 1, 256, required_host=name)
    with pytest.raises(PlacementError, match="one per host"):
        place(pool, 1, 256, used_hosts=["a1"], required_host="a1")


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 3), st.booleans()), min_size=1, max_size=8),
    st.integers(1, 5),
)
def test_never_two_servers_on_one_host_nor_a_down_or_full_host(hosts, count):
    pool = [host(f"h{i}", zone, instances=used, down=down) for i, (zone, used, down) in enumerate(hosts)]
    try:
        chosen = place(pool, count, 256)
    except PlacementError:
        return
    assert len(chosen) == len(set(chosen)) == count
    by_name = {h.name: h for h in pool}
    assert all(by_name[name].fits(256) for name in chosen)
