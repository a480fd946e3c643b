"""The backups API without servers: the permission matrix through the tenants chokepoint, bad restore
requests (each a 400 naming the field, nothing created), the schedule with a preempted backup retried
later, and deleted clusters' backups visible to their tenant only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from clusters.backup_models import Backup
from clusters.jobs.engine import create_job, preempt_long_jobs
from clusters.models import Cluster, Job
from clusters.services import backups, provisioning

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_workers(monkeypatch):
    sent = []
    monkeypatch.setattr(provisioning, "send_long_job", sent.append)
    return sent


def _backup(cluster, **extra) -> Backup:
    fields = {
        "cluster": cluster,
        "cluster_ref": cluster.pk,
        "cluster_name": cluster.name,
        "tenant": cluster.tenant,
        "kind": "physical",
        "status": "completed",
        "storage": "filesystem",
        "storage_key": "x",
        "gtid_position": "0-1-10",
        "started_at": timezone.now() - timedelta(minutes=5),
        "ended_at": timezone.now() - timedelta(minutes=4),
        "verified": True,
    }
    fields.update(extra)
    return Backup.objects.create(**fields)


def test_permission_matrix(world, no_workers):
    url = f"/api/v1/clusters/{world.cluster_x.id}/backups/"
    assert world.client(None).get(url).status_code == 401
    assert world.client("charlie").get(url).status_code == 404  # another tenant: not even its existence
    assert world.client("token:tenant_b").post(url, {}, format="json").status_code == 404
    assert world.client("bob").get(url).status_code == 200
    assert world.client("bob").post(url, {}, format="json").status_code == 403  # a viewer cannot back up
    assert world.client("token:read").post(url, {}, format="json").status_code == 403
    Job.objects.filter(cluster=world.cluster_x).update(state="succeeded")  # the fixture's job ends
    created = world.client("oscar").post(url, {}, format="json")
    assert created.status_code == 202, created.content
    assert created.json()["kind"] == "backup" and created.json()["params"]["method"] == "logical"
    again = world.client("oscar").post(url, {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "job_active"
    listed = world.client("bob").get(url).json()
    assert listed["method"] == "logical" and listed["recoverable"]["start"] is None

    restore = f"/api/v1/clusters/{world.cluster_x.id}/restore/"
    assert world.client("charlie").post(restore, {"name": "x"}, format="json").status_code == 404
    assert world.client("oscar").post(restore, {"name": "x"}, format="json").status_code == 403  # not admin


def test_bad_restore_requests_are_400s_naming_the_field_and_create_nothing(world, no_workers):
    client = world.client("alice")
    source = world.cluster_x
    good = _backup(source)
    logical = _backup(source, kind="logical")
    failed = _backup(source, verified=False, verified_reason="checksum mismatch")
    url = f"/api/v1/clusters/{source.id}/restore/"
    count = Cluster.objects.count()
    cases = [
        ({"name": "new"}, "backup", 'give "backup"'),
        ({"name": "new", "backup": good.pk, "time": "2026-01-01T00:00:00Z"}, "backup", "one of them"),
        ({"name": "new", "backup": 424242}, "backup", "no backup 424242"),
        ({"name": "new", "backup": "one"}, "backup", "whole number"),
        ({"name": "new", "backup": logical.pk}, "backup", "logical dump"),
        ({"name": "new", "backup": failed.pk}, "backup", "failed verification"),
        ({"name": "new", "time": "yesterday"}, "time", "not an ISO-8601"),
        ({"name": "new", "time": "2001-01-01T00:00:00Z"}, "time", "outside the recoverable window (from "),
        ({"name": source.name, "backup": good.pk}, "name", "already exists"),
        ({"name": "Bad_Name", "backup": good.pk}, "name", "lowercase"),
        ({"name": "new", "backup": good.pk, "provision": {"replicas": 99}}, "provision.replicas", "0 to 8"),
        (
            {"name": "new", "backup": good.pk, "provision": {"master_user": {}}},
            "provision.master_user",
            "keeps",
        ),
    ]
    for body, field, text in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert text in str(response.json()), (body, response.json())
        assert field in str(response.json())
    assert Cluster.objects.count() == count and not no_workers

    ok = client.post(url, {"name": "copy", "backup": good.pk, "provision": {"replicas": 0}}, format="json")
    assert ok.status_code == 202, ok.content
    assert ok.json()["name"] == "copy" and ok.json()["job"]["kind"] == "restore"
    assert ok.json()["job"]["params"]["backup_id"] == good.pk and no_workers


def test_a_preempted_scheduled_backup_is_retried_later(world, no_workers):
    cluster = world.cluster_x
    Job.objects.filter(cluster=cluster).update(state="succeeded")
    now = datetime.now(UTC).replace(hour=3, minute=0)
    Cluster.objects.filter(pk=cluster.pk).update(
        settings={**cluster.settings, "backup_window": "02:30-05:00"}
    )
    assert backups.run_schedule(now - timedelta(hours=2)) == []  # outside the window
    (job_id,) = backups.run_schedule(now)
    job = Job.objects.get(pk=job_id)
    assert job.kind == "backup" and job.params["scheduled"] is True
    Job.objects.filter(pk=job_id).update(created_at=now)
    failover = create_job(cluster, "failover", requested_by="test")
    assert preempt_long_jobs(cluster.pk, failover.pk) == [job_id]
    job.refresh_from_db()
    assert job.state == "failed" and "preempted by failover" in job.result["detail"]
    Job.objects.filter(pk=failover.pk).update(state="succeeded")
    assert backups.run_schedule(now + timedelta(minutes=2)) == []  # not at once
    assert len(backups.run_schedule(now + timedelta(minutes=11))) == 1  # retried


def test_deleted_clusters_backups_are_listed_to_their_tenant_only(world):
    kept = _backup(world.cluster_y, keep_until=timezone.now() + timedelta(days=3))
    Cluster.objects.filter(pk=world.cluster_y.pk).delete()
    listed = world.client("alice").get("/api/v1/backups/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["id"] for r in rows] == [kept.pk] and rows[0]["cluster_deleted"] is True
    assert world.client("charlie").get(f"/api/v1/backups/{kept.pk}/").status_code == 404
    assert world.client("alice").get(f"/api/v1/backups/{kept.pk}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_restore_whose_backup_is_gone_from_storage_fails_with_its_reason_and_places_nothing(
    world, settings, tmp_path, clean_redis
):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"
    settings.DBPILOT_BACKUP_STORAGE = "filesystem"
    settings.DBPILOT_BACKUP_ROOT = tmp_path / "store"
    settings.DBPILOT_LOCAL_SERVERS_ROOT = tmp_path / "servers"
    backup = _backup(world.cluster_x, storage_key="1/2/backups/9.xbstream.zst")
    client = world.client("alice")
    response = client.post(
        f"/api/v1/clusters/{world.cluster_x.id}/restore/",
        {"name": "gone", "backup": backup.pk, "provision": {"replicas": 0}},
        format="json",
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == "failed" and "is not in the backup storage" in job.result["detail"], job.result
    cluster = Cluster.objects.get(pk=response.json()["id"])
    assert not cluster.servers.exists() and cluster.settings["deletion_protection"] is False
    assert not any((tmp_path / "servers").glob("*/instance.json"))
    assert client.delete(f"/api/v1/clusters/{cluster.id}/").status_code in (202, 204)
