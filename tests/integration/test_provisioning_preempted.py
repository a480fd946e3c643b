"""An add-replica job preempted by a failover (clusters.jobs.engine.preempt_long_jobs) stops at its next
step boundary without its abort; once it has stopped, the server it placed and started but had not
registered is destroyed (processes and data), so nothing is left behind."""

from __future__ import annotations

import dataclasses

import pytest

from clusters.jobs import registry
from clusters.jobs import scale_steps as sc
from clusters.jobs.engine import preempt_long_jobs
from clusters.jobs.steps import StepSpec
from clusters.models import Event, Job, Server
from tests.integration.provisioning_helpers import job_of, provision, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_add_replica_preempted_after_starting_its_server_leaves_nothing_behind(local_servers, monkeypatch):
    client, _ = tenant_client()
    body, cluster = provision(client, "cart", replicas=1)
    job = job_of(body)
    assert job.state == "succeeded", (job.result.get("detail"), job.steps)
    before = set(local_servers.instances())

    def start_then_preempted(ctx):
        outcome = sc.start_replica(ctx)
        preempt_long_jobs(ctx.cluster.pk, 999)  # what a failover confirmed now does
        ctx.checkpoint()  # the worker finds its lease gone here
        return outcome

    plan = registry.PLANS["add_replica"]
    steps = tuple(
        StepSpec("start_replica", start_then_preempted) if spec.name == "start_replica" else spec
        for spec in plan.steps
    )
    monkeypatch.setitem(registry.PLANS, "add_replica", dataclasses.replace(plan, steps=steps))

    response = client.post(f"/api/v1/clusters/{cluster.id}/servers/", {}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "failed" and "preempted by failover job 999" in job.result["detail"]
    new_instance = job.result["provision"]["servers"][0]["instance"]
    assert job.result["leftovers"] == f"removed 1 server(s) it had placed: {new_instance}"
    assert set(local_servers.instances()) == before  # its process and data are gone
    assert not local_servers.dir(new_instance).exists()
    assert Server.objects.filter(cluster=cluster).count() == 2
    assert Event.objects.filter(cluster=cluster, kind="job_leftovers_removed").exists()
