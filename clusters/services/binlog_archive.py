"""Continuous binlog archiving by flush-and-copy: beat sends `archive_binlogs` every
DBPILOT_BINLOG_ARCHIVE_SECONDS; for each cluster that has a physical backup to replay onto (a logical dump
is not restored by dbpilot) and `binlog_archiving` on, the current primary's binary log is closed (`FLUSH BINARY LOGS`, only when something was written
since the last flush) and every closed file the archive still needs is copied with `mariadb-binlog
--read-from-remote-server --raw`, compressed, encrypted and checksummed, into storage.

Why flush-and-copy rather than a long-lived `mariadb-binlog --stop-never`: it runs inside the existing
worker and beat, holds no process to supervise, and follows the primary by construction (each run asks
the cluster's current primary). The RPO is the interval plus the copy (docs/backups.md,
bench/backup.py). After a failover the run meets the new primary: its files carry the old primary's
transactions too (log_slave_updates), and only those past the archive's end are copied, so the chain goes
on without gap or duplicate (clusters.domain.backup_plan.build_chain); a gap or a divergence is the
finding BINLOG_ARCHIVE_GAP.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path

from django.utils import timezone

from clusters import hotstate
from clusters.adapters.mysql import ServerError, connect
from clusters.backup_models import Backup, BinlogArchive
from clusters.backups import catalog, codec
from clusters.backups.storage import StorageError, storage_from_settings
from clusters.credentials import admin_credentials, cluster_settings, connect_options, replication_credentials
from clusters.domain.backup_plan import build_chain, position
from clusters.models import Cluster

log = logging.getLogger(__name__)

MARIADB_BINLOG = "/usr/bin/mariadb-binlog"
LOCK_SECONDS = 120
GTID_LIST = re.compile(r"\[([^\]]*)\]")


def clusters_to_archive() -> list[int]:
    with_backups = set(
        Backup.objects.filter(
            status=Backup.Status.COMPLETED, kind=Backup.Kind.PHYSICAL, cluster__isnull=False
        ).values_list("cluster_id", flat=True)
    )
    return sorted(
        c.pk
        for c in Cluster.objects.filter(pk__in=with_backups, primary__isnull=False)
        if cluster_settings(c).binlog_archiving
    )


def _gtid_list(cursor, file_name: str) -> str:
    cursor.execute(f"SHOW BINLOG EVENTS IN '{file_name}' LIMIT 4")
    for row in cursor.fetchall():
        if row["Event_type"] == "Gtid_list":
            match = GTID_LIST.search(row["Info"])
            return match.group(1) if match else ""
    return ""


def archive_cluster(cluster_id: int) -> dict:
    """One run for one cluster (the caller holds no lock: a Redis lock makes runs of a cluster single)."""
    lock = hotstate.client().lock(f"dbpilot:binlog-archive:{cluster_id}", timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return {"skipped": "another run holds the cluster"}
    try:
        return _archive(cluster_id)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - expired: nothing to release
            pass


def _archive(cluster_id: int) -> dict:
    cluster = Cluster.objects.select_related("primary", "tenant").get(pk=cluster_id)
    if cluster.primary is None:
        return {"skipped": "no primary"}
    settings = cluster_settings(cluster)
    primary = cluster.primary
    admin = admin_credentials(cluster)
    closed_at = timezone.now()  # every commit before this is in a file the flush below closes
    try:
        conn = connect(primary.address, admin, connect_options(settings, read_timeout=10))
    except ServerError as exc:
        return {"error": f"cannot reach the primary {primary.address}: {exc}"}
    with conn, conn.cursor() as cursor:
        cursor.execute("SHOW MASTER STATUS")
        status = cursor.fetchone() or {}
        cursor.execute("SELECT @@server_id AS id, @@gtid_binlog_state AS state")
        row = cursor.fetchone()
        server_id = int(row["id"])
        # What was last flushed, as the server says it (its address, file, position and binlog state).
        marker = f"{primary.address}:{status.get('File')}:{status.get('Position')}:{row['state']}"
        state_key = f"dbpilot:binlog-archive:{cluster_id}:flushed"
        if hotstate.client().get(state_key) != marker.encode():
            cursor.execute("FLUSH BINARY LOGS")
            cursor.execute("SHOW MASTER STATUS")
            after = cursor.fetchone() or {}
            hotstate.client().set(
                state_key,
                f"{primary.address}:{after.get('File')}:{after.get('Position')}:{row['state']}",
                ex=86400,
            )
        cursor.execute("SHOW BINARY LOGS")
        names = [r["Log_name"] for r in cursor.fetchall()]
        done = set(
            BinlogArchive.objects.filter(cluster_ref=cluster_id, server=primary.address).values_list(
                "file_name", flat=True
            )
        )
        latest = (
            Backup.objects.filter(cluster_ref=cluster_id, status=Backup.Status.COMPLETED)
            .exclude(gtid_position="")
            .order_by("-ended_at")
            .first()
        )
        if latest is None:
            return {"skipped": "no backup"}
        chain = build_chain(catalog.archived_files(cluster_id), latest.gtid_position)
        covered = position(chain.end)
        todo = []
        lists: dict[str, str] = {}
        for name, following in zip(names, names[1:], strict=False):  # the last file is still open
            if name in done:
                continue
            for n in (name, following):
                if n not in lists:
                    lists[n] = _gtid_list(cursor, n)
            if covered.contains(position(lists[following])):
                continue  # everything in it is before the archive's end (e.g. a new primary's old files)
            todo.append((name, lists[name], lists[following]))
    storage = storage_from_settings()
    key, key_encrypted = catalog.cluster_key(cluster_id, settings.backup_encryption)
    repl = replication_credentials(cluster)
    fetch_as = repl if repl.user else admin
    copied = []
    with tempfile.TemporaryDirectory(prefix="dbp-binlog-") as scratch:
        for name, start, end in todo:
            try:
                path = _fetch(
                    primary.host, primary.port, fetch_as.user, fetch_as.password, name, Path(scratch)
                )
                digest = codec.Digest()
                object_key = catalog.binlog_object_key(cluster.tenant_id, cluster_id, primary.address, name)
                storage.put(object_key, codec.encode(_file_chunks(path), key, digest))
                path.unlink()
            except (RuntimeError, StorageError) as exc:
                log.warning("cluster %s: archiving %s failed: %s", cluster_id, name, exc)
                return {"error": str(exc), "copied": copied}
            BinlogArchive.objects.get_or_create(
                cluster_ref=cluster_id,
                server=primary.address,
                file_name=name,
                defaults={
                    "tenant_id": cluster.tenant_id,
                    "server_id": server_id,
                    "gtid_start": start,
                    "gtid_end": end,
                    "closed_at": closed_at,
                    "storage": storage.name,
                    "storage_key": object_key,
                    "encrypted": key is not None,
                    "key_encrypted": key_encrypted,
                    "size_bytes": digest.stored_bytes,
                    "raw_bytes": digest.raw_bytes,
                    "checksum_sha256": digest.hexdigest,
                },
            )
            copied.append(name)
    chain = build_chain(catalog.archived_files(cluster_id), latest.gtid_position)
    if chain.broken:
        catalog.open_finding(
            cluster_id,
            catalog.BINLOG_ARCHIVE_GAP,
            f"The binlog archive of {cluster.label} stops at {chain.end}: {chain.broken}; point-in-time "
            "restore is possible only up to there until the next backup",
            {"end": chain.end, "reason": chain.broken},
        )
    else:
        catalog.resolve_findings(cluster_id, catalog.BINLOG_ARCHIVE_GAP, "the archive is contiguous again")
    return {"copied": copied, "end": chain.end, "broken": chain.broken}


def _file_chunks(path: Path):
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def _fetch(host: str, port: int, user: str, password: str, name: str, directory: Path) -> Path:
    defaults = directory / "client.cnf"
    if not defaults.exists():
        fd = os.open(defaults, os.O_WRONLY | os.O_CREAT, 0o600)  # the password never goes on argv
        with os.fdopen(fd, "w") as out:
            out.write(f"[client]\nhost={host}\nport={port}\nuser={user}\npassword={password}\n")
    result = subprocess.run(
        [
            MARIADB_BINLOG,
            f"--defaults-extra-file={defaults}",
            "--read-from-remote-server",
            "--raw",
            f"--result-file={directory}/",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    path = directory / name
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"mariadb-binlog could not copy {name}: {result.stderr.strip()[-300:]}")
    return path


def archive_all() -> int:
    """Beat's entry: one run per cluster to archive (sent as tasks by workers.tasks.archive_binlogs)."""
    return len(clusters_to_archive())
