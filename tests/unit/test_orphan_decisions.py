"""The orphan sweep's decision (clusters.domain.orphans): which of a provider's instances to destroy."""

from __future__ import annotations

from clusters.domain.orphans import InstanceAge, Owners, orphans

GRACE = 600.0


def test_an_unowned_instance_past_the_grace_is_an_orphan():
    decision = orphans([InstanceAge("shop-a1b2c3-s2", 601.0)], Owners(), GRACE)
    assert decision.destroy == ["shop-a1b2c3-s2"]
    assert decision.owned == [] and decision.too_young == []


def test_an_instance_a_server_row_owns_is_kept_however_old():
    owners = Owners(names=frozenset({"shop-a1b2c3-s1"}))
    decision = orphans([InstanceAge("shop-a1b2c3-s1", 86400.0)], owners, GRACE)
    assert decision.destroy == [] and decision.owned == ["shop-a1b2c3-s1"]


def test_a_fresh_unowned_instance_is_left_for_the_job_that_may_be_recording_it():
    decision = orphans([InstanceAge("shop-a1b2c3-s3", 5.0)], Owners(), GRACE)
    assert decision.destroy == [] and decision.too_young == ["shop-a1b2c3-s3"]


def test_an_unknown_age_is_never_old_enough():
    decision = orphans([InstanceAge("shop-a1b2c3-s3", -1.0)], Owners(), 0.0)
    assert decision.destroy == [] and decision.too_young == ["shop-a1b2c3-s3"]


def test_an_active_job_owns_its_clusters_key_and_its_scratch_servers():
    owners = Owners(prefixes=("shop-a1b2c3-",), suffixes=("-j42",))
    instances = [
        InstanceAge("shop-a1b2c3-s4", 3600.0),  # created by the active job before it recorded it
        InstanceAge("verify-b7-j42", 3600.0),  # the active job's test restore
        InstanceAge("shop-ffffff-s1", 3600.0),  # another cluster's key: no active job
        InstanceAge("verify-b7-j41", 3600.0),  # a finished job's scratch server
    ]
    decision = orphans(instances, owners, GRACE)
    assert decision.owned == ["shop-a1b2c3-s4", "verify-b7-j42"]
    assert decision.destroy == ["shop-ffffff-s1", "verify-b7-j41"]


def test_the_grace_boundary_and_the_order_are_stable():
    instances = [InstanceAge("b", GRACE), InstanceAge("a", GRACE - 0.1), InstanceAge("c", GRACE + 1)]
    decision = orphans(instances, Owners(), GRACE)
    assert decision.destroy == ["b", "c"] and decision.too_young == ["a"]


def test_servers_are_destroyed_newest_first_within_each_cluster():
    from clusters.domain.orphans import highest_first, instance_number

    names = ["shop-a-s2", "shop-a-s10", "cart-b-s1", "shop-a-s1", "verify-b7-j42"]
    assert highest_first(names) == ["cart-b-s1", "shop-a-s10", "shop-a-s2", "shop-a-s1", "verify-b7-j42"]
    assert instance_number("shop-a-s10") == 10 and instance_number("verify-b7-j42") == 0
