"""HA safety rules (issue: no failover of a live primary): who is a witness of a lost primary, error
replies mean alive, which replicas a failover may choose, and what "errant" is judged against."""

from dataclasses import replace

import pytest

from clusters.domain import constants as c
from clusters.domain import failover_plan as plan
from clusters.domain.detection import confirm_for_topology, confirm_primary_failure, count_failures
from clusters.domain.election import Candidate, candidates_from_topology, elect
from clusters.domain.gtid import errant_among_survivors, history_with
from clusters.domain.probe import ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import analyze
from tests.unit.domain_builders import R1, R2, P, failed, healthy, inventory, primary, replica

pytestmark = pytest.mark.unit
DEFAULTS = ClusterSettings()
CONNECTING = dict(
    io_running="Connecting", last_io_errno=2003, last_io_error="Can't connect to server", seconds_behind=None
)
STOPPED = dict(io_running="No", last_io_errno=0, last_io_error="", seconds_behind=None)
GAVE_UP = dict(
    io_running="No", last_io_errno=2003, last_io_error="Can't connect to server", seconds_behind=None
)
TOO_MANY = dict(
    io_running="Connecting", last_io_errno=1040, last_io_error="Too many connections", seconds_behind=None
)


def confirm(probes, **kwargs):
    return confirm_primary_failure("down", probes, DEFAULTS, primary=P, **kwargs)


# --- item 1: a stopped IO thread is not a witness ---


def test_replicas_stopped_on_purpose_do_not_confirm_a_primary_only_dbpilot_lost():
    probes = {R1: replica(R1, channel_fields=STOPPED), R2: replica(R2, channel_fields=STOPPED)}
    result = confirm(probes)
    assert not result.confirmed
    assert result.replicas_agreeing == 0
    assert all("stopped on purpose" in v.detail for v in result.verdicts)
    assert "stopped on purpose" in result.reason  # the reason names why each one is no witness


def test_connecting_or_a_connection_error_witnesses_the_loss():
    assert confirm(
        {R1: replica(R1, channel_fields=CONNECTING), R2: replica(R2, channel_fields=GAVE_UP)}
    ).confirmed
    # one witness out of two is no majority
    assert not confirm(
        {R1: replica(R1, channel_fields=CONNECTING), R2: replica(R2, channel_fields=STOPPED)}
    ).confirmed


def test_a_replica_that_stopped_receiving_long_before_the_incident_is_no_witness():
    probes = {R1: replica(R1, channel_fields=CONNECTING), R2: replica(R2, channel_fields=CONNECTING)}
    recent = {R1: 999.0, R2: 999.5}
    assert confirm(probes, last_received=recent, incident_since=1000.0).confirmed
    old = {R1: 999.0, R2: 600.0}  # R2 lost the primary 400 s before dbpilot did: another cause
    result = confirm(probes, last_received=old, incident_since=1000.0)
    assert not result.confirmed
    r2 = next(v for v in result.verdicts if v.address == R2)
    assert not r2.lost_primary and "400s before the incident" in r2.detail
    # unknown times (monitoring just started) do not disqualify
    assert confirm(probes, last_received={}, incident_since=1000.0).confirmed


# --- item 8: overload is not death ---


def test_an_error_reply_is_not_a_failed_probe():
    busy = ProbeResult(
        address=P, outcome="error_reply", errno=1040, error="the server answered with error 1040"
    )
    assert count_failures(2, busy) == 0
    topology = analyze(inventory(P, R1, R2), healthy(p=busy), DEFAULTS, {P: 5}, 0.0)
    view = topology.primary_view
    assert topology.primary == P and view.state == c.STATE_ERROR_REPLY
    codes = {f.code for f in topology.findings_for(P)}
    assert c.SERVER_ERROR_REPLY in codes and c.PRIMARY_DOWN not in codes
    assert not plan.primary_failing(topology)


def test_a_replica_answered_with_1040_is_no_witness_and_vetoes():
    probes = {R1: replica(R1, channel_fields=TOO_MANY), R2: replica(R2, channel_fields=CONNECTING)}
    result = confirm(probes)
    assert not result.confirmed and result.answered == (R1,)
    assert "answers" in result.reason


def test_error_reply_replicas_block_a_manual_failover_as_a_live_primary():
    probes = healthy(
        p=failed(P), r1=replica(R1, channel_fields=TOO_MANY), r2=replica(R2, channel_fields=TOO_MANY)
    )
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3}, 0.0)
    assert not confirm_for_topology(topology, probes, DEFAULTS).confirmed


# --- item 1 (election) and item 11: who a failover may choose ---


def test_a_failover_does_not_choose_a_replica_of_unknown_lag_but_an_operator_may_name_it():
    candidates = [
        Candidate(R1, lag=None, io_running="No", gtid_current_pos="0-1-100"),
        Candidate(R2, lag=None, io_running="No", gtid_current_pos="0-1-90"),
    ]
    election = elect(candidates, DEFAULTS, for_failover=True)
    assert election.winner is None
    assert all(r["reason"].startswith("lag unknown") for r in election.table)
    named = elect(candidates, DEFAULTS, requested=R2, for_failover=True)
    assert named.winner == R2


def test_a_replica_that_stopped_receiving_long_before_is_not_chosen():
    candidates = [
        Candidate(R1, lag=0.0, gtid_current_pos="0-1-100", received_before_incident=300.0),
        Candidate(R2, lag=0.0, gtid_current_pos="0-1-90", received_before_incident=0.5),
    ]
    election = elect(candidates, DEFAULTS, for_failover=True)
    assert election.winner == R2
    row = election.row(R1)
    assert "stale_source" in row["flags"] and "300s before the incident" in row["reason"]


def test_a_fenced_server_is_not_electable():
    election = elect(
        [Candidate(R1, lag=0.0, gtid_current_pos="0-1-100", fenced=True)], DEFAULTS, for_failover=True
    )
    assert election.winner is None and "fenced" in election.table[0]["reason"]


# --- item 13 (a): errant is judged against what the primaries had ---


def lost_replica(address, **fields):
    return replica(
        address,
        channel_fields=dict(CONNECTING, gtid_io_pos=fields.get("gtid_current_pos", "0-1-100")),
        **fields,
    )


def test_a_rebuilt_survivor_does_not_make_the_earlier_primaries_transactions_errant():
    # R1 replicated everything (earlier primaries 2 and 3, then 1); R2 was rebuilt from a backup: its
    # binlog state only has what it replicated since, its gtid_slave_pos what the backup held.
    healthy_r1 = lost_replica(
        R1,
        gtid_binlog_state="0-2-55645,0-3-38807,0-1-60000",
        gtid_current_pos="0-1-60000",
        gtid_slave_pos="0-1-60000",
    )
    rebuilt_r2 = lost_replica(
        R2, gtid_binlog_state="0-1-60000", gtid_current_pos="0-1-60000", gtid_slave_pos="0-1-60000"
    )
    history = "0-2-55645,0-3-38807,0-1-59990"  # the dead primary's state at the last healthy tick
    assert (
        errant_among_survivors(
            healthy_r1, [healthy_r1, rebuilt_r2], primary_server_id=1, last_primary_state=history
        )
        == []
    )
    # without the history only the survivors can be compared, and the rebuilt one misleads
    assert errant_among_survivors(healthy_r1, [healthy_r1, rebuilt_r2], primary_server_id=1) == [
        "0-2-55645",
        "0-3-38807",
    ]


def test_a_real_errant_transaction_is_found_against_the_history():
    r1 = lost_replica(R1, gtid_binlog_state="0-1-100,0-2-7", gtid_current_pos="0-2-101")
    r2 = lost_replica(R2, gtid_binlog_state="0-1-100", gtid_current_pos="0-1-100")
    assert errant_among_survivors(r1, [r1, r2], primary_server_id=1, last_primary_state="0-1-99,0-2-5") == [
        "0-2-7"
    ]


def test_history_grows_from_healthy_primaries_only():
    history = history_with(None, primary(gtid_binlog_state="0-2-5,0-1-100"))
    history = history_with(history, failed(P))
    history = history_with(history, primary(gtid_binlog_state="0-1-120"))
    assert history == "0-1-120,0-2-5"


def test_the_tick_decision_uses_the_history_for_errant_transactions():
    r1 = lost_replica(
        R1, gtid_binlog_state="0-2-55645,0-1-60000", gtid_current_pos="0-1-60000", gtid_slave_pos="0-1-60000"
    )
    r2 = lost_replica(
        R2, gtid_binlog_state="0-1-60000", gtid_current_pos="0-1-60000", gtid_slave_pos="0-1-60000"
    )
    probes = healthy(p=failed(P), r1=r1, r2=r2)
    settings = ClusterSettings(failover_mode="automatic")
    topology = analyze(inventory(P, R1, R2), probes, settings, {P: 3}, 0.0)
    candidates = candidates_from_topology(
        topology, probes, lags={R1: 0.0, R2: 0.0}, last_primary_state="0-2-55645,0-1-59000"
    )
    assert [cand.errant for cand in candidates] == [(), ()]


# --- item 10: the RPO statement reads the servers' semi-sync state at the incident ---

WAITING = {
    "enabled": True,
    "status": True,
    "timeout_ms": plan.SEMI_SYNC_WAIT_FOREVER_MS,
    "wait_no_slave": True,
    "wait_point": "AFTER_SYNC",
}


def rpo(observed, settings=DEFAULTS, **kwargs):
    return plan.rpo_statement(
        survivors_hold="0-1-100",
        settings=settings,
        old_primary=P,
        observed=observed,
        observed_known=True,
        **kwargs,
    )


def test_rpo_follows_the_servers_not_the_settings():
    # the settings say no semi-sync, the server ran semi-sync that never falls back: nothing acknowledged lost
    assert rpo(WAITING)["guarantee"] == plan.GUARANTEE_NONE_LOST
    # the settings say wait, the server had fallen back to asynchronous
    wait = ClusterSettings(semi_sync=True, semi_sync_on_timeout="wait")
    fell_back = rpo({**WAITING, "status": False}, wait)
    assert fell_back["guarantee"] == plan.GUARANTEE_AT_RISK and "fallen back" in fell_back["risk"]
    timed = rpo({**WAITING, "timeout_ms": 10000}, wait)
    assert timed["guarantee"] == plan.GUARANTEE_AT_RISK and "10000 ms" in timed["risk"]
    assert rpo({**WAITING, "wait_no_slave": False})["guarantee"] == plan.GUARANTEE_AT_RISK
    assert rpo({**WAITING, "enabled": False}, wait)["guarantee"] == plan.GUARANTEE_ASYNC
    assert rpo(WAITING, unreachable_replicas=[R1])["guarantee"] == plan.GUARANTEE_AT_RISK


def test_rpo_says_so_when_the_servers_state_is_unknown():
    unknown = rpo(None, ClusterSettings(semi_sync=True, semi_sync_on_timeout="wait"))
    assert unknown["guarantee"] == plan.GUARANTEE_AT_RISK and unknown["source"] == "unknown"
    assert "unknown" in unknown["risk"]


def test_the_semi_sync_observation_comes_from_a_healthy_primary_probe():
    probe = primary(
        semi_sync_master_enabled=True,
        semi_sync_master_status=True,
        semi_sync_timeout_ms=10000,
        semi_sync_wait_no_slave=True,
    )
    seen = plan.semi_sync_observation(probe, 5.0)
    assert seen["timeout_ms"] == 10000 and seen["observed_at"] == 5.0
    assert plan.semi_sync_observation(failed(P), 5.0) is None


def test_a_fenced_server_that_times_out_is_a_blind_fence_target():
    # after a failover R1 is the primary; the old primary P is fenced and times out on its probe
    def after_failover(p_probe):
        probes = {P: p_probe, R1: primary(R1), R2: replica(R2, source=R1)}
        topology = analyze(inventory(P, R1, R2, fenced={P}), probes, DEFAULTS, {P: 3}, 0.0, known_primary=R1)
        assert topology.primary == R1
        return plan.blind_fence_targets(topology, probes)

    assert after_failover(failed(P, "timeout")) == [P]
    assert after_failover(failed(P, "refused")) == []  # nothing listens: nothing to fence


# --- item 9: a primary with an upstream channel is refused up front; item 13 (c): a refusal says why ---


def test_a_primary_replicating_from_outside_refuses_a_switchover_by_name():
    from clusters.domain.guards import upstream_check

    dr = primary(
        replication=(
            replace(
                replica(R1).replication[0], source_host="10.9.9.9", source_port=3306, connection_name="dr"
            ),
        )
    )
    check = upstream_check(dr)
    assert not check.ok and "dr from 10.9.9.9:3306" in check.detail
    assert upstream_check(primary()).ok


def test_a_suspect_primary_refusal_says_why():
    from clusters.domain.guards import switchover_checks

    probes = healthy(p=ProbeResult(address=P, outcome="timeout", error="timed out waiting for the reply"))
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {}, 0.0, known_primary=P)
    election = elect(candidates_from_topology(topology, probes), DEFAULTS)
    check = switchover_checks(topology, probes, DEFAULTS, election)[0]
    assert not check.ok and "timeout" in check.detail and "timed out waiting" in check.detail


# --- item 13 (b): a primary back read-only after an incident with no failover gets its writes back ---

AUTO = ClusterSettings(failover_mode="automatic")


def reopen(p_probe, *, settings=AUTO, incident=None, now=1000.0, paused=False, **overrides):
    probes = healthy(p=p_probe, **overrides)
    topology = analyze(inventory(P, R1, R2), probes, settings, {}, now, known_primary=P)
    incident = {"primary": P, "since": 900.0} if incident is None else incident
    return plan.reopen_decision(topology, probes, settings, incident=incident, now=now, paused=paused)


def test_a_restarted_read_only_primary_is_reopened_when_it_is_safe():
    restarted = primary(read_only=True, uptime_seconds=30)
    ok, why = reopen(restarted)
    assert ok and "restarted read-only" in why
    assert not reopen(primary(read_only=True, uptime_seconds=5000))[0]  # read-only on purpose, no restart
    assert not reopen(restarted, settings=ClusterSettings())[0]  # manual mode: no consent to act
    assert not reopen(restarted, paused=True)[0]
    assert not reopen(restarted, incident={})[0]
    assert not reopen(restarted, r1=replica(R1, read_only=False))[0]  # another server writable
    ahead = replica(R2, gtid_current_pos="0-1-120")
    ok, why = reopen(restarted, r2=ahead)
    assert not ok and "lacks" in why
    assert not reopen(primary(read_only=False, uptime_seconds=30))[0]
