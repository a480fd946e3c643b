"""Declarative cluster specs: parse a spec, plan the changes that make the control plane match it, export
a cluster as a spec. Pure: no I/O here except `resolve_secret` and `load_spec_file`, which say so.

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

Secrets are references, `env:NAME` or `file:PATH`, resolved when applied; a literal value is accepted but
`export` never writes one.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
}
NOT_YET = {"backup": "backup schedules", "backups": "backup schedules"}
PROVISION_KEYS = ("provider", "replicas", "semi_sync", "size", "parameter_group", "parameters", "master_user")
MAX_REPLICAS = 8
# Fixed when the cluster is provisioned: a spec that changes them is told so, never silently ignored.
FIXED_AT_PROVISION = ("provider", "semi_sync", "memory_mb", "parameters")
PERMISSIONS = ("view_cluster", "operate_cluster", "admin_cluster")


class SpecError(ValueError):
    """A spec that cannot be used, with what to fix."""


@dataclass
class Spec:
    name: str
    servers: list[str]
    tenant: str | None = None
    team: str | None = None
    credentials: dict | None = None
    replication_credentials: dict | None = None
    failover_mode: str | None = None
    paused: bool | None = None
    settings: dict = field(default_factory=dict)
    routes: list[dict] = field(default_factory=list)
    grants: list[dict] = field(default_factory=list)
    prune: bool = False
    provision: dict | None = None  # the provision block, normalized (servers is then empty)


@dataclass(frozen=True)
class Change:
    """One step of a plan. `action`: create, update, delete, keep (left alone, said why) or unsupported."""

    action: str
    target: str  # cluster, setting, route, grant, servers, replicas, parameter_group, provision
    name: str
    detail: str = ""
    body: dict | None = None
    ref: Any = None  # what the change acts on: a route id, a team name

    @property
    def changes_something(self) -> bool:
        return self.action in ("create", "update", "delete")


@dataclass(frozen=True)
class State:
    """What the control plane holds for the spec's cluster (None: no such cluster)."""

    cluster: dict | None
    routes: list[dict] = field(default_factory=list)
    grants: dict[str, list[str]] = field(default_factory=dict)  # team name -> permissions on this cluster


# --- reading ---------------------------------------------------------------------------------------------


def load_spec_file(path: str | Path) -> dict:
    """Read a spec file (I/O): .toml as TOML, anything else as YAML."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a mapping with at least `name` and `servers`")
    return data


def coerce_scalar(text: str):
    """`5` -> 5, `true` -> True, `a,b` stays text: for KEY=VALUE arguments."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text.strip()):
        return float(text)
    return text


def address_of(server) -> str:
    """A server written "host:port", {"host", "port"} or "[v6]:port" -> the API's "host:port" form."""
    if isinstance(server, dict):
        host, port = str(server.get("host", "")), int(server.get("port", 3306))
    elif isinstance(server, str):
        text = server.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest.lstrip(":") or 3306)
        elif text.count(":") == 1:
            host, port_text = text.split(":")
            port = int(port_text)
        else:
            host, port = text, 3306
    else:
        raise SpecError(f"server {server!r}: write host:port")
    if not host:
        raise SpecError(f"server {server!r}: the host is missing")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_address(address: str) -> dict:
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return {"host": host, "port": int(rest.lstrip(":"))}
    host, port = address.rsplit(":", 1)
    return {"host": host, "port": int(port)}


def _credentials(value, what: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "user" not in value or "password" not in value:
        raise SpecError(f"{what}: write {{user: ..., password: env:NAME}}")
    return {"user": str(value["user"]), "password": str(value["password"])}


def parse_provision(block) -> dict:
    """A provision block, checked for what the spec itself can tell (the API checks the rest: the
    parameters' allowlist, the group's existence, the quota) and filled with the API's defaults."""
    if not isinstance(block, dict):
        raise SpecError("provision: a mapping (provider, replicas, size, parameter_group, master_user, ...)")
    unknown = sorted(set(block) - set(PROVISION_KEYS))
    if unknown:
        raise SpecError(f"provision: unknown keys {', '.join(unknown)}; use {', '.join(PROVISION_KEYS)}")
    replicas = block.get("replicas", 2)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise SpecError(f"provision.replicas: a whole number from 0 to {MAX_REPLICAS}")
    semi_sync = block.get("semi_sync")  # unsaid: the API's default (on with replicas), never compared
    if semi_sync is not None and not isinstance(semi_sync, bool):
        raise SpecError("provision.semi_sync: true or false")
    size = block.get("size") or {}
    if not isinstance(size, dict) or set(size) - {"memory_mb"}:
        raise SpecError("provision.size: {memory_mb: N}")
    if "parameter_group" in block and "parameters" in block:
        raise SpecError("provision: give parameter_group or parameters, not both")
    parameters = block.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SpecError("provision.parameters: a mapping of my.cnf setting names to values")
    group = block.get("parameter_group")
    if group is not None and not isinstance(group, str):
        raise SpecError("provision.parameter_group: a group's name")
    master_user = _credentials(block.get("master_user"), "provision.master_user")
    provision: dict = {
        "provider": str(block.get("provider", "local")),
        "replicas": replicas,
        "size": {"memory_mb": size.get("memory_mb", 256)},
        # str(): the API stores every parameter as text (500 and "500" are one value)
        "parameters": {str(k): str(v) for k, v in parameters.items()},
    }
    if semi_sync is not None:
        provision["semi_sync"] = semi_sync
    if "parameter_group" in block:
        provision["parameter_group"] = group
    if master_user:
        provision["master_user"] = master_user
    return provision


def parse_spec(data: dict) -> Spec:
    for key, what in NOT_YET.items():
        if key in data:
            raise SpecError(
                f"`{key}`: {what} are not in the API yet; this version of dbpilot cannot apply them"
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
        credentials=_credentials(data.get("credentials"), "credentials"),
        replication_credentials=_credentials(data.get("replication_credentials"), "replication_credentials"),
        failover_mode=mode,
        paused=paused,
        settings=dict(settings),
        routes=routes,
        grants=grants,
        prune=bool(data.get("prune", False)),
        provision=provision,
    )


def resolve_secret(value: str) -> str:
    """`env:NAME` -> the variable's value, `file:PATH` -> the file's content (I/O); anything else as is."""
    if not isinstance(value, str):
        return value
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise SpecError(f"{value}: the environment variable {name} is not set")
        return os.environ[name]
    if value.startswith("file:"):
        try:
            return Path(value[5:]).read_text().rstrip("\n")
        except OSError as exc:
            raise SpecError(f"{value}: cannot read the file ({exc.strerror})") from None
    return value


# --- planning --------------------------------------------------------------------------------------------


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return (
            sorted(map(str, a)) == sorted(map(str, b))
            if all(not isinstance(x, dict) for x in a + b)
            else a == b
        )
    return a == b


def _show(value) -> str:
    return "-" if value is None else str(value)


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


def _provision_creation(spec: Spec) -> Change:
    block = dict(spec.provision or {})
    if not block.get("parameters"):
        block.pop("parameters", None)
    if block.get("parameter_group") is None:
        block.pop("parameter_group", None)
    settings = dict(spec.settings)
    if spec.failover_mode:
        settings["failover_mode"] = spec.failover_mode
    if spec.paused is not None:
        settings["paused"] = spec.paused
    body = {"name": spec.name, "provision": block, **({"settings": settings} if settings else {})}
    detail = (
        f"provision 1 primary + {block['replicas']} replica(s) with {block['provider']}, "
        f"{block['size']['memory_mb']} MB each"
        + (f", parameter group {block['parameter_group']}" if block.get("parameter_group") else "")
        + (", parameters " + _pairs(block["parameters"]) if block.get("parameters") else "")
    )
    if settings:
        detail += ", settings " + _pairs(settings)
    return Change("create", "cluster", spec.name, detail, body)


def _pairs(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


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


def _provision_changes(spec: Spec, cluster: dict) -> list[Change]:
    """A provisioned cluster against the spec's provision block: the replica count (scale), the parameter
    group (applied); what is fixed at provisioning is reported when it differs."""
    wanted = spec.provision or {}
    have = cluster.get("provision")
    if cluster.get("origin") != "provisioned" or have is None:
        return [
            Change(
                "unsupported",
                "provision",
                spec.name,
                "is a registered cluster: a provision block is for clusters dbpilot provisions "
                "(write `servers` and `credentials` instead)",
            )
        ]
    changes: list[Change] = []
    current = {
        "provider": have.get("provider"),
        "semi_sync": have.get("semi_sync"),
        "memory_mb": (have.get("size") or {}).get("memory_mb"),
        "parameters": {k: str(v) for k, v in (have.get("parameters") or {}).items()},
    }
    asked = {
        "provider": wanted["provider"],
        "semi_sync": wanted.get("semi_sync", current["semi_sync"]),
        "memory_mb": wanted["size"]["memory_mb"],
        "parameters": wanted["parameters"],
    }
    for key in FIXED_AT_PROVISION:
        if current[key] != asked[key]:
            changes.append(
                Change(
                    "unsupported",
                    "provision",
                    key,
                    f"{_show(current[key])} -> {_show(asked[key])}: fixed when the cluster was provisioned "
                    "(provision a new cluster to change it)",
                )
            )
    group, new_group = have.get("parameter_group"), wanted.get("parameter_group")
    if "parameter_group" not in wanted and group is not None:
        if spec.prune:
            changes.append(
                Change(
                    "update",
                    "parameter_group",
                    spec.name,
                    f"{group} -> (none) (prune: true)",
                    {"parameter_group": None},
                )
            )
        else:
            changes.append(
                Change("keep", "parameter_group", group, "not in the spec (prune: true would detach it)")
            )
    elif "parameter_group" in wanted and group != new_group:
        changes.append(
            Change(
                "update",
                "parameter_group",
                spec.name,
                f"{_show(group)} -> {_show(new_group)} (changed settings go live or by a rolling restart)",
                {"parameter_group": new_group},
            )
        )
    servers = cluster.get("servers") or []
    job = cluster.get("job") or {}
    if not servers:
        changes.append(
            Change(
                "keep",
                "replicas",
                spec.name,
                f"no servers yet (job #{job.get('id')} {job.get('kind')} {job.get('state')}): "
                "the count is compared once the cluster has its servers",
            )
        )
        return changes
    replicas = [s for s in servers if address_of(s) != cluster.get("primary")]
    count = len(servers) - 1
    if wanted["replicas"] > count:
        more = wanted["replicas"] - count
        changes.append(
            Change(
                "update",
                "replicas",
                spec.name,
                f"{count} -> {wanted['replicas']} (add {more})",
                {"add": more},
            )
        )
    elif wanted["replicas"] < count:
        # The newest replicas go first: the oldest have served longest and are what clones are made from.
        going = sorted(replicas, key=lambda s: s["id"], reverse=True)[: count - wanted["replicas"]]
        changes.append(
            Change(
                "update",
                "replicas",
                spec.name,
                f"{count} -> {wanted['replicas']} (remove {', '.join(address_of(s) for s in going)} "
                "with their data)",
                {"remove": [s["id"] for s in going]},
            )
        )
    return changes


def plan(spec: Spec, state: State) -> list[Change]:
    """The changes that make `state` match `spec`, in the order they must run. Never a deletion unless
    `spec.prune`; things the spec does not mention are left as they are."""
    changes: list[Change] = []
    cluster = state.cluster
    if cluster is None:
        creation = _provision_creation(spec) if spec.provision else _registration(spec)
        changes.append(creation)
        if creation.action == "unsupported":
            return changes
        current_routes: dict[str, dict] = {}
        settings: dict = {}
    else:
        # Scaling and group changes come after the settings' PATCH: apply executes the plan in order.
        later: list[Change] = []
        if spec.provision is not None:
            later = _provision_changes(spec, cluster)
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
                changes.append(Change("update", "setting", key, f"{_show(cluster.get(key))} -> {value}"))
                patch[key] = value
        setting_changes = {}
        for key, value in sorted(spec.settings.items()):
            if not _same(settings.get(key), value):
                changes.append(Change("update", "setting", key, f"{_show(settings.get(key))} -> {value}"))
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
                diffs.append(f"{key}: {_show(existing.get(key))} -> {value}")
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


def env_name(*parts: str) -> str:
    return "DBPILOT_" + "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_").upper() for p in parts if p)


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


def export_provision(cluster: dict) -> dict:
    """A provisioned cluster's provision block: its replica count as it is now; the master user as
    references (the API never returns it; it is used only when the cluster is created again)."""
    have = cluster["provision"]
    block: dict = {
        "provider": have.get("provider"),
        "replicas": max(0, len(cluster.get("servers") or []) - 1),
        "semi_sync": have.get("semi_sync"),
        "size": {"memory_mb": (have.get("size") or {}).get("memory_mb")},
    }
    if have.get("parameter_group"):
        block["parameter_group"] = have["parameter_group"]
    elif have.get("parameters"):
        block["parameters"] = dict(sorted(have["parameters"].items()))
    block["master_user"] = {
        "user": f"env:{env_name(cluster['name'], 'master_user')}",
        "password": f"env:{env_name(cluster['name'], 'master_password')}",
    }
    return block


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
