"""Adding and removing a replica of a provisioned cluster.

add_replica:
    place_replica     the next server_id and instance name; the source: a replica replicating from the
                      primary (the primary itself when there is none), so the primary pays nothing
    clone             `mariadb-backup --backup --stream` of the source into the new data directory, prepared;
                      bytes copied are on the step while it runs (result.clone: bytes, seconds, MB/s)
    start_replica     started read-only from its configuration
    replicate         gtid_slave_pos = the backup's GTID position, CHANGE MASTER ... MASTER_USE_GTID=slave_pos
                      to the primary, started, and caught up with the primary's position
    semi_sync         the semi-sync slave side acknowledging (when the cluster uses semi-sync)
    register_server   its Server row: monitoring and failover see it from the next tick

remove_replica (never the primary: the request is refused with 409 before any job):
    forget_server     its row goes first, so monitoring does not report the server it is about to remove
    destroy_server    stopped and removed with its data
"""

from __future__ import annotations

import re
import time

from django.db import transaction

from clusters.events import record_event
from clusters.jobs.provision_context import PlacedServer, ProvisionContext, pinned_ip
from clusters.jobs.provision_steps import point_at, wait_replicating
from clusters.jobs.steps import Done, Skipped, StepFailed, StepOutcome
from clusters.models import Server
from clusters.providers.base import ProviderError

CATCH_UP_SECONDS = 120.0
PROGRESS_SAVE_SECONDS = 2.0


def _servers(ctx: ProvisionContext) -> list[Server]:
    return list(Server.objects.filter(cluster_id=ctx.cluster.pk).order_by("id"))


def _primary(ctx: ProvisionContext) -> PlacedServer:
    row = ctx.cluster.primary
    if row is None or not row.instance:
        raise StepFailed("the cluster has no provisioned primary")
    return PlacedServer(row.instance, 0, row.host, row.port, "primary", True, True)


def place_replica(ctx: ProvisionContext) -> StepOutcome:
    if ctx.state.servers:
        new = ctx.state.servers[0]
        return Done(f"{new.instance} (resumed), cloned from {ctx.result['clone_source']}")
    rows = _servers(ctx)
    numbers = [int(m.group(1)) for s in rows if (m := re.search(r"-s(\d+)$", s.instance))]
    server_id = max(numbers, default=0) + 1
    instance = f"{ctx.spec['key']}-s{server_id}"
    primary = _primary(ctx)
    source = next(
        (
            s.instance
            for s in rows
            if s.pk != ctx.cluster.primary_id
            and s.instance
            and not s.maintenance
            and ctx.provider.running(s.instance)
        ),
        primary.instance,
    )
    ctx.state.servers.append(PlacedServer(instance, server_id, "", 0, "replica"))
    ctx.result["clone_source"] = source
    ctx.save()
    ctx.checkpoint()
    return Done(f"{instance} (server_id {server_id}), cloned from {source}")


def clone(ctx: ProvisionContext) -> StepOutcome:
    new = ctx.state.servers[0]
    last_save = [time.monotonic()]

    def progress(copied: int) -> None:
        ctx.result["clone"] = {"bytes": copied}
        if time.monotonic() - last_save[0] > PROGRESS_SAVE_SECONDS:
            last_save[0] = time.monotonic()
            ctx.checkpoint()

    try:
        result = ctx.provider.clone(
            ctx.result["clone_source"],
            ctx.server_spec(new.instance, new.server_id),
            ctx.root_password,
            progress,
        )
    except ProviderError as exc:
        raise StepFailed(f"cloning {ctx.result['clone_source']}: {exc}") from None
    placement = ctx.provider.placement(new.instance)
    new.host, new.port, new.gtid = placement.host, placement.port, result.gtid
    ctx.result["clone"] = {
        "bytes": result.bytes_copied,
        "seconds": round(result.seconds, 2),
        "mb_per_second": result.mb_per_second,
        "gtid": result.gtid,
    }
    ctx.save()
    return Done(
        f"{result.bytes_copied / 1e6:.1f} MB in {result.seconds:.1f} s ({result.mb_per_second} MB/s), "
        f"at GTID {result.gtid or '(empty)'}"
    )


def start_replica(ctx: ProvisionContext) -> StepOutcome:
    new = ctx.state.servers[0]
    try:
        ctx.provider.start(new.instance, ctx.root_password)
    except ProviderError as exc:
        raise StepFailed(f"starting {new.instance}: {exc}") from None
    new.started = True
    ctx.save()
    return Done(f"{new.address} running, read-only")


def replicate(ctx: ProvisionContext) -> StepOutcome:
    new = ctx.state.servers[0]
    primary = _primary(ctx)
    point_at(ctx, new, primary, gtid=new.gtid)
    wait_replicating(ctx, new)
    target = ctx.sql(primary, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    reached = ctx.sql(new, ("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (target, CATCH_UP_SECONDS)))[0]["r"]
    if reached != 0:
        raise StepFailed(
            f"{new.address} did not reach the primary's position {target} within {CATCH_UP_SECONDS:g} s"
        )
    return Done(
        f"{new.address} replicates from {primary.address} from GTID {new.gtid or '(empty)'}, caught up at {target}"
    )


def semi_sync(ctx: ProvisionContext) -> StepOutcome:
    if not ctx.settings.semi_sync:
        return Skipped("the cluster does not use semi-sync")
    new = ctx.state.servers[0]
    deadline = time.monotonic() + 10
    while True:
        status = ctx.sql(new, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'")
        if status and status[0]["Value"] == "ON":
            return Done(f"{new.address} acknowledges as a semi-sync replica")
        if time.monotonic() > deadline:
            raise StepFailed(f"{new.address} does not acknowledge as a semi-sync replica")
        ctx.sql(
            new, "SET GLOBAL rpl_semi_sync_slave_enabled=1", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"
        )
        time.sleep(0.2)


@transaction.atomic
def register_server(ctx: ProvisionContext) -> StepOutcome:
    new = ctx.state.servers[0]
    Server.objects.get_or_create(
        cluster_id=ctx.cluster.pk,
        host=new.host,
        port=new.port,
        defaults={
            "ip": pinned_ip(new.host),
            "instance": new.instance,
            "memory_mb": int(ctx.spec.get("memory_mb", 256)),
        },
    )
    record_event(
        ctx.cluster.pk,
        "server_added",
        f"Replica {new.address} added (job {ctx.job_id})",
        data={"server": new.address, "job_id": ctx.job_id},
    )
    return Done(f"{new.address} registered")


def abort_add_replica(ctx: ProvisionContext, step: str, reason: str) -> str | None:
    if not ctx.state.servers:
        return None
    new = ctx.state.servers[0]
    Server.objects.filter(cluster_id=ctx.cluster.pk, instance=new.instance).delete()
    return f"removed {new.instance}" if ctx.provider.destroy(new.instance) else None


def _target(ctx: ProvisionContext) -> dict:
    if "target" not in ctx.result:
        row = Server.objects.filter(cluster_id=ctx.cluster.pk, pk=ctx.params.get("server_id")).first()
        if row is None:
            raise StepFailed(f"server {ctx.params.get('server_id')} is not in this cluster")
        if row.pk == ctx.cluster.primary_id:
            raise StepFailed(f"{row.address} is the primary: switch over first")
        ctx.result["target"] = {"instance": row.instance, "address": row.address, "id": row.pk}
    return ctx.result["target"]


def forget_server(ctx: ProvisionContext) -> StepOutcome:
    target = _target(ctx)
    Server.objects.filter(cluster_id=ctx.cluster.pk, pk=target["id"]).delete()
    record_event(
        ctx.cluster.pk,
        "server_removed",
        f"Replica {target['address']} removed (job {ctx.job_id})",
        data={"server": target["address"], "job_id": ctx.job_id},
    )
    return Done(f"{target['address']} no longer monitored")


def destroy_server(ctx: ProvisionContext) -> StepOutcome:
    target = _target(ctx)
    if target["instance"] and ctx.provider.destroy(target["instance"]):
        return Done(f"{target['instance']} stopped and removed with its data")
    return Skipped(f"{target['instance'] or target['address']} was already gone")
