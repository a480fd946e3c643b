"""The restore job: a NEW provisioned cluster made from a backup of another one, up to a point in time.

    restore_primary     the backup fetched from storage, checked (sha256), decrypted and decompressed on the
                        fly into the new primary's data directory (mbstream), and prepared
    start_primary       started read-only
    prepare_primary     replication of the source forgotten (RESET SLAVE ALL), the binlog state set to the
                        backup's GTID position, dbpilot's accounts given the new cluster's passwords
    replay_binlogs      each archived binlog of the chain, fetched and checked, piped through
                        `mariadb-binlog --start-position=<GTID> --stop-datetime=<time>` into the new primary
    place_replicas      each replica cloned from the new primary (mariadb-backup), started
    wire_replicas       replicating from the new primary from their clone's GTID
    semi_sync_on, register_servers, first_healthy_tick: as the provision job

The request decided what to replay (the backup and the chain of archived files, in `params`): the job
replays exactly that. Any failure removes every server the job placed (the provision job's abort); the
source cluster is never touched.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from clusters.backup_models import Backup, BinlogArchive
from clusters.backups import catalog, codec
from clusters.backups.storage import StorageError, storage_from_settings
from clusters.jobs import provision_steps as p
from clusters.jobs.provision_context import PlacedServer, ProvisionContext
from clusters.jobs.steps import Done, Plan, Skipped, StepFailed, StepOutcome, StepSpec
from clusters.models import Cluster
from clusters.providers.base import ProviderError

MARIADB_BINLOG = "/usr/bin/mariadb-binlog"
MARIADB_CLIENT = "/usr/bin/mariadb"


class RestoreContext(ProvisionContext):
    def __init__(self, job, result: dict):
        super().__init__(job, result)
        self.storage = storage_from_settings()
        self.state.root_password_set = True  # the restored data has the source's root password (ours now)


def restore_primary(ctx: RestoreContext) -> StepOutcome:
    backup = Backup.objects.get(pk=ctx.params["backup_id"])
    instance = f"{ctx.spec['key']}-s1"
    if ctx.state.by_instance(instance) is None:
        ctx.state.servers.append(PlacedServer(instance, 1, "", 0, "primary"))
        ctx.save()
        ctx.checkpoint()  # the abort must know the server may exist
    primary = ctx.state.by_instance(instance)
    try:
        stream = codec.decode(
            ctx.storage.get(backup.storage_key), catalog.row_key(backup.key_encrypted), backup.checksum_sha256
        )
        restored = ctx.provider.restore_stream(ctx.server_spec(instance, 1), stream)  # type: ignore[attr-defined]
    except (ProviderError, StorageError, codec.CorruptBackup) as exc:
        raise StepFailed(f"restoring backup {backup.pk}: {exc}") from None
    placement = ctx.provider.placement(instance)
    primary.host, primary.port, primary.gtid = placement.host, placement.port, restored.gtid
    ctx.result["restore"] = {
        "backup_id": backup.pk,
        "backup_gtid": backup.gtid_position,
        "bytes": restored.bytes_copied,
    }
    ctx.save()
    return Done(
        f"backup {backup.pk} ({backup.raw_bytes / 1e6:.1f} MB) restored into {instance} at {primary.address}, "
        f"GTID {restored.gtid}"
    )


def start_primary(ctx: RestoreContext) -> StepOutcome:
    primary = ctx.state.primary
    try:
        ctx.provider.start(primary.instance, ctx.root_password, timeout=120)
    except ProviderError as exc:
        raise StepFailed(f"starting {primary.instance}: {exc}") from None
    primary.started = True
    ctx.save()
    return Done(f"{primary.address} running, read-only")


def prepare_primary(ctx: RestoreContext) -> StepOutcome:
    primary = ctx.state.primary
    if primary.accounts:
        return Skipped("done already")
    gtid = ctx.result["restore"]["backup_gtid"]
    ctx.sql(
        primary,
        "SET SESSION sql_log_bin=0",
        "STOP SLAVE",
        "RESET SLAVE ALL",
        "RESET MASTER",
        ("SET GLOBAL gtid_binlog_state=%s", (gtid,)),
        ("SET GLOBAL gtid_slave_pos=%s", (gtid,)),
    )
    ctx.sql(primary, *p.account_statements(ctx, None))
    primary.accounts = True
    ctx.save()
    return Done(f"replication of the source forgotten, binlog state {gtid}, dbpilot's accounts re-keyed")


def replay_binlogs(ctx: RestoreContext) -> StepOutcome:
    links = ctx.params.get("links") or []
    primary = ctx.state.primary
    if not links:
        return Skipped("the backup alone is the requested point")
    done = ctx.result.setdefault("replayed", 0)
    if done >= len(links):
        return Skipped("replayed already")
    stop = ctx.params.get("stop_datetime")
    with tempfile.TemporaryDirectory(prefix="dbp-replay-") as scratch:
        defaults = Path(scratch) / "client.cnf"
        fd = os.open(defaults, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                f"[client]\nuser=root\npassword={ctx.root_password}\n"
                f"socket={ctx.provider.dir(primary.instance) / 'mariadbd.sock'}\n"  # type: ignore[attr-defined]
            )
        for index, (archive_id, start) in enumerate(links):
            if index < done:
                continue
            archive = BinlogArchive.objects.get(pk=archive_id)
            path = Path(scratch) / archive.file_name
            try:
                with open(path, "wb") as out:
                    for chunk in codec.decode(
                        ctx.storage.get(archive.storage_key),
                        catalog.row_key(archive.key_encrypted),
                        archive.checksum_sha256,
                    ):
                        out.write(chunk)
            except (StorageError, codec.CorruptBackup) as exc:
                raise StepFailed(f"archived binlog {archive.server} {archive.file_name}: {exc}") from None
            _replay(path, start, stop, defaults)
            path.unlink()
            ctx.result["replayed"] = index + 1
            ctx.checkpoint()
    # The replayed transactions carry the source's server_ids: gtid_current_pos (what a clone of this
    # server records) would stay at the backup's position unless the slave position follows the binlog.
    position = ctx.sql(
        primary, "SET GLOBAL gtid_slave_pos=@@gtid_binlog_pos", "SELECT @@gtid_binlog_pos AS pos"
    )[0]["pos"]
    ctx.result["restore"]["gtid_after_replay"] = position
    return Done(
        f"{len(links)} archived binlog(s) replayed"
        + (f" up to {stop} UTC" if stop else "")
        + f"; at GTID {position}"
    )


def _replay(path: Path, start: str, stop: str | None, defaults: Path) -> None:
    command = [MARIADB_BINLOG, f"--start-position={start}"] if start else [MARIADB_BINLOG]
    if stop:
        command.append(f"--stop-datetime={stop}")
    command.append(str(path))
    # --stop-datetime is read in the local time zone: UTC here, as the request's time is.
    env = {**os.environ, "TZ": "UTC"}
    decoder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    client = subprocess.run(
        [MARIADB_CLIENT, f"--defaults-extra-file={defaults}", "--binary-mode"],
        stdin=decoder.stdout,
        capture_output=True,
        text=True,
    )
    decoder.stdout.close()
    decoder_err = decoder.stderr.read().decode(errors="replace")
    if decoder.wait() != 0:
        raise StepFailed(f"mariadb-binlog {path.name}: {decoder_err.strip()[-300:]}")
    if client.returncode != 0:
        raise StepFailed(f"replaying {path.name}: {client.stderr.strip()[-300:]}")


def place_replicas(ctx: RestoreContext) -> StepOutcome:
    count = int(ctx.spec.get("replicas", 0))
    primary = ctx.state.primary
    for index in range(2, count + 2):
        instance = f"{ctx.spec['key']}-s{index}"
        server = ctx.state.by_instance(instance)
        if server is None:
            server = PlacedServer(instance, index, "", 0, "replica")
            ctx.state.servers.append(server)
            ctx.save()
            ctx.checkpoint()
        if server.started:
            continue
        try:
            cloned = ctx.provider.clone(primary.instance, ctx.server_spec(instance, index), ctx.root_password)
            ctx.provider.start(instance, ctx.root_password)
        except ProviderError as exc:
            raise StepFailed(f"cloning {instance} from the new primary: {exc}") from None
        placement = ctx.provider.placement(instance)
        server.host, server.port, server.gtid = placement.host, placement.port, cloned.gtid
        server.started = server.accounts = True
        ctx.save()
    if count == 0:
        return Skipped("no replica asked")
    return Done(f"{count} replica(s) cloned from {primary.address}")


def wire_replicas(ctx: RestoreContext) -> StepOutcome:
    primary = ctx.state.primary
    replicas = [s for s in ctx.state.servers if s.role == "replica"]
    if not replicas:
        return Skipped("a single server")
    for server in replicas:
        p.point_at(ctx, server, primary, gtid=server.gtid)
    for server in replicas:
        p.wait_replicating(ctx, server)
    return Done(f"{', '.join(s.address for s in replicas)} replicate from {primary.address}")


def abort_restore(ctx: RestoreContext, step: str, reason: str) -> str | None:
    """The provision job's abort (every server the job placed removed), and deletion protection off: the
    empty cluster row keeps the failed job for the person to read, then goes with a plain DELETE."""
    undone = p.abort_provision(ctx, step, reason)
    settings = {**(ctx.cluster.settings or {}), "deletion_protection": False}
    Cluster.objects.filter(pk=ctx.cluster.pk).update(settings=settings)
    return (undone or "") + "; deletion protection off (DELETE removes the empty cluster)"


RESTORE = Plan(
    kind="restore",
    steps=(
        StepSpec("restore_primary", restore_primary),
        StepSpec("start_primary", start_primary),
        StepSpec("prepare_primary", prepare_primary),
        StepSpec("replay_binlogs", replay_binlogs),
        StepSpec("place_replicas", place_replicas),
        StepSpec("wire_replicas", wire_replicas),
        StepSpec("semi_sync_on", p.semi_sync_on),
        StepSpec("register_servers", p.register_servers),
        StepSpec("first_healthy_tick", p.first_healthy_tick),
    ),
    context=RestoreContext,
    abort=abort_restore,
)
