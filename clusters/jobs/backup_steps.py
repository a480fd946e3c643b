"""The backup job, and the verification of a backup (its last step, and a job of its own on demand).

backup:
    choose_source       a healthy replica (the least lagging), never the primary when one exists; physical
                        (mariadb-backup through the cluster's provider) for provisioned clusters, logical
                        (mariadb-dump over the network) for registered ones; the catalog row is created
    stream_to_storage   the backup streamed through zstd (and the cluster's key) to storage, no local copy;
                        bytes on the step while it runs; a failover preempts it (the row is marked failed)
    record_backup       size, sha256, GTID position, end time; archiving of the primary's binlogs starts
    verify_backup       restored into a scratch server of the local provider, started, CHECK TABLE on every
                        table, its GTID compared with the catalog's: verified true/false with the reason

verify_backup (POST /api/v1/backups/{id}/verify/): the last step alone.
"""

from __future__ import annotations

import time

from django.utils import timezone

from clusters.adapters.mysql import ServerError, connect
from clusters.backup_models import Backup
from clusters.backups import catalog, codec
from clusters.backups.logical import DumpError, LogicalDump, missing_privileges
from clusters.backups.storage import StorageError, storage_from_settings
from clusters.credentials import connect_options
from clusters.domain.backup_plan import SourceCandidate, choose_source
from clusters.events import record_event
from clusters.jobs.context import observe
from clusters.jobs.provision_context import ProvisionContext
from clusters.jobs.steps import Done, Plan, Skipped, StepFailed, StepOutcome, StepSpec
from clusters.models import Cluster, Server
from clusters.providers.base import BackupCapable, ProviderError, ServerSpec
from clusters.providers.registry import get_provider
from controlplane.crypto import encrypt_json

PROGRESS_SAVE_SECONDS = 2.0
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
SCRATCH_SERVER_ID_BASE = 4_000_000_000
COMPARE_CATCH_UP_SECONDS = 60


class BackupContext(ProvisionContext):
    """The provisioning context (cluster, provider, secrets) plus the storage and the catalog row."""

    def __init__(self, job, result: dict):
        super().__init__(job, result)
        self.storage = storage_from_settings()
        self.lease_valid = lambda: True  # the engine sets the lease check here

    @property
    def backup(self) -> Backup:
        backup_id = self.result.get("backup_id") or self.params.get("backup_id")
        if backup_id is None:
            raise StepFailed("the job has no backup row yet")
        return Backup.objects.get(pk=backup_id)


def _candidates(ctx: BackupContext) -> list[tuple[SourceCandidate, Server]]:
    cluster = Cluster.objects.select_related("primary").get(pk=ctx.cluster.pk)
    servers = {s.address: s for s in cluster.servers.all()}
    topology, _ = observe(cluster, ctx.settings)
    found = []
    for view in topology.servers:
        row = servers.get(view.address)
        if row is None:
            continue
        is_primary = view.address == topology.primary
        replicating = bool(
            view.replication
            and view.replication.get("io_running")
            and view.replication.get("sql_running")
            and view.replication.get("source") == topology.primary
        )
        healthy = view.state == "up" and not view.maintenance and (is_primary or replicating)
        found.append((SourceCandidate(view.address, is_primary, healthy, view.lag), row))
    return found


def choose_backup_source(ctx: BackupContext) -> StepOutcome:
    if ctx.result.get("backup_id"):
        backup = ctx.backup
        return Done(f"backup {backup.pk} from {backup.source} (resumed)")
    candidates = _candidates(ctx)
    chosen = choose_source([c for c, _ in candidates])
    if chosen is None:
        raise StepFailed(
            "no healthy server to back up from (the primary and every replica are down or lagging)"
        )
    row = next(r for c, r in candidates if c.address == chosen.address)
    physical = bool(row.instance) and isinstance(ctx.provider, BackupCapable)
    backup = Backup.objects.create(
        cluster_id=ctx.cluster.pk,
        cluster_ref=ctx.cluster.pk,
        cluster_name=ctx.cluster.name,
        tenant_id=ctx.cluster.tenant_id,
        kind=Backup.Kind.PHYSICAL if physical else Backup.Kind.LOGICAL,
        job_id=ctx.job_id,
        scheduled=bool(ctx.params.get("scheduled")),
        source=chosen.address,
        storage=ctx.storage.name,
        started_at=timezone.now(),
        encrypted=ctx.settings.backup_encryption,
        restore_secrets_encrypted=encrypt_json({"root": ctx.root_password}) if physical else "",
    )
    ctx.result["backup_id"] = backup.pk
    ctx.result["backup"] = {"id": backup.pk, "kind": backup.kind, "source": chosen.address}
    ctx.checkpoint()
    why = "a replica" if not chosen.is_primary else "the primary: the cluster has no healthy replica"
    return Done(f"{backup.kind} backup {backup.pk} from {chosen.address} ({why})")


class Preempted(Exception):
    pass


def _watched(chunks, ctx: BackupContext, counter: dict):
    """Pass the chunks on, counting them on the job, and stop once the job's lease is gone (a failover
    preempted the backup, or the worker is past its deadline)."""
    last_save = time.monotonic()
    for chunk in chunks:
        counter["bytes"] += len(chunk)
        if not ctx.lease_valid():  # a local check (the lease thread's view): cheap for every chunk
            raise Preempted()
        if time.monotonic() - last_save > PROGRESS_SAVE_SECONDS:
            last_save = time.monotonic()
            ctx.result["backup"]["bytes"] = counter["bytes"]
            ctx.checkpoint()
        yield chunk
    if not ctx.lease_valid():
        raise Preempted()


def _fail_backup(backup: Backup, reason: str) -> None:
    Backup.objects.filter(pk=backup.pk).update(
        status=Backup.Status.FAILED, error=reason, ended_at=timezone.now()
    )


def stream_to_storage(ctx: BackupContext) -> StepOutcome:
    backup = ctx.backup
    if backup.status == Backup.Status.COMPLETED or backup.checksum_sha256:
        return Skipped("already stored")
    key, key_encrypted = catalog.cluster_key(ctx.cluster.pk, backup.encrypted)
    object_key = catalog.backup_object_key(backup)
    Backup.objects.filter(pk=backup.pk).update(storage_key=object_key, key_encrypted=key_encrypted)
    row = next(
        (s for s in Server.objects.filter(cluster_id=ctx.cluster.pk) if s.address == backup.source), None
    )
    if row is None:
        raise StepFailed(f"{backup.source} is no longer a server of the cluster")
    try:
        if backup.kind == Backup.Kind.PHYSICAL:
            raw = ctx.provider.backup_stream(row.instance, ctx.root_password)  # type: ignore[attr-defined]
        else:
            _check_dump_privileges(ctx, row.address)
            raw = LogicalDump(row.host, row.port, ctx.admin.user, ctx.admin.password)
    except (ProviderError, DumpError) as exc:
        _fail_backup(backup, str(exc))
        raise StepFailed(str(exc)) from None
    digest = codec.Digest()
    counter = {"bytes": 0}
    started = time.monotonic()
    try:
        ctx.storage.put(object_key, codec.encode(_watched(raw, ctx, counter), key, digest))
    except Preempted:
        raw.close()
        _fail_backup(backup, "preempted: the job was ended (a failover), the backup is retried later")
        ctx.storage.delete(object_key)
        raise StepFailed("preempted by a failover; retried later") from None
    except (ProviderError, DumpError, StorageError) as exc:
        raw.close()
        _fail_backup(backup, str(exc))
        raise StepFailed(str(exc)) from None
    seconds = time.monotonic() - started
    if not raw.gtid:
        _fail_backup(backup, "the backup did not say its GTID position")
        raise StepFailed("the backup did not say its GTID position (is GTID replication on?)")
    Backup.objects.filter(pk=backup.pk).update(
        size_bytes=digest.stored_bytes,
        raw_bytes=digest.raw_bytes,
        checksum_sha256=digest.hexdigest,
        gtid_position=raw.gtid,
    )
    ctx.result["backup"].update(
        bytes=digest.raw_bytes,
        stored_bytes=digest.stored_bytes,
        seconds=round(seconds, 2),
        mb_per_second=round(digest.raw_bytes / 1e6 / seconds, 1) if seconds else 0.0,
        gtid=raw.gtid,
    )
    return Done(
        f"{digest.raw_bytes / 1e6:.1f} MB ({digest.stored_bytes / 1e6:.1f} MB stored) in {seconds:.1f} s "
        f"to {ctx.storage.describe()}, at GTID {raw.gtid}"
    )


def _check_dump_privileges(ctx: BackupContext, address: str) -> None:
    try:
        with connect(address, ctx.admin, connect_options(ctx.settings, read_timeout=10)) as conn:
            with conn.cursor() as cursor:
                missing = missing_privileges(cursor)
    except ServerError as exc:
        raise DumpError(f"cannot reach {address}: {exc}") from None
    if missing:
        raise DumpError(
            f"dbpilot's user {ctx.admin.user} lacks {', '.join(missing)} on {address}: a logical backup "
            f"needs them (GRANT {', '.join(missing)} ON *.* TO the user, with sql_log_bin=0 on every server)"
        )


def record_backup(ctx: BackupContext) -> StepOutcome:
    backup = ctx.backup
    if backup.status != Backup.Status.COMPLETED:
        Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.COMPLETED, ended_at=timezone.now())
        record_event(
            ctx.cluster.pk,
            "backup_completed",
            f"Backup {backup.pk} ({backup.kind}) of {backup.cluster_name} completed from {backup.source}",
            data={"backup_id": backup.pk, "job_id": ctx.job_id},
        )
    return Done(f"backup {backup.pk} in the catalog")


# --- verification ----------------------------------------------------------------------------------------


def _check_tables(conn) -> tuple[int, list[str]]:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN %s",
            (SYSTEM_SCHEMAS,),
        )
        tables = [(r["s"], r["t"]) for r in cursor.fetchall()]
        problems = []
        for schema, table in tables:
            cursor.execute(f"CHECK TABLE `{schema}`.`{table}`")
            for row in cursor.fetchall():
                if row["Msg_type"] in ("error", "Error") or (
                    row["Msg_type"] == "status" and row["Msg_text"] != "OK"
                ):
                    problems.append(f"{schema}.{table}: {row['Msg_text']}")
    return len(tables), problems


def verify(ctx: BackupContext) -> StepOutcome:
    backup = ctx.backup
    if backup.status != Backup.Status.COMPLETED:
        return Skipped(f"backup {backup.pk} is {backup.status}")
    ok, reason, extra = verify_backup_row(ctx, backup)
    Backup.objects.filter(pk=backup.pk).update(
        verified=ok, verified_reason=reason, verified_at=timezone.now()
    )
    ctx.result["verification"] = {"backup_id": backup.pk, "verified": ok, "reason": reason, **extra}
    if ok:
        catalog.resolve_findings(backup.cluster_id, catalog.BACKUP_UNVERIFIED, f"backup {backup.pk} verified")
        return Done(f"backup {backup.pk} verified: {reason}")
    catalog.open_finding(
        backup.cluster_id,
        catalog.BACKUP_UNVERIFIED,
        f"Backup {backup.pk} of {backup.cluster_name} failed verification: {reason}",
        {"backup_id": backup.pk},
    )
    return Done(f"backup {backup.pk} NOT verified: {reason}", {"verified": False})


def _checksums(conn, tables: list[tuple[str, str]]) -> dict[str, int | None]:
    with conn.cursor() as cursor:
        found = {}
        for schema, table in tables:
            cursor.execute(f"CHECKSUM TABLE `{schema}`.`{table}`")
            found[f"{schema}.{table}"] = cursor.fetchone()["Checksum"]
    return found


def _compare_with_source(
    ctx: BackupContext, scratch, instance: str, backup: Backup
) -> tuple[bool, str] | None:
    """The restored data against the source at one GTID position: the scratch server replicates from the
    source's primary, from the backup's position up to where a replica of the source stopped applying
    (its SQL thread only: it still receives and acknowledges), then every table's CHECKSUM is compared.
    None when the cluster has no running replica to compare with."""
    cluster = Cluster.objects.select_related("primary").get(pk=ctx.cluster.pk)
    primary = cluster.primary
    replica = next(
        (
            s
            for s in cluster.servers.all()
            if s.pk != cluster.primary_id
            and s.instance
            and not s.maintenance
            and ctx.provider.running(s.instance)
        ),
        None,
    )
    if primary is None or replica is None or ctx.replication is None or not ctx.replication.user:
        return None
    repl = ctx.replication
    with scratch.root_connection(instance, ctx.root_password, timeout=30) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_log_bin=0")
        cursor.execute("STOP ALL SLAVES")
        cursor.execute("RESET SLAVE ALL")
        cursor.execute("SET GLOBAL gtid_slave_pos=%s", (backup.gtid_position,))
        cursor.execute(
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
            (primary.host, primary.port, repl.user, repl.password),
        )
    try:
        ctx.sql(replica.instance, "STOP SLAVE SQL_THREAD")
        target = ctx.sql(replica.instance, "SELECT @@gtid_slave_pos AS pos")[0]["pos"]
        with (
            scratch.root_connection(instance, ctx.root_password, timeout=30) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute("START SLAVE UNTIL master_gtid_pos=%s", (target,))
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (target, COMPARE_CATCH_UP_SECONDS))
            if cursor.fetchone()["r"] != 0:
                return None  # could not reach the replica's position in time: compared by CHECK TABLE only
            cursor.execute("STOP SLAVE")
            cursor.execute(
                "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN %s",
                (SYSTEM_SCHEMAS,),
            )
            tables = [(r["s"], r["t"]) for r in cursor.fetchall()]
            restored = _checksums(conn, tables)
        with ctx.root(replica.instance) as conn:
            source = _checksums(conn, tables)
    finally:
        ctx.sql(replica.instance, "START SLAVE SQL_THREAD")
    differing = sorted(name for name in restored if restored[name] != source.get(name))
    if differing:
        return False, (
            f"table checksums differ from the source at GTID {target}: " + ", ".join(differing[:5])
        )
    return True, f"CHECKSUM of {len(tables)} table(s) equal to the source {replica.address} at GTID {target}"


def verify_backup_row(ctx: BackupContext, backup: Backup) -> tuple[bool, str, dict]:
    """(verified, reason, details): the checksum of the stored bytes first, then a restore into a scratch
    server (physical) that must start and pass CHECK TABLE on every table at the recorded GTID."""
    try:
        problem = codec.verify_checksum(ctx.storage.get(backup.storage_key), backup.checksum_sha256)
    except StorageError as exc:
        return False, f"cannot read it from storage: {exc}", {}
    if problem:
        return False, problem, {}
    if backup.kind != Backup.Kind.PHYSICAL:
        try:
            for _ in codec.decode(
                ctx.storage.get(backup.storage_key), catalog.row_key(backup.key_encrypted), None
            ):
                pass
        except codec.CorruptBackup as exc:
            return False, str(exc), {}
        return True, "checksum and decompression ok (a logical dump is not test-restored yet)", {}
    scratch = get_provider("local")
    instance = f"verify-b{backup.pk}-j{ctx.job_id}"
    spec = ServerSpec(
        instance=instance, server_id=SCRATCH_SERVER_ID_BASE + backup.pk % 100000, semi_sync=False
    )
    started = time.monotonic()
    try:
        stream = codec.decode(
            ctx.storage.get(backup.storage_key), catalog.row_key(backup.key_encrypted), backup.checksum_sha256
        )
        restored = scratch.restore_stream(spec, stream)  # type: ignore[attr-defined]
        if restored.gtid != backup.gtid_position:
            return (
                False,
                f"the restored data is at GTID {restored.gtid}, the catalog says {backup.gtid_position}",
                {},
            )
        scratch.start(instance, ctx.root_password, timeout=120)
        with scratch.root_connection(instance, ctx.root_password, timeout=30) as conn:
            count, problems = _check_tables(conn)
        if problems:
            return False, "CHECK TABLE: " + "; ".join(problems[:5]), {"tables": count}
        compared = _compare_with_source(ctx, scratch, instance, backup)
        if compared is not None and not compared[0]:
            return False, compared[1], {"tables": count}
        seconds = round(time.monotonic() - started, 1)
        return (
            True,
            f"restored into a scratch server in {seconds} s, started at GTID {restored.gtid}, "
            f"CHECK TABLE ok on {count} table(s)" + (f"; {compared[1]}" if compared else ""),
            {"tables": count, "seconds": seconds},
        )
    except codec.CorruptBackup as exc:
        return False, str(exc), {}
    except (ProviderError, StorageError) as exc:
        return False, f"the test restore failed: {exc}", {}
    except Exception as exc:  # noqa: BLE001 - e.g. the scratch server does not accept root's password
        return False, f"the test restore failed: {exc.__class__.__name__}: {exc}", {}
    finally:
        scratch.destroy(instance)


def abort_backup(ctx: BackupContext, step: str, reason: str) -> str | None:
    backup_id = ctx.result.get("backup_id")
    if backup_id is None:
        return None
    changed = Backup.objects.filter(pk=backup_id, status=Backup.Status.RUNNING).update(
        status=Backup.Status.FAILED, error=reason[:2000], ended_at=timezone.now()
    )
    return f"backup {backup_id} marked failed" if changed else None


BACKUP = Plan(
    kind="backup",
    steps=(
        StepSpec("choose_source", choose_backup_source),
        StepSpec("stream_to_storage", stream_to_storage),
        StepSpec("record_backup", record_backup),
        StepSpec("verify_backup", verify),
    ),
    context=BackupContext,
    abort=abort_backup,
)

VERIFY = Plan(kind="verify_backup", steps=(StepSpec("verify_backup", verify),), context=BackupContext)

PLANS = (BACKUP, VERIFY)
