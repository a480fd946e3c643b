"""Who an HA job repoints or leaves out (clusters.domain.repoint_plan), on fake status rows."""

import pytest

from clusters.domain.repoint_plan import (
    LEFT_OUT_ERRANT,
    LEFT_OUT_MAINTENANCE,
    LEFT_OUT_UNREACHABLE,
    Member,
    by_gtid,
    by_own_history,
    connected_to,
    failover_targets,
    points_at,
    replicating,
    survivors,
    switchover_targets,
)

pytestmark = pytest.mark.unit

A, B, C, D, E = (f"10.0.0.{n}:3306" for n in range(1, 6))


def row(host="10.0.0.2", port=3306, io="Yes", sql="Yes", using_gtid="Slave_Pos") -> dict:
    return {
        "Master_Host": host,
        "Master_Port": port,
        "Slave_IO_Running": io,
        "Slave_SQL_Running": sql,
        "Using_Gtid": using_gtid,
    }


def test_a_failover_repoints_the_reachable_survivors_and_says_why_it_left_the_others_out():
    members = [Member(A), Member(B), Member(C, maintenance=True), Member(D, reachable=False), Member(E)]
    targets, left_out = failover_targets(members, old_primary=A, new_primary=B, errant=[E])
    assert targets == []
    assert left_out == {E: LEFT_OUT_ERRANT, C: LEFT_OUT_MAINTENANCE, D: LEFT_OUT_UNREACHABLE}


def test_the_old_primary_is_neither_a_target_nor_left_out_and_survivors_exclude_it():
    members = [Member(A, reachable=False), Member(B), Member(C)]
    assert survivors(members, A) == [B, C]
    targets, left_out = failover_targets(members, old_primary=A, new_primary=B, errant=[])
    assert (targets, left_out) == ([C], {})


def test_a_switchover_repoints_every_other_reachable_server_the_old_primary_included():
    assert switchover_targets([A, B, C, D], new_primary=B, unreachable=[D]) == [A, C]


def test_status_rows_say_where_a_replica_points_and_whether_it_runs():
    status = row()
    assert points_at(status, "10.0.0.2", 3306) and not points_at(status, "10.0.0.3", 3306)
    assert by_gtid(status) and by_gtid({"Auto_Position": 1}) and not by_gtid(row(using_gtid="No"))
    assert replicating(status) and not replicating(row(sql="No")) and not replicating(None)
    # A demoted primary under the switchover's read lock replicates from its own history (current_pos).
    demoted = row(using_gtid="Current_Pos")
    assert by_own_history(demoted) and not by_gtid(demoted) and not by_own_history(status)
    assert by_own_history({"Auto_Position": 1})
    assert connected_to(row(sql="No"), "10.0.0.2", 3306)  # the IO thread is what semi-sync needs
    assert not connected_to(row(io="Connecting"), "10.0.0.2", 3306)
    assert not connected_to(row(using_gtid="No"), "10.0.0.2", 3306)  # by file position: repoint it
    assert not connected_to(None, "10.0.0.2", 3306)
    assert not points_at({"Master_Host": "x", "Master_Port": "not a port"}, "x", 3306)
