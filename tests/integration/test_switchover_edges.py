"""Switchover edge cases: a cluster that never committed anything, a replica that is down, and which
client sessions are killed at once or given their grace."""

from __future__ import annotations

import signal
import threading
import time

import pymysql
import pytest

from tests.integration.switchover_helpers import (
    address,
    assert_one_writable_primary,
    register_sandbox,
    step,
    switchover,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_fresh_cluster_without_any_transaction_switches_over(sandbox_factory, clean_redis):
    sandbox = sandbox_factory(3)
    assert sandbox.sql(1, "SELECT @@gtid_binlog_pos AS p")[0]["p"] == ""
    cluster, _ = register_sandbox(sandbox)
    job = switchover(cluster, address(sandbox, 2))
    assert job.state == "succeeded", job.steps
    assert "nothing to wait for" in step(job, "wait_candidate_catchup")["detail"]
    assert_one_writable_primary(sandbox, 2)


def test_a_switchover_with_a_replica_down_succeeds_and_says_so(sandbox_factory, clean_redis):
    sandbox = sandbox_factory(3)
    sandbox.sql(1, "CREATE TABLE app.t (id INT PRIMARY KEY)")
    sandbox.wait_replicating()
    cluster, _ = register_sandbox(sandbox)
    sandbox.kill(3, signal.SIGKILL)
    job = switchover(cluster, address(sandbox, 2))
    assert job.state == "succeeded", job.steps
    assert "not reachable" in step(job, "replicas_read_only")["detail"]
    assert sandbox.sql(2, "SELECT @@read_only AS r")[0]["r"] == 0
    assert sandbox.sql(1, "SELECT @@read_only AS r")[0]["r"] == 1
    status = sandbox.replication_status(1)
    assert status["Master_Port"] == sandbox.port(2) and status["Slave_IO_Running"] == "Yes"


def test_a_running_read_gets_its_grace_and_an_idle_session_is_killed_at_once(sandbox_factory, clean_redis):
    """Kill with care (design.md): a read running on the old primary when the freeze starts (it holds a
    table, so the read lock waits for it) finishes within switchover_wait_kill_ms; an idle session is
    killed at once."""
    sandbox = sandbox_factory(3)
    sandbox.sql(1, "CREATE TABLE app.t (id INT PRIMARY KEY)")
    sandbox.sql(1, "INSERT INTO app.t VALUES (1)")
    sandbox.wait_replicating()
    cluster, _ = register_sandbox(sandbox, switchover_wait_kill_ms=5000)
    idle = sandbox.connect(1, "app", timeout=10)
    reader = sandbox.connect(1, "app", timeout=10)
    outcome: dict = {}

    def read() -> None:
        try:
            with reader.cursor() as cursor:
                cursor.execute("SELECT SLEEP(1.5) AS s, id FROM app.t")
                outcome["rows"] = cursor.fetchall()
        except pymysql.MySQLError as exc:
            outcome["error"] = exc.args

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.3)
    job = switchover(cluster, address(sandbox, 2))
    thread.join(10)
    assert job.state == "succeeded", job.steps
    assert outcome.get("rows") == [{"s": 0, "id": 1}], outcome  # finished, not killed
    with pytest.raises(pymysql.err.OperationalError), idle.cursor() as cursor:
        cursor.execute("SELECT 1")  # killed at once: its connection is gone
    assert_one_writable_primary(sandbox, 2)
