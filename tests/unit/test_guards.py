"""Named guards of automatic and manual failover, and switchover preconditions."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from clusters.domain import constants as c
from clusters.domain.detection import confirm_primary_failure
from clusters.domain.election import Candidate, candidates_from_topology, elect
from clusters.domain.guards import (
    all_ok,
    automatic_failover_checks,
    blocking,
    long_running_checks,
    manual_failover_checks,
    switchover_checks,
)
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import analyze
from tests.unit.domain_builders import R1, R2, P, healthy, inventory, primary, replica

pytestmark = pytest.mark.unit
AUTO = ClusterSettings(failover_mode="automatic")
NOW = 1_000_000.0
GOOD = elect([Candidate(R1, gtid_current_pos="0-1-100", lag=0.0)], AUTO, for_failover=True)


def auto(**overrides):
    values = dict(
        settings=AUTO,
        failover_armed=True,
        platform_paused=False,
        now=NOW,
        last_observation_at=NOW - 0.5,
        failovers=[],
        election=GOOD,
        primary_maintenance=False,
    )
    values.update(overrides)
    return automatic_failover_checks(**values)


def failing(checks):
    return [check.name for check in blocking(checks)]


def test_every_guard_passes_and_is_named():
    checks = auto()
    assert all_ok(checks)
    assert [ch.name for ch in checks] == [
        c.GUARD_FAILOVER_MODE,
        c.GUARD_FAILOVER_ARMED,
        c.GUARD_PLATFORM_PAUSED,
        c.GUARD_CLUSTER_PAUSED,
        c.GUARD_FAILOVER_LIMIT,
        c.GUARD_FAILOVER_MIN_INTERVAL,
        c.GUARD_OBSERVATION_FRESH,
        c.GUARD_MAINTENANCE,
        c.GUARD_CANDIDATE,
        c.GUARD_ERRANT,
    ]
    json.dumps([ch.as_dict() for ch in checks])


@pytest.mark.parametrize(
    ("overrides", "guard"),
    [
        (dict(settings=ClusterSettings()), c.GUARD_FAILOVER_MODE),
        (dict(failover_armed=False), c.GUARD_FAILOVER_ARMED),
        (dict(platform_paused=True), c.GUARD_PLATFORM_PAUSED),
        (dict(settings=replace(AUTO, paused=True)), c.GUARD_CLUSTER_PAUSED),
        (dict(failovers=[NOW - 100, NOW - 200, NOW - 300]), c.GUARD_FAILOVER_LIMIT),
        (dict(failovers=[NOW - 30]), c.GUARD_FAILOVER_MIN_INTERVAL),
        (dict(last_observation_at=NOW - 3.5), c.GUARD_OBSERVATION_FRESH),
        (dict(last_observation_at=None), c.GUARD_OBSERVATION_FRESH),
        (dict(primary_maintenance=True), c.GUARD_MAINTENANCE),
        (dict(election=elect([], AUTO, for_failover=True)), c.GUARD_CANDIDATE),
    ],
)
def test_each_guard_blocks_alone(overrides, guard):
    assert failing(auto(**overrides)) == [guard]


def test_failover_limit_counts_only_the_window_and_zero_means_no_limit():
    old = [NOW - 4000, NOW - 5000, NOW - 6000]
    assert all_ok(auto(failovers=old))
    assert all_ok(auto(failovers=[NOW - 100, NOW - 200, NOW - 300], settings=replace(AUTO, failover_limit=0)))
    detail = next(ch for ch in auto(failovers=[NOW - 100, NOW - 200, NOW - 300]) if not ch.ok).detail
    assert "3 automatic failover(s)" in detail and "reset" in detail


def test_every_blocking_guard_is_reported_not_only_the_first():
    checks = auto(
        settings=replace(ClusterSettings(), paused=True), failover_armed=False, platform_paused=True
    )
    assert failing(checks) == [
        c.GUARD_FAILOVER_MODE,
        c.GUARD_FAILOVER_ARMED,
        c.GUARD_PLATFORM_PAUSED,
        c.GUARD_CLUSTER_PAUSED,
    ]


def test_guards_accept_datetimes():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    checks = auto(
        now=now, last_observation_at=now - timedelta(seconds=1), failovers=[now - timedelta(seconds=10)]
    )
    assert failing(checks) == [c.GUARD_FAILOVER_MIN_INTERVAL]


def test_errant_replica_that_is_skipped_safely_passes():
    errant = Candidate(
        R1, gtid_current_pos="0-2-101", gtid_binlog_state="0-1-100,0-2-101", errant=("0-2-101",), lag=0.0
    )
    election = elect([errant, Candidate(R2, gtid_current_pos="0-1-100", lag=0.0)], AUTO, for_failover=True)
    checks = auto(election=election)
    assert all_ok(checks)
    assert R1 in next(ch for ch in checks if ch.name == c.GUARD_ERRANT).detail


def test_errant_best_candidate_holding_transactions_others_lack_blocks():
    errant = Candidate(
        R1, gtid_current_pos="0-2-101", gtid_binlog_state="0-1-100,0-2-101", errant=("0-2-101",), lag=0.0
    )
    election = elect([errant, Candidate(R2, gtid_current_pos="0-1-97", lag=0.0)], AUTO, for_failover=True)
    assert election.winner == R2
    assert failing(auto(election=election)) == [c.GUARD_ERRANT]


def test_confirmation_is_part_of_the_guards_when_given():
    unconfirmed = confirm_primary_failure("down", {R1: replica(R1)}, AUTO, primary=P)
    checks = auto(confirmation=unconfirmed)
    assert failing(checks) == [c.GUARD_PRIMARY_FAILURE]
    assert "still receive" in checks[0].detail


# --- manual failover ---


def manual(state, probes):
    confirmation = confirm_primary_failure(state, probes, AUTO, primary=P)
    return manual_failover_checks(
        settings=AUTO,
        now=NOW,
        last_observation_at=NOW,
        primary_state=state,
        confirmation=confirmation,
        election=GOOD,
    )


def test_manual_failover_of_a_live_primary_is_refused():
    assert failing(manual("up", {R1: replica(R1)})) == [c.GUARD_PRIMARY_DEAD]
    assert "switchover" in blocking(manual("unreachable", {R1: replica(R1)}))[0].detail


def test_manual_failover_need_not_wait_for_failcount_but_replicas_must_have_lost_the_primary():
    lost = replica(R1, channel_fields=dict(io_running="Connecting"))
    assert all_ok(manual("suspect", {R1: lost}))
    assert failing(manual("suspect", {R1: replica(R1)})) == [c.GUARD_PRIMARY_DEAD]


def test_manual_failover_ignores_mode_pause_and_limits():
    settings = replace(ClusterSettings(), paused=True)
    lost = replica(R1, channel_fields=dict(io_running="No"))
    confirmation = confirm_primary_failure("down", {R1: lost}, settings, primary=P)
    checks = manual_failover_checks(
        settings=settings,
        now=NOW,
        last_observation_at=NOW,
        primary_state="down",
        confirmation=confirmation,
        election=GOOD,
    )
    assert all_ok(checks)


def test_manual_failover_of_a_frozen_primary_relies_on_a_fresh_confirmation_by_the_ticks():
    """The API's process cannot measure heartbeat ages: a frozen primary's replicas show IO thread Yes
    and no age. A recent confirmation by the ticks vouches for exactly those; an old one, or a replica
    seen receiving (an age), still refuses."""
    frozen = replica(R1, channel_fields=dict(io_running="Yes", last_heartbeat_age_seconds=None))
    confirmation = confirm_primary_failure("down", {R1: frozen}, AUTO, primary=P)

    def checks(**kwargs):
        return manual_failover_checks(
            settings=AUTO,
            now=NOW,
            last_observation_at=NOW,
            primary_state="down",
            confirmation=confirmation,
            election=GOOD,
            **kwargs,
        )

    assert failing(checks()) == [c.GUARD_PRIMARY_DEAD]
    vouched = checks(age_unknown=[R1], tick_confirmed_age=1.5)
    assert all_ok(vouched) and "confirmed its failure 1.5s ago" in vouched[0].detail
    assert failing(checks(age_unknown=[R1], tick_confirmed_age=30.0)) == [c.GUARD_PRIMARY_DEAD]
    receiving = replica(R1, channel_fields=dict(io_running="Yes", last_heartbeat_age_seconds=0.2))
    seen = confirm_primary_failure("down", {R1: receiving}, AUTO, primary=P)
    assert failing(
        manual_failover_checks(
            settings=AUTO,
            now=NOW,
            last_observation_at=NOW,
            primary_state="down",
            confirmation=seen,
            election=GOOD,
            age_unknown=[],
            tick_confirmed_age=1.0,
        )
    ) == [c.GUARD_PRIMARY_DEAD]


# --- switchover ---


def switchover(probes, settings=AUTO, requested=None, **flags):
    topology = analyze(inventory(P, R1, R2, **flags), probes, settings, {}, NOW)
    election = elect(candidates_from_topology(topology, probes), settings, requested=requested)
    return switchover_checks(topology, probes, settings, election)


def test_switchover_preconditions_pass_on_a_healthy_cluster():
    checks = switchover(healthy())
    assert all_ok(checks)
    assert [ch.name for ch in checks] == [
        c.CHECK_PRIMARY_UP,
        "upstream_channel",
        c.CHECK_REPLICATION_SETTINGS,
        c.CHECK_REPLICATION_STATE,
        c.CHECK_REPLICA_LAG,
        c.CHECK_CANDIDATE,
        c.CHECK_LONG_TRANSACTIONS,
        c.CHECK_LONG_QUERIES,
    ]


def test_stopped_replicas_refuse_a_switchover_only_when_replication_state_is_checked():
    stopped = dict(sql_running=False)
    probes = healthy(r1=replica(R1, channel_fields=stopped), r2=replica(R2, channel_fields=stopped))
    assert failing(switchover(probes)) == [
        c.CHECK_REPLICATION_SETTINGS,
        c.CHECK_REPLICATION_STATE,
        c.CHECK_CANDIDATE,
    ]
    assert all_ok(switchover(probes, settings=replace(AUTO, check_replication_state=False)))


def test_lagging_replica_refuses_but_an_intended_delay_does_not():
    lagging = healthy(r2=replica(R2, channel_fields=dict(seconds_behind=120)))
    assert failing(switchover(lagging)) == [c.CHECK_REPLICA_LAG]
    delayed = healthy(r2=replica(R2, channel_fields=dict(seconds_behind=3600, sql_delay=3600)))
    checks = switchover(delayed)
    assert all_ok(checks)
    assert next(ch for ch in checks if ch.name == c.CHECK_CANDIDATE).detail.startswith(R1)


def test_replica_in_maintenance_does_not_block_a_switchover():
    probes = healthy(r2=replica(R2, channel_fields=dict(sql_running=False)))
    assert all_ok(switchover(probes, maintenance={R2}))


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        (dict(longest_trx_seconds=20), c.CHECK_LONG_TRANSACTIONS),
        (dict(longest_write_trx_seconds=11), c.CHECK_LONG_TRANSACTIONS),
        (dict(longest_query_seconds=30), c.CHECK_LONG_QUERIES),
    ],
)
def test_long_transactions_and_queries_on_the_primary_refuse(fields, check):
    assert failing(switchover(healthy(p=primary(P, **fields)))) == [check]


def test_long_running_checks_need_a_reachable_primary():
    assert failing(long_running_checks(None, AUTO)) == [c.CHECK_LONG_TRANSACTIONS, c.CHECK_LONG_QUERIES]


def test_invalid_requested_candidates_are_named():
    ignored = switchover(healthy(), settings=replace(AUTO, ignored_servers=[R1]), requested=R1)
    assert failing(ignored) == [c.CHECK_REPLICATION_SETTINGS, c.CHECK_CANDIDATE]
    assert "ignored_servers" in blocking(ignored)[1].detail
    not_replica = switchover(healthy(), requested=P)
    assert "not a replica" in blocking(not_replica)[-1].detail


def test_candidate_settings_are_verified():
    checks = switchover(healthy(r1=replica(R1, log_slave_updates=False)), requested=R1)
    assert failing(checks) == [c.CHECK_REPLICATION_SETTINGS]
    assert "log_slave_updates is off" in blocking(checks)[0].detail


def test_switchover_needs_a_live_primary():
    probes = healthy(p=replace(primary(P), outcome="refused"))
    topology = analyze(inventory(P, R1, R2), probes, AUTO, {P: 3}, NOW)
    election = elect(candidates_from_topology(topology, probes), AUTO)
    checks = switchover_checks(topology, probes, AUTO, election)
    assert c.CHECK_PRIMARY_UP in failing(checks)
    assert "use a failover" in blocking(checks)[0].detail


def test_a_refusal_for_a_suspect_primary_says_since_when_and_why():
    probes = healthy(p=replace(primary(P), outcome="timeout", error="read timed out"))
    topology = analyze(inventory(P, R1, R2), probes, AUTO, {P: 1}, NOW)
    election = elect(candidates_from_topology(topology, probes), AUTO)
    checks = switchover_checks(topology, probes, AUTO, election, failing_since=NOW - 42, now=NOW)
    [check] = blocking(checks)[:1]
    assert check.name == c.CHECK_PRIMARY_UP
    assert f"primary {P} is suspect (since " in check.detail
    assert "UTC (42 s ago)" in check.detail
    assert "1 failed probe(s) in a row" in check.detail
    assert "its probe now: timeout: read timed out" in check.detail
