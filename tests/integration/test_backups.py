"""Backups, binlog archiving and point-in-time restore on real servers (issue 17's "Done when").

A 3-node provisioned cluster is backed up under a writer (from a replica, verified by a test restore);
rows are written with a noted time between two of them, the primary fails over, more rows go to the new
primary; a restore to a time between two known writes finds exactly the rows committed before it,
including the second primary's. A corrupted backup fails verification; bad requests are 4xx and leave
nothing behind.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clusters.backup_models import Backup, BinlogArchive
from clusters.models import Cluster, Finding, Job, Server
from clusters.services import binlog_archive
from tests.integration.backup_helpers import use_directory
from tests.integration.failover_helpers import finished_failover, tick, tick_until
from tests.integration.provisioning_helpers import connect, job_of, provision, root_connection, tenant_client
from tests.writer import Writer

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = ("owner", "a-long-password-1")


def primary_address(cluster: Cluster) -> str:
    return Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id).address


def sql(address: str, *statements):
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        rows = []
        for statement in statements:
            cursor.execute(statement)
            rows = cursor.fetchall()
        return rows


def mark(cluster: Cluster, row_id: int) -> None:
    sql(primary_address(cluster), f"INSERT INTO shop.marks VALUES ({row_id}, NOW(6))")


def next_second_boundary() -> datetime:
    """Sleep past the next whole second, then return that second: every commit before the call has a
    binlog timestamp strictly before it, every commit after the return one at or after it."""
    now = time.time()
    boundary = int(now) + 1
    time.sleep(boundary - now + 0.3)
    return datetime.fromtimestamp(boundary, UTC)


def archive(cluster: Cluster) -> dict:
    result = binlog_archive.archive_cluster(cluster.pk)
    assert "error" not in result, result
    return result


def test_backup_failover_and_point_in_time_restore(local_servers, settings, tmp_path):
    use_directory(settings, tmp_path / "backups")
    client, _ = tenant_client()
    body, cluster = provision(client, "src", replicas=2)
    assert job_of(body).state == "succeeded", job_of(body).result
    primary = primary_address(cluster)
    sql(
        primary,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.marks (id INT PRIMARY KEY, at DATETIME(6))",
        "CREATE DATABASE app",
        "CREATE TABLE shop.items (id INT PRIMARY KEY, body VARCHAR(200))",
        "INSERT INTO shop.items SELECT seq, REPEAT(MD5(seq), 4) FROM shop.seq_1_to_20000",
    )
    addresses = [s.address for s in Server.objects.filter(cluster=cluster)]
    writer = Writer(addresses, *OWNER, rate=100)
    writer.ensure_table()
    writer.start()
    try:
        response = client.post(f"/api/v1/clusters/{cluster.id}/backups/", {}, format="json")
        assert response.status_code == 202, response.content
        job = Job.objects.get(pk=response.json()["id"])
    finally:
        writer.stop()
    assert job.kind == "backup" and job.state == "succeeded", job.result
    assert [s["name"] for s in job.steps] == [
        "choose_source",
        "stream_to_storage",
        "record_backup",
        "verify_backup",
    ]
    backup = Backup.objects.get(pk=job.result["backup_id"])
    assert backup.status == "completed" and backup.kind == "physical" and backup.encrypted
    assert backup.source != primary  # from a replica, never the primary
    assert backup.verified is True, backup.verified_reason
    assert "CHECK TABLE ok" in backup.verified_reason
    # ... and the restored tables equal the source's at one GTID (the scratch caught up to a replica)
    assert "table(s) equal to the source" in backup.verified_reason, backup.verified_reason
    assert backup.size_bytes < backup.raw_bytes and len(backup.checksum_sha256) == 64 and backup.gtid_position
    assert Path(settings.DBPILOT_BACKUP_ROOT, backup.storage_key).is_file()

    listed = client.get(f"/api/v1/clusters/{cluster.id}/backups/").json()
    assert listed["method"] == "physical" and listed["results"][0]["id"] == backup.pk
    assert listed["recoverable"]["latest_verified_backup"] == backup.pk

    # Rows on the first primary, archived, then a failover.
    archive(cluster)
    mark(cluster, 1)
    mark(cluster, 2)
    archive(cluster)
    old_primary = Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id)
    for _ in range(3):  # monitoring has seen the replicas healthy (their lag) before the primary goes
        tick(cluster)
        time.sleep(0.3)
    local_servers.shutdown(old_primary.instance)
    failover = tick_until(cluster, lambda: finished_failover(cluster), timeout=60, message="the failover")
    assert failover.state == "succeeded", json.dumps(failover.result)[:6000]
    new_primary = primary_address(cluster)
    assert new_primary != old_primary.address

    # Rows on the second primary, a noted time between two of them.
    mark(cluster, 3)
    archive(cluster)  # the archiver follows the new primary
    mark(cluster, 4)
    between = next_second_boundary()
    mark(cluster, 5)
    archive(cluster)
    servers = set(BinlogArchive.objects.filter(cluster_ref=cluster.pk).values_list("server", flat=True))
    assert {old_primary.address, new_primary} <= servers
    assert not Finding.objects.filter(cluster=cluster, code="BINLOG_ARCHIVE_GAP", resolved_at=None).exists()

    # A time outside the window: 400 naming the window, nothing created.
    clusters_before = Cluster.objects.count()
    too_late = client.post(
        f"/api/v1/clusters/{cluster.id}/restore/",
        {
            "name": "late",
            "time": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "provision": {"replicas": 0},
        },
        format="json",
    )
    assert too_late.status_code == 400, too_late.content
    assert "outside the recoverable window (from " in str(too_late.json())
    taken = client.post(
        f"/api/v1/clusters/{cluster.id}/restore/",
        {"name": "src", "backup": backup.pk, "provision": {"replicas": 0}},
        format="json",
    )
    assert taken.status_code == 400 and "already exists" in str(taken.json())
    unknown = client.post(
        f"/api/v1/clusters/{cluster.id}/restore/",
        {"name": "nope", "backup": 999999, "provision": {"replicas": 0}},
        format="json",
    )
    assert unknown.status_code == 400 and "no backup 999999" in str(unknown.json())
    assert Cluster.objects.count() == clusters_before

    # The restore to the noted time: exactly the rows committed before it, from both primaries.
    restored = client.post(
        f"/api/v1/clusters/{cluster.id}/restore/",
        {"name": "pitr", "time": between.isoformat(), "provision": {"replicas": 1}},
        format="json",
    )
    assert restored.status_code == 202, restored.content
    new_cluster = restored.json()
    assert new_cluster["name"] == "pitr" and new_cluster["job"]["kind"] == "restore"
    restore_job = Job.objects.get(pk=new_cluster["job"]["id"])
    assert restore_job.state == "succeeded", json.dumps([restore_job.result, restore_job.steps])[:6000]
    target = Cluster.objects.get(pk=new_cluster["id"])
    target_primary = primary_address(target)
    assert [r["id"] for r in sql(target_primary, "SELECT id FROM shop.marks ORDER BY id")] == [1, 2, 3, 4]
    assert sql(target_primary, "SELECT COUNT(*) AS n FROM shop.items")[0]["n"] == 20000
    written = {r["id"] for r in sql(target_primary, "SELECT id FROM app.dbpilot_writes")}
    assert writer.acknowledged() <= written
    replica = next(s for s in Server.objects.filter(cluster=target) if s.address != target_primary)
    for _ in range(50):
        if [r["id"] for r in sql(replica.address, "SELECT id FROM shop.marks ORDER BY id")] == [1, 2, 3, 4]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the restored replica does not have the restored rows")
    # The source is untouched.
    assert [r["id"] for r in sql(new_primary, "SELECT id FROM shop.marks ORDER BY id")] == [1, 2, 3, 4, 5]

    # A corrupted backup fails verification, and that is a finding.
    path = Path(settings.DBPILOT_BACKUP_ROOT, backup.storage_key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    verify = client.post(f"/api/v1/backups/{backup.pk}/verify/", {}, format="json")
    assert verify.status_code == 202, verify.content
    assert Job.objects.get(pk=verify.json()["id"]).state == "succeeded"
    backup.refresh_from_db()
    assert backup.verified is False and "checksum mismatch" in backup.verified_reason
    assert Finding.objects.filter(cluster=cluster, code="BACKUP_UNVERIFIED", resolved_at=None).exists()
    # ... and it is not restored from.
    refused = client.post(
        f"/api/v1/backups/{backup.pk}/restore/", {"name": "bad", "provision": {"replicas": 0}}, format="json"
    )
    assert refused.status_code == 400 and "failed verification" in str(refused.json())

    # A binlog purged before the archiver copied it: the chain has a gap, and that is a finding.
    primary_row = Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id)
    mark(cluster, 6)
    with root_connection(local_servers, cluster, primary_row.instance) as conn, conn.cursor() as cursor:
        cursor.execute("FLUSH BINARY LOGS")
        cursor.execute("SHOW MASTER STATUS")
        current = cursor.fetchone()["File"]
        for _ in range(50):  # a file a replica's dump thread still reads is kept: try until it is gone
            cursor.execute(f"PURGE BINARY LOGS TO '{current}'")
            cursor.execute("SHOW BINARY LOGS")
            if cursor.fetchone()["Log_name"] == current:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the binlog could not be purged")
    mark(cluster, 7)
    result = archive(cluster)
    assert result["broken"].startswith("gap:"), (
        result,
        list(BinlogArchive.objects.values_list("server", "file_name", "gtid_start", "gtid_end")),
    )
    gap = Finding.objects.get(cluster=cluster, code="BINLOG_ARCHIVE_GAP", resolved_at=None)
    assert "point-in-time restore is possible only up to there" in gap.message
