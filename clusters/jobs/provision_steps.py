"""The provision job: a new cluster from its spec, up to an armed, healthy topology; and deprovision.

    place_servers        each server created by the provider (address, configuration, data directory)
    start_servers        each one started and answering (read_only=ON from its configuration)
    create_accounts      root's password, dbpilot's admin and replication accounts, the tenant's master user;
                         all with sql_log_bin=0, so a fresh cluster has no errant setup transactions
    wire_replication     every replica CHANGE MASTER ... MASTER_USE_GTID=slave_pos to server 1, started
    semi_sync_on         the primary's master side (AFTER_SYNC, the cluster's timeout) with every replica
                         acknowledging; then the primary made writable (SET GLOBAL read_only=0)
    register_servers     the Server rows and the cluster's primary (monitoring starts with the next tick)
    first_healthy_tick   a monitoring tick sees the expected primary and every replica replicating; the
                         cluster is then armed (failover_mode automatic from its creation)

Every step checks the servers first (already created, running, accounts there, replicating), so a resumed
job repeats nothing. A failing step fails the job with its reason, and the abort destroys every server the
job placed (processes and data) and removes their rows: nothing is left running.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import F

from clusters.domain.orphans import highest_first, instance_number
from clusters.events import record_event
from clusters.jobs.context import observe
from clusters.jobs.provision_context import PlacedServer, ProvisionContext, pinned_ip
from clusters.jobs.steps import Done, Skipped, StepFailed, StepOutcome
from clusters.models import Cluster, Server
from clusters.providers.accounts import ADMIN_PRIVILEGES
from clusters.providers.base import ProviderError

# What the tenant's master user may not hold (all else WITH GRANT OPTION): they would let it write through
# read_only, change replication or the binary log, stop the server or read its files.
MASTER_USER_REVOKED = (
    "SUPER",
    "READ_ONLY ADMIN",
    "BINLOG ADMIN",
    "REPLICATION SLAVE ADMIN",
    "SHUTDOWN",
    "FILE",
)
HEALTHY_TICK_TIMEOUT_SECONDS = 30.0
SEMI_SYNC_WAIT_SECONDS = 10.0


def _provider_call(what: str, call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except ProviderError as exc:
        raise StepFailed(f"{what}: {exc}") from None


# --- provision -------------------------------------------------------------------------------------------


def place_servers(ctx: ProvisionContext) -> StepOutcome:
    count = 1 + int(ctx.spec.get("replicas", 0))
    key = ctx.spec["key"]
    for index in range(1, count + 1):
        instance = f"{key}-s{index}"
        placement = _provider_call(
            f"placing {instance}", ctx.provider.create, ctx.server_spec(instance, index)
        )
        if ctx.state.by_instance(instance) is None:
            ctx.state.servers.append(
                PlacedServer(
                    instance, index, placement.host, placement.port, "primary" if index == 1 else "replica"
                )
            )
        ctx.save()
        ctx.checkpoint()  # the abort must know every server that exists
    return Done(", ".join(f"{s.instance} at {s.address}" for s in ctx.state.servers))


def start_servers(ctx: ProvisionContext) -> StepOutcome:
    password = ctx.root_password if ctx.state.root_password_set else None
    for server in ctx.state.servers:
        _provider_call(f"starting {server.instance}", ctx.provider.start, server.instance, password)
        server.started = True
    ctx.save()
    return Done(f"{len(ctx.state.servers)} server(s) running, read-only")


def own_account_statements(admin, repl, host: str) -> list[tuple[str, tuple]]:
    """dbpilot's admin and replication accounts as they must be (with sql_log_bin=0: no errant GTID);
    creating them and repairing them after a tenant changed them (clusters.services.accounts)."""
    return [
        ("SET SESSION sql_log_bin=0", ()),
        ("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (admin.user, host, admin.password)),
        ("ALTER USER %s@%s IDENTIFIED BY %s ACCOUNT UNLOCK", (admin.user, host, admin.password)),
        (f"GRANT {', '.join(ADMIN_PRIVILEGES)} ON *.* TO %s@%s", (admin.user, host)),
        ("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (repl.user, host, repl.password)),
        ("ALTER USER %s@%s IDENTIFIED BY %s ACCOUNT UNLOCK", (repl.user, host, repl.password)),
        ("GRANT REPLICATION SLAVE ON *.* TO %s@%s", (repl.user, host)),
    ]


def account_statements(ctx: ProvisionContext, master_user: dict | None) -> list[tuple[str, tuple]]:
    statements = own_account_statements(ctx.admin, ctx.replication, ctx.provider.client_host)
    if master_user:
        user, password = master_user["user"], master_user["password"]
        statements += [
            ("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password)),
            ("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password)),
            ("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,)),
            (f"REVOKE {', '.join(MASTER_USER_REVOKED)} ON *.* FROM %s@'%%'", (user,)),
        ]
    return statements


def create_accounts(ctx: ProvisionContext) -> StepOutcome:
    for server in ctx.state.servers:
        if not ctx.state.root_password_set or not server.accounts:
            _set_root_password(ctx, server)
        statements = account_statements(ctx, ctx.master_user)
        ctx.sql(server, *statements)
        server.accounts = True
    ctx.state.root_password_set = True
    ctx.save()
    ctx.checkpoint()
    had_master = ctx.master_user is not None
    ctx.forget_master_user()  # written once: from now on only the servers know it
    return Done(
        f"dbpilot's admin ({ctx.admin.user}) and replication ({ctx.replication.user}) accounts"
        + (" and the master user" if had_master else "")
        + " on every server, with sql_log_bin=0"
    )


def _set_root_password(ctx: ProvisionContext, server: PlacedServer) -> None:
    """A fresh server's root has no password; a resumed job finds it set already."""
    try:
        ctx.provider.execute(server.instance, ctx.root_password, ["SELECT 1"])
        return
    except Exception:  # noqa: BLE001 - not set yet
        pass
    ctx.provider.execute(
        server.instance,
        "",
        [
            "SET SESSION sql_log_bin=0",
            ("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (ctx.root_password,)),
        ],
    )
    ctx.state.root_password_set = True


def _replicating_from(ctx: ProvisionContext, server: PlacedServer, primary: PlacedServer) -> bool:
    rows = ctx.sql(server, "SHOW SLAVE STATUS")
    return (
        bool(rows)
        and rows[0]["Master_Host"] == primary.host
        and int(rows[0]["Master_Port"]) == primary.port
        and rows[0]["Slave_IO_Running"] == "Yes"
    )


def point_at(
    ctx: ProvisionContext, server: PlacedServer, primary: PlacedServer, gtid: str | None = None
) -> None:
    """Make `server` a GTID replica of `primary` (from `gtid` for a clone), unless it already is one."""
    if _replicating_from(ctx, server, primary):
        return
    repl = ctx.replication
    statements: list = ["STOP SLAVE", "RESET SLAVE ALL"]
    if gtid is not None:
        statements.append(("SET GLOBAL gtid_slave_pos=%s", (gtid,)))
    statements += [
        (
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
            (primary.host, primary.port, repl.user, repl.password),
        ),
        "START SLAVE",
    ]
    ctx.sql(server, *statements)


def wait_replicating(ctx: ProvisionContext, server: PlacedServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = ctx.sql(server, "SHOW SLAVE STATUS")
        status = rows[0] if rows else {}
        if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
            return
        if time.monotonic() > deadline:
            raise StepFailed(
                f"{server.address} does not replicate after {timeout:g} s: IO "
                f"{status.get('Slave_IO_Running')}, SQL {status.get('Slave_SQL_Running')} "
                f"{status.get('Last_IO_Error') or status.get('Last_SQL_Error') or ''}".strip()
            )
        time.sleep(0.05)


def wire_replication(ctx: ProvisionContext) -> StepOutcome:
    primary = ctx.state.primary
    replicas = [s for s in ctx.state.servers if s.role == "replica"]
    if not replicas:
        return Skipped("a single server: nothing to wire")
    for server in replicas:
        point_at(ctx, server, primary)
    for server in replicas:
        wait_replicating(ctx, server)
    return Done(
        f"{', '.join(s.address for s in replicas)} replicate from {primary.address} by GTID "
        "(connect retry 1 s, heartbeat 1 s)"
    )


def semi_sync_on(ctx: ProvisionContext) -> StepOutcome:
    primary = ctx.state.primary
    replicas = [s for s in ctx.state.servers if s.role == "replica"]
    notes = []
    if ctx.settings.semi_sync and replicas:
        wait = ctx.settings.semi_sync_on_timeout == "wait"
        timeout = 4294967295 if wait else ctx.settings.semi_sync_timeout_ms
        ctx.sql(
            primary,
            "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
            f"SET GLOBAL rpl_semi_sync_master_timeout={int(timeout)}",
            "SET GLOBAL rpl_semi_sync_master_enabled=1",
        )
        deadline = time.monotonic() + SEMI_SYNC_WAIT_SECONDS
        restarted = False
        while True:
            clients = int(
                ctx.sql(primary, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")[0]["Value"]
            )
            if clients >= len(replicas):
                break
            if not restarted:  # replicas that connected before the master side was on reconnect as semi-sync
                for server in replicas:
                    ctx.sql(
                        server,
                        "SET GLOBAL rpl_semi_sync_slave_enabled=1",
                        "STOP SLAVE IO_THREAD",
                        "START SLAVE IO_THREAD",
                    )
                restarted = True
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"only {clients} of {len(replicas)} replicas acknowledge as semi-sync replicas"
                )
            time.sleep(0.05)
        notes.append(
            f"semi-sync on: AFTER_SYNC, {clients} acknowledging replica(s), timeout "
            + ("none (wait)" if wait else f"{ctx.settings.semi_sync_timeout_ms} ms")
        )
    else:
        notes.append("semi-sync off" + ("" if replicas else " (no replica)"))
    ctx.sql(primary, "SET GLOBAL read_only=0")
    notes.append(f"{primary.address} writable")
    return Done("; ".join(notes))


@transaction.atomic
def register_servers(ctx: ProvisionContext) -> StepOutcome:
    cluster = Cluster.objects.select_for_update().get(pk=ctx.cluster.pk)
    memory = int(ctx.spec.get("memory_mb", 256))
    rows = {}
    for server in ctx.state.servers:
        row, _ = Server.objects.get_or_create(
            cluster=cluster,
            host=server.host,
            port=server.port,
            defaults={"ip": pinned_ip(server.host), "instance": server.instance, "memory_mb": memory},
        )
        rows[server.instance] = row
    cluster.primary = rows[ctx.state.primary.instance]
    cluster.save(update_fields=["primary", "updated_at"])
    Cluster.objects.filter(pk=cluster.pk).update(epoch=F("epoch") + 1)
    record_event(
        cluster.pk,
        "servers_registered",
        f"{len(rows)} provisioned server(s) registered; primary {ctx.state.primary.address}",
        data={"servers": [s.address for s in ctx.state.servers]},
    )
    labelled = label_roles(ctx, ctx.state.primary.instance, [s.instance for s in ctx.state.servers])
    return Done(f"{len(rows)} server(s) registered, primary {ctx.state.primary.address}" + labelled)


def label_roles(ctx: ProvisionContext, primary: str | None, instances: list[str]) -> str:
    """The provider's own objects follow the roles (kubernetes: the pods' role label the writer Service
    selects; HA jobs do it through the pod-roles route); the step detail's addition."""
    changed = _provider_call("labelling the servers' roles", ctx.provider.roles_changed, primary, instances)
    return f"; roles labelled: {', '.join(changed)}" if changed else ""


def healthy_tick(
    ctx: ProvisionContext, expected_primary: str, timeout: float = HEALTHY_TICK_TIMEOUT_SECONDS
) -> str:
    """Observe the cluster as a monitoring tick does (probes, analysis) until the expected primary is seen
    with every replica replicating from it and no error finding."""
    deadline = time.monotonic() + timeout
    last = "no observation yet"
    while True:
        cluster = Cluster.objects.select_related("primary").get(pk=ctx.cluster.pk)
        topology, _ = observe(cluster, ctx.settings)
        if topology is not None:
            replicas = [s for s in topology.servers if s.address != expected_primary]
            lagging = [
                s.address
                for s in replicas
                if not (
                    s.replication
                    and s.replication.get("source") == expected_primary
                    and s.replication.get("io_running")
                    and s.replication.get("sql_running")
                )
            ]
            serious = [f.code for f in topology.findings if f.severity in ("critical", "error")]
            if topology.primary == expected_primary and not lagging and not serious:
                return f"primary {topology.primary}, {len(replicas)} replica(s) replicating, health {topology.health}"
            last = f"primary {topology.primary}, not replicating: {lagging}, findings: {serious}"
        if time.monotonic() > deadline:
            raise StepFailed(f"no healthy tick within {timeout:g} s ({last})")
        time.sleep(0.2)


def first_healthy_tick(ctx: ProvisionContext) -> StepOutcome:
    detail = healthy_tick(ctx, ctx.state.primary.address)
    Cluster.objects.filter(pk=ctx.cluster.pk).update(failover_armed=True)
    record_event(
        ctx.cluster.pk,
        "failover_armed",
        f"Automatic failover armed (provision job {ctx.job_id})",
        data={"job_id": ctx.job_id},
    )
    return Done(detail + "; failover armed")


def abort_provision(ctx: ProvisionContext, step: str, reason: str) -> str | None:
    """Remove what the job started: every server it placed (processes and data) and their rows."""
    # The newest first: a StatefulSet's pods (kubernetes) go from the highest ordinal down.
    removed = [s.instance for s in reversed(ctx.state.servers) if ctx.provider.destroy(s.instance)]
    with transaction.atomic():
        Cluster.objects.filter(pk=ctx.cluster.pk).update(primary=None, failover_armed=False)
        Server.objects.filter(cluster_id=ctx.cluster.pk).delete()
    return f"removed {len(removed)} server(s) it had placed" if removed else "nothing had been placed"


# --- deprovision, stop, start ----------------------------------------------------------------------------


def _instances(ctx: ProvisionContext) -> list[Server]:
    return [s for s in Server.objects.filter(cluster_id=ctx.cluster.pk).order_by("id") if s.instance]


def disarm(ctx: ProvisionContext) -> StepOutcome:
    Cluster.objects.filter(pk=ctx.cluster.pk).update(failover_armed=False)
    return Done("automatic failover disarmed while the servers go away")


def destroy_servers(ctx: ProvisionContext) -> StepOutcome:
    servers = _instances(ctx)
    # also whatever a failed provision job recorded but never registered
    instances = {s.instance for s in servers}
    key = ctx.spec.get("key")
    if key:
        instances |= {i for i in getattr(ctx.provider, "instances", lambda: [])() if i.startswith(f"{key}-")}
    removed = [i for i in highest_first(instances) if ctx.provider.destroy(i)]  # kubernetes: top down
    return Done(f"stopped and removed {len(removed)} server(s) with their data: {', '.join(removed) or '-'}")


def forget_servers(ctx: ProvisionContext) -> StepOutcome:
    with transaction.atomic():
        Cluster.objects.filter(pk=ctx.cluster.pk).update(primary=None)
        count, _ = Server.objects.filter(cluster_id=ctx.cluster.pk).delete()
    return Done("the cluster is removed once this job ends")


def stop_all(ctx: ProvisionContext) -> StepOutcome:
    servers = _instances(ctx)
    primary_id = ctx.cluster.primary_id
    # Replicas first, the primary last: nothing it acknowledged is missing on a replica that stopped later.
    # Replicas newest first: a StatefulSet (kubernetes) stops its pods from the highest ordinal down.
    for server in sorted(servers, key=lambda s: (s.id == primary_id, -instance_number(s.instance))):
        _provider_call(f"stopping {server.instance}", ctx.provider.stop, server.instance)
    return Done(f"{len(servers)} server(s) stopped cleanly; data kept")


def start_all(ctx: ProvisionContext) -> StepOutcome:
    servers = _instances(ctx)
    primary_id = ctx.cluster.primary_id
    for server in sorted(servers, key=lambda s: s.id != primary_id):  # the primary first
        _provider_call(f"starting {server.instance}", ctx.provider.start, server.instance, ctx.root_password)
    primary = next((s for s in servers if s.id == primary_id), None)
    if primary is not None:
        ctx.sql(primary.instance, "SET GLOBAL read_only=0")
        if ctx.settings.semi_sync and len(servers) > 1:
            ctx.sql(primary.instance, "SET GLOBAL rpl_semi_sync_master_enabled=1")
    labelled = label_roles(ctx, primary.instance if primary else None, [s.instance for s in servers])
    return Done(
        f"{len(servers)} server(s) started; {primary.address if primary else 'no primary'} writable"
        + labelled
    )


def start_healthy(ctx: ProvisionContext) -> StepOutcome:
    if ctx.cluster.primary is None:
        return Skipped("no primary recorded")
    detail = healthy_tick(ctx, ctx.cluster.primary.address)
    armed = ctx.settings.failover_mode == "automatic"
    Cluster.objects.filter(pk=ctx.cluster.pk).update(failover_armed=armed)
    return Done(detail + ("; failover armed" if armed else ""))
