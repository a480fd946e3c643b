"""Candidate election: the decision table for failover and switchover."""

import json
from dataclasses import replace

import pytest

from clusters.domain.election import Candidate, candidates_from_topology, elect
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import analyze
from tests.unit.domain_builders import R1, R2, P, failed, healthy, inventory, replica

pytestmark = pytest.mark.unit
DEFAULTS = ClusterSettings()
R3 = "127.0.0.1:3304"


def cand(address, pos="0-1-100", io_pos="", **fields):
    fields.setdefault("lag", 0.0)
    return Candidate(address, gtid_current_pos=pos, gtid_io_pos=io_pos, **fields)


def row(election, server):
    return election.row(server)


def test_failover_counts_what_the_relay_log_holds():
    # R1 applied less but received more: once its relay log is applied it is the most up to date.
    candidates = [cand(R1, "0-1-95", "0-1-100"), cand(R2, "0-1-98", "0-1-98")]
    failover = elect(candidates, DEFAULTS, for_failover=True)
    assert failover.winner == R1 and failover.catch_up_from == ()
    assert row(failover, R2)["behind"] == 2
    switchover = elect(candidates, DEFAULTS)
    assert switchover.winner == R2  # a switchover compares what is applied; the winner catches up anyway


def test_preferred_server_wins_only_among_equals():
    equal = [cand(R1), cand(R2)]
    assert elect(equal, replace(DEFAULTS, preferred_servers=[R2])).winner == R2
    behind = [cand(R1), cand(R2, "0-1-99")]
    election = elect(behind, replace(DEFAULTS, preferred_servers=[R2]))
    assert election.winner == R1
    assert "preferred" in row(election, R2)["flags"]


def test_ignored_server_is_never_elected_unless_forced():
    candidates = [cand(R1), cand(R2, "0-1-90")]
    settings = replace(DEFAULTS, ignored_servers=[R1])
    election = elect(candidates, settings, for_failover=True)
    assert election.winner == R2
    assert row(election, R1)["reason"] == "listed in ignored_servers"
    assert election.catch_up_from[0].server == R1 and election.catch_up_from[0].missing == "0:91-100"
    assert elect(candidates, settings, for_failover=True, force=True).winner == R1


@pytest.mark.parametrize(
    ("fields", "flag"),
    [
        (dict(reachable=False), "unreachable"),
        (dict(maintenance=True), "maintenance"),
        (dict(quarantined=True), "quarantined"),
        (dict(direct_replica=False), "not_replica"),
        (dict(log_bin=False), "no_log_bin"),
        (dict(errant=("0-2-5",)), "errant"),
        (dict(last_sql_errno=1062, last_sql_error="Duplicate entry", sql_running=False), "replication_error"),
        (dict(lag=31.0), "lagging"),
        (dict(sql_delay=3600), "delayed"),
    ],
)
def test_unelectable_replicas_are_skipped_with_a_reason(fields, flag):
    best = replace(cand(R1), **fields)
    election = elect([best, cand(R2, "0-1-99")], DEFAULTS, for_failover=True)
    assert election.winner == R2
    assert flag in row(election, R1)["flags"] and not row(election, R1)["electable"]
    assert row(election, R1)["reason"]


def test_semi_sync_required_candidates():
    settings = replace(DEFAULTS, candidate_requires_semi_sync=True)
    candidates = [
        cand(R1, semi_sync_enabled=False),
        cand(R2, "0-1-99", semi_sync_enabled=True, semi_sync_active=False),
    ]
    # after the primary died no replica's semi-sync status is ON: a failover looks at the setting
    assert elect(candidates, settings, for_failover=True).winner == R2
    # a switchover wants it active now
    election = elect(candidates, settings)
    assert election.winner is None
    assert "not_semi_sync" in row(election, R2)["flags"]
    assert elect(candidates, DEFAULTS, for_failover=True).winner == R1


def test_failover_tolerates_io_errors_and_stopped_sql_thread_without_error():
    # the primary is dead: every IO thread is Connecting with error 2003
    dead = dict(io_running="Connecting", last_io_errno=2003, last_io_error="Can't connect")
    candidates = [cand(R1, sql_running=False, **dead), cand(R2, "0-1-99", **dead)]
    election = elect(candidates, DEFAULTS, for_failover=True)
    assert election.winner == R1 and "sql_stopped" in row(election, R1)["flags"]
    assert elect(candidates, DEFAULTS).winner is None  # a switchover needs working replication


def test_switchover_replication_state_check_can_be_turned_off():
    candidates = [cand(R1, sql_running=False)]
    assert elect(candidates, DEFAULTS).winner is None
    assert elect(candidates, replace(DEFAULTS, check_replication_state=False)).winner == R1


def test_no_electable_replica_says_why_for_each():
    election = elect([cand(R1, lag=99.0), cand(R2, maintenance=True)], DEFAULTS, for_failover=True)
    assert election.winner is None
    assert R1 in election.reason and "lagging" in election.reason and "maintenance" in election.reason
    assert elect([], DEFAULTS).reason == "no replica to elect"


def test_requested_candidate_is_chosen_when_electable_even_if_behind():
    candidates = [cand(R1), cand(R2, "0-1-97")]
    election = elect(candidates, DEFAULTS, requested=R2)
    assert election.winner == R2 and election.reason == "chosen: the requested candidate"
    assert election.catch_up_from[0].server == R1 and election.catch_up_from[0].count == 3


@pytest.mark.parametrize(
    ("requested", "settings", "reason"),
    [
        (R1, replace(DEFAULTS, ignored_servers=[R1]), "listed in ignored_servers"),
        (R2, DEFAULTS, "lagging"),
        (R3, DEFAULTS, "not a replica of this cluster"),
    ],
)
def test_invalid_requested_candidate_is_refused_with_a_reason(requested, settings, reason):
    election = elect([cand(R1), cand(R2, lag=60.0)], settings, requested=requested)
    assert election.winner is None and reason in election.reason


def test_incomparable_positions_pick_the_fewest_missing_and_report_the_rest():
    candidates = [cand(R1, "0-1-100,1-1-50"), cand(R2, "0-1-98,1-1-60")]
    election = elect(candidates, DEFAULTS, for_failover=True)
    # R1 lacks 10 transactions of domain 1, R2 lacks 2 of domain 0: R2 wins and catches up from R1
    assert election.winner == R2
    assert (row(election, R1)["behind"], row(election, R2)["behind"]) == (10, 2)
    (source,) = election.catch_up_from
    assert (source.server, source.missing, source.count) == (R1, "0:99-100", 2)
    assert election.winner_lacks_transactions


def test_mysql_candidates_compare_gtid_sets():
    u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    candidates = [
        Candidate(R1, flavour="mysql", gtid_current_pos=f"{u}:1-90", gtid_io_pos=f"{u}:1-100", lag=0.0),
        Candidate(R2, flavour="mysql", gtid_current_pos=f"{u}:1-95", lag=0.0),
    ]
    assert elect(candidates, DEFAULTS, for_failover=True).winner == R1
    assert elect(candidates, DEFAULTS).winner == R2


def test_unreadable_position_is_not_electable():
    election = elect([cand(R1, "junk"), cand(R2)], DEFAULTS)
    assert election.winner == R2 and "gtid_unreadable" in row(election, R1)["flags"]


def test_errant_candidate_holding_needed_transactions_is_reported():
    errant = Candidate(
        R1, gtid_current_pos="0-2-101", gtid_binlog_state="0-1-100,0-2-101", errant=("0-2-101",), lag=0.0
    )
    clean = cand(R2, "0-1-98")
    election = elect([errant, clean], DEFAULTS, for_failover=True)
    assert election.winner == R2
    (source,) = election.catch_up_from
    assert (source.server, source.missing, source.errant) == (R1, "0:99-100", True)
    caught_up = elect([errant, cand(R2, "0-1-100")], DEFAULTS, for_failover=True)
    assert caught_up.catch_up_from == ()  # R1's only extra transaction is the errant one


def test_decision_table_rows_are_complete_and_serializable():
    election = elect([cand(R1), cand(R2, "0-1-99", lag=None)], DEFAULTS, for_failover=True)
    keys = {
        "server",
        "gtid_pos",
        "lag",
        "received_before_incident",
        "flags",
        "electable",
        "reason",
        "behind",
        "chosen",
    }
    assert all(set(r) == keys for r in election.table)
    assert row(election, R1)["chosen"] and not row(election, R2)["chosen"]
    assert "lag_unknown" in row(election, R2)["flags"]
    assert not row(election, R2)["electable"] and "lag unknown" in row(election, R2)["reason"]
    json.dumps(election.as_dict())


def test_candidates_from_a_healthy_topology_compute_errant_against_the_primary():
    probes = healthy(r1=replica(R1, gtid_binlog_state="0-1-100,0-2-3"))
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {}, 0.0)
    candidates = candidates_from_topology(topology, probes)
    assert [c.address for c in candidates] == [R1, R2]
    assert candidates[0].errant == ("0-2-3",) and candidates[1].errant == ()
    assert all(c.direct_replica for c in candidates)
    assert elect(candidates, DEFAULTS).winner == R2


def test_candidates_after_the_primary_died_compare_survivors():
    lost = dict(io_running="Connecting", last_io_errno=2003, seconds_behind=None)
    probes = healthy(
        p=failed(P),
        r1=replica(R1, gtid_binlog_state="0-1-100,0-2-3", channel_fields=lost),
        r2=replica(R2, gtid_current_pos="0-1-99", channel_fields=dict(lost, gtid_io_pos="0-1-99")),
    )
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3}, 0.0)
    candidates = candidates_from_topology(topology, probes, lags={R2: 2.0})
    assert candidates[0].errant == ("0-2-3",)
    assert candidates[1].lag == 2.0 and candidates[0].lag is None
    election = elect(candidates, DEFAULTS, for_failover=True)
    assert election.winner == R2
    assert election.catch_up_from[0].server == R1 and election.catch_up_from[0].errant


def test_candidates_take_errant_from_open_findings_when_given():
    probes = healthy()
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {}, 0.0)
    candidates = candidates_from_topology(topology, probes, errant={R2: ["0-3-1"]})
    assert candidates[1].errant == ("0-3-1",)


def test_the_dead_primary_newest_transactions_on_one_survivor_are_not_errant():
    # R1 received 0-1-101 before the primary died, R2 did not; the replicas do not report Master_Server_Id
    lost = dict(io_running="Connecting", last_io_errno=2003, seconds_behind=None)
    probes = healthy(
        p=failed(P),
        r1=replica(
            R1,
            gtid_binlog_state="0-1-101",
            gtid_current_pos="0-1-101",
            channel_fields=dict(lost, gtid_io_pos="0-1-101"),
        ),
        r2=replica(R2, channel_fields=lost),
    )
    topology = analyze(inventory(P, R1, R2), probes, DEFAULTS, {P: 3}, 0.0)
    assert topology.primary_server_id is None
    candidates = candidates_from_topology(topology, probes, lags={R1: 0.0, R2: 0.0})
    assert [c.errant for c in candidates] == [(), ()]
    assert elect(candidates, DEFAULTS, for_failover=True).winner == R1


def test_settings_lists_and_requests_match_addresses_in_canonical_form():
    v6a, v6b = "[::1]:3307", "[::1]:3308"
    candidates = [cand(v6a), cand(v6b)]
    assert elect(candidates, replace(DEFAULTS, preferred_servers=["[0:0::1]:3308"])).winner == v6b
    assert elect(candidates, replace(DEFAULTS, ignored_servers=["[0::1]:3307"])).winner == v6b
    assert elect(candidates, DEFAULTS, requested="[0:0:0::1]:3308").winner == v6b
