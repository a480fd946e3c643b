"""The repair API without servers: what rebuild, rejoin and restart refuse and why (bad input 400, a
registered cluster's servers 409 not_owned, the primary 409), quarantine cleared by an operator's rejoin,
and a job's artifacts listed and downloaded (view permission on the job's cluster)."""

from __future__ import annotations

from unittest import mock

import pytest

from clusters.models import Cluster, Event, Job, JobArtifact, Server

pytestmark = pytest.mark.django_db


def _servers(world):
    servers = list(world.cluster_x.servers.order_by("id"))
    Cluster.objects.filter(pk=world.cluster_x.pk).update(primary=servers[0])
    return servers


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"method": "rebuild"}, "method", "unknown method"),
        ({"method": ["flashback", "flashback"]}, "method", "twice"),
        ({"method": "none"}, "method", "quarantines"),
        ({"methods": "gtid"}, "methods", "unknown field"),
    ],
)
def test_rejoin_refuses_bad_input_saying_what_to_fix(world, body, field, message):
    servers = _servers(world)
    response = world.client("alice").post(
        f"/api/v1/clusters/{world.cluster_x.id}/servers/{servers[1].id}/rejoin/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert message in response.content.decode() and field in response.content.decode()
    assert not Job.objects.filter(cluster=world.cluster_x, kind="rejoin").exists()


def test_rejoin_of_the_primary_and_rebuild_or_restart_of_a_registered_cluster_are_409(world):
    servers = _servers(world)
    client = world.client("alice")
    base = f"/api/v1/clusters/{world.cluster_x.id}"
    primary = client.post(f"{base}/servers/{servers[0].id}/rejoin/", {}, format="json")
    assert primary.status_code == 409 and primary.json()["code"] == "primary_refused"
    rebuild = client.post(f"{base}/servers/{servers[1].id}/rebuild/", {}, format="json")
    assert rebuild.status_code == 409 and rebuild.json()["code"] == "not_owned"
    assert "mariadb-backup" in rebuild.json()["detail"]
    restart = client.post(f"{base}/restart/", {}, format="json")
    assert restart.status_code == 409 and restart.json()["code"] == "not_owned"
    missing = client.post(f"{base}/servers/999999/rebuild/", {}, format="json")
    assert missing.status_code == 404


def test_an_operator_rejoin_clears_the_quarantine_and_starts_a_rejoin_job(world):
    servers = _servers(world)
    Server.objects.filter(pk=servers[1].pk).update(quarantined=True, fenced=True)
    # The job is only handed to its runner (no server answers in this test); the integration tests run it.
    with mock.patch("clusters.services.repair.start_job") as started:
        response = world.client("alice").post(
            f"/api/v1/clusters/{world.cluster_x.id}/servers/{servers[1].id}/rejoin/",
            {"method": ["flashback", "reseed"]},
            format="json",
        )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "rejoin" and job.params == {
        "server": servers[1].address,
        "method": ["flashback", "reseed"],
    }
    started.assert_called_once()
    row = Server.objects.get(pk=servers[1].pk)
    assert not row.quarantined and row.fenced  # still read-only until the job makes it a replica
    ended = Event.objects.get(cluster=world.cluster_x, kind="server_quarantine_ended")
    assert ended.data["server_id"] == servers[1].pk


def test_job_artifacts_are_listed_and_downloaded_by_whoever_sees_the_cluster(world):
    JobArtifact.objects.create(job=world.job_x, name="discarded-transactions.sql", content="-- BEGIN\n")
    listed = world.client("alice").get(f"/api/v1/jobs/{world.job_x.id}/artifacts/")
    assert listed.status_code == 200
    assert [(a["name"], a["size"]) for a in listed.json()] == [("discarded-transactions.sql", 9)]
    file = world.client("alice").get(listed.json()[0]["url"])
    assert file.status_code == 200 and file.content == b"-- BEGIN\n"
    assert "attachment" in file["Content-Disposition"]
    assert world.client("charlie").get(f"/api/v1/jobs/{world.job_x.id}/artifacts/").status_code == 404
    missing = world.client("alice").get(f"/api/v1/jobs/{world.job_x.id}/artifacts/other.sql/")
    assert missing.status_code == 404
