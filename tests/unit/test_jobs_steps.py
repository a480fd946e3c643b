"""The job engine's plain parts: plans, step records, where a resumed job continues; the executor's
statements for MariaDB and MySQL, which sessions it may kill, GTID containment."""

from __future__ import annotations

import pytest

from clusters.adapters.executor import ClientSession, Dialect
from clusters.adapters.mysql import Credentials
from clusters.domain.repoint_plan import position_contains
from clusters.jobs import steps as s
from clusters.jobs.ha_freeze import seconds
from clusters.jobs.switchover_steps import PLAN

pytestmark = pytest.mark.unit


def _plan(*specs: s.StepSpec) -> s.Plan:
    return s.Plan("test", specs, context=lambda job, result: None)


def _noop(ctx):
    return "done"


PLAN3 = _plan(s.StepSpec("a", _noop), s.StepSpec("b", _noop), s.StepSpec("c", _noop, resume_from="b"))


def _records(**states: str) -> list[dict]:
    records = s.initial_records(PLAN3)
    for record in records:
        record["state"] = states.get(record["name"], s.PENDING)
    return records


def test_a_new_job_starts_at_the_first_step():
    assert s.resume_index(PLAN3, s.initial_records(PLAN3)) == 0


def test_a_resumed_job_continues_at_the_first_unfinished_step():
    assert s.resume_index(PLAN3, _records(a=s.OK, b=s.RUNNING)) == 1
    assert s.resume_index(PLAN3, _records(a=s.SKIPPED)) == 1


def test_a_step_with_resume_from_restarts_at_the_step_it_names():
    assert s.resume_index(PLAN3, _records(a=s.OK, b=s.OK, c=s.RUNNING)) == 1
    assert s.resume_index(PLAN3, _records(a=s.OK, b=s.OK)) == 1  # c never started: b's session is gone too


def test_a_job_whose_steps_all_finished_has_nowhere_to_resume():
    assert s.resume_index(PLAN3, _records(a=s.OK, b=s.FAILED, c=s.SKIPPED)) is None


def test_records_are_realigned_to_the_plan():
    stored = [
        {"name": "b", "state": s.OK, "started_at": "t0", "finished_at": "t1", "detail": "x"},
        {"name": "gone", "state": s.OK, "started_at": None, "finished_at": None, "detail": ""},
    ]
    aligned = s.align_records(PLAN3, stored)
    assert [r["name"] for r in aligned] == ["a", "b", "c"]
    assert aligned[1]["detail"] == "x" and aligned[0]["state"] == s.PENDING


def test_mark_sets_start_and_end_times_and_extra_fields():
    records = s.initial_records(PLAN3)
    s.mark(records, "a", s.RUNNING, "t0")
    assert records[0]["started_at"] == "t0" and records[0]["finished_at"] is None
    s.mark(records, "a", s.OK, "t1", "did it", output="hello")
    assert records[0] == {
        "name": "a",
        "state": s.OK,
        "started_at": "t0",
        "finished_at": "t1",
        "detail": "did it",
        "output": "hello",
    }
    assert s.first_unfinished(records) == "b"


def test_a_plan_refuses_duplicate_names_and_forward_resume_points():
    with pytest.raises(ValueError, match="unique"):
        _plan(s.StepSpec("a", _noop), s.StepSpec("a", _noop))
    with pytest.raises(ValueError, match="earlier step"):
        _plan(s.StepSpec("a", _noop, resume_from="b"), s.StepSpec("b", _noop))


def test_the_switchover_plan_follows_the_issue_order():
    assert PLAN.names == [
        "verify_replication_settings",
        "check_replication",
        "start_stopped_replicas",
        "check_long_transactions",
        "elect_candidate",
        "pre_failover_hook",
        "routes_primary_leaving",
        "reject_writes",
        "wait_candidate_catchup",
        "promote_candidate",
        "repoint_replicas",
        "open_writes",
        "release_old_primary",
        "routes_new_primary",
        "post_failover_hook",
        "restore_old_primary",
        "replicas_read_only",
        "verify_replication",
    ]
    frozen = [spec.name for spec in PLAN.steps if spec.quiet]
    assert frozen == [
        "reject_writes",
        "wait_candidate_catchup",
        "promote_candidate",
        "repoint_replicas",
        "open_writes",
    ]
    # A worker that died during the freeze: the freeze is taken again before waiting or promoting.
    records = [dict(r, state=s.OK) for r in s.initial_records(PLAN)]
    for record in records[PLAN.index("wait_candidate_catchup") :]:
        record["state"] = s.PENDING
    assert s.resume_index(PLAN, records) == PLAN.index("reject_writes")


# --- executor statements -------------------------------------------------------------------------------

REPL = Credentials("repl", "secret")


def test_mariadb_statements():
    d = Dialect.from_version("10.11.6-MariaDB-0+deb12u1-log")
    assert d.mariadb and d.version == (10, 11, 6)
    assert d.set_read_only(True) == ["SET GLOBAL read_only=1"]
    assert d.set_read_only(False) == ["SET GLOBAL read_only=0"]
    assert (d.stop_replication(), d.reset_replication_all()) == ("STOP SLAVE", "RESET SLAVE ALL")
    assert d.start_replication("IO_THREAD") == "START SLAVE IO_THREAD"
    statement, args = d.change_source("10.0.0.5", 3307, REPL, delay=3600)
    assert "MASTER_USE_GTID=slave_pos" in statement and "MASTER_CONNECT_RETRY=1" in statement
    assert "MASTER_HEARTBEAT_PERIOD=1" in statement and "MASTER_DELAY=3600" in statement
    assert args == ("10.0.0.5", 3307, "repl", "secret") and "secret" not in statement
    assert d.wait_for_gtid("0-1-5", 2.5) == ("SELECT MASTER_GTID_WAIT(%s, %s) AS waited", ("0-1-5", 2.5))
    assert d.demoted_primary_position() == ["SET GLOBAL gtid_slave_pos=@@gtid_binlog_pos"]
    own, _ = d.change_source("10.0.0.5", 3307, REPL, own_history=True)
    assert "MASTER_USE_GTID=current_pos" in own  # a demoted primary under the read lock
    assert d.use_slave_pos() == ["CHANGE MASTER TO MASTER_USE_GTID=slave_pos"]
    primary = d.semi_sync_as_primary(10000, wait_forever=False)
    assert "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC" in primary
    assert "SET GLOBAL rpl_semi_sync_master_timeout=10000" in primary
    assert "SET GLOBAL rpl_semi_sync_master_enabled=1" in primary
    assert "SET GLOBAL rpl_semi_sync_master_timeout=4294967295" in d.semi_sync_as_primary(
        10000, wait_forever=True
    )
    assert d.semi_sync_replica_side() == ["SET GLOBAL rpl_semi_sync_slave_enabled=1"]
    assert d.semi_sync_source_off() == ["SET GLOBAL rpl_semi_sync_master_enabled=0"]


def test_mysql_statements_use_super_read_only_auto_position_and_new_words():
    d = Dialect.from_version("8.0.36")
    assert not d.mariadb
    assert d.set_read_only(True) == ["SET GLOBAL super_read_only=1"]
    assert d.set_read_only(False) == ["SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"]
    assert (d.stop_replication(), d.reset_replication_all()) == ("STOP REPLICA", "RESET REPLICA ALL")
    statement, _ = d.change_source("h", 3306, REPL, delay=0)
    assert statement.startswith("CHANGE REPLICATION SOURCE TO") and "SOURCE_AUTO_POSITION=1" in statement
    assert d.wait_for_gtid("uuid:1-5", 1)[0].startswith("SELECT WAIT_FOR_EXECUTED_GTID_SET")
    assert d.demoted_primary_position() == []  # gtid_executed already holds its own transactions
    assert "SET GLOBAL rpl_semi_sync_source_enabled=1" in d.semi_sync_as_primary(5000, False)
    older = Dialect.from_version("8.0.20")
    assert older.stop_replication() == "STOP SLAVE"
    assert "MASTER_AUTO_POSITION=1" in older.change_source("h", 3306, REPL)[0]
    assert "SET GLOBAL rpl_semi_sync_master_enabled=1" in older.semi_sync_as_primary(5000, False)


@pytest.mark.parametrize(
    "command,info,in_trx,writing",
    [
        ("Sleep", "", False, False),  # idle: killed at once
        ("Query", "SELECT * FROM t", False, False),  # a read
        ("Query", "  (select 1)", False, False),
        ("Query", "UPDATE t SET v = 1", False, True),  # a write statement: gets switchover_wait_kill_ms
        ("Query", "ALTER TABLE t ADD c INT", False, True),
        ("Sleep", "", True, True),  # idle inside a write transaction
        ("Query", "SELECT 1", True, True),
    ],
)
def test_which_sessions_count_as_writing(command, info, in_trx, writing):
    session = ClientSession(1, "app", "127.0.0.1:5", command, 3, info, in_trx, 3 if in_trx else None)
    assert session.writing is writing


def test_position_containment_per_flavour():
    assert position_contains("mariadb", "0-1-10,1-2-5", "0-1-10")
    assert position_contains("mariadb", "0-2-12", "0-1-10")  # a later sequence in the same domain
    assert not position_contains("mariadb", "0-1-9", "0-1-10")
    assert not position_contains("mariadb", "0-1-10", "0-1-10,1-1-1")
    assert not position_contains("mariadb", "garbage", "0-1-1")
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    assert position_contains("mysql", f"{uuid}:1-10", f"{uuid}:3-5")
    assert not position_contains("mysql", f"{uuid}:1-4", f"{uuid}:3-5")


def test_job_parameters_in_seconds_fall_back_to_the_default():
    assert seconds(2, 30) == 2.0
    assert seconds("nope", 30) == 30 and seconds(None, 30) == 30 and seconds(-1, 30) == 30
    assert seconds(float("inf"), 30) == 30


def test_a_transaction_innodb_still_lists_while_it_commits_is_not_an_open_one():
    committing = ClientSession(7, "app", "h:1", "Sleep", 0, "", True, 12, transaction_committing=True)
    idle_open = ClientSession(8, "app", "h:2", "Sleep", 12, "", True, 12)
    assert committing.open_transaction_seconds is None
    assert idle_open.open_transaction_seconds == 12
