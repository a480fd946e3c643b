"""clusters.domain.failover_plan: the tick's decision, incidents, re-confirmation, RPO, fencing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clusters.domain import constants as c
from clusters.domain import failover_plan as plan
from clusters.domain.detection import confirm_for_topology
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import analyze
from tests.unit.domain_builders import R1, R2, P, failed, healthy, inventory, primary, replica, with_channel

pytestmark = pytest.mark.unit

AUTOMATIC = ClusterSettings(failover_mode="automatic")
NOW = 1_000_000.0


def lost(probe, **fields):
    """A replica whose IO thread lost the primary."""
    return with_channel(probe, io_running="Connecting", last_io_errno=2003, seconds_behind=None, **fields)


def dead_primary_probes(**overrides):
    probes = healthy(p=failed(P), r1=lost(replica(R1)), r2=lost(replica(R2)))
    probes.update({p.address: p for p in overrides.values()})
    return probes


def topology_of(probes, settings=AUTOMATIC, **flags):
    failures = {P: settings.failcount} if not probes[P].reachable else {}
    return analyze(inventory(P, R1, R2, **flags), probes, settings, failures, NOW, known_primary=P)


def decide(
    probes,
    settings=AUTOMATIC,
    *,
    armed=True,
    platform_paused=False,
    failovers=(),
    credentials=True,
    lags=None,
    **flags,
):
    if lags is None:  # the healthy ticks before the failure remembered every replica's lag
        lags = {address: 0.0 for address in probes if address != P}
    return plan.decide_failover(
        topology=topology_of(probes, settings, **flags),
        probes=probes,
        settings=settings,
        failover_armed=armed,
        platform_paused=platform_paused,
        now=NOW,
        last_observation_at=NOW,
        failovers=list(failovers),
        has_replication_credentials=credentials,
        lags=lags,
    )


def failing_names(decision):
    return {check.name for check in decision.blocking}


# --- incidents ---


def test_a_failing_primary_seen_again_soon_continues_the_same_incident():
    first = plan.continue_incident(None, P, NOW, 1.0)
    again = plan.continue_incident(first.as_state(), P, NOW + 2.5, 1.0)
    assert again.key == first.key and again.last_seen == NOW + 2.5


def test_a_long_gap_or_another_primary_starts_a_new_incident():
    first = plan.continue_incident(None, P, NOW, 1.0)
    assert plan.continue_incident(first.as_state(), P, NOW + 10, 1.0).key != first.key
    assert plan.continue_incident(first.as_state(), R1, NOW + 1, 1.0).primary == R1


def test_a_damaged_incident_state_starts_a_new_incident():
    assert plan.continue_incident({"primary": P, "last_seen": "soon"}, P, NOW, 1.0).since == NOW


def test_the_unconfirmed_notice_is_due_once_after_a_while_for_a_down_primary():
    incident = plan.Incident(P, NOW - 6, NOW)
    assert plan.unconfirmed_notice_due(incident, c.STATE_DOWN, NOW)
    assert not plan.unconfirmed_notice_due(replace(incident, notified=True), c.STATE_DOWN, NOW)
    assert not plan.unconfirmed_notice_due(incident, c.STATE_UNREACHABLE, NOW)
    assert not plan.unconfirmed_notice_due(plan.Incident(P, NOW - 1, NOW), c.STATE_DOWN, NOW)


# --- the tick's decision ---


def test_a_healthy_primary_is_idle():
    assert decide(healthy()).action == plan.IDLE


def test_a_primary_only_dbpilot_lost_is_never_failed_over():
    probes = healthy(p=failed(P, "timeout"))  # the replicas still receive from it
    decision = decide(probes)
    assert decision.action == plan.WAIT
    assert "still receive" in decision.reason


def test_a_confirmed_failure_with_every_guard_passing_starts_the_failover():
    decision = decide(dead_primary_probes())
    assert decision.action == plan.START, decision.reason
    assert decision.election.winner == R1
    assert not decision.blocking


def test_manual_mode_refuses_naming_the_mode_and_the_arming():
    decision = decide(dead_primary_probes(), ClusterSettings(failover_mode="manual"), armed=False)
    assert decision.action == plan.REFUSE
    assert failing_names(decision) == {c.GUARD_FAILOVER_MODE, c.GUARD_FAILOVER_ARMED}


def test_every_blocking_guard_is_named_at_once():
    settings = ClusterSettings(failover_mode="automatic", paused=True, failover_limit=1)
    decision = decide(
        dead_primary_probes(), settings, platform_paused=True, failovers=[NOW - 10], credentials=False
    )
    assert failing_names(decision) == {
        c.GUARD_CLUSTER_PAUSED,
        c.GUARD_PLATFORM_PAUSED,
        c.GUARD_FAILOVER_LIMIT,
        c.GUARD_FAILOVER_MIN_INTERVAL,
        plan.CHECK_REPLICATION_CREDENTIALS,
    }
    assert "failover_limit" in decision.reason


def test_an_old_failover_outside_the_window_and_interval_does_not_block():
    decision = decide(
        dead_primary_probes(),
        ClusterSettings(failover_mode="automatic", failover_limit=1),
        failovers=[NOW - 4000],
    )
    assert decision.action == plan.START


def test_the_last_known_lag_keeps_a_lagging_replica_from_being_chosen():
    decision = decide(dead_primary_probes(), lags={R1: 120.0, R2: 0.0})
    assert decision.election.winner == R2
    assert "lagging" in decision.election.row(R1)["flags"]


def test_an_ignored_replica_is_not_chosen_when_another_is_electable():
    settings = ClusterSettings(failover_mode="automatic", ignored_servers=[R1])
    assert decide(dead_primary_probes(), settings).election.winner == R2


def test_an_errant_best_candidate_is_skipped_and_reported():
    errant = lost(replica(R1, gtid_binlog_state="0-1-100,0-2-101", gtid_current_pos="0-2-101"))
    settings = ClusterSettings(failover_mode="automatic", preferred_servers=[R1])
    decision = decide(dead_primary_probes(r1=errant), settings)
    assert decision.action == plan.START
    assert decision.election.winner == R2
    assert "errant" in decision.election.row(R1)["flags"]


def test_no_electable_replica_refuses():
    settings = ClusterSettings(failover_mode="automatic", ignored_servers=[R1, R2])
    decision = decide(dead_primary_probes(), settings)
    assert decision.action == plan.REFUSE
    assert c.GUARD_CANDIDATE in failing_names(decision)


def test_a_primary_in_maintenance_is_not_failed_over():
    decision = decide(dead_primary_probes(), maintenance={P})
    assert c.GUARD_MAINTENANCE in failing_names(decision)


# --- re-confirmation inside the job ---


def _fresh(probes):
    return confirm_for_topology(topology_of(probes), probes, AUTOMATIC)


def test_the_job_accepts_a_fresh_tick_confirmation_when_heartbeat_ages_are_unknown_here():
    probes = dead_primary_probes(
        r1=with_channel(replica(R1), last_heartbeat_age_seconds=None),
        r2=with_channel(replica(R2), last_heartbeat_age_seconds=None),
    )
    fresh = _fresh(probes)
    assert not fresh.confirmed
    assert plan.reconfirm(fresh, probes, tick_confirmed_age=0.2, settings=AUTOMATIC).ok
    assert not plan.reconfirm(fresh, probes, tick_confirmed_age=30, settings=AUTOMATIC).ok
    assert not plan.reconfirm(fresh, probes, tick_confirmed_age=None, settings=AUTOMATIC).ok


def test_the_job_refuses_when_a_replica_is_seen_receiving():
    probes = dead_primary_probes(r1=replica(R1))  # heartbeat 0.3 s old: receiving
    check = plan.reconfirm(_fresh(probes), probes, tick_confirmed_age=0.1, settings=AUTOMATIC)
    assert not check.ok and "still receive" in check.detail


def test_a_fresh_confirmation_passes():
    probes = dead_primary_probes()
    assert plan.reconfirm(_fresh(probes), probes, tick_confirmed_age=None, settings=AUTOMATIC).ok


# --- RPO ---


def test_rpo_with_semi_sync_and_no_fallback_promises_no_acknowledged_loss():
    settings = ClusterSettings(semi_sync=True, semi_sync_on_timeout="wait")
    rpo = plan.rpo_statement(survivors_hold="0-1-100", settings=settings, old_primary=P)
    assert rpo["guarantee"] == plan.GUARANTEE_NONE_LOST
    assert rpo["lower_bound"] is True and rpo["survivors_hold"] == "0-1-100"


@pytest.mark.parametrize(
    "settings, findings, unreachable, guarantee",
    [
        (ClusterSettings(semi_sync=False), (), (), plan.GUARANTEE_ASYNC),
        (ClusterSettings(semi_sync=True, semi_sync_on_timeout="async"), (), (), plan.GUARANTEE_AT_RISK),
        (
            ClusterSettings(semi_sync=True, semi_sync_on_timeout="wait"),
            (c.SEMI_SYNC_INACTIVE,),
            (),
            plan.GUARANTEE_AT_RISK,
        ),
        (
            ClusterSettings(semi_sync=True, semi_sync_on_timeout="wait"),
            (c.REPLICA_LAGGING,),
            (R2,),
            plan.GUARANTEE_AT_RISK,
        ),
    ],
)
def test_rpo_states_the_risk_when_durability_settings_do_not_promise(
    settings, findings, unreachable, guarantee
):
    rpo = plan.rpo_statement(
        survivors_hold="0-1-100",
        settings=settings,
        old_primary=P,
        primary_findings=findings,
        unreachable_replicas=unreachable,
    )
    assert rpo["guarantee"] == guarantee
    assert "lost" in rpo["risk"] or "acknowledgement" in rpo["risk"]


# --- a fenced server reappears ---


def new_primary_world(old_state="0-1-100", **old_fields):
    """R1 was promoted (and wrote 0-2-101..105); P, the old primary, came back."""
    probes = {
        R1: primary(
            R1, gtid_binlog_state="0-1-100,0-2-105", gtid_binlog_pos="0-2-105", gtid_current_pos="0-2-105"
        ),
        R2: replica(R2, source=R1, gtid_current_pos="0-2-105"),
        P: primary(P, read_only=old_fields.pop("read_only", True), gtid_binlog_state=old_state, **old_fields),
    }
    topology = analyze(inventory(P, R1, R2, fenced={P}), probes, AUTOMATIC, {}, NOW, known_primary=R1)
    return topology, probes


def test_extra_transactions_from_binlog_states():
    topology, probes = new_primary_world(old_state="0-1-102")
    assert plan.extra_transactions(probes[P], probes[R1]) == ["0-1-102"]
    topology, probes = new_primary_world()
    assert plan.extra_transactions(probes[P], probes[R1]) == []


def test_extra_transactions_on_mysql():
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    server = primary(P, flavour="mysql", gtid_executed=f"{uuid}:1-12")
    new = primary(R1, flavour="mysql", gtid_executed=f"{uuid}:1-10")
    assert plan.extra_transactions(server, new) == [f"{uuid}:11-12"]
    assert plan.extra_transactions(replace(server, gtid_executed=None), new) is None


def test_a_returning_old_primary_with_nothing_extra_is_rejoined():
    topology, probes = new_primary_world()
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC)
    assert (fence.address, fence.make_read_only, fence.next_step) == (P, False, plan.FENCE_REJOIN)


def test_a_writable_returning_old_primary_is_made_read_only_first():
    topology, probes = new_primary_world(read_only=False)
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC)
    assert fence.make_read_only and fence.next_step == plan.FENCE_REJOIN


def test_a_returning_old_primary_with_extra_transactions_is_quarantined_with_them():
    topology, probes = new_primary_world(old_state="0-1-103")
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC)
    assert fence.next_step == plan.FENCE_QUARANTINE and fence.extra_gtids == ("0-1-103",)


def test_paused_or_autorejoin_off_only_fences():
    topology, probes = new_primary_world(read_only=False)
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC, may_rejoin=False)
    assert fence.make_read_only and fence.next_step is None and "paused" in fence.reason
    assert plan.fence_plans(*new_primary_world(), ClusterSettings(autorejoin=False)) == []


def test_a_quarantined_server_is_only_kept_read_only():
    probes = new_primary_world(read_only=False)[1]
    topology = analyze(
        inventory(P, R1, R2, fenced={P}, quarantined={P}), probes, AUTOMATIC, {}, NOW, known_primary=R1
    )
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC)
    assert fence.make_read_only and fence.next_step is None


def test_a_fenced_server_replicating_from_the_primary_is_settled():
    topology, probes = new_primary_world()
    probes[P] = replica(P, source=R1, gtid_binlog_state="0-1-100,0-2-105")
    topology = analyze(inventory(P, R1, R2, fenced={P}), probes, AUTOMATIC, {}, NOW, known_primary=R1)
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC)
    assert fence.next_step == plan.FENCE_SETTLED and not fence.make_read_only


def test_a_fenced_server_the_replicas_still_follow_is_made_read_only_but_not_rejoined():
    probes = healthy()  # the failover has not repointed anything yet and P came back writable
    topology = analyze(inventory(P, R1, R2, fenced={P}), probes, AUTOMATIC, {}, NOW, known_primary=P)
    [fence] = plan.fence_plans(topology, probes, AUTOMATIC)
    assert fence.make_read_only and fence.next_step is None


def test_fenced_servers_that_do_not_answer_need_nothing():
    topology, probes = new_primary_world()
    probes[P] = failed(P)
    topology = analyze(inventory(P, R1, R2, fenced={P}), probes, AUTOMATIC, {P: 3}, NOW, known_primary=R1)
    assert plan.fence_plans(topology, probes, AUTOMATIC) == []


def test_a_new_primary_reconnecting_its_semi_sync_replicas_is_not_an_error_for_a_few_seconds():
    inactive = healthy(p=primary(P, semi_sync_master_enabled=True, semi_sync_master_status=False))
    topology = analyze(inventory(P, R1, R2), inactive, ClusterSettings(semi_sync=True), {}, 100.0)
    assert c.SEMI_SYNC_INACTIVE in {f.code for f in topology.findings}
    settling = plan.settle_new_primary(topology, primary_since=97.0, now=100.0)
    assert c.SEMI_SYNC_INACTIVE not in {f.code for f in settling.findings}
    assert {f.code for f in settling.findings} == {f.code for f in topology.findings} - {c.SEMI_SYNC_INACTIVE}
    later = plan.settle_new_primary(topology, primary_since=100.0 - plan.SEMI_SYNC_SETTLE_SECONDS, now=100.0)
    assert later is topology  # still off after the window: the finding opens as usual


def test_a_replica_reconnecting_keeps_its_last_known_lag_one_stopped_loses_it():
    probes = healthy(
        p=primary(P),
        r1=with_channel(replica(R1), io_running="Connecting", seconds_behind=None),  # just repointed
        r2=with_channel(replica(R2), io_running="No", seconds_behind=None),  # stopped on purpose
    )
    topology = topology_of(probes)
    assert plan.lags_to_remember(topology, {R1: 0.0, R2: 0.0}) == {R1: 0.0}
    assert plan.lags_to_remember(topology, None) == {}  # nothing known before: unknown stays unknown
    known = topology_of(healthy(p=primary(P), r1=replica(R1), r2=replica(R2)))
    assert set(plan.lags_to_remember(known, {R1: 99.0})) == {R1, R2}
    assert plan.lags_to_remember(known, {R1: 99.0})[R1] != 99.0  # a fresh lag replaces the old one
