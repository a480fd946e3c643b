"""Routes: register, change and delete them; sync them; and when they sync.

Routes sync
- in HA jobs: clusters.routes.notify asks `routes_for_job` for the cluster's routes, bound to everything
  their drivers need, and each outcome is recorded on its row (`record_result`);
- when a route is registered or changed (`create_route`, `update_route`), and on demand (`sync_route`);
- when the read side of the cluster changes: the monitoring tick calls `on_topology_changed(cluster_id,
  snapshot, previous)`, which compares what routes would say (primary, servers to keep reads away from)
  and, when it differs, queues `workers.tasks.sync_cluster_routes`;
- when a proxy lost its runtime state: beat runs `workers.tasks.check_proxies` every few seconds, which
  calls `check_proxy_state(cluster_id)` for every cluster with HAProxy routes; a changed HAProxy pid or
  start time (uptime went back) re-applies the current routing.

Syncs outside jobs use the recorded primary (Cluster.primary) and wait for no lock: while an HA job runs
they do nothing (the job tells the routes itself), and a sync that saw the epoch move while it applied
applies once more. Every failing sync leaves its error in the route's last sync result, an event, and
an open ROUTE_STALE finding (resolved by the next successful sync); in a job it is also a failed step,
never a failed job.

Endpoints pass the operator's allowlists when registered and again whenever they are dialled, and belong
to one tenant: a route cannot use an endpoint another tenant's route uses, nor another tenant's server.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from clusters import hotstate, senders
from clusters.credentials import cluster_settings
from clusters.domain.addresses import AddressError
from clusters.domain.constants import ROUTE_STALE  # finding code: a route could not be updated
from clusters.events import record_event
from clusters.models import ACTIVE_JOB_STATES, Cluster, Finding, Job, Server
from clusters.routes import drivers  # noqa: F401 - registers every driver
from clusters.routes.base import PRIMARY_CHANGED, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute, ClusterServer
from clusters.routes.haproxy import HaproxyRuntime
from clusters.routes.haproxy_config import render_haproxy_config
from clusters.routes.health import unreadable
from clusters.routes.models import Route
from clusters.routes.notify import apply_route, routes_lock
from clusters.routes.pod_roles import PodRolesRoute
from clusters.routes.spec import NAME, Endpoint, RouteInvalid, RouteSpec, secret_fields, validate_route
from controlplane.crypto import decrypt_json, encrypt_json
from controlplane.netpolicy import NotAllowed, check_socket_path, is_own_service, pin_host

log = logging.getLogger(__name__)

TRIGGER_JOB = "job"
TRIGGER_REGISTERED = "registered"
TRIGGER_CHANGED = "changed"
TRIGGER_MANUAL = "manual"
TRIGGER_HEALTH = "health"
TRIGGER_RESTART = "restart"

__all__ = [
    "RouteInvalid",
    "ROUTE_STALE",
    "create_route",
    "update_route",
    "delete_route",
    "sync_route",
    "sync_cluster_routes",
    "routes_for_job",
    "on_topology_changed",
    "check_proxy_state",
    "check_all_proxies",
    "record_result",
]


# --- registering ---------------------------------------------------------------------------------------


def _endpoint_key(endpoint: Endpoint | None, field: str) -> str:
    """The normalized identity of what a route dials (scheme, pinned canonical address, port), after the
    allowlist checks and the refusal of dbpilot's own services (RouteInvalid otherwise)."""
    if endpoint is None:
        return ""
    try:
        if endpoint.scheme == "unix":
            return f"unix:{check_socket_path(endpoint.path)}"
        ip = pin_host(endpoint.host)
    except (NotAllowed, AddressError) as exc:
        raise RouteInvalid({field: str(exc)}) from None
    if is_own_service(ip, endpoint.port):
        raise RouteInvalid({field: "this endpoint is not available: it is one of dbpilot's own services"})
    scheme = "http" if endpoint.scheme in ("http", "https") else endpoint.scheme
    return f"{scheme}:{ip}:{endpoint.port}"


def _check_ownership(
    cluster: Cluster, spec: RouteSpec, key: str, field: str, exclude_route: int | None = None
) -> None:
    """A route may not dial another tenant's route endpoint nor another tenant's database server, compared
    by pinned canonical address (the same message either way, so the address's owner stays unknown)."""
    if not key:
        return
    refusal = RouteInvalid(
        {
            field: "this endpoint is not available to this tenant (a proxy shared between tenants "
            "must be set up by the platform operator)"
        }
    )
    others = Route.objects.filter(endpoint=key).exclude(cluster__tenant_id=cluster.tenant_id)
    if exclude_route:
        others = others.exclude(pk=exclude_route)
    if others.exists():
        raise refusal
    if spec.endpoint is not None and spec.endpoint.scheme != "unix":
        ip = key.split(":", 1)[1].rsplit(":", 1)[0]
        if (
            Server.objects.filter(ip=ip, port=spec.endpoint.port)
            .exclude(cluster__tenant_id=cluster.tenant_id)
            .exists()
        ):
            raise refusal


def _clean_name(cluster: Cluster, kind: str, data: dict, route: Route | None = None) -> str:
    name = data.get("name")
    if name in (None, ""):
        if route is not None:
            return route.name
        taken = set(Route.objects.filter(cluster=cluster).values_list("name", flat=True))
        name = kind
        number = 2
        while name in taken:
            name, number = f"{kind}-{number}", number + 1
        return name
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RouteInvalid({"name": "must be 1 to 64 letters, digits, '_', '.' or '-'"})
    clash = Route.objects.filter(cluster=cluster, name=name)
    if route is not None:
        clash = clash.exclude(pk=route.pk)
    if clash.exists():
        raise RouteInvalid({"name": f"the cluster already has a route named {name!r}"})
    return name


def _endpoint_field(kind: str) -> str:
    return {"haproxy": "runtime_api", "proxysql": "admin_address"}.get(kind, "api_url")


def create_route(cluster: Cluster, data: dict, *, requested_by: str) -> tuple[Route, RouteResult | None]:
    """Validate, store (secrets encrypted), then sync the new route at once. RouteInvalid for bad input."""
    if not isinstance(data, dict):
        raise RouteInvalid({"non_field_errors": "the body must be a JSON object"})
    kind = data.get("kind")
    spec = validate_route(kind, data)
    key = _endpoint_key(spec.endpoint, _endpoint_field(spec.kind))
    _check_ownership(cluster, spec, key, _endpoint_field(spec.kind))
    with transaction.atomic():
        route = Route.objects.create(
            cluster=cluster,
            kind=spec.kind,
            name=_clean_name(cluster, spec.kind, data),
            settings=spec.settings,
            secrets_encrypted=encrypt_json(spec.secrets) if spec.secrets else "",
            endpoint=key,
        )
        record_event(
            cluster.pk,
            "route_registered",
            f"Route {route.name} ({route.kind}) registered by {requested_by}",
            data={"route_id": route.pk, "kind": route.kind},
        )
    return route, sync_route(route, TRIGGER_REGISTERED)


def _stored_spec(route: Route) -> RouteSpec:
    return RouteSpec(route.kind, dict(route.settings), dict(decrypt_json(route.secrets_encrypted) or {}))


def update_route(route: Route, data: dict, *, requested_by: str) -> tuple[Route, RouteResult | None]:
    """Change some fields (absent ones keep their values; secrets too); `kind` cannot change. Syncs."""
    if not isinstance(data, dict):
        raise RouteInvalid({"non_field_errors": "the body must be a JSON object"})
    if "kind" in data and data["kind"] != route.kind:
        raise RouteInvalid({"kind": "cannot be changed: delete the route and register a new one"})
    cluster = route.cluster
    spec = validate_route(route.kind, data, _stored_spec(route))
    key = _endpoint_key(spec.endpoint, _endpoint_field(spec.kind))
    _check_ownership(cluster, spec, key, _endpoint_field(spec.kind), exclude_route=route.pk)
    with transaction.atomic():
        route.name = _clean_name(cluster, route.kind, data, route)
        route.settings = spec.settings
        route.secrets_encrypted = encrypt_json(spec.secrets) if spec.secrets else ""
        if key != route.endpoint:
            route.proxy_state = {}
        route.endpoint = key
        route.save()
        changed = sorted(k for k in data if k not in ("kind",))
        record_event(
            cluster.pk,
            "route_changed",
            f"Route {route.name} ({route.kind}) changed by {requested_by}",
            data={
                "route_id": route.pk,
                "fields": [k if k not in secret_fields(route.kind) else f"{k} (secret)" for k in changed],
            },
        )
    return route, sync_route(route, TRIGGER_CHANGED)


def delete_route(route: Route, *, requested_by: str) -> None:
    with transaction.atomic():
        _resolve_stale(route, timezone.now())
        record_event(
            route.cluster_id,
            "route_deleted",
            f"Route {route.name} ({route.kind}) deleted by {requested_by}",
            data={"route_id": route.pk, "kind": route.kind},
        )
        route.delete()


# --- binding routes for their drivers ------------------------------------------------------------------


def _servers(cluster: Cluster) -> tuple[ClusterServer, ...]:
    return tuple(ClusterServer(s.id, s.host, s.port, s.maintenance) for s in cluster.servers.all())


def _running_jobs(cluster: Cluster) -> dict[int, str]:
    return dict(Job.objects.filter(cluster=cluster, state__in=ACTIVE_JOB_STATES).values_list("id", "kind"))


def bind(
    route: Route, cluster: Cluster, *, servers=None, snapshot=None, job_kinds=None, trigger: str = TRIGGER_JOB
) -> BoundRoute:
    """A BoundRoute for the driver; its `on_result` records the outcome on the row."""
    servers = servers if servers is not None else _servers(cluster)
    max_delay = cluster_settings(cluster).max_replica_delay_seconds
    try:
        secrets = dict(decrypt_json(route.secrets_encrypted) or {})
    except ValueError:
        log.error("route %s: its secrets cannot be decrypted (DBPILOT_FERNET_KEYS lacks their key)", route.pk)
        secrets = {}
    return BoundRoute(
        id=route.pk,
        kind=route.kind,
        name=route.name,
        tenant=cluster.tenant.name,
        cluster_name=cluster.name,
        cluster_id=cluster.pk,
        settings=dict(route.settings),
        secrets=secrets,
        servers=servers,
        avoid_for_reads=unreadable(snapshot, [s.address for s in servers if s.maintenance], max_delay),
        job_kinds=job_kinds if job_kinds is not None else {},
        proxy_state=dict(route.proxy_state),
        on_result=lambda plan, result: record_result(route.pk, plan, result, trigger),
    )


def routes_for_job(cluster: Cluster) -> list[BoundRoute | PodRolesRoute]:
    """The provider of clusters.routes.notify: every route of the cluster, bound with the latest observation;
    for a cluster provisioned on Kubernetes, also its implicit pod-roles route (clusters.routes.pod_roles)."""
    implicit: list[BoundRoute | PodRolesRoute] = []
    if (getattr(cluster, "provision", None) or {}).get("provider") == "kubernetes":
        rows = Server.objects.filter(cluster_id=cluster.pk).exclude(instance="")
        instances = {f"{h}:{p}": i for h, p, i in rows.values_list("host", "port", "instance")}
        implicit.append(PodRolesRoute(cluster.pk, instances))
    routes = list(Route.objects.filter(cluster_id=cluster.pk))
    if not routes:
        return implicit
    servers = _servers(cluster)
    snapshot = hotstate.read_topology(cluster.pk)
    jobs = _running_jobs(cluster)
    return [bind(r, cluster, servers=servers, snapshot=snapshot, job_kinds=jobs) for r in routes] + implicit


# --- recording outcomes --------------------------------------------------------------------------------


def _resolve_stale(route: Route, now) -> int:
    return Finding.objects.filter(
        cluster_id=route.cluster_id, code=ROUTE_STALE, resolved_at__isnull=True, details__route_id=route.pk
    ).update(resolved_at=now)


def record_result(route_id: int, plan: RoutePlan | None, result: RouteResult, trigger: str) -> None:
    """The route's last sync result; on a change from ok to failing (or back), an event and the finding."""
    now = timezone.now()
    with transaction.atomic():
        route = Route.objects.select_for_update().filter(pk=route_id).first()
        if route is None:
            return
        was_ok = route.last_sync_ok
        route.last_sync_at, route.last_sync_ok = now, result.ok
        route.last_sync_detail, route.last_sync_trigger = result.detail[:4000], trigger
        proxy = (result.extra or {}).get("proxy")
        fields = ["last_sync_at", "last_sync_ok", "last_sync_detail", "last_sync_trigger"]
        if result.ok and isinstance(proxy, dict):
            route.proxy_state = proxy
            fields.append("proxy_state")
        route.save(update_fields=fields)
        label = f"Route {route.name} ({route.kind})"
        if result.ok:
            if _resolve_stale(route, now) or was_ok is False:
                record_event(
                    route.cluster_id,
                    "route_synced",
                    f"{label} is in sync again ({trigger})",
                    data={"route_id": route.pk, "trigger": trigger},
                )
            return
        if trigger != TRIGGER_JOB:  # a job's routes step records its own event for the stale routes
            record_event(
                route.cluster_id,
                "route_sync_failed",
                f"{label} could not be synced ({trigger}): {result.detail}",
                severity="error",
                data={
                    "route_id": route.pk,
                    "trigger": trigger,
                    "detail": result.detail[:1000],
                    "permanent": result.permanent,
                },
            )
        if not Finding.objects.filter(
            cluster_id=route.cluster_id,
            code=ROUTE_STALE,
            resolved_at__isnull=True,
            details__route_id=route.pk,
        ).exists():
            Finding.objects.create(
                cluster_id=route.cluster_id,
                code=ROUTE_STALE,
                severity="error",
                message=f"{label} is stale: {result.detail[:500]}",
                details={"route_id": route.pk, "kind": route.kind},
                opened_at=now,
            )


# --- syncing outside jobs ------------------------------------------------------------------------------


def current_plan(cluster: Cluster, snapshot: dict | None = None) -> RoutePlan | None:
    """What the routes should say now: the recorded primary (before monitoring recorded one: the
    observed one), the other servers as replicas."""
    primary = cluster.primary.address if cluster.primary_id else (snapshot or {}).get("primary")
    if primary is None:
        return None
    replicas = tuple(s.address for s in cluster.servers.all() if s.address != primary)
    return RoutePlan(cluster.label, PRIMARY_CHANGED, primary, None, replicas, cluster.epoch, None)


def _fresh(cluster_id: int) -> Cluster | None:
    return Cluster.objects.select_related("tenant", "primary").filter(pk=cluster_id).first()


def _ha_job_running(cluster_id: int) -> Job | None:
    return Job.objects.active_ha(cluster_id)


def _skipped(routes: list[Route], why: str) -> list[RouteResult]:
    return [
        RouteResult(f"{r.kind}:{r.pk}", True, f"not synced now: {why}", extra={"skipped": True})
        for r in routes
    ]


def _sync(routes: list[Route], cluster: Cluster, trigger: str) -> list[RouteResult]:
    with routes_lock(cluster.pk) as held:
        if not held:
            return _skipped(routes, "another sync of this cluster's routes is still running")
        return _sync_locked(routes, _fresh(cluster.pk) or cluster, trigger)


def _sync_locked(routes: list[Route], cluster: Cluster, trigger: str) -> list[RouteResult]:
    job = _ha_job_running(cluster.pk)
    if job is not None:
        return _skipped(routes, f"{job.kind} job {job.pk} is running and tells the routes itself")
    snapshot = hotstate.read_topology(cluster.pk)
    plan = current_plan(cluster, snapshot)
    if plan is None:
        results = [
            RouteResult(f"{r.kind}:{r.pk}", False, "no primary is known yet: nothing to route to")
            for r in routes
        ]
        for route, result in zip(routes, results, strict=True):
            record_result(route.pk, None, result, trigger)
        return results
    servers = _servers(cluster)
    bound = [bind(r, cluster, servers=servers, snapshot=snapshot, trigger=trigger) for r in routes]
    results = [apply_route(b, plan) for b in bound]
    again = _fresh(cluster.pk)
    if (
        again is not None
        and (again.epoch, again.primary_id) != (cluster.epoch, cluster.primary_id)
        and _ha_job_running(cluster.pk) is None
        and (plan := current_plan(again)) is not None
    ):
        # A switch landed while we applied an older primary: apply the new one (once).
        results = [apply_route(b, plan) for b in bound]
    for b, result in zip(bound, results, strict=True):
        b.on_result(plan, result)
    return results


def sync_route(route: Route, trigger: str = TRIGGER_MANUAL) -> RouteResult:
    """Apply the current routing to one route now and record the outcome."""
    cluster = _fresh(route.cluster_id)
    return _sync([route], cluster, trigger)[0]


def sync_cluster_routes(
    cluster_id: int, trigger: str = TRIGGER_MANUAL, *, kinds: tuple[str, ...] | None = None
) -> list[RouteResult]:
    cluster = _fresh(cluster_id)
    if cluster is None:
        return []
    routes = Route.objects.filter(cluster_id=cluster_id)
    if kinds:
        routes = routes.filter(kind__in=kinds)
    routes = list(routes)
    return _sync(routes, cluster, trigger) if routes else []


READ_SIDE_KINDS = ("haproxy", "powerdns", "proxysql", "maxscale", "consul")


def routing_view(snapshot: dict | None, maintenance: list[str], max_delay: float) -> tuple:
    """What routes would say about a snapshot: its primary, and the servers reads must avoid."""
    return ((snapshot or {}).get("primary"), tuple(sorted(unreadable(snapshot, maintenance, max_delay))))


def on_topology_changed(
    cluster_id: int, snapshot: dict | None, previous: dict | None, *, inline: bool = False
) -> bool:
    """Called by monitoring when a cluster's topology snapshot changed. When what routes would say changed
    (the primary, or which replicas may take reads), their sync is queued (or run now with `inline`).
    Returns whether a sync was requested. Cheap when the cluster has no route (one query)."""
    if not Route.objects.filter(cluster_id=cluster_id, kind__in=READ_SIDE_KINDS).exists():
        return False
    cluster = _fresh(cluster_id)
    if cluster is None:
        return False
    maintenance = [s.address for s in cluster.servers.all() if s.maintenance]
    max_delay = cluster_settings(cluster).max_replica_delay_seconds
    if routing_view(snapshot, maintenance, max_delay) == routing_view(previous, maintenance, max_delay):
        return False
    if inline:
        sync_cluster_routes(cluster_id, TRIGGER_HEALTH, kinds=READ_SIDE_KINDS)
        return True

    def enqueue() -> None:
        try:
            senders.send(senders.SYNC_CLUSTER_ROUTES, cluster_id, TRIGGER_HEALTH)
        except Exception:  # noqa: BLE001 - a broker outage must not break the tick
            log.warning("could not queue the route sync of cluster %s", cluster_id, exc_info=True)

    transaction.on_commit(enqueue)
    return True


# --- HAProxy restarts ----------------------------------------------------------------------------------


def check_proxy_state(cluster_id: int) -> list[RouteResult]:
    """Ask each HAProxy route's runtime API who it is (pid, start time); a proxy that restarted since
    the last successful sync lost dbpilot's runtime changes: re-apply them. Returns the re-applied results."""
    restarted = []
    for route in Route.objects.filter(cluster_id=cluster_id, kind="haproxy"):
        seen = route.proxy_state or {}
        if not seen.get("start_time"):
            continue  # never synced successfully: nothing to compare (its next sync records it)
        try:
            info = HaproxyRuntime(route.settings["runtime_api"]).info()
        except RouteError:
            continue  # unreachable now: the next check (or job) will tell
        if (info.get("Pid"), info.get("Start_time_sec")) != (seen.get("pid"), seen.get("start_time")):
            log.info(
                "HAProxy of route %s restarted (pid %s -> %s): re-applying",
                route.pk,
                seen.get("pid"),
                info.get("Pid"),
            )
            restarted.append(route)
    if not restarted:
        return []
    cluster = _fresh(cluster_id)
    return _sync(restarted, cluster, TRIGGER_RESTART) if cluster else []


def check_all_proxies() -> int:
    """Beat's periodic check (workers.tasks.check_proxies): every cluster with an HAProxy route."""
    ids = sorted(
        set(Route.objects.filter(kind="haproxy").exclude(proxy_state={}).values_list("cluster_id", flat=True))
    )
    count = 0
    for cluster_id in ids:
        try:
            count += len(check_proxy_state(cluster_id))
        except Exception:  # noqa: BLE001 - one cluster's failure must not stop the others
            log.warning("proxy check of cluster %s failed", cluster_id, exc_info=True)
    return count


# --- generated configuration ---------------------------------------------------------------------------


def haproxy_config(route: Route, check: str | None = None) -> str:
    """The complete haproxy.cfg of an HAProxy route (ValueError when the route cannot have one)."""
    cluster = _fresh(route.cluster_id)
    check = check or route.settings.get("check") or "mysql"
    snapshot = hotstate.read_topology(cluster.pk)
    bound = bind(route, cluster, snapshot=snapshot)
    plan = current_plan(cluster, snapshot)
    readers = bound.read_members(plan) if plan else []
    return render_haproxy_config(
        cluster_label=cluster.label,
        cluster_id=cluster.pk,
        servers=bound.servers,
        primary=plan.primary if plan else None,
        readers=readers,
        settings=route.settings,
        check=check,
    )
