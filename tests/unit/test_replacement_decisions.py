"""Which lost server of a provisioned cluster is replaced, and when never."""

from __future__ import annotations

from clusters.domain.replacement import ServerHealth, choose_replacement, down_since


def cluster(*, primary_state="up", down_for=(400.0, None), maintenance=False):
    servers = [ServerHealth(1, "p:1", primary_state, True, False, None)]
    for i, seconds in enumerate(down_for, start=2):
        state = "down" if seconds is not None else "up"
        servers.append(ServerHealth(i, f"r:{i}", state, False, maintenance, seconds))
    return servers


def decide(servers, **kw):
    kw.setdefault("provisioned", True)
    kw.setdefault("replace_after_seconds", 300)
    kw.setdefault("paused", False)
    kw.setdefault("job_active", False)
    return choose_replacement(servers, **kw)


def test_a_replica_down_longer_than_the_setting_is_replaced():
    assert decide(cluster()).server_id == 2


def test_the_one_down_longest_goes_first_one_at_a_time():
    assert decide(cluster(down_for=(400.0, 900.0))).server_id == 3
    assert decide(cluster(), job_active=True).server_id is None


def test_never_too_early_paused_registered_or_disabled():
    assert decide(cluster(down_for=(100.0, None))).server_id is None
    assert "paused" in decide(cluster(), paused=True).reason
    assert "registered" in decide(cluster(), provisioned=False).reason
    assert decide(cluster(), replace_after_seconds=0).server_id is None


def test_never_without_a_live_primary_or_for_a_server_in_maintenance():
    assert "clone from" in decide(cluster(primary_state="down")).reason
    assert decide(cluster(maintenance=True)).server_id is None


def test_a_recent_failure_is_not_retried_at_once():
    assert decide(cluster(), recently_failed=[2]).server_id is None


def test_down_since_keeps_the_start_of_an_outage_and_forgets_servers_back_up():
    first = down_since({}, {"a": "down", "b": "up"}, 100.0)
    assert first == {"a": 100.0}
    assert down_since(first, {"a": "down", "b": "down"}, 130.0) == {"a": 100.0, "b": 130.0}
    assert down_since(first, {"a": "up"}, 160.0) == {}
