"""Declarative cluster specs: parse a spec, plan the changes that make the control plane match it, export
a cluster as a spec. Pure (the I/O of reading files and secrets is in spec_values, and says so); provision
blocks are in spec_provision.

A spec (YAML or TOML):

    name: orders
    team: ops                      # the team that registers it (default: your first admin team)
    servers: ["127.0.0.1:3306", "127.0.0.1:3307"]
    credentials: {user: dbpilot, password: "env:ORDERS_DB_PASSWORD"}
    replication_credentials: {user: repl, password: "file:/run/secrets/orders-repl"}
    failover_mode: manual
    paused: false
    settings: {failcount: 5, switchover_wait_trx_seconds: 10}
    routes:
      - {name: main, kind: haproxy, runtime_api: "tcp://127.0.0.1:9999", write_backend: orders_rw}
    grants:
      - {team: dba, permissions: [view_cluster, operate_cluster]}
    prune: false                   # true: delete routes and revoke grants the spec does not list

or, for a cluster dbpilot provisions, a `provision` block instead of `servers` and the credentials:

    provision:
      provider: local
      replicas: 2                  # a changed count scales (replicas added or removed, one job each)
      semi_sync: true
      size: {memory_mb: 256}
      parameter_group: oltp        # or parameters: {max_connections: 500}; a changed group is applied
      master_user: {user: owner, password: "env:ORDERS_MASTER_PASSWORD"}   # used at creation only

and, for either, a backup schedule (the cluster settings backup_window and backup_retention_days):

    backup: {window: "02:00-04:00", retention_days: 7}

Secrets are references, `env:NAME` or `file:PATH`, resolved when applied; a literal value is accepted but
`export` never writes one.
"""

from __future__ import annotations

from dbpilot_cli.spec_provision import (
    export_provision,
    parse_provision,
    provision_changes,
    provision_creation,
)
from dbpilot_cli.spec_values import (
    Change,
    Spec,
    SpecError,
    State,
    address_of,
    coerce_scalar,
    env_name,
    load_spec_file,
    parse_credentials,
    resolve_secret,
    show_value,
    split_address,
)

# What other modules and the tests import from here (the vocabulary lives in spec_values).
__all__ = [
    "SECRET_ROUTE_FIELDS",
    "Change",
    "Spec",
    "SpecError",
    "State",
    "address_of",
    "coerce_scalar",
    "describe",
    "export_spec",
    "load_spec_file",
    "parse_spec",
    "plan",
    "resolve_secret",
    "secret_references",
]

SECRET_ROUTE_FIELDS = frozenset({"api_key", "admin_password", "password", "token"})
ROUTE_META_FIELDS = frozenset(
    {"id", "cluster", "kind", "name", "secrets_set", "last_sync", "created_at", "updated_at"}
)
TOP_LEVEL = {
    "name",
    "tenant",
    "team",
    "servers",
    "credentials",
    "replication_credentials",
    "failover_mode",
    "paused",
    "settings",
    "routes",
    "grants",
    "prune",
    "provision",
    "backup",
}
# The `backup` block's keys and the cluster settings they stand for (docs/backups.md).
BACKUP_KEYS = {"window": "backup_window", "retention_days": "backup_retention_days"}
PERMISSIONS = ("view_cluster", "operate_cluster", "admin_cluster")


# --- reading ---------------------------------------------------------------------------------------------


def _backup_settings(block, settings: dict) -> dict:
    """The `backup` block as the cluster settings it sets (the server checks the values)."""
    if block is None:
        return {}
    if not isinstance(block, dict) or not block or set(block) - set(BACKUP_KEYS):
        raise SpecError("backup: a mapping with window (HH:MM-HH:MM, UTC) and/or retention_days")
    values = {}
    for key, setting in BACKUP_KEYS.items():
        if key in block:
            if setting in settings:
                raise SpecError(f"backup.{key}: also given as settings.{setting}; keep one")
            values[setting] = block[key]
    return values


def parse_spec(data: dict) -> Spec:
    if "backups" in data:
        raise SpecError(
            "`backups`: the schedule is the `backup` block: {window: HH:MM-HH:MM, retention_days: N}"
        )
    for key in ("parameter_group", "parameters"):
        if key in data:
            raise SpecError(f"`{key}`: write it inside the `provision` block")
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise SpecError(f"unknown keys {', '.join(unknown)}; a spec has {', '.join(sorted(TOP_LEVEL))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError("`name` is required (the cluster's name)")
    provision = parse_provision(data["provision"]) if "provision" in data else None
    servers = data.get("servers")
    if provision is not None:
        for key in ("servers", "credentials", "replication_credentials"):
            if data.get(key):
                raise SpecError(
                    f"`{key}` and `provision`: a provisioned cluster's servers and dbpilot's accounts are "
                    "made by dbpilot; keep one of the two"
                )
        servers = []
    elif not isinstance(servers, list) or not servers:
        raise SpecError("`servers` is required: a list of host:port (or a `provision` block)")
    try:
        addresses = [address_of(s) for s in servers]
    except ValueError as exc:
        raise SpecError(f"servers: {exc}") from None
    if len(set(addresses)) != len(addresses):
        raise SpecError("servers: a server is listed twice")
    mode = data.get("failover_mode")
    if mode not in (None, "manual", "automatic"):
        raise SpecError("failover_mode: manual or automatic")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise SpecError("settings: a mapping of setting names to values")
    for key in ("failover_mode", "paused"):
        if key in settings:
            raise SpecError(f"settings.{key}: write `{key}` at the top level of the spec")
    settings = {**settings, **_backup_settings(data.get("backup"), settings)}
    routes = data.get("routes") or []
    if not isinstance(routes, list) or any(not isinstance(r, dict) or "kind" not in r for r in routes):
        raise SpecError("routes: a list of mappings, each with `kind` (and `name` when a kind appears twice)")
    routes = [{**r, "name": str(r.get("name") or r["kind"])} for r in routes]
    names = [r["name"] for r in routes]
    if len(set(names)) != len(names):
        raise SpecError("routes: two routes with one name; give each a distinct `name`")
    grants = []
    for grant in data.get("grants") or []:
        if not isinstance(grant, dict) or "team" not in grant:
            raise SpecError("grants: a list of {team, permissions}")
        perms = grant.get("permissions") or []
        perms = [p.strip() for p in perms.split(",")] if isinstance(perms, str) else list(perms)
        bad = [p for p in perms if p not in PERMISSIONS]
        if bad:
            raise SpecError(f"grants: unknown permissions {bad}; use {', '.join(PERMISSIONS)}")
        grants.append({"team": str(grant["team"]), "permissions": sorted(set(perms), key=PERMISSIONS.index)})
    paused = data.get("paused")
    if paused is not None and not isinstance(paused, bool):
        raise SpecError("paused: true or false")
    return Spec(
        name=name,
        servers=addresses,
        tenant=data.get("tenant"),
        team=data.get("team"),
        credentials=parse_credentials(data.get("credentials"), "credentials"),
        replication_credentials=parse_credentials(
            data.get("replication_credentials"), "replication_credentials"
        ),
        failover_mode=mode,
        paused=paused,
        settings=dict(settings),
        routes=routes,
        grants=grants,
        prune=bool(data.get("prune", False)),
        provision=provision,
    )


# --- planning --------------------------------------------------------------------------------------------


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return (
            sorted(map(str, a)) == sorted(map(str, b))
            if all(not isinstance(x, dict) for x in a + b)
            else a == b
        )
    return a == b


def _route_settings(route: dict) -> dict:
    return {k: v for k, v in route.items() if k not in ROUTE_META_FIELDS and k not in SECRET_ROUTE_FIELDS}


def _registration(spec: Spec) -> Change:
    body: dict = {
        "name": spec.name,
        "servers": [split_address(a) for a in spec.servers],
        "settings": dict(spec.settings),
    }
    if spec.failover_mode:
        body["failover_mode"] = spec.failover_mode
    if spec.paused is not None:
        body["settings"]["paused"] = spec.paused
    if spec.credentials:
        body["credentials"] = spec.credentials
    if spec.replication_credentials:
        body["replication_credentials"] = spec.replication_credentials
    detail = f"{len(spec.servers)} servers ({', '.join(spec.servers)}), failover_mode {spec.failover_mode or 'manual'}"
    if spec.settings:
        detail += ", settings " + ", ".join(f"{k}={v}" for k, v in sorted(spec.settings.items()))
    if not spec.credentials:
        return Change(
            "unsupported",
            "cluster",
            spec.name,
            "registering needs `credentials` (user and password, e.g. password: env:NAME)",
        )
    return Change("create", "cluster", spec.name, detail, body)


def _server_changes(spec: Spec, cluster: dict) -> list[Change]:
    current = set(address_of(s) for s in cluster.get("servers") or [])
    wanted = set(spec.servers)
    if current == wanted:
        return []
    added, removed = sorted(wanted - current), sorted(current - wanted)
    return [
        Change(
            "unsupported",
            "servers",
            spec.name,
            f"servers differ (add {', '.join(added) or '-'}; remove {', '.join(removed) or '-'}): "
            "a registered cluster's servers are fixed at registration; the API cannot add or remove one yet",
        )
    ]


def plan(spec: Spec, state: State) -> list[Change]:
    """The changes that make `state` match `spec`, in the order they must run. Never a deletion unless
    `spec.prune`; things the spec does not mention are left as they are."""
    changes: list[Change] = []
    cluster = state.cluster
    if cluster is None:
        creation = provision_creation(spec) if spec.provision else _registration(spec)
        changes.append(creation)
        if creation.action == "unsupported":
            return changes
        current_routes: dict[str, dict] = {}
        settings: dict = {}
    else:
        # Scaling and group changes come after the settings' PATCH: apply executes the plan in order.
        later: list[Change] = []
        if spec.provision is not None:
            later = provision_changes(spec, cluster)
        elif cluster.get("origin") == "provisioned":
            changes.append(
                Change(
                    "unsupported",
                    "servers",
                    spec.name,
                    "is a provisioned cluster: its spec has a `provision` block, not `servers` "
                    f"(`dbpilot export {spec.name}` writes one)",
                )
            )
        else:
            changes += _server_changes(spec, cluster)
        settings = cluster.get("settings") or {}
        patch: dict = {}
        for key in ("failover_mode", "paused"):
            value = getattr(spec, key)
            if value is not None and cluster.get(key) != value:
                changes.append(Change("update", "setting", key, f"{show_value(cluster.get(key))} -> {value}"))
                patch[key] = value
        setting_changes = {}
        for key, value in sorted(spec.settings.items()):
            if not _same(settings.get(key), value):
                changes.append(
                    Change("update", "setting", key, f"{show_value(settings.get(key))} -> {value}")
                )
                setting_changes[key] = value
        if setting_changes:
            patch["settings"] = setting_changes
        if patch:
            # One PATCH carries every setting change; the per-setting lines above are what the diff shows.
            changes.append(Change("patch", "cluster", spec.name, "", patch))
        changes += later
        current_routes = {r["name"]: r for r in state.routes}

    for route in spec.routes:
        existing = current_routes.get(route["name"])
        if existing is None:
            changes.append(
                Change(
                    "create",
                    "route",
                    route["name"],
                    f"{route['kind']}: "
                    + ", ".join(f"{k}={v}" for k, v in sorted(_route_settings(route).items()) if k != "name"),
                    dict(route),
                )
            )
            continue
        if existing["kind"] != route["kind"]:
            changes.append(
                Change(
                    "unsupported",
                    "route",
                    route["name"],
                    f"is a {existing['kind']} route, the spec says {route['kind']}: rename one, or remove it "
                    "(prune: true) and apply again",
                )
            )
            continue
        body = {}
        diffs = []
        for key, value in sorted(_route_settings(route).items()):
            if not _same(existing.get(key), value):
                body[key] = value
                diffs.append(f"{key}: {show_value(existing.get(key))} -> {value}")
        for key in sorted(SECRET_ROUTE_FIELDS & set(route)):
            if key not in (existing.get("secrets_set") or []):
                body[key] = route[key]
                diffs.append(f"{key}: (unset) -> {route[key]}")
        if body:
            changes.append(Change("update", "route", route["name"], "; ".join(diffs), body, existing["id"]))
    spec_route_names = {r["name"] for r in spec.routes}
    for name, existing in sorted(current_routes.items()):
        if name in spec_route_names:
            continue
        if spec.prune:
            changes.append(
                Change("delete", "route", name, f"{existing['kind']} (prune: true)", None, existing["id"])
            )
        else:
            changes.append(Change("keep", "route", name, "not in the spec (prune: true would delete it)"))

    current_grants = state.grants if cluster is not None else {}
    spec_teams = set()
    for grant in spec.grants:
        spec_teams.add(grant["team"])
        have = current_grants.get(grant["team"], [])
        if cluster is None and grant["team"] == spec.team and set(grant["permissions"]) == set(PERMISSIONS):
            continue  # the registering team gets all three anyway
        if sorted(have) != sorted(grant["permissions"]):
            changes.append(
                Change(
                    "update" if have else "create",
                    "grant",
                    grant["team"],
                    f"{', '.join(have) or '(none)'} -> {', '.join(grant['permissions']) or '(none)'}",
                    {"permissions": grant["permissions"]},
                    grant["team"],
                )
            )
    for team, have in sorted(current_grants.items()):
        # The owning team's grant came with the cluster: neither pruned nor worth a line.
        if team in spec_teams or not have or team == spec.team:
            continue
        if spec.prune:
            changes.append(Change("delete", "grant", team, f"{', '.join(have)} (prune: true)", None, team))
        else:
            changes.append(Change("keep", "grant", team, "not in the spec (prune: true would revoke it)"))
    return changes


SYMBOL = {"create": "+", "update": "~", "delete": "-", "keep": "=", "unsupported": "!"}


def describe(changes: list[Change], name: str) -> list[str]:
    """The plan as lines, in the manner of `terraform plan`."""
    lines = [
        f"{SYMBOL[c.action]} {c.target} {c.name}" + (f": {c.detail}" if c.detail else "")
        for c in changes
        if c.action != "patch"
    ]
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")}
    refused = sum(1 for c in changes if c.action == "unsupported")
    if not any(counts.values()):
        lines.append(
            f"no changes: {name} matches the spec"
            if not refused
            else f"nothing to change in {name} but the {refused} part(s) marked !, which cannot be applied"
        )
    else:
        lines.append(
            f"plan for {name}: {counts['create']} to create, {counts['update']} to change, {counts['delete']} to delete"
        )
    return lines


# --- export ----------------------------------------------------------------------------------------------


def export_spec(cluster: dict, routes: list[dict], grants: dict[str, list[str]]) -> dict:
    """A cluster as a spec that `apply` recreates; every secret a reference (`env:NAME`), never a value.
    The API never returns credentials (not even the user), so both are references to fill in."""
    name = cluster["name"]
    settings = {
        k: v for k, v in (cluster.get("settings") or {}).items() if k not in ("failover_mode", "paused")
    }
    owners = [team for team, perms in sorted(grants.items()) if "admin_cluster" in perms]
    spec: dict = {
        "name": name,
        "tenant": cluster.get("tenant"),
        **({"team": owners[0]} if owners else {}),
    }
    if cluster.get("origin") == "provisioned" and cluster.get("provision") is not None:
        spec["provision"] = export_provision(cluster)
    else:
        spec["servers"] = [address_of(s) for s in cluster.get("servers") or []]
        spec["credentials"] = {
            "user": f"env:{env_name(name, 'db_user')}",
            "password": f"env:{env_name(name, 'db_password')}",
        }
        spec["replication_credentials"] = {
            "user": f"env:{env_name(name, 'repl_user')}",
            "password": f"env:{env_name(name, 'repl_password')}",
        }
    spec.update(
        {
            "failover_mode": cluster.get("failover_mode", "manual"),
            "paused": bool(cluster.get("paused", False)),
            "settings": dict(sorted(settings.items())),
        }
    )
    exported_routes = []
    for route in sorted(routes, key=lambda r: r["name"]):
        item = {"name": route["name"], "kind": route["kind"]}
        item.update({k: v for k, v in sorted(_route_settings(route).items())})
        for secret in route.get("secrets_set") or []:
            item[secret] = f"env:{env_name(name, route['name'], secret)}"
        exported_routes.append(item)
    if exported_routes:
        spec["routes"] = exported_routes
    if grants:
        spec["grants"] = [
            {"team": team, "permissions": perms} for team, perms in sorted(grants.items()) if perms
        ]
    return spec


def secret_references(spec: dict) -> list[str]:
    """The env:/file: references a spec uses (what an operator must provide before applying it)."""
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.startswith(("env:", "file:")) and value not in found:
            found.append(value)

    walk(spec)
    return found
