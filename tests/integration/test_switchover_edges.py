"""Switchover edge cases: a cluster that never committed anything, and a replica that is down."""

from __future__ import annotations

import signal

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
