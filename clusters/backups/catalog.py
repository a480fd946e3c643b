"""The catalog's shared helpers: the cluster's data key, storage keys, the rows as the pure decisions see
them (clusters.domain.backup_plan), and the findings backups open and resolve."""

from __future__ import annotations

import base64

from django.utils import timezone

from clusters.backup_models import Backup, BinlogArchive
from clusters.backups import codec
from clusters.domain import constants
from clusters.domain.backup_plan import ArchivedFile, BackupPoint
from clusters.events import record_event
from clusters.models import Finding
from controlplane.crypto import decrypt_json, encrypt_json

BACKUP_UNVERIFIED = constants.BACKUP_UNVERIFIED
BINLOG_ARCHIVE_GAP = constants.BINLOG_ARCHIVE_GAP


def cluster_key(cluster_ref: int, enabled: bool) -> tuple[bytes | None, str]:
    """The cluster's data key (and its Fernet-encrypted form to store on the row): the one earlier rows of
    the cluster carry, or a new one. (None, "") when encryption is off."""
    if not enabled:
        return None, ""
    for model in (Backup, BinlogArchive):
        stored = (
            model.objects.filter(cluster_ref=cluster_ref)
            .exclude(key_encrypted="")
            .values_list("key_encrypted", flat=True)
            .first()
        )
        if stored:
            return row_key(stored), stored
    key = codec.new_key()
    return key, encrypt_json({"aes256": base64.b64encode(key).decode()})


def row_key(key_encrypted: str) -> bytes | None:
    if not key_encrypted:
        return None
    return base64.b64decode((decrypt_json(key_encrypted) or {})["aes256"])


def backup_object_key(backup: Backup) -> str:
    suffix = "xbstream" if backup.kind == Backup.Kind.PHYSICAL else "sql"
    stamp = backup.started_at.strftime("%Y%m%dT%H%M%SZ")
    return f"{backup.tenant_id}/{backup.cluster_ref}/backups/{backup.pk}-{stamp}.{suffix}.zst"


def binlog_object_key(tenant_id: int, cluster_ref: int, server: str, file_name: str) -> str:
    return f"{tenant_id}/{cluster_ref}/binlogs/{server.replace(':', '_')}/{file_name}.zst"


def backup_points(cluster_ref: int) -> list[BackupPoint]:
    rows = Backup.objects.filter(
        cluster_ref=cluster_ref, status=Backup.Status.COMPLETED, kind=Backup.Kind.PHYSICAL
    ).exclude(gtid_position="")
    return [BackupPoint(b.pk, b.gtid_position, b.ended_at, b.verified) for b in rows if b.ended_at]


def archived_files(cluster_ref: int) -> list[ArchivedFile]:
    return [
        ArchivedFile(f.pk, f.server, f.file_name, f.gtid_start, f.gtid_end, f.closed_at)
        for f in BinlogArchive.objects.filter(cluster_ref=cluster_ref)
    ]


def open_finding(cluster_id: int | None, code: str, message: str, details: dict, severity="error") -> None:
    """A backup finding, kept open until resolve_findings (monitoring ticks do not resolve it)."""
    if cluster_id is None:
        return
    if Finding.objects.filter(cluster_id=cluster_id, code=code, resolved_at__isnull=True).exists():
        return
    Finding.objects.create(
        cluster_id=cluster_id,
        code=code,
        severity=severity,
        message=message,
        details=details,
        opened_at=timezone.now(),
    )
    record_event(cluster_id, "finding_opened", message, severity=severity, data={"code": code, **details})


def resolve_findings(cluster_id: int | None, code: str, why: str) -> None:
    if cluster_id is None:
        return
    rows = Finding.objects.filter(cluster_id=cluster_id, code=code, resolved_at__isnull=True)
    for row in rows:
        row.resolved_at = timezone.now()
        row.save(update_fields=["resolved_at"])
        record_event(cluster_id, "finding_resolved", f"Resolved: {row.message} ({why})", data={"code": code})
