"""Backups on S3 (moto's standalone server, the double for an object store), retention, backups kept
after the cluster is deleted (final_backup) and restored from there, and unreachable storage."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from django.utils import timezone

from clusters.backup_models import Backup, BinlogArchive
from clusters.models import Cluster, Job, Server
from clusters.services import backups, binlog_archive
from tests.integration.backup_helpers import moto_s3, use_s3  # noqa: F401 - fixture
from tests.integration.provisioning_helpers import connect, job_of, provision, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = ("owner", "a-long-password-1")
BUCKET = "dbpilot-backups"


def s3_keys(endpoint: str) -> set[str]:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    return {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def sql(address: str, *statements):
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        return cursor.fetchall()


def back_up(client, cluster) -> Backup:
    response = client.post(f"/api/v1/clusters/{cluster.id}/backups/", {}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "succeeded", job.result
    return Backup.objects.get(pk=job.result["backup_id"])


def test_s3_backup_verification_retention_and_final_backup(local_servers, settings, moto_s3):  # noqa: F811
    use_s3(settings, moto_s3)
    client, _ = tenant_client()
    body, cluster = provision(client, "ons3", replicas=1)
    assert job_of(body).state == "succeeded", job_of(body).result
    primary = Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id).address
    sql(
        primary,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.items (id INT PRIMARY KEY, body VARCHAR(200))",
        "INSERT INTO shop.items SELECT seq, MD5(seq) FROM shop.seq_1_to_5000",
    )

    first = back_up(client, cluster)
    assert first.storage == "s3" and first.verified is True, first.verified_reason
    assert f"tests/{first.storage_key}" in s3_keys(moto_s3)

    # Bytes flipped in the bucket: verification fails and says why.
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    stored = bytearray(s3.get_object(Bucket=BUCKET, Key=f"tests/{first.storage_key}")["Body"].read())
    original = bytes(stored)
    stored[100] ^= 0x55
    s3.put_object(Bucket=BUCKET, Key=f"tests/{first.storage_key}", Body=bytes(stored))
    verify = client.post(f"/api/v1/backups/{first.pk}/verify/", {}, format="json")
    assert verify.status_code == 202 and Job.objects.get(pk=verify.json()["id"]).state == "succeeded"
    first.refresh_from_db()
    assert first.verified is False and "checksum mismatch" in first.verified_reason
    s3.put_object(Bucket=BUCKET, Key=f"tests/{first.storage_key}", Body=original)

    # Binlogs archived after the first backup, then a second backup and more binlogs.
    assert "error" not in binlog_archive.archive_cluster(cluster.pk)
    sql(primary, "INSERT INTO shop.items VALUES (9001, 'a')")
    assert binlog_archive.archive_cluster(cluster.pk)["copied"]
    second = back_up(client, cluster)
    sql(primary, "INSERT INTO shop.items VALUES (9002, 'b')")
    assert binlog_archive.archive_cluster(cluster.pk)["copied"]
    archives = list(BinlogArchive.objects.filter(cluster_ref=cluster.pk))
    assert len(archives) >= 2

    # Retention: the first backup is past backup_retention_days (7); the second is the latest and stays,
    # with the binlogs after it; binlogs only the first needed go.
    Backup.objects.filter(pk=first.pk).update(ended_at=timezone.now() - timedelta(days=8))
    before = s3_keys(moto_s3)
    removed = backups.apply_retention()
    assert removed["backups"] == [first.pk]
    assert not Backup.objects.filter(pk=first.pk).exists() and Backup.objects.filter(pk=second.pk).exists()
    after = s3_keys(moto_s3)
    gone = before - after
    kept_archives = set(
        BinlogArchive.objects.filter(cluster_ref=cluster.pk).values_list("storage_key", flat=True)
    )
    assert f"tests/{first.storage_key}" in gone and f"tests/{second.storage_key}" in after
    assert {f"tests/{k}" for k in kept_archives} <= after
    assert len(gone) == 1 + removed["binlogs"]  # nothing else removed
    assert kept_archives  # the binlog after the second backup is needed

    # Deleted with final_backup: still listed and restorable.
    assert client.patch(
        f"/api/v1/clusters/{cluster.id}/", {"settings": {"deletion_protection": False}}, format="json"
    ).status_code in (200, 202)
    deleted = client.delete(f"/api/v1/clusters/{cluster.id}/?final_backup=true")
    assert deleted.status_code in (202, 204), deleted.content
    assert not Cluster.objects.filter(pk=cluster.pk).exists()
    listed = client.get("/api/v1/backups/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    kept = next(r for r in rows if r["id"] == second.pk)
    assert kept["cluster_deleted"] is True and kept["keep_until"]
    backups.apply_retention()  # kept until keep_until, not removed as an orphan
    assert Backup.objects.filter(pk=second.pk).exists()
    restored = client.post(
        f"/api/v1/backups/{second.pk}/restore/",
        {"name": "reborn", "provision": {"replicas": 0}},
        format="json",
    )
    assert restored.status_code == 202, restored.content
    assert Job.objects.get(pk=restored.json()["job"]["id"]).state == "succeeded"
    new_primary = Server.objects.get(pk=Cluster.objects.get(pk=restored.json()["id"]).primary_id).address
    assert sql(new_primary, "SELECT COUNT(*) AS n FROM shop.items")[0]["n"] == 5001


def test_unreachable_storage_fails_the_backup_with_its_reason_and_leaves_nothing(local_servers, settings):
    settings.DBPILOT_BACKUP_STORAGE = "s3"
    settings.DBPILOT_BACKUP_S3_ENDPOINT = "http://127.0.0.1:9"
    settings.DBPILOT_BACKUP_S3_BUCKET = "nowhere"
    client, _ = tenant_client()
    body, cluster = provision(client, "nostore", replicas=1)
    assert job_of(body).state == "succeeded"
    response = client.post(f"/api/v1/clusters/{cluster.id}/backups/", {}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "failed" and "cannot upload" in job.result["detail"], job.result
    backup = Backup.objects.get(pk=job.result["backup_id"])
    assert backup.status == "failed" and "s3://nowhere" in backup.error
    # The failed row stays listed (with its reason) until retention can reach the storage; no server left.
    assert client.get(f"/api/v1/backups/{backup.pk}/").json()["status"] == "failed"
    assert not [i for i in local_servers.instances() if i.startswith("verify-")]
