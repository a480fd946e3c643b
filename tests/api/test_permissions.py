"""The permission matrix: every API endpoint and every websocket route, for every kind of caller.

Callers (see tests/api/conftest.py): anonymous; alice (tenant A admin), bob (viewer), oscar (operator),
charlie (tenant B only), root (platform operator, in no team); team A tokens of each scope, one
restricted to cluster Y (the rows act on cluster X), expired and revoked ones; tenant B's admin token.

ADDING AN ENDPOINT: add a row to HTTP_MATRIX (or WS_MATRIX) with the URL pattern's name as the
resolver has it (DRF routers: "<basename>-list", "<basename>-detail", "<basename>-<url_name>"), the
method, what the caller needs (a key of NEEDS below; add an entry there for an endpoint with its own
rules, e.g. one authorized by a health key), the URL and a body that is valid enough to reach the
permission check. Rows whose allowed writes cannot disturb each other may set shares_world=True. `test_every_endpoint_is_in_the_matrix` fails while an
endpoint (or websocket route) has no row, and while a row names one that no longer exists.

What is checked, per row and caller: the status (401 / 403 / 404 / 405 exactly; "ok" means allowed:
neither 401, 403, 404 nor 5xx, a validation 400 included), that list endpoints never show another
tenant's objects, and that every unsafe request by an identified caller wrote one audit entry with
the caller as actor and no secret in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.models import AuditEntry

OK = "ok"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

PEOPLE_A = ("alice", "bob", "oscar")
TOKENS_A = ("token:admin", "token:operate", "token:read", "token:restricted")
DEAD = ("token:expired", "token:revoked")
OUTSIDERS = ("charlie", "token:tenant_b", "root")
ACTORS = ("anonymous",) + PEOPLE_A + TOKENS_A + DEAD + OUTSIDERS


def need(default, **overrides) -> dict[str, object]:
    """Expected outcome per caller: `default` for everyone, then overrides (token_x -> "token:x")."""
    table = {who: default for who in ACTORS}
    for key, value in overrides.items():
        table[key.replace("token_", "token:", 1) if key.startswith("token_") else key] = value
    return table


_dead = {"anonymous": 401, "token_expired": 401, "token_revoked": 401}
_outside = {"charlie": 404, "token_tenant_b": 404, "root": 404}

NEEDS = {
    # A cluster permission on cluster X (or on what hangs off it).
    "view": need(OK, **_dead, **_outside, token_restricted=404),
    "operate": need(OK, **_dead, **_outside, token_restricted=404, bob=403, token_read=403),
    "admin": need(
        OK, **_dead, **_outside, token_restricted=404, bob=403, token_read=403, oscar=403, token_operate=403
    ),
    # Registering a cluster: the admin role in some team (tenant B registers in its own tenant).
    "create_cluster": need(403, **_dead, alice=OK, token_admin=OK, charlie=OK, token_tenant_b=OK),
    # Anyone identified; the answer is about the caller's own things.
    "signed_in": need(OK, **_dead),
    # Team A and what hangs off it: its members and tokens see it, tenant admins manage it.
    "team_read": need(OK, **_dead, **_outside),
    "team_manage": need(403, **_dead, **_outside, alice=OK),
    "token_manage": need(403, **_dead, **_outside, alice=OK, token_admin=OK, token_restricted=OK),
    # Creating a team A token (the team is named in the body: an invisible one is a 400 "no such team").
    "token_create": need(403, **_dead, alice=OK, token_admin=OK, charlie=400, token_tenant_b=400, root=400),
    # Tenant-level administration (tenant admins of their own tenant; never tokens).
    "tenant_admin": need(403, **_dead, alice=OK, charlie=OK),
    "audit_read": need(403, **_dead, alice=OK, charlie=OK, root=OK),
    "platform_operator": need(403, **_dead, root=OK),
    "public": need(OK),
    # Open to anyone, authorized by a secret in the body: a wrong one is the same 400 for every caller.
    "public_invalid": need(400),
    "public_signed_optional": need(OK, token_expired=401, token_revoked=401),
    "not_allowed": need(405, **_dead),
    # The proxies' health checks: only the cluster's health key authorizes them, never a session or token.
    "health_key": need(404),
    # One of tenant A's alert subscriptions: only tenant A's admins see it at all.
    "alert_admin": need(404, **_dead, alice=OK),
    # Parameter groups of tenant A: read by its teams' members and tokens, changed by a team admin.
    "tenant_a_read": need(OK, **_dead, **_outside),
    "tenant_a_admin": need(403, **_dead, alice=OK, token_admin=OK, charlie=404, token_tenant_b=404),
    # What is left of the caller's tenant's quota: anyone in a team.
    "quota": need(OK, **_dead, root=404),
}


@dataclass(frozen=True)
class Row:
    """One endpoint (URL pattern name + method) and what a caller needs to use it."""

    name: str
    method: str
    needs: str
    url: Callable[[object], str]
    body: Callable[[object], dict] | None = None
    # For list endpoints: ids that must not appear in the results for a caller.
    hides: Callable[[object, str], set[int]] | None = None
    # Whether an unsafe request by an identified caller must leave an audit entry.
    audited: bool = True
    # Allowed writes that cannot disturb each other (a failed login, a logout) share one world.
    shares_world: bool = False

    @property
    def id(self) -> str:
        return f"{self.name} {self.method}"


def cluster(suffix: str = "") -> Callable[[object], str]:
    return lambda w: f"/api/v1/clusters/{w.cluster_x.id}/{suffix}"


def team(suffix: str = "") -> Callable[[object], str]:
    return lambda w: f"/api/v1/teams/{w.team_a.id}/{suffix}"


def _registration(w) -> dict:
    # Valid enough to pass validation; the server is a closed loopback port, so an allowed caller gets a 400.
    return {
        "name": "new-cluster",
        "servers": [{"host": "127.0.0.1", "port": 9}],
        "credentials": {"user": "dbpilot", "password": "matrix-secret-password"},
    }


def _route_x(w):
    """A route of cluster X (made directly: its endpoint is a closed loopback port)."""
    from clusters.routes.models import Route

    route, _ = Route.objects.get_or_create(
        cluster=w.cluster_x,
        name="matrix",
        defaults={
            "kind": "haproxy",
            "settings": {"runtime_api": "tcp://127.0.0.1:9", "write_backend": "db_write"},
        },
    )
    return route


def route(suffix: str = "") -> Callable[[object], str]:
    return lambda w: f"/api/v1/clusters/{w.cluster_x.id}/routes/{_route_x(w).id}/{suffix}"


def _subscription_a(w):
    """An alert subscription of tenant A (email: no webhook host to allow)."""
    from clusters.alerts.models import AlertSubscription
    from clusters.services.alerts import create_subscription

    existing = AlertSubscription.objects.filter(tenant=w.tenant_a, name="matrix").first()
    return (
        existing
        or create_subscription(
            w.tenant_a, w.alice, {"name": "matrix", "channel": "email", "target": "ops@acme.example"}
        )[0]
    )


def subscription(suffix: str = "") -> Callable[[object], str]:
    return lambda w: f"/api/v1/alerts/subscriptions/{_subscription_a(w).id}/{suffix}"


def _hide_tenant_a_clusters(w, who) -> set[int]:
    if who in OUTSIDERS:
        return {w.cluster_x.id, w.cluster_y.id}
    return {w.cluster_x.id} if who == "token:restricted" else set()


def _backup_x(w):
    """A (failed, logical) backup of cluster X: allowed restores and verifications get a 400 or 409."""
    from django.utils import timezone

    from clusters.backup_models import Backup

    backup, _ = Backup.objects.get_or_create(
        cluster=w.cluster_x,
        cluster_ref=w.cluster_x.id,
        defaults={
            "cluster_name": w.cluster_x.name,
            "tenant": w.cluster_x.tenant,
            "kind": "logical",
            "status": "failed",
            "storage": "filesystem",
            "started_at": timezone.now(),
        },
    )
    return backup


def _group_a(w):
    from clusters.models import ParameterGroup

    group, _ = ParameterGroup.objects.get_or_create(
        tenant=w.cluster_x.tenant, name="matrix", defaults={"parameters": {"max_connections": "300"}}
    )
    return group


def _host(w):
    from clusters.models import DatabaseHost

    host, _ = DatabaseHost.objects.get_or_create(
        name="matrix",
        defaults={"address": "127.0.0.1", "zone": "a", "capacity_instances": 2, "capacity_memory_mb": 4096},
    )
    return host


def _artifact(w) -> str:
    from clusters.models import JobArtifact

    JobArtifact.objects.get_or_create(job=w.job_x, name="matrix.sql", defaults={"content": "-- kept"})
    return "matrix.sql"


HTTP_MATRIX: list[Row] = [
    # Provisioning (clusters/api/provisioning.py); cluster X is registered, so allowed callers get a 409.
    Row("cluster-stop", "POST", "admin", cluster("stop/")),
    Row("cluster-start", "POST", "operate", cluster("start/")),
    Row("cluster-servers", "POST", "admin", cluster("servers/"), lambda w: {}),
    Row(
        "cluster-server",
        "DELETE",
        "admin",
        lambda w: f"/api/v1/clusters/{w.cluster_x.id}/servers/{w.cluster_x.servers.last().id}/",
    ),
    Row(
        "parameter-groups",
        "GET",
        "signed_in",
        lambda w: "/api/v1/parameter-groups/",
        hides=lambda w, who: {_group_a(w).id} if who in OUTSIDERS else set(),
    ),
    Row(
        "parameter-groups",
        "POST",
        "create_cluster",
        lambda w: "/api/v1/parameter-groups/",
        lambda w: {"name": "new-group", "parameters": {"max_connections": 200}},
    ),
    Row("parameter-group", "GET", "tenant_a_read", lambda w: f"/api/v1/parameter-groups/{_group_a(w).id}/"),
    Row(
        "parameter-group",
        "PATCH",
        "tenant_a_admin",
        lambda w: f"/api/v1/parameter-groups/{_group_a(w).id}/",
        lambda w: {"parameters": {"max_connections": 250}},
    ),
    Row(
        "parameter-group", "DELETE", "tenant_a_admin", lambda w: f"/api/v1/parameter-groups/{_group_a(w).id}/"
    ),
    Row(
        "cluster-parameter-group",
        "POST",
        "admin",
        cluster("parameter-group/"),
        lambda w: {"parameter_group": None},
    ),
    Row("quota", "GET", "quota", lambda w: "/api/v1/quota/"),
    Row("platform-host", "DELETE", "platform_operator", lambda w: f"/api/v1/platform/hosts/{_host(w).id}/"),
    # Backups (clusters/api/backups.py): a restore creates a cluster, so it needs a team's admin role too.
    Row("cluster-backups", "GET", "view", cluster("backups/")),
    Row("cluster-backups", "POST", "operate", cluster("backups/"), lambda w: {}),
    Row("cluster-restore", "POST", "admin", cluster("restore/"), lambda w: {"name": "copy", "backup": 0}),
    Row("backups", "GET", "signed_in", lambda w: "/api/v1/backups/"),
    Row("backup", "GET", "view", lambda w: f"/api/v1/backups/{_backup_x(w).id}/"),
    Row(
        "backup-restore",
        "POST",
        "admin",
        lambda w: f"/api/v1/backups/{_backup_x(w).id}/restore/",
        lambda w: {"name": "copy"},
    ),
    Row(
        "backup-verify",
        "POST",
        "operate",
        lambda w: f"/api/v1/backups/{_backup_x(w).id}/verify/",
        lambda w: {},
    ),
    Row("platform-hosts", "GET", "platform_operator", lambda w: "/api/v1/platform/hosts/"),
    Row(
        "platform-hosts",
        "POST",
        "platform_operator",
        lambda w: "/api/v1/platform/hosts/",
        lambda w: {
            "name": "db1",
            "address": "127.0.0.1",
            "zone": "a",
            "capacity": {"instances": 4, "memory_mb": 8192},
        },
    ),
    # Clusters (clusters/api/views.py)
    Row("cluster-list", "GET", "signed_in", lambda w: "/api/v1/clusters/", hides=_hide_tenant_a_clusters),
    Row("cluster-list", "POST", "create_cluster", lambda w: "/api/v1/clusters/", _registration),
    Row("cluster-detail", "GET", "view", cluster()),
    Row("cluster-detail", "PATCH", "admin", cluster(), lambda w: {"settings": {"tick_seconds": 2}}),
    Row("cluster-detail", "PUT", "not_allowed", cluster(), lambda w: {"settings": {}}),
    Row("cluster-detail", "DELETE", "admin", cluster()),
    Row("cluster-events", "GET", "view", cluster("events/")),
    Row("cluster-jobs", "GET", "view", cluster("jobs/")),
    Row("cluster-topology", "GET", "view", cluster("topology/")),
    Row(
        "cluster-maintenance",
        "POST",
        "operate",
        lambda w: f"/api/v1/clusters/{w.cluster_x.id}/servers/{w.cluster_x.servers.first().id}/maintenance/",
        lambda w: {"on": True},
    ),
    Row("cluster-switchover", "POST", "operate", cluster("switchover/"), lambda w: {}),
    Row("cluster-failover", "POST", "operate", cluster("failover/"), lambda w: {}),
    Row("cluster-failover-control", "GET", "view", cluster("failover-control/")),
    Row(
        "cluster-failover-control-reset", "POST", "operate", cluster("failover-control/reset/"), lambda w: {}
    ),
    Row("job-detail", "GET", "view", lambda w: f"/api/v1/jobs/{w.job_x.id}/"),
    # Repair (clusters/api/repair.py): cluster X is registered, so rebuild and restart are 409 not_owned;
    # a rejoin of its primary is 409 too. Artifacts: the job's cluster's view permission.
    Row("cluster-restart", "POST", "operate", cluster("restart/"), lambda w: {}),
    Row(
        "cluster-server-rebuild",
        "POST",
        "admin",
        lambda w: f"/api/v1/clusters/{w.cluster_x.id}/servers/{w.cluster_x.servers.last().id}/rebuild/",
        lambda w: {},
    ),
    Row(
        "cluster-server-rejoin",
        "POST",
        "operate",
        lambda w: f"/api/v1/clusters/{w.cluster_x.id}/servers/{w.cluster_x.primary_id}/rejoin/",
        lambda w: {},
    ),
    Row("job-artifacts", "GET", "view", lambda w: f"/api/v1/jobs/{w.job_x.id}/artifacts/"),
    Row("job-artifact", "GET", "view", lambda w: f"/api/v1/jobs/{w.job_x.id}/artifacts/{_artifact(w)}/"),
    # Routes and health checks (clusters/api/routes.py)
    Row("cluster-routes", "GET", "view", cluster("routes/")),
    Row(
        "cluster-routes",
        "POST",
        "admin",
        cluster("routes/"),
        lambda w: {"kind": "haproxy", "runtime_api": "tcp://127.0.0.1:9", "write_backend": "db_write"},
    ),
    Row("cluster-route", "GET", "view", route()),
    Row("cluster-route", "PATCH", "admin", route(), lambda w: {"read_backend": "db_read"}),
    Row("cluster-route", "PUT", "not_allowed", route(), lambda w: {}),
    Row("cluster-route", "DELETE", "admin", route()),
    Row("cluster-route-haproxy-cfg", "GET", "view", lambda w: route()(w).rstrip("/") + "/haproxy.cfg"),
    Row("cluster-route-sync", "POST", "operate", route("sync/")),
    Row("cluster-health-key", "POST", "admin", cluster("health-key/")),
    Row(
        "server-health",
        "GET",
        "health_key",
        lambda w: (
            f"/api/v1/health/clusters/{w.cluster_x.id}/servers/{w.cluster_x.servers.first().address}/primary"
        ),
    ),
    # Metrics and alert subscriptions (clusters/api/history.py, clusters/api/alerts.py)
    Row("cluster-metrics", "GET", "view", cluster("metrics/?range=1h")),
    Row(
        "alert-subscription-list",
        "GET",
        "signed_in",
        lambda w: "/api/v1/alerts/subscriptions/",
        hides=lambda w, who: set() if who == "alice" else {_subscription_a(w).id},
    ),
    Row(
        "alert-subscription-list",
        "POST",
        "tenant_admin",
        lambda w: "/api/v1/alerts/subscriptions/",
        lambda w: {"name": "matrix-new", "channel": "email", "target": "new@acme.example"},
    ),
    Row("alert-subscription-detail", "GET", "alert_admin", subscription()),
    Row("alert-subscription-detail", "PATCH", "alert_admin", subscription(), lambda w: {"codes": ["x"]}),
    Row("alert-subscription-detail", "DELETE", "alert_admin", subscription()),
    Row("alert-subscription-deliveries", "GET", "alert_admin", subscription("deliveries/")),
    Row("alert-subscription-test", "POST", "alert_admin", subscription("test/")),
    # Teams, members, grants
    Row(
        "team-list",
        "GET",
        "signed_in",
        lambda w: "/api/v1/teams/",
        hides=lambda w, who: {w.team_a.id} if who in OUTSIDERS else set(),
    ),
    Row("team-list", "POST", "tenant_admin", lambda w: "/api/v1/teams/", lambda w: {"name": "newteam"}),
    Row("team-detail", "GET", "team_read", team()),
    Row("team-detail", "PATCH", "team_manage", team(), lambda w: {"name": "renamed"}),
    Row("team-detail", "DELETE", "team_manage", team()),
    Row("team-members", "GET", "team_read", team("members/")),
    Row(
        "team-members",
        "POST",
        "team_manage",
        team("members/"),
        lambda w: {"email": "new@acme.example", "role": "viewer"},
    ),
    Row(
        "team-member",
        "PATCH",
        "team_manage",
        lambda w: f"/api/v1/teams/{w.team_a.id}/members/{w.bob.id}/",
        lambda w: {"role": "operator"},
    ),
    Row("team-member", "DELETE", "team_manage", lambda w: f"/api/v1/teams/{w.team_a.id}/members/{w.bob.id}/"),
    Row("team-grants", "GET", "team_read", team("grants/")),
    Row(
        "team-grants",
        "POST",
        "team_manage",
        team("grants/"),
        lambda w: {"cluster": w.cluster_x.id, "permissions": ["view_cluster"]},
    ),
    Row(
        "team-grant",
        "DELETE",
        "team_manage",
        lambda w: f"/api/v1/teams/{w.team_a.id}/grants/{w.cluster_x.id}/",
    ),
    # Tokens
    Row(
        "token-list",
        "GET",
        "signed_in",
        lambda w: "/api/v1/tokens/",
        hides=lambda w, who: (
            {t.id for t in w.token_rows.values() if t.team_id == w.team_a.id} if who in OUTSIDERS else set()
        ),
    ),
    Row(
        "token-list",
        "POST",
        "token_create",
        lambda w: "/api/v1/tokens/",
        lambda w: {"team": w.team_a.id, "scope": "read", "name": "matrix"},
    ),
    Row("token-detail", "GET", "team_read", lambda w: f"/api/v1/tokens/{w.token_rows['read'].id}/"),
    Row("token-detail", "DELETE", "token_manage", lambda w: f"/api/v1/tokens/{w.token_rows['read'].id}/"),
    Row(
        "token-revoke", "POST", "token_manage", lambda w: f"/api/v1/tokens/{w.token_rows['read'].id}/revoke/"
    ),
    # Audit log
    Row("audit-list", "GET", "audit_read", lambda w: "/api/v1/audit/"),
    # Session login (audited by the views themselves: tests/api/test_tenancy.py)
    Row("auth-csrf", "GET", "public", lambda w: "/api/v1/auth/csrf/"),
    Row(
        "auth-login",
        "POST",
        "public",
        lambda w: "/api/v1/auth/login/",
        lambda w: {"email": "nobody@acme.example", "password": "not-the-password"},
        audited=False,
        shares_world=True,
    ),
    Row(
        "auth-logout",
        "POST",
        "public_signed_optional",
        lambda w: "/api/v1/auth/logout/",
        audited=False,
        shares_world=True,
    ),
    Row("auth-me", "GET", "signed_in", lambda w: "/api/v1/auth/me/"),
    # Invitations: the one-time secret is the authorization (a wrong one is a 400 for everyone)
    Row(
        "invitation-accept",
        "POST",
        "public_invalid",
        lambda w: "/api/v1/invitations/accept/",
        lambda w: {"secret": "not-an-invitation-secret"},
        audited=False,
        shares_world=True,
    ),
    # Platform
    Row("platform", "GET", "signed_in", lambda w: "/api/v1/platform/"),
    Row(
        "platform-pause",
        "POST",
        "platform_operator",
        lambda w: "/api/v1/platform/pause/",
        lambda w: {"reason": "matrix"},
    ),
    Row("platform-resume", "POST", "platform_operator", lambda w: "/api/v1/platform/resume/"),
    Row("platform-health", "GET", "platform_operator", lambda w: "/api/v1/platform/health/"),
]


@dataclass(frozen=True)
class WsRow:
    """One websocket route (its pattern as written in controlplane/ws.py) and what a caller needs."""

    route: str
    needs: str
    path: Callable[[object], str]
    # Clusters whose events a caller must (True) or must not (False) receive, per caller.
    receives: Callable[[object, str], dict[int, bool]] = field(default=lambda w, who: {})


def _events_of(w, who) -> dict[int, bool]:
    if who in OUTSIDERS:
        return {w.cluster_x.id: False}
    return {w.cluster_x.id: who != "token:restricted", w.cluster_y.id: True}


WS_MATRIX: list[WsRow] = [
    WsRow(
        "ws/clusters/<int:cluster_id>/",
        "view",
        lambda w: f"/ws/clusters/{w.cluster_x.id}/",
        receives=lambda w, who: {w.cluster_x.id: True} if NEEDS["view"][who] == OK else {},
    ),
    WsRow("ws/events/", "signed_in", lambda w: "/ws/events/", receives=_events_of),
    WsRow("ws/jobs/<int:job_id>/", "view", lambda w: f"/ws/jobs/{w.job_x.id}/"),
]


# Enumerating what exists


def api_endpoints() -> dict[tuple[str | None, str], str]:
    """Every (URL pattern name, method) under /api/v1/, from the resolver -> the route, for messages."""
    found: dict[tuple[str | None, str], str] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if not route.startswith("api/v1/"):
                    continue
                for method in _methods(pattern.callback):
                    found[(pattern.name, method)] = route

    walk(get_resolver().url_patterns, "")
    return found


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route: method -> action
        return sorted(m.upper() for m in actions if m not in ("head", "options"))
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return ["ANY"]  # a plain function view: it must still have a row
    return sorted(m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m))


def websocket_routes() -> set[str]:
    from controlplane.ws import websocket_urlpatterns

    return {str(pattern.pattern) for pattern in websocket_urlpatterns}


@pytest.mark.django_db
def test_every_endpoint_is_in_the_matrix():
    endpoints = api_endpoints()
    table = {(row.name, row.method) for row in HTTP_MATRIX}
    missing = sorted(
        f"{name or '(unnamed: give the URL pattern a name)'} {method}  ({endpoints[(name, method)]})"
        for name, method in set(endpoints) - table
    )
    stale = sorted(f"{name} {method}" for name, method in table - set(endpoints))
    ws_missing = sorted(websocket_routes() - {row.route for row in WS_MATRIX})
    ws_stale = sorted({row.route for row in WS_MATRIX} - websocket_routes())
    problems = []
    if missing:
        problems.append("API endpoints without a row in HTTP_MATRIX:\n  " + "\n  ".join(missing))
    if stale:
        problems.append("HTTP_MATRIX rows for endpoints that do not exist:\n  " + "\n  ".join(stale))
    if ws_missing:
        problems.append("websocket routes without a row in WS_MATRIX:\n  " + "\n  ".join(ws_missing))
    if ws_stale:
        problems.append("WS_MATRIX rows for routes that do not exist:\n  " + "\n  ".join(ws_stale))
    assert not problems, "\n".join(problems)
    assert len(table) == len(HTTP_MATRIX), "a (name, method) appears twice in HTTP_MATRIX"


def test_every_row_names_a_known_need():
    unknown = [row.id for row in HTTP_MATRIX if row.needs not in NEEDS]
    unknown += [row.route for row in WS_MATRIX if row.needs not in NEEDS]
    assert not unknown, f"rows naming no entry of NEEDS: {unknown}"


# Running the HTTP matrix


def _secrets_of(world, row) -> list[str]:
    body = row.body(world) if row.body else {}
    found = [v for k, v in body.items() if "password" in k] + [
        v for k, v in (body.get("credentials") or {}).items() if k == "password"
    ]
    found += list(world.tokens.values())
    for cluster_ in (world.cluster_x, world.cluster_y, world.cluster_z):
        found += list(cluster_.test_passwords)
    return found


def _call(world, row, who):
    client = world.client(None if who == "anonymous" else who)
    body = row.body(world) if row.body else None
    method = getattr(client, row.method.lower())
    if body is None:
        return method(row.url(world))
    return method(row.url(world), data=json.dumps(body), content_type="application/json")


def _check(world, row, who, expected) -> list[str]:
    """Make the request as `who`; return what did not match (empty when all is well)."""
    problems = []
    last_audit = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = _call(world, row, who)
    status = response.status_code
    if status >= 500:
        return [f"{who}: {status} (server error)"]
    if expected == OK:
        if status in (401, 403, 404):
            problems.append(f"{who}: expected to be allowed, got {status} {response.content[:200]!r}")
    elif status != expected:
        problems.append(f"{who}: expected {expected}, got {status} {response.content[:200]!r}")
    if row.hides and status == 200:
        payload = response.json()
        items = payload.get("results", payload) if isinstance(payload, dict) else payload
        shown = {item.get("id") for item in items if isinstance(item, dict)}
        leaked = shown & row.hides(world, who)
        if leaked:
            problems.append(f"{who}: the list shows ids {sorted(leaked)} it must not")
    if row.method not in SAFE_METHODS and row.audited:
        entries = list(AuditEntry.objects.filter(id__gt=last_audit))
        identified = who != "anonymous" and who not in DEAD
        if identified and len(entries) != 1:
            problems.append(f"{who}: expected one audit entry, found {len(entries)}")
        elif identified:
            entry = entries[0]
            if entry.actor != world.label(who) or entry.result != str(status):
                problems.append(
                    f"{who}: audit entry {entry.actor!r} {entry.action} {entry.result} does not name the caller/result"
                )
            recorded = json.dumps(entry.parameters)
            leaked = [s for s in _secrets_of(world, row) if s in recorded]
            if leaked:
                problems.append(f"{who}: the audit entry holds a secret")
        elif entries:
            problems.append(f"{who}: an unidentified caller left {len(entries)} audit entries")
    return problems


@pytest.fixture
def generous_login_limit(settings):
    # The matrix sends one failed login per caller from one address; the limit has its own tests.
    settings.DBPILOT_LOGIN_MAX_FAILURES = 1000


@pytest.mark.parametrize("row", HTTP_MATRIX, ids=lambda row: row.id)
def test_refusals_and_reads(row, world, generous_login_limit):
    """Every caller that must be refused is (with the right status); every read works for those allowed.
    Refused requests change nothing, so they share one world."""
    needs = NEEDS[row.needs]
    problems = []
    for who in ACTORS:
        if needs[who] == OK and row.method not in SAFE_METHODS and not row.shares_world:
            continue  # allowed writes change things: each runs in its own world, below
        problems += _check(world, row, who, needs[who])
    assert not problems, f"{row.id}:\n  " + "\n  ".join(problems)


ALLOWED_WRITES = [
    (row, who)
    for row in HTTP_MATRIX
    if row.method not in SAFE_METHODS and not row.shares_world
    for who in ACTORS
    if NEEDS[row.needs][who] == OK
]


@pytest.mark.parametrize("row,who", ALLOWED_WRITES, ids=[f"{row.id} as {who}" for row, who in ALLOWED_WRITES])
def test_allowed_writes(row, who, world, generous_login_limit):
    problems = _check(world, row, who, OK)
    assert not problems, f"{row.id}:\n  " + "\n  ".join(problems)


# Running the websocket matrix

WS_CLOSE_CODE = {401: 4401, 404: 4404}


def _ws_headers(world, who) -> list[tuple[bytes, bytes]]:
    return world.ws_headers(None if who == "anonymous" else who)


async def _ws_outcome(application, path, headers, receives: dict[int, bool]) -> tuple[object, list[str]]:
    """Connect; return (OK or the close code, problems with what the socket received)."""
    from clusters.consumers import cluster_group

    communicator = WebsocketCommunicator(application, path, headers=headers)
    refused = await _refusal(communicator)
    if refused is not None:
        return refused, []
    problems = []
    # The per-cluster socket greets with a topology snapshot; drain it.
    while not await communicator.receive_nothing(timeout=0.1):
        await communicator.receive_json_from()
    layer = get_channel_layer()
    for cluster_id, should_receive in receives.items():
        payload = {"type": "event", "cluster_id": cluster_id, "kind": "matrix", "message": "hello"}
        await layer.group_send(
            cluster_group(cluster_id),
            {"type": "cluster.message", "cluster_id": cluster_id, "payload": payload},
        )
        got = not await communicator.receive_nothing(timeout=0.3)
        if got:
            await communicator.receive_json_from()
        if got != should_receive:
            problems.append(f"cluster {cluster_id}: {'received' if got else 'did not receive'} its event")
    await communicator.disconnect()
    return OK, problems


@pytest.mark.parametrize("row", WS_MATRIX, ids=lambda row: row.route)
def test_websocket_routes(row, world, websocket_in_test_transaction):
    from controlplane.asgi import application

    needs = NEEDS[row.needs]
    problems = []
    for who in ACTORS:
        expected = needs[who]
        outcome, received = async_to_sync(_ws_outcome)(
            application,
            row.path(world),
            _ws_headers(world, who),
            row.receives(world, who) if expected == OK else {},
        )
        wanted = OK if expected == OK else WS_CLOSE_CODE.get(expected, expected)
        if outcome != wanted:
            problems.append(f"{who}: expected {wanted}, got {outcome}")
        problems += [f"{who}: {p}" for p in received]
    assert not problems, f"{row.route}:\n  " + "\n  ".join(problems)


async def _refusal(communicator) -> object:
    """Connect; None when the socket stays open, else its close code. Refusals are accepted and then
    closed with a documented code (a close before accept would hide the code from browsers)."""
    connected, detail = await communicator.connect(timeout=5)
    assert connected, f"refused before accept ({detail}): the close code would not reach a browser"
    if await communicator.receive_nothing(timeout=0.2):
        return None
    first = await communicator.receive_output(timeout=1)
    if first["type"] == "websocket.close":
        return first.get("code")
    communicator.output_queue.put_nowait(first)  # the socket's greeting: leave it for the caller
    return None


def _ws_connect(path: str, headers) -> tuple[bool, object]:
    from controlplane.asgi import application

    async def connect():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        refused = await _refusal(communicator)
        if refused is None:
            await communicator.disconnect()
            return True, None
        return False, refused

    return async_to_sync(connect)()


def test_a_session_socket_from_another_site_is_refused(world, websocket_in_test_transaction):
    cookie = world.ws_headers("alice")
    assert _ws_connect("/ws/events/", cookie + [(b"origin", b"https://evil.example")]) == (False, 4401)
    assert _ws_connect("/ws/events/", cookie + [(b"origin", b"http://localhost:8000")])[0] is True


def test_a_token_in_the_websocket_url_is_ignored(world, websocket_in_test_transaction):
    assert _ws_connect(f"/ws/events/?token={world.tokens['admin']}", []) == (False, 4401)


def test_a_socket_stops_when_the_grant_is_revoked(world, websocket_in_test_transaction, monkeypatch):
    from channels.db import database_sync_to_async

    import clusters.consumers
    from clusters.consumers import cluster_group
    from controlplane.asgi import application
    from tenants.services import revoke_cluster

    monkeypatch.setattr(clusters.consumers, "RECHECK_SECONDS", 0.0)
    cluster_id = world.cluster_x.id
    headers = world.ws_headers("bob")

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/clusters/{cluster_id}/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_json_from()  # the topology snapshot
        await database_sync_to_async(revoke_cluster)(world.team_a, world.cluster_x)
        event = {
            "type": "cluster.message",
            "cluster_id": cluster_id,
            "payload": {"type": "event", "message": "after"},
        }
        await get_channel_layer().group_send(cluster_group(cluster_id), event)
        return await communicator.receive_output(timeout=3)

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4403}
