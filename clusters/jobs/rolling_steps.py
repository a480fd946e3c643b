"""The rolling engine: configuration changes applied to a provisioned cluster without stopping writes for
longer than a switchover does. Used by parameter-group changes (`apply_parameters`) and by
`rolling_restart` (the repair issue reuses it).

    write_configuration  every server's my.cnf rewritten from the cluster's parameters (effective at restart)
    apply_live           dynamic settings with SET GLOBAL on every server (apply_parameters only)
    restart_replicas     one replica at a time: restarted with the new configuration, replicating again and
                         (semi-sync) acknowledging before the next one stops, so the primary always has an
                         acknowledging replica
    switchover           a planned switchover (the switchover job, run here, waited for): writes stop only
                         for its freeze
    restart_old_primary  the old primary, now a replica, restarted the same way

The restart steps are skipped when nothing needs a restart (params.restart false). A job resumed after
a worker died repeats no restart already done: restarted servers are listed in the result.
"""

from __future__ import annotations

import re
import time

from clusters.jobs.provision_context import PlacedServer, ProvisionContext
from clusters.jobs.provision_steps import wait_replicating
from clusters.jobs.steps import Done, Skipped, StepFailed, StepOutcome
from clusters.models import Cluster, Server
from clusters.providers.base import ProviderError

SEMI_SYNC_BACK_SECONDS = 15.0
SWITCHOVER_ATTEMPTS = 3
CATCH_UP_SECONDS = 30.0


def _replicas_caught_up(ctx: ProvisionContext, cluster: Cluster) -> None:
    """Every replica has applied what the primary has written so far (bounded): the switchover's
    election then sees them all up to date."""
    position = ctx.sql(cluster.primary.instance, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    for row in _rows(ctx):
        if row.pk != cluster.primary_id:
            ctx.sql(row.instance, ("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (position, CATCH_UP_SECONDS)))


def _placed(row: Server) -> PlacedServer:
    match = re.search(r"-s(\d+)$", row.instance)
    return PlacedServer(
        row.instance, int(match.group(1)) if match else 0, row.host, row.port, "replica", True, True
    )


def _rows(ctx: ProvisionContext) -> list[Server]:
    return [s for s in Server.objects.filter(cluster_id=ctx.cluster.pk).order_by("id") if s.instance]


def _needs_restart(ctx: ProvisionContext) -> bool:
    return ctx.kind == "rolling_restart" or bool(ctx.params.get("restart"))


def write_configuration(ctx: ProvisionContext) -> StepOutcome:
    changed = []
    for row in _rows(ctx):
        server = _placed(row)
        if ctx.provider.reconfigure(ctx.server_spec(server.instance, server.server_id)):
            changed.append(row.address)
    return Done(
        f"configuration rewritten on {', '.join(changed)}" if changed else "configuration already current"
    )


def _set_global_value(value: str) -> int | str:
    return int(value) if re.fullmatch(r"-?\d+", value) else value


def apply_live(ctx: ProvisionContext) -> StepOutcome:
    live = ctx.params.get("live") or {}
    if not live:
        return Skipped("no dynamic setting changed")
    for row in _rows(ctx):
        statements = [
            (f"SET GLOBAL {name}=%s", (_set_global_value(str(value)),)) for name, value in live.items()
        ]
        ctx.sql(row.instance, *statements)
    return Done(
        f"{', '.join(f'{k}={v}' for k, v in live.items())} applied live on {len(_rows(ctx))} server(s)"
    )


def _restart(ctx: ProvisionContext, row: Server, primary: Server) -> None:
    server = _placed(row)
    try:
        ctx.provider.restart(ctx.server_spec(server.instance, server.server_id), ctx.root_password)
    except ProviderError as exc:
        raise StepFailed(f"restarting {row.address}: {exc}") from None
    wait_replicating(ctx, server)
    if ctx.settings.semi_sync:
        deadline = time.monotonic() + SEMI_SYNC_BACK_SECONDS
        while ctx.sql(server, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'")[0]["Value"] != "ON":
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"{row.address} does not acknowledge as a semi-sync replica after its restart"
                )
            time.sleep(0.05)
    ctx.result.setdefault("restarted", []).append(row.address)
    ctx.checkpoint()


def restart_replicas(ctx: ProvisionContext) -> StepOutcome:
    if not _needs_restart(ctx):
        return Skipped("no setting needs a restart")
    cluster = Cluster.objects.select_related("primary").get(pk=ctx.cluster.pk)
    done = set(ctx.result.get("restarted", []))
    ctx.result["old_primary"] = cluster.primary.address
    restarted = []
    for row in _rows(ctx):
        if row.pk != cluster.primary_id and row.address not in done:
            _restart(ctx, row, cluster.primary)
            restarted.append(row.address)
    return Done(f"restarted one at a time: {', '.join(restarted) or 'none left'}")


def switchover(ctx: ProvisionContext) -> StepOutcome:
    if not _needs_restart(ctx):
        return Skipped("no setting needs a restart")
    cluster = Cluster.objects.select_related("primary").get(pk=ctx.cluster.pk)
    if len(_rows(ctx)) < 2:
        return Skipped("a single server: it is restarted in place (writes stop while it restarts)")
    if cluster.primary.address != ctx.result.get("old_primary"):
        return Done(f"already switched over to {cluster.primary.address}")
    _replicas_caught_up(ctx, cluster)
    for attempt in range(1, SWITCHOVER_ATTEMPTS + 1):
        # The switchover job checks its own preconditions (it ends refused when one fails).
        job, finished = ctx.run_subjob(cluster, "switchover")
        # Refused (nothing changed): a replica restarted a moment ago may not be electable yet; try again.
        if finished is None or finished.state != "refused" or attempt == SWITCHOVER_ATTEMPTS:
            break
        time.sleep(1.0)
    Cluster.objects.filter(pk=cluster.pk).update(last_job_id=ctx.job_id)  # the cluster's job stays this one
    if finished is None or finished.state != "succeeded":
        state = finished.state if finished else "not run"
        checks = (
            [
                f"{c['name']}: {c['detail']}"
                for c in ((finished.result or {}).get("checks") or [])
                if not c.get("ok")
            ]
            if finished
            else []
        )
        raise StepFailed(
            f"switchover job {job.id} {state}: {'; '.join(checks) or (finished.result or {}).get('detail', '')}"
        )
    ctx.result["switchover"] = {
        "job": job.id,
        "new_primary": finished.result.get("new_primary"),
        "write_freeze_ms": finished.result.get("write_freeze_ms"),
    }
    return Done(
        f"switchover job {job.id}: {ctx.result['old_primary']} -> {finished.result.get('new_primary')}, "
        f"writes frozen {finished.result.get('write_freeze_ms')} ms"
    )


def restart_old_primary(ctx: ProvisionContext) -> StepOutcome:
    if not _needs_restart(ctx):
        return Skipped("no setting needs a restart")
    cluster = Cluster.objects.select_related("primary").get(pk=ctx.cluster.pk)
    old = next((r for r in _rows(ctx) if r.address == ctx.result.get("old_primary")), None)
    if old is None or old.address in ctx.result.get("restarted", []):
        return Skipped("already restarted")
    if old.pk == cluster.primary_id:  # a single server: restart in place, then writable again
        server = _placed(old)
        try:
            ctx.provider.restart(ctx.server_spec(server.instance, server.server_id), ctx.root_password)
        except ProviderError as exc:
            raise StepFailed(f"restarting {old.address}: {exc}") from None
        ctx.sql(server, "SET GLOBAL read_only=0")
        Cluster.objects.filter(pk=cluster.pk).update(provision=_without_pending(cluster.provision))
        return Done(f"{old.address} restarted in place and writable")
    _restart(ctx, old, cluster.primary)
    Cluster.objects.filter(pk=cluster.pk).update(provision=_without_pending(cluster.provision))
    return Done(f"{old.address} restarted, replicating from {cluster.primary.address}")


def _without_pending(provision: dict) -> dict:
    provision = dict(provision or {})
    provision.pop("pending_restart", None)
    return provision
