"""A switchover asked through the API runs on a real Celery worker (the `ha` queue); when that worker is
killed in the middle of the write freeze, beat's reaper hands the job to another worker, which resumes
it and finishes with one writable primary and every replica following it."""

from __future__ import annotations

import signal

import pytest

from clusters.models import Event, Job
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.switchover_helpers import address, assert_one_writable_primary, restore_sandbox
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _ready(process) -> bool:
    return " ready." in process.log_text()


def _finished(client, job_id: int) -> dict | None:
    body = client.get(f"/api/v1/jobs/{job_id}/").json()
    return body if body["state"] not in ("pending", "running") else None


@pytest.mark.jobs  # also run on PostgreSQL by scripts/test.sh
def test_a_killed_worker_mid_switchover_is_resumed_by_the_reaper(sandbox_cluster, dbpilot_processes):
    sandbox = sandbox_cluster
    old = restore_sandbox(sandbox)
    candidate = next(n for n in sandbox.nodes if n != old)
    client, created = tenant_client()
    cluster = register(created.team, sandbox)
    first = dbpilot_processes(name="ha-first", queues="ha")
    wait_for(lambda: _ready(first), 30, message="the first worker")

    lock = sandbox.connect(candidate)  # root: the candidate cannot catch up, so the job waits in the freeze
    try:
        with lock.cursor() as cursor:
            cursor.execute("FLUSH TABLES WITH READ LOCK")
        sandbox.sql(old, "CREATE TABLE IF NOT EXISTS app.resumed (id INT PRIMARY KEY)")
        response = client.post(
            f"/api/v1/clusters/{cluster.id}/switchover/",
            {"candidate": address(sandbox, candidate)},
            format="json",
        )
        assert response.status_code == 202, response.content
        body = response.json()
        assert {"id", "kind", "state", "steps", "result"} <= set(body) and body["kind"] == "switchover"
        job_id = body["id"]
        wait_for(
            lambda: sandbox.sql(old, "SELECT @@read_only AS ro")[0]["ro"] == 1,
            30,
            message="the old primary to be frozen",
        )
        first.kill(signal.SIGKILL)
    finally:
        lock.close()
    frozen = Job.objects.get(pk=job_id)
    assert frozen.state == "running" and frozen.attempts == 1

    second = dbpilot_processes(name="ha-second", queues="ha")
    dbpilot_processes("beat")
    done = wait_for(lambda: _finished(client, job_id), 40, interval=0.3, message="the resumed job")
    assert done["state"] == "succeeded", done["result"]
    job = Job.objects.get(pk=job_id)
    assert job.attempts == 2
    assert Event.objects.filter(cluster=cluster, kind="job_reaped", data__job_id=job_id).exists()
    assert Event.objects.filter(cluster=cluster, kind="job_resumed", data__job_id=job_id).exists()
    assert_one_writable_primary(sandbox, candidate)
    sandbox.sql(candidate, "INSERT INTO app.resumed VALUES (1)")
    sandbox.wait_replicating(primary=candidate)

    # The next one runs on the second worker from start to end.
    assert _ready(second)
    response = client.post(
        f"/api/v1/clusters/{cluster.id}/switchover/", {"candidate": address(sandbox, old)}, format="json"
    )
    assert response.status_code == 202, response.content
    back = wait_for(
        lambda: _finished(client, response.json()["id"]), 30, interval=0.2, message="the switchback"
    )
    assert back["state"] == "succeeded", back["result"]
    assert back["result"]["old_primary"] == address(sandbox, candidate)
    assert_one_writable_primary(sandbox, old)
    cluster_body = client.get(f"/api/v1/clusters/{cluster.id}/").json()
    assert cluster_body["primary"] == address(sandbox, old) and cluster_body["job"]["id"] == back["id"]
