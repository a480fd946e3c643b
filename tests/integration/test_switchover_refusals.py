"""Switchovers that must not happen, or must undo themselves, on a real 3-node cluster: long transactions
and writes on the primary, stopped replication, bad candidates, a second request, a failing pre hook, and a
candidate that cannot catch up (the old primary gets its writes back)."""

from __future__ import annotations

import threading
import time

import pytest

from clusters.models import Job
from clusters.services.switchover import SwitchoverRefused, request_switchover
from tests.integration.switchover_helpers import (
    address,
    assert_one_writable_primary,
    register_sandbox,
    restore_sandbox,
    step,
    switchover,
    writer_for,
)
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox(sandbox_cluster, clean_redis):
    restore_sandbox(sandbox_cluster)
    sandbox_cluster.sql(
        sandbox_cluster.primary, "CREATE TABLE IF NOT EXISTS app.refusals (id INT PRIMARY KEY, v INT)"
    )
    sandbox_cluster.sql(sandbox_cluster.primary, "INSERT IGNORE INTO app.refusals VALUES (1, 0)")
    yield sandbox_cluster
    restore_sandbox(sandbox_cluster)


def replicas(sandbox) -> list[int]:
    return [n for n in sandbox.nodes if n != sandbox.primary]


def refused_checks(cluster, candidate=None) -> dict[str, dict]:
    with pytest.raises(SwitchoverRefused) as refused:
        request_switchover(cluster, candidate=candidate, requested_by="test", enqueue=False)
    return {c["name"]: c for c in refused.value.checks}


def assert_untouched(sandbox, primary: int, job: Job) -> None:
    """Nothing changed on the servers: the primary still takes writes, the replicas still follow it."""
    assert step(job, "reject_writes")["state"] == "pending"
    assert sandbox.sql(primary, "SELECT @@read_only AS ro")[0]["ro"] == 0
    assert sandbox.replication_status(primary) is None
    assert sandbox.find_primary() == primary


def test_an_open_transaction_older_than_the_limit_refuses_the_job(sandbox):
    cluster, _ = register_sandbox(sandbox, switchover_wait_trx_seconds=1)
    primary = sandbox.primary
    held = sandbox.connect(primary, "app", "app")
    try:
        with held.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("UPDATE refusals SET v = v + 1 WHERE id = 1")
        time.sleep(2.2)  # older than switchover_wait_trx_seconds (whole seconds)
        job = switchover(cluster)
    finally:
        held.rollback()
        held.close()
    assert job.state == "refused", job.result
    checks = {c["name"]: c for c in job.result["checks"]}
    assert (
        not checks["long_transactions"]["ok"] and "commit or end it" in checks["long_transactions"]["detail"]
    )
    assert step(job, "check_long_transactions")["state"] == "failed"
    assert_untouched(sandbox, primary, job)


def test_a_long_running_write_query_refuses_the_job(sandbox):
    cluster, _ = register_sandbox(sandbox, switchover_wait_trx_seconds=1)
    primary = sandbox.primary
    writer = sandbox.connect(primary, "app", "app", timeout=30)
    query = threading.Thread(
        target=lambda: _swallow(writer, "UPDATE refusals SET v = SLEEP(20) WHERE id = 1")
    )
    query.start()
    try:
        wait_for(
            lambda: sandbox.sql(
                primary,
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE "
                "'UPDATE refusals%%' AND TIME >= 2",
            ),
            10,
            message="a 2 s old write",
        )
        job = switchover(cluster)
    finally:
        for row in sandbox.sql(
            primary, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE refusals%%'"
        ):
            sandbox.sql(primary, f"KILL QUERY {row['ID']}")
        query.join(10)
        writer.close()
    assert job.state == "refused", job.result
    checks = {c["name"]: c for c in job.result["checks"]}
    assert not checks["long_queries"]["ok"] and "longest running query" in checks["long_queries"]["detail"]
    assert_untouched(sandbox, primary, job)


def _swallow(conn, statement: str) -> None:
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    except Exception:  # noqa: BLE001 - the test kills it
        pass


def test_stopped_sql_threads_refuse_at_once_when_replication_is_checked(sandbox):
    cluster, _ = register_sandbox(sandbox)
    for node in replicas(sandbox):
        sandbox.sql(node, "STOP SLAVE SQL_THREAD")
    checks = refused_checks(cluster)
    assert not checks["replication_state"]["ok"]
    for node in replicas(sandbox):
        assert address(sandbox, node) in checks["replication_state"]["detail"]
    assert not checks["candidate"]["ok"] and "replication not running" in checks["candidate"]["detail"]
    assert checks["no_active_ha_job"]["ok"] and checks["primary_up"]["ok"]
    assert not Job.objects.filter(cluster=cluster).exists()


def test_stopped_sql_threads_are_started_first_when_replication_is_not_checked(sandbox):
    cluster, _ = register_sandbox(sandbox, check_replication_state=False)
    old = sandbox.primary
    for node in replicas(sandbox):
        sandbox.sql(node, "STOP SLAVE SQL_THREAD")
    for value in range(5):  # the replicas fall behind while their SQL threads are stopped
        sandbox.sql(old, f"UPDATE app.refusals SET v = {value} WHERE id = 1")
    job = switchover(cluster)
    assert job.state == "succeeded", job.result
    started = step(job, "start_stopped_replicas")
    assert started["state"] == "ok"
    for node in replicas(sandbox):
        assert address(sandbox, node) in started["detail"]
    assert step(job, "check_replication")["state"] == "skipped"
    new = next(n for n in sandbox.nodes if address(sandbox, n) == job.result["new_primary"])
    assert_one_writable_primary(sandbox, new)
    sandbox.wait_replicating(primary=new)
    assert {r["v"] for n in sandbox.nodes for r in sandbox.sql(n, "SELECT v FROM app.refusals")} == {4}


def test_an_ignored_lagging_or_non_replica_candidate_is_refused_at_once(sandbox):
    primary = sandbox.primary
    ignored, lagging = replicas(sandbox)
    cluster, _ = register_sandbox(
        sandbox, ignored_servers=[address(sandbox, ignored)], max_replica_delay_seconds=1
    )
    checks = refused_checks(cluster, address(sandbox, ignored))
    assert not checks["candidate"]["ok"] and "ignored_servers" in checks["candidate"]["detail"]
    checks = refused_checks(cluster, address(sandbox, primary))
    assert not checks["candidate"]["ok"] and "not a replica" in checks["candidate"]["detail"]
    checks = refused_checks(cluster, "127.0.0.1:1")
    assert not checks["candidate"]["ok"] and "127.0.0.1:1" in checks["candidate"]["detail"]
    lock = sandbox.connect(lagging)  # root: holds the replica's SQL thread back
    try:
        with lock.cursor() as cursor:
            cursor.execute("FLUSH TABLES WITH READ LOCK")
        sandbox.sql(primary, "UPDATE app.refusals SET v = v + 1 WHERE id = 1")
        wait_for(
            lambda: (sandbox.replication_status(lagging)["Seconds_Behind_Master"] or 0) >= 2,
            15,
            message="the replica to lag",
        )
        checks = refused_checks(cluster, address(sandbox, lagging))
    finally:
        lock.close()
    assert not checks["candidate"]["ok"] and "lagging" in checks["candidate"]["detail"]
    assert not checks["replica_lag"]["ok"]
    assert not Job.objects.filter(cluster=cluster).exists()


def test_a_second_switchover_while_one_is_active_is_refused_naming_it(sandbox):
    cluster, _ = register_sandbox(sandbox)
    first = request_switchover(cluster, requested_by="test", enqueue=False)
    with pytest.raises(SwitchoverRefused) as refused:
        request_switchover(cluster, requested_by="test", enqueue=False)
    assert refused.value.code == "ha_job_active" and refused.value.active_job.id == first.id
    assert f"job {first.id}" in refused.value.detail
    from clusters.jobs.engine import run_job

    assert run_job(first.id).state == "succeeded"
    assert Job.objects.filter(cluster=cluster).count() == 1


def test_a_failing_pre_hook_refuses_before_writes_stop(sandbox, settings, tmp_path):
    settings.DBPILOT_HOOKS_DIR = tmp_path
    hook = tmp_path / "drop-vip"
    hook.write_text('#!/bin/sh\necho "VIP 10.9.9.9 still held by $DBPILOT_OLD_PRIMARY"\nexit 2\n')
    hook.chmod(0o755)
    cluster, _ = register_sandbox(sandbox, pre_failover="drop-vip")
    primary = sandbox.primary
    job = switchover(cluster)
    assert job.state == "refused", job.result
    record = step(job, "pre_failover_hook")
    assert record["state"] == "failed" and record["exit_code"] == 2
    assert record["output"].strip() == f"VIP 10.9.9.9 still held by {address(sandbox, primary)}"
    [check] = job.result["checks"]
    assert check["name"] == "pre_failover" and not check["ok"] and "exited 2" in check["detail"]
    assert_untouched(sandbox, primary, job)


def test_a_candidate_that_cannot_catch_up_gives_the_writes_back(sandbox):
    cluster, _ = register_sandbox(sandbox)
    old = sandbox.primary
    candidate = replicas(sandbox)[0]
    writer = writer_for(sandbox, rate=100).start()
    lock = sandbox.connect(candidate)  # root: the candidate cannot apply what the primary writes
    try:
        writer.wait_for_acks(20)
        with lock.cursor() as cursor:
            cursor.execute("FLUSH TABLES WITH READ LOCK")
        writer.wait_for_acks(5)
        job = switchover(cluster, candidate=address(sandbox, candidate), catchup_timeout_seconds=1)
        writer.wait_for_acks(20)  # writes resume on the old primary
    finally:
        lock.close()
        writer.stop()
    assert job.state == "failed", job.result
    waited = step(job, "wait_candidate_catchup")
    assert waited["state"] == "failed" and "did not reach" in waited["detail"]
    assert step(job, "promote_candidate")["state"] == "pending"
    assert "writes restored on " + address(sandbox, old) in job.result["abort"]
    assert_one_writable_primary(sandbox, old)
    assert sandbox.sql(old, "SELECT @@max_connections AS m")[0]["m"] == 400
    sandbox.wait_replicating(primary=old)
    for node in sandbox.nodes:
        assert not writer.missing_on(address(sandbox, node))
    cluster.refresh_from_db()
    assert cluster.primary is None or cluster.primary.address == address(sandbox, old)
