"""A failover preempts a running backup: the stream stops at its next chunk once the job's lease is gone,
the backup is marked failed (retried by the schedule) and nothing stays in storage."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils import timezone

from clusters.backup_models import Backup
from clusters.backups.storage import FilesystemStorage
from clusters.jobs import backup_steps
from clusters.jobs.steps import StepFailed

pytestmark = pytest.mark.django_db


class FakeStream:
    gtid = "0-1-5"

    def __init__(self, lease):
        self.lease = lease
        self.closed = False

    def __iter__(self):
        for index in range(100):
            if index == 3:
                self.lease["valid"] = False  # the failover ended the job meanwhile
            yield b"x" * 100_000

    def close(self):
        self.closed = True


def test_a_lost_lease_stops_the_stream_and_fails_the_backup(world, tmp_path):
    cluster = world.cluster_x
    server = cluster.servers.first()
    type(server).objects.filter(pk=server.pk).update(instance="inst-1")
    backup = Backup.objects.create(
        cluster=cluster,
        cluster_ref=cluster.pk,
        cluster_name=cluster.name,
        tenant=cluster.tenant,
        kind="physical",
        storage="filesystem",
        source=server.address,
        started_at=timezone.now(),
    )
    lease = {"valid": True}
    stream = FakeStream(lease)
    storage = FilesystemStorage(tmp_path)
    ctx = SimpleNamespace(
        backup=backup,
        cluster=cluster,
        settings=SimpleNamespace(backup_encryption=True),
        storage=storage,
        provider=SimpleNamespace(backup_stream=lambda instance, password: stream),
        root_password="x",
        result={"backup": {}},
        checkpoint=lambda: None,
        lease_valid=lambda: lease["valid"],
    )
    with pytest.raises(StepFailed, match="preempted by a failover"):
        backup_steps.stream_to_storage(ctx)
    backup.refresh_from_db()
    assert backup.status == "failed" and "preempted" in backup.error
    assert stream.closed and storage.keys("") == []
