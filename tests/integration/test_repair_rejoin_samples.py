"""A rejoin succeeds only on several consecutive good samples (issue 13, item 11): a server whose SQL thread
stops on a duplicate key right after a first good look is not reported rejoined, stays fenced, and the job
says why. A real 3-node cluster; the job runs in this process."""

from __future__ import annotations

import time

import pytest

from clusters.jobs import rejoin_steps
from clusters.jobs.engine import create_job, run_job
from clusters.models import Event, Server
from tests.integration.switchover_helpers import address, register_sandbox, step

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sql_thread_that_breaks_after_the_first_good_sample_fails_the_rejoin(
    sandbox_factory, clean_redis, monkeypatch
):
    sandbox = sandbox_factory(3)
    sandbox.sql(1, "CREATE TABLE app.rejoin_probe (id INT PRIMARY KEY)")
    sandbox.wait_replicating()
    cluster, _ = register_sandbox(sandbox)
    # Node 3 as a fenced server to rejoin: read-only, replicating from nobody.
    sandbox.sql(3, "STOP SLAVE")
    sandbox.sql(3, "RESET SLAVE ALL")
    rejoining = Server.objects.get(cluster=cluster, host=sandbox.host(3), port=sandbox.port(3))
    Server.objects.filter(pk=rejoining.pk).update(fenced=True)

    real_sample = rejoin_steps.sample_replica
    taken = []

    def sample_then_break(ctx, server, primary):
        sample = real_sample(ctx, server, primary)
        taken.append(sample)
        if len(taken) == 1:
            assert sample.sql_running == "Yes" and sample.io_running == "Yes", sample
            # A row only node 3 has (not binlogged), then the primary writes the same key.
            with sandbox.connect(3) as conn, conn.cursor() as cursor:
                cursor.execute("SET SESSION sql_log_bin=0")
                cursor.execute("INSERT INTO app.rejoin_probe VALUES (7)")
            sandbox.sql(1, "INSERT INTO app.rejoin_probe VALUES (7)")
            deadline = time.monotonic() + 10
            while sandbox.replication_status(3)["Slave_SQL_Running"] == "Yes":
                assert time.monotonic() < deadline, "the SQL thread did not stop on the duplicate key"
                time.sleep(0.02)
        return sample

    monkeypatch.setattr(rejoin_steps, "sample_replica", sample_then_break)
    job = create_job(cluster, rejoin_steps.KIND, params={"server": address(sandbox, 3)}, requested_by="test")
    job = run_job(job.id)
    assert job is not None and job.state == "failed", job.steps
    assert step(job, "repoint")["state"] == "ok"
    verified = step(job, "verify_replication")
    assert verified["state"] == "failed"
    assert "SQL thread stopped" in verified["detail"] and "Duplicate entry" in verified["detail"], verified
    assert step(job, "unfence")["state"] == "pending"
    assert len(taken) == 2  # one good look, then the broken one: failed at once, not at the deadline
    assert Server.objects.get(pk=rejoining.pk).fenced
    assert not Event.objects.filter(cluster=cluster, kind="server_rejoined").exists()
