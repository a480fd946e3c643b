"""Failure detection: failed-probe counting, replicas' view of the primary, and confirmation by majority."""

import json

import pytest

from clusters.domain.detection import (
    channel_receiving,
    confirm_for_topology,
    confirm_primary_failure,
    confirmation_may_come,
    count_failures,
    failure_state,
    failure_streak_continues,
    next_probe_delay_seconds,
)
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import analyze
from tests.unit.domain_builders import R1, R2, P, channel, failed, healthy, inventory, primary, replica

pytestmark = pytest.mark.unit
DEFAULTS = ClusterSettings()
R3 = "127.0.0.1:3304"
LOST = dict(io_running="Connecting", last_io_errno=2003, last_io_error="Can't connect to server")
STALE = dict(io_running="Yes", last_heartbeat_age_seconds=5.0, heartbeat_period=1.0)


def lost(address):
    return replica(address, channel_fields=LOST)


def confirm(state, probes, **kwargs):
    return confirm_primary_failure(state, probes, DEFAULTS, primary=P, **kwargs)


@pytest.mark.parametrize(
    ("previous", "outcome", "expected"),
    [
        (0, "ok", 0),
        (2, "ok", 0),
        (0, "refused", 1),
        (2, "timeout", 3),
        (2, "error", 3),
        (2, "auth_failed", 0),
    ],
)
def test_count_failures(previous, outcome, expected):
    assert count_failures(previous, failed(P, outcome) if outcome != "ok" else primary()) == expected


def test_count_failures_keeps_the_count_without_a_probe():
    assert count_failures(2, None) == 2


@pytest.mark.parametrize(
    ("failures", "state"), [(0, "up"), (1, "suspect"), (2, "suspect"), (3, "down"), (7, "down")]
)
def test_suspect_after_one_failure_down_after_failcount(failures, state):
    assert failure_state(failures, DEFAULTS) == state


def test_reprobe_faster_than_the_tick_while_suspect():
    assert next_probe_delay_seconds(0, DEFAULTS) == 1.0
    assert next_probe_delay_seconds(1, DEFAULTS) == 0.2
    assert next_probe_delay_seconds(2, DEFAULTS) == 0.2
    assert next_probe_delay_seconds(3, DEFAULTS) == 1.0


@pytest.mark.parametrize(
    ("fields", "receiving"),
    [
        (dict(), True),
        (dict(io_running="Connecting"), False),
        (dict(io_running="No"), False),
        (dict(last_heartbeat_age_seconds=2.4), True),  # within 2 periods + 0.5 s grace
        (dict(last_heartbeat_age_seconds=2.6), False),
        (dict(last_heartbeat_age_seconds=None), True),  # unknown age: trust the IO thread
        (dict(heartbeat_period=None, last_heartbeat_age_seconds=50.0), True),  # unknown period
        (dict(heartbeat_period=30.0, last_heartbeat_age_seconds=50.0), True),
    ],
)
def test_channel_receiving(fields, receiving):
    assert channel_receiving(channel(P, **fields)) is receiving


def test_confirmed_when_every_replica_lost_the_primary():
    result = confirm("down", {R1: lost(R1), R2: lost(R2)})
    assert result.confirmed
    assert (result.replicas_expected, result.majority, result.replicas_agreeing) == (2, 2, 2)
    json.dumps(result.as_dict())


@pytest.mark.parametrize("state", ["suspect", "up", "auth_failed", "unknown"])
def test_not_confirmed_unless_dbpilot_says_down(state):
    result = confirm(state, {R1: lost(R1), R2: lost(R2)})
    assert not result.confirmed


def test_a_replica_still_receiving_vetoes_the_failover():
    result = confirm("down", {R1: lost(R1), R2: replica(R2)})
    assert not result.confirmed
    assert result.still_receiving == (R2,)
    assert "only dbpilot cannot reach it" in result.reason


def test_sigstopped_primary_is_confirmed_by_stale_heartbeats_while_io_still_says_yes():
    stopped = {R1: replica(R1, channel_fields=STALE), R2: replica(R2, channel_fields=STALE)}
    assert confirm("down", stopped).confirmed
    early = {
        R1: replica(R1, channel_fields=STALE),
        R2: replica(R2, channel_fields=dict(last_heartbeat_age_seconds=1.0)),
    }
    assert not confirm("down", early).confirmed


def test_minority_of_reachable_replicas_is_not_confirmation():
    result = confirm("down", {R1: lost(R1), R2: failed(R2, "timeout"), R3: failed(R3, "timeout")})
    assert not result.confirmed
    assert (result.replicas_reachable, result.replicas_agreeing, result.majority) == (1, 1, 2)
    assert "majority of 2" in result.reason


def test_half_is_not_a_majority():
    assert not confirm("down", {R1: lost(R1), R2: failed(R2)}).confirmed


def test_reaching_no_replica_is_not_confirmation():
    result = confirm("down", {R1: failed(R1, "timeout"), R2: None})
    assert not result.confirmed and result.replicas_reachable == 0


def test_majority_of_three_replicas_with_one_down():
    assert confirm("down", {R1: lost(R1), R2: lost(R2), R3: failed(R3)}).confirmed


def test_servers_in_maintenance_are_left_out_of_the_majority_but_can_veto():
    probes = {R1: lost(R1), R2: failed(R2)}
    assert confirm("down", probes, not_counted=[R2]).confirmed
    receiving = {R1: lost(R1), R2: replica(R2)}
    assert not confirm("down", receiving, not_counted=[R2]).confirmed


def test_a_replica_of_another_source_cannot_testify():
    probes = {R1: lost(R1), R2: replica(R2, source=R1), R3: lost(R3)}
    result = confirm("down", probes)
    assert result.confirmed  # 2 of 3 agree
    assert next(v for v in result.verdicts if v.address == R2).witness is False
    assert not confirm("down", {R1: lost(R1), R2: replica(R2, source=R1)}).confirmed


def test_one_server_cluster_cannot_confirm():
    result = confirm("down", {})
    assert not result.confirmed and result.replicas_expected == 0


def test_confirm_for_an_analysed_topology():
    probes = healthy(p=failed(P), r1=lost(R1), r2=lost(R2))
    failures = {P: 3}
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, failures, 0.0)
    assert confirm_for_topology(topology, probes, DEFAULTS).confirmed
    # dbpilot alone lost the primary: replicas still receive -> unreachable, never confirmed
    probes = healthy(p=failed(P, "timeout"))
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, failures, 0.0)
    assert topology.server(P).state == "unreachable"
    assert not confirm_for_topology(topology, probes, DEFAULTS).confirmed


def test_confirm_for_topology_leaves_maintenance_out():
    probes = healthy(p=failed(P), r1=lost(R1), r2=failed(R2))
    topology = analyze(inventory(P, R1, R2, maintenance={R2}), probes, DEFAULTS, {P: 3, R2: 3}, 0.0)
    result = confirm_for_topology(topology, probes, DEFAULTS)
    assert result.confirmed and result.replicas_expected == 1


def test_confirmation_may_still_come_from_replicas_whose_heartbeat_is_not_stale_yet():
    """A frozen primary: dbpilot says down, the replicas' IO threads still say Yes with a fresh heartbeat.
    Their heartbeats will go stale, so monitoring keeps re-probing instead of waiting for the next tick."""
    probes = healthy(p=failed(P, "timeout"))
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3}, 0.0)
    assert not confirm_for_topology(topology, probes, DEFAULTS).confirmed
    assert confirmation_may_come(topology, probes, DEFAULTS)


def test_no_confirmation_to_wait_for_once_confirmed_or_when_no_replica_can_tell():
    confirmed = healthy(p=failed(P), r1=lost(R1), r2=lost(R2))
    topology = analyze(inventory(P, R1, R2), confirmed, DEFAULTS, {P: 3}, 0.0)
    assert not confirmation_may_come(topology, confirmed, DEFAULTS)
    # Without a heartbeat period the IO thread state is the only witness: nothing will change by waiting.
    no_heartbeat = dict(io_running="Yes", heartbeat_period=None, last_heartbeat_age_seconds=None)
    probes = healthy(
        p=failed(P, "timeout"),
        r1=replica(R1, channel_fields=no_heartbeat),
        r2=replica(R2, channel_fields=no_heartbeat),
    )
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3}, 0.0)
    assert not confirmation_may_come(topology, probes, DEFAULTS)
    # Unreachable replicas cannot change their minds either.
    probes = healthy(p=failed(P, "timeout"), r1=failed(R1, "timeout"), r2=failed(R2, "timeout"))
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3, R1: 1, R2: 1}, 0.0)
    assert not confirmation_may_come(topology, probes, DEFAULTS)


def test_a_replica_that_received_something_since_the_last_round_ends_the_wait():
    """Re-probing a primary that only dbpilot lost: a replica's heartbeat arrived since the previous
    round (age 0), so the primary is alive and nothing will confirm its failure."""
    probes = healthy(
        p=failed(P, "timeout"), r1=replica(R1, channel_fields={"last_heartbeat_age_seconds": 0.0})
    )
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3}, 0.0)
    assert confirmation_may_come(topology, probes, DEFAULTS)  # the first round: it may be the last heartbeat
    assert not confirmation_may_come(topology, probes, DEFAULTS, reprobe_round=True)


def test_a_failure_streak_does_not_span_a_gap_of_more_than_three_ticks():
    assert failure_streak_continues(None, 100.0, 1.0)  # a new hot state: nothing to continue
    assert failure_streak_continues(97.0, 100.0, 1.0)  # three ticks: the same streak
    assert not failure_streak_continues(96.9, 100.0, 1.0)  # monitoring stalled: counts start over
    assert failure_streak_continues(85.0, 100.0, 5.0)  # measured in the cluster's ticks
