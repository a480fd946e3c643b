"""The steps of the adopt job: prepare a registered cluster for automatic failover, then arm it.

    inspect             fresh probes: a live primary; what each replica needs (clusters.domain.failover_plan
                        .adopt_changes); a replica that does not replicate by GTID refuses the job
    prepare_replicas    one replica at a time (a semi-sync primary always keeps an acknowledging replica):
                        slave_net_timeout, MASTER_CONNECT_RETRY=1 and MASTER_HEARTBEAT_PERIOD=1, the semi-sync
                        slave side on and master side off, then its threads restarted and seen running
    replicas_read_only  read_only=1 on every replica (replicas_read_only)
    semi_sync_primary   on the primary: AFTER_SYNC, semi_sync_timeout_ms, and no fallback to asynchronous
                        when semi_sync_on_timeout is `wait`; slave_net_timeout for when it becomes a replica
    arm                 failover_armed = true

Nothing here is undone by an abort: each change is what the cluster should have anyway; the cluster just
stays unarmed. Values set with SET GLOBAL do not survive a server restart: put them in the servers'
configuration too (docs/failover.md).
"""

from __future__ import annotations

import time

from clusters.domain import adopt_plan as plan
from clusters.events import record_event
from clusters.jobs.context import HaContext
from clusters.jobs.steps import Done, Plan, Skipped, StepFailed, StepOutcome, StepRefused, StepSpec
from clusters.models import Cluster

IO_RECONNECT_TIMEOUT_SECONDS = 10.0


def _replicas(ctx: HaContext) -> list[str]:
    return list(ctx.state.replicas)


def _setup(ctx: HaContext, address: str) -> plan.ReplicaSetup:
    session = ctx.session(address)
    status = session.replication_status() or {}
    if session.dialect.mariadb:  # only SHOW ALL SLAVES STATUS has the heartbeat period
        rows = [r for r in session.query("SHOW ALL SLAVES STATUS") if not r.get("Connection_name")]
        status = rows[0] if rows else status
    names = ["read_only", "slave_net_timeout"]
    if session.dialect.mariadb:
        names += ["rpl_semi_sync_slave_enabled", "rpl_semi_sync_master_enabled"]
    row = session.query("SELECT " + ", ".join(f"@@{n} AS {n}" for n in names))[0]
    period = status.get("Slave_heartbeat_period")
    return plan.ReplicaSetup(
        address=address,
        using_gtid=status.get("Using_Gtid")
        or ("Slave_Pos" if str(status.get("Auto_Position", "")) == "1" else "No"),
        connect_retry=int(status["Connect_Retry"]) if status.get("Connect_Retry") not in (None, "") else None,
        heartbeat_period=float(period) if period not in (None, "") else None,
        slave_net_timeout=int(row["slave_net_timeout"]) if row.get("slave_net_timeout") is not None else None,
        read_only=bool(int(row["read_only"])),
        semi_sync_slave=bool(int(row.get("rpl_semi_sync_slave_enabled") or 0)),
        semi_sync_master=bool(int(row.get("rpl_semi_sync_master_enabled") or 0)),
    )


def inspect(ctx: HaContext) -> StepOutcome:
    topology = ctx.probe()
    primary = topology.primary_view
    if primary is None or primary.state != "up":
        detail = (
            f"a live primary is needed to adopt the cluster (primary {primary.address if primary else 'unknown'}"
            f"{', ' + primary.state if primary else ''})"
        )
        raise StepRefused(detail, [{"name": "primary_up", "ok": False, "detail": detail}])
    replicas = [
        s.address
        for s in topology.servers
        if s.address != primary.address
        and s.state == "up"
        and not s.maintenance
        and s.replication is not None
        and s.replication.get("source") == primary.address
    ]
    ctx.state.primary = primary.address
    ctx.state.replicas = replicas
    changes = {a: plan.adopt_changes(_setup(ctx, a), ctx.settings) for a in replicas}
    ctx.state.changes = {a: ch.describe() for a, ch in changes.items()}
    problems = [ch.problem for ch in changes.values() if ch.problem]
    checks = [
        {
            "name": "replication_by_gtid",
            "ok": not problems,
            "detail": "; ".join(problems) or "every replica replicates by GTID",
        }
    ]
    if not replicas:
        checks.append(
            {"name": "replicas", "ok": False, "detail": "no reachable replica replicates from the primary"}
        )
    if problems or not replicas:
        raise StepRefused("cannot adopt: " + "; ".join(ch["detail"] for ch in checks if not ch["ok"]), checks)
    unseen = [
        s.address for s in topology.servers if s.address != primary.address and s.address not in replicas
    ]
    note = (
        f"; not adopted (down, in maintenance or not replicating from the primary): {', '.join(unseen)}"
        if unseen
        else ""
    )
    return Done(
        f"primary {primary.address}; " + "; ".join(f"{a}: {d}" for a, d in ctx.state.changes.items()) + note
    )


def _wait_io(ctx: HaContext, address: str) -> None:
    session = ctx.session(address)
    deadline = time.monotonic() + IO_RECONNECT_TIMEOUT_SECONDS
    while True:
        status = session.replication_status() or {}
        if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
            return
        if time.monotonic() > deadline:
            raise StepFailed(
                f"{address}: replication did not run again within {IO_RECONNECT_TIMEOUT_SECONDS:g}s "
                f"(IO {status.get('Slave_IO_Running')}, SQL {status.get('Slave_SQL_Running')}: "
                f"{status.get('Last_IO_Error') or status.get('Last_SQL_Error') or ''})"
            )
        time.sleep(0.05)


def prepare_replicas(ctx: HaContext) -> StepOutcome:
    notes = []
    for address in _replicas(ctx):
        changes = plan.adopt_changes(_setup(ctx, address), ctx.settings)
        session = ctx.session(address)
        if changes.slave_net_timeout:
            session.execute(f"SET GLOBAL slave_net_timeout={plan.ADOPT_SLAVE_NET_TIMEOUT_SECONDS}")
        if changes.semi_sync_master_off:
            session.execute(*session.dialect.semi_sync_source_off())
        if changes.semi_sync_slave_on:
            session.execute(*session.dialect.semi_sync_replica_side())
        if changes.restart:
            session.stop_replication()
            if changes.change_master:
                verb = "CHANGE MASTER TO" if session.dialect.mariadb else "CHANGE REPLICATION SOURCE TO"
                prefix = "MASTER" if session.dialect.mariadb else "SOURCE"
                session.execute(
                    f"{verb} {prefix}_CONNECT_RETRY={plan.ADOPT_CONNECT_RETRY_SECONDS}, "
                    f"{prefix}_HEARTBEAT_PERIOD={plan.ADOPT_HEARTBEAT_SECONDS:g}"
                )
            session.start_replication()
            _wait_io(ctx, address)  # the next replica stops only once this one acknowledges again
        notes.append(
            f"{address}: {changes.describe() if changes.restart or changes.semi_sync_master_off else 'ready'}"
        )
    return Done("; ".join(notes))


def replicas_read_only(ctx: HaContext) -> StepOutcome:
    if not ctx.settings.replicas_read_only:
        return Skipped("replicas_read_only is off")
    notes = []
    for address in _replicas(ctx):
        session = ctx.session(address)
        if session.read_only():
            notes.append(f"{address} already read-only")
        else:
            session.set_read_only(True)
            notes.append(f"{address} read_only=1")
    return Done(", ".join(notes))


def semi_sync_primary(ctx: HaContext) -> StepOutcome:
    primary = ctx.state.primary
    session = ctx.session(primary)
    notes = []
    current = int(session.query("SELECT @@slave_net_timeout AS t")[0]["t"])
    if current > plan.ADOPT_SLAVE_NET_TIMEOUT_SECONDS:
        session.execute(f"SET GLOBAL slave_net_timeout={plan.ADOPT_SLAVE_NET_TIMEOUT_SECONDS}")
        notes.append(
            f"slave_net_timeout={plan.ADOPT_SLAVE_NET_TIMEOUT_SECONDS} (for when it becomes a replica)"
        )
    if not ctx.settings.semi_sync:
        return Done("; ".join(notes + ["semi_sync is off: the primary's semi-sync left as found"]))
    clients = session.semi_sync_clients()
    wait = ctx.settings.semi_sync_on_timeout == "wait"
    if clients < 1 and wait:
        raise StepFailed(
            f"no semi-sync replica is connected to {primary}: with semi_sync_on_timeout wait every "
            "commit would block; connect a semi-sync replica first"
        )
    session.semi_sync_as_primary(ctx.settings.semi_sync_timeout_ms, wait)
    notes.append(
        "semi-sync master side on, AFTER_SYNC, timeout "
        + (
            "none (semi_sync_on_timeout wait)"
            if wait
            else f"{ctx.settings.semi_sync_timeout_ms} ms, then async"
        )
        + f"; {clients} semi-sync replica(s) connected"
    )
    return Done("; ".join(notes))


def arm(ctx: HaContext) -> StepOutcome:
    Cluster.objects.filter(pk=ctx.cluster.pk).update(failover_armed=True)
    record_event(
        ctx.cluster.pk,
        "failover_armed",
        f"Automatic failover armed (adopt job {ctx.job_id})",
        data={"job_id": ctx.job_id},
    )
    return Done("failover_armed is true")


# --- the plan ---------------------------------------------------------------------------------------------

KIND = "adopt"

PLAN = Plan(
    kind=KIND,
    steps=(
        StepSpec("inspect", inspect),
        StepSpec("prepare_replicas", prepare_replicas),
        StepSpec("replicas_read_only", replicas_read_only),
        StepSpec("semi_sync_primary", semi_sync_primary),
        StepSpec("arm", arm),
    ),
    context=HaContext,
)
