"""The backup catalog: each backup and each archived binary log, with where it is stored, its size,
checksum, GTID position and times. Rows outlive their cluster (`final_backup`): they keep the cluster's id,
name and tenant, and the cluster's data key (Fernet-encrypted) travels with every row."""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class Backup(models.Model):
    """One backup of a cluster: physical (mariadb-backup) or logical (mariadb-dump)."""

    class Kind(models.TextChoices):
        PHYSICAL = "physical"
        LOGICAL = "logical"

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="backups"
    )
    # The cluster as it was: kept when the cluster is deleted with final_backup.
    cluster_ref = models.PositiveBigIntegerField(db_index=True)
    cluster_name = models.CharField(max_length=63)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="backups")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    job = models.ForeignKey(
        "clusters.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scheduled = models.BooleanField(default=False)
    source = models.CharField(max_length=300, default="", blank=True)  # the server it was taken from
    storage = models.CharField(max_length=16)  # filesystem | s3
    storage_key = models.CharField(max_length=500, default="", blank=True)
    compression = models.CharField(max_length=16, default="zstd")
    encrypted = models.BooleanField(default=False)
    # The cluster's data key (AES-256), Fernet-encrypted like every stored secret; "" when not encrypted.
    key_encrypted = models.TextField(default="", blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)  # as stored
    raw_bytes = models.PositiveBigIntegerField(default=0)  # before compression
    checksum_sha256 = models.CharField(max_length=64, default="", blank=True)
    gtid_position = models.CharField(max_length=2000, default="", blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(default="", blank=True)
    verified = models.BooleanField(null=True, blank=True)  # None: not verified yet
    verified_reason = models.TextField(default="", blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    keep_until = models.DateTimeField(null=True, blank=True)  # set when the cluster is deleted (final_backup)
    # The source's local root password (Fernet): the restored data keeps it, so a restore needs it even
    # once the source cluster is gone.
    restore_secrets_encrypted = models.TextField(default="", blank=True)

    class Meta:
        app_label = "clusters"
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["cluster_ref", "status"])]

    def __str__(self) -> str:
        return f"backup {self.pk} of {self.cluster_name} ({self.kind}, {self.status})"


class BinlogArchive(models.Model):
    """One binary log file of a cluster's primary, copied to storage once it was closed.

    `gtid_start` is the file's GTID list (the position before its first transaction) and `gtid_end` the
    next file's (after its last): consecutive files of one server chain end to start; after a failover the
    new primary's files are taken from the one holding the old chain's end (clusters.domain.binlog_chain).
    """

    cluster_ref = models.PositiveBigIntegerField(db_index=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    server = models.CharField(max_length=300)  # host:port
    server_id = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=255)
    gtid_start = models.CharField(max_length=2000, default="", blank=True)
    gtid_end = models.CharField(max_length=2000, default="", blank=True)
    # Every commit before closed_at is in this file or an earlier one (the file was closed by a flush then).
    closed_at = models.DateTimeField()
    storage = models.CharField(max_length=16)
    storage_key = models.CharField(max_length=500)
    encrypted = models.BooleanField(default=False)
    key_encrypted = models.TextField(default="", blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    raw_bytes = models.PositiveBigIntegerField(default=0)
    checksum_sha256 = models.CharField(max_length=64, default="")
    archived_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "clusters"
        ordering = ["cluster_ref", "closed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster_ref", "server", "file_name"], name="one_archive_per_binlog_file"
            )
        ]
