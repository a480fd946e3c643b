"""Backups as a capability: take one now or on the cluster's schedule, list them with the recoverable
window, restore one (or a point in time) into a NEW cluster, verify again, keep them after the cluster is
deleted (`final_backup`), and remove what retention no longer needs.

Backups are long jobs (the `long` queue, one at a time per cluster; a failover preempts them). Physical
backups need the provider that owns the servers (provisioned clusters); a registered cluster gets a
logical backup (mariadb-dump), which the restore endpoint does not restore yet (docs/backups.md).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters.backup_models import Backup, BinlogArchive
from clusters.backups import catalog
from clusters.backups.storage import StorageError, storage_from_settings
from clusters.credentials import cluster_settings
from clusters.domain.backup_plan import (
    BackupPoint,
    OutsideWindow,
    expired_backups,
    plan_restore,
    recoverable_window,
    scheduled_backup_due,
    unneeded_binlogs,
)
from clusters.events import record_event
from clusters.models import ACTIVE_JOB_STATES, Cluster, Job
from clusters.services import provisioning
from clusters.services.provisioning import ProvisionConflict, ProvisionError, start_long_job
from controlplane.crypto import decrypt_json, encrypt_json
from tenants.models import Team, Tenant
from tenants.services import grant_cluster

log = logging.getLogger(__name__)


def request_backup(cluster: Cluster, *, requested_by: str, scheduled: bool = False) -> Job:
    """A backup job now (202); 409 while another long job runs on the cluster."""
    if not cluster.servers.exists():
        raise ProvisionConflict("the cluster has no servers to back up", "no_servers")
    return start_long_job(
        cluster,
        "backup",
        requested_by=requested_by,
        params={"scheduled": scheduled, "method": method_of(cluster)},
    )


def method_of(cluster: Cluster) -> str:
    """physical where dbpilot's provider owns the servers; logical (mariadb-dump) for registered ones."""
    return "physical" if cluster.origin == Cluster.Origin.PROVISIONED else "logical"


def request_verify(backup: Backup, *, requested_by: str) -> Job:
    if backup.cluster is None:
        raise ProvisionConflict(
            "the backup's cluster was deleted: verification needs its secrets", "no_cluster"
        )
    if backup.status != Backup.Status.COMPLETED:
        raise ProvisionConflict(
            f"backup {backup.pk} is {backup.status}: only a completed one is verified", "state"
        )
    return start_long_job(
        backup.cluster, "verify_backup", requested_by=requested_by, params={"backup_id": backup.pk}
    )


def recovery(cluster_ref: int) -> dict:
    """The recoverable range: the window, the latest verified backup, the archive's end."""
    points = catalog.backup_points(cluster_ref)
    files = catalog.archived_files(cluster_ref)
    window = recoverable_window(points, files)
    verified = [b for b in points if b.verified]
    latest_verified = max(verified, key=lambda b: b.ended_at) if verified else None
    return {
        "start": window.start,
        "end": window.end,
        "latest_verified_backup": latest_verified.id if latest_verified else None,
        "archived_binlogs": len(files),
    }


# --- schedule and retention ------------------------------------------------------------------------------


def run_schedule(now: datetime | None = None) -> list[int]:
    """Beat: a backup for each cluster whose window is open and whose last backup is old enough (a
    preempted or failed one is retried after RETRY_AFTER); then retention. Returns the jobs started."""
    now = now or timezone.now()
    started = []
    for cluster in Cluster.objects.exclude(settings__backup_window="").exclude(settings__backup_window=None):
        settings = cluster_settings(cluster)
        if not settings.backup_window or settings.paused:
            continue
        backups = Backup.objects.filter(cluster=cluster)
        success = backups.filter(status=Backup.Status.COMPLETED).order_by("-started_at").first()
        attempt = Job.objects.filter(cluster=cluster, kind="backup").order_by("-created_at").first()
        if not scheduled_backup_due(
            settings.backup_window,
            now,
            success.started_at if success else None,
            attempt.created_at if attempt else None,
        ):
            continue
        if Job.objects.filter(cluster=cluster, state__in=ACTIVE_JOB_STATES).exists():
            continue
        try:
            with transaction.atomic():
                started.append(request_backup(cluster, requested_by="dbpilot:schedule", scheduled=True).pk)
        except ProvisionConflict:
            continue
    apply_retention(now)
    return started


def apply_retention(now: datetime | None = None) -> dict:
    """Expired backups (older than the cluster's backup_retention_days, never the latest usable one; a
    deleted cluster's at keep_until) and the archived binlogs no remaining backup needs leave storage."""
    now = now or timezone.now()
    storage = storage_from_settings()
    removed = {"backups": [], "binlogs": 0}
    refs = set(Backup.objects.values_list("cluster_ref", flat=True)) | set(
        BinlogArchive.objects.values_list("cluster_ref", flat=True)
    )
    for ref in refs:
        cluster = Cluster.objects.filter(pk=ref).first()
        rows = list(Backup.objects.filter(cluster_ref=ref))
        # Failed backups go at once; a cluster deleted without final_backup leaves nothing behind.
        doomed = [b for b in rows if b.status == Backup.Status.FAILED]
        if cluster is None:
            doomed += [b for b in rows if b.keep_until is None and b.status != Backup.Status.FAILED]
        retention = cluster_settings(cluster).backup_retention_days if cluster else 0
        completed = [b for b in rows if b.status == Backup.Status.COMPLETED and b.ended_at]
        points = [BackupPoint(b.pk, b.gtid_position, b.ended_at, b.verified) for b in completed]
        keep_until = {b.pk: b.keep_until for b in completed if b.keep_until}
        expired = set(expired_backups(points, now, retention or 1, keep_until)) if completed else set()
        doomed += [b for b in completed if b.pk in expired and b not in doomed]
        for backup in doomed:
            try:
                if backup.storage_key:
                    storage.delete(backup.storage_key)
            except StorageError as exc:
                log.warning("retention: backup %s stays: %s", backup.pk, exc)
                continue
            removed["backups"].append(backup.pk)
            backup.delete()
        kept = [
            BackupPoint(b.pk, b.gtid_position, b.ended_at, b.verified)
            for b in Backup.objects.filter(cluster_ref=ref, status=Backup.Status.COMPLETED)
            if b.ended_at and b.kind == Backup.Kind.PHYSICAL
        ]
        files = catalog.archived_files(ref)
        for archive_id in unneeded_binlogs(kept, files):
            archive = BinlogArchive.objects.get(pk=archive_id)
            try:
                storage.delete(archive.storage_key)
            except StorageError as exc:
                log.warning("retention: binlog %s stays: %s", archive.pk, exc)
                continue
            archive.delete()
            removed["binlogs"] += 1
    return removed


def keep_after_delete(cluster: Cluster, keep: bool) -> int:
    """Before a cluster is deleted: with final_backup its completed backups (and their binlogs) are kept
    for backup_retention_days, listed at /api/v1/backups/ and restorable; without, retention removes them."""
    if not keep:
        return 0
    days = cluster_settings(cluster).backup_retention_days
    return Backup.objects.filter(cluster=cluster, status=Backup.Status.COMPLETED).update(
        keep_until=timezone.now() + timedelta(days=days)
    )


# --- restore ---------------------------------------------------------------------------------------------


def _parse_time(value) -> datetime:
    if not isinstance(value, str):
        raise ProvisionError({"time": "must be an ISO-8601 date and time, e.g. 2026-12-06T02:30:00Z"})
    parsed = parse_datetime(value.strip())
    if parsed is None:
        raise ProvisionError({"time": f"{value!r} is not an ISO-8601 date and time (2026-12-06T02:30:00Z)"})
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_restore(tenant: Tenant, source_ref: int, data, fixed_backup: Backup | None = None) -> dict:
    """Validate `{"name", "backup": ID | "time": ISO-8601, "provision": {...}}` against the catalog of the
    source cluster: what to restore and replay, or ProvisionError naming each bad field."""
    if not isinstance(data, dict):
        raise ProvisionError({"body": 'must be an object {"name", "backup" or "time", "provision"}'})
    provision_spec = data.get("provision") or {}
    if isinstance(provision_spec, dict) and provision_spec.get("master_user") is not None:
        raise ProvisionError({"provision.master_user": "a restored cluster keeps the users of its backup"})
    request = provisioning.parse_request(tenant, {"name": data.get("name"), "provision": provision_spec})
    given = [k for k in ("backup", "time") if data.get(k) is not None]
    if fixed_backup is not None:
        if "backup" in given:
            raise ProvisionError({"backup": "the backup is the one in the URL"})
        given = given or ["backup"]
    if len(given) != 1:
        raise ProvisionError({"backup": 'give "backup" (an id) or "time" (ISO-8601), one of them'})
    points = catalog.backup_points(source_ref)
    files = catalog.archived_files(source_ref)
    if given == ["backup"]:
        backup = fixed_backup
        if backup is None:
            backup_id = data.get("backup")
            if isinstance(backup_id, bool) or not isinstance(backup_id, int):
                raise ProvisionError({"backup": "must be a backup id (a whole number)"})
            backup = Backup.objects.filter(pk=backup_id, cluster_ref=source_ref).first()
            if backup is None:
                raise ProvisionError({"backup": f"no backup {backup_id} of this cluster"}, "unknown_backup")
        _restorable(backup)
        return {"request": request, "backup": backup, "links": [], "stop": None, "time": None}
    at = _parse_time(data["time"])
    try:
        point = plan_restore(points, files, at)
    except OutsideWindow as exc:
        raise ProvisionError({"time": str(exc)}, "outside_window") from None
    backup = Backup.objects.get(pk=point.backup.id)
    _restorable(backup)
    links = [[link.file.id, link.start_position] for link in point.links]
    return {"request": request, "backup": backup, "links": links, "stop": at, "time": at}


def _restorable(backup: Backup) -> None:
    if backup.status != Backup.Status.COMPLETED:
        raise ProvisionError({"backup": f"backup {backup.pk} is {backup.status}, not completed"}, "state")
    if backup.kind != Backup.Kind.PHYSICAL:
        raise ProvisionError(
            {"backup": f"backup {backup.pk} is a logical dump: load it by hand (docs/backups.md)"}, "logical"
        )
    if backup.verified is False:
        raise ProvisionError({"backup": f"backup {backup.pk} failed verification: {backup.verified_reason}"})


@transaction.atomic
def restore_cluster(team: Team, parsed: dict, *, requested_by: str) -> Cluster:
    """The new cluster (provisioned, no servers yet) and its restore job, in one transaction."""
    request = parsed["request"]
    backup: Backup = parsed["backup"]
    tenant = Tenant.objects.select_for_update().get(pk=team.tenant_id)
    provisioning.check_provision_quota(tenant, request)
    root = (decrypt_json(backup.restore_secrets_encrypted) or {}).get("root", "")
    cluster = Cluster.objects.create(
        tenant=tenant,
        name=request.name,
        origin=Cluster.Origin.PROVISIONED,
        settings=request.settings,
        credentials_encrypted=encrypt_json({"user": "dbpilot", "password": secrets.token_urlsafe(24)}),
        replication_credentials_encrypted=encrypt_json(
            {"user": "repl", "password": secrets.token_urlsafe(24)}
        ),
        provision_secrets_encrypted=encrypt_json({"root": root}),
        parameter_group=request.parameter_group,
        provision={
            "provider": request.provider,
            "replicas": request.replicas,
            "semi_sync": request.semi_sync,
            "memory_mb": request.memory_mb,
            "parameters": request.parameters,
            "key": f"{request.name[:20]}-{secrets.token_hex(3)}",
            "master_user": None,
            "restored_from": {"cluster": backup.cluster_ref, "backup": backup.pk},
        },
    )
    grant_cluster(team, cluster)
    stop = parsed["stop"]
    record_event(
        cluster.id,
        "cluster_restoring",
        f"Cluster {cluster.label} requested by {requested_by}: restore of backup {backup.pk} of "
        f"{backup.cluster_name}" + (f" up to {stop.isoformat()}" if stop else ""),
    )
    start_long_job(
        cluster,
        "restore",
        requested_by=requested_by,
        params={
            "backup_id": backup.pk,
            "source_cluster": backup.cluster_ref,
            "time": stop.isoformat() if stop else None,
            "stop_datetime": stop.strftime("%Y-%m-%d %H:%M:%S") if stop else None,
            "links": parsed["links"],
        },
    )
    return cluster
