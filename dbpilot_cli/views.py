"""How the API's objects look as tables (rich renderables); --output json|yaml prints the objects instead."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group
from rich.markup import escape
from rich.text import Text

from dbpilot_cli.output import SEVERITY_STYLE, STATE_STYLE, cell, new_table, short_time, styled

Column = tuple[str, Callable[[dict], str]]


def list_table(items: list[dict], *columns: Column, title: str | None = None):
    """A table of API objects, one row each; a column is its header and how to render an object's cell."""
    table = new_table(*(header for header, _ in columns), title=title)
    for item in items:
        table.add_row(*(render(item) for _, render in columns))
    return table


def field(*keys: str) -> Callable[[dict], str]:
    """The first of `keys` the object has a value for (False and 0 are values), as a cell."""

    def render(item: dict) -> str:
        return cell(next((item[k] for k in keys if item.get(k) not in (None, "")), None))

    return render


def when(key: str) -> Callable[[dict], str]:
    return lambda item: short_time(item.get(key))


def state(key: str, styles: dict[str, str]) -> Callable[[dict], str]:
    return lambda item: styled(item.get(key) or "-", styles)


def _job_cell(item: dict) -> str:
    job = item.get("job")
    return cell(f"{job['kind']} #{job['id']} {job['state']}" if job else None)


def mode_of(cluster: dict) -> str:
    mode = cluster.get("failover_mode") or "-"
    if mode == "automatic" and not cluster.get("failover_armed"):
        mode += " (not armed)"
    return mode


def clusters_table(clusters: list[dict]):
    return list_table(
        clusters,
        ("ID", field("id")),
        ("NAME", field("name")),
        ("TENANT", field("tenant")),
        ("PRIMARY", field("primary")),
        ("SERVERS", lambda c: cell(len(c.get("servers") or []))),
        ("HEALTH", state("health", SEVERITY_STYLE)),
        ("FAILOVER", lambda c: cell(mode_of(c))),
        ("PAUSED", field("paused")),
        ("LAST JOB", _job_cell),
    )


def cluster_detail(c: dict):
    head = new_table("FIELD", "VALUE")
    job = c.get("job")
    for key, value in [
        ("id", c["id"]),
        ("name", c["name"]),
        ("tenant", c.get("tenant")),
        ("origin", c.get("origin")),
        ("primary", c.get("primary")),
        ("health", c.get("health")),
        ("failover", mode_of(c)),
        ("paused", c.get("paused")),
        ("last job", f"{job['kind']} #{job['id']} {job['state']}" if job else None),
        ("your permissions", c.get("my_permissions")),
        *_provision_rows(c),
    ]:
        head.add_row(key, cell(value))
    servers = new_table("SERVER ID", "ADDRESS", "MAINTENANCE", title="servers")
    for s in c.get("servers") or []:
        servers.add_row(cell(s["id"]), cell(address(s)), cell(s.get("maintenance")))
    settings = new_table("SETTING", "VALUE", title="settings")
    for key, value in sorted((c.get("settings") or {}).items()):
        settings.add_row(cell(key), cell(value))
    return [head, Text(""), servers, Text(""), settings]


def _provision_rows(c: dict) -> list[tuple[str, object]]:
    endpoints = c.get("endpoints") or {}
    rows: list[tuple[str, object]] = [
        ("writer", endpoints.get("writer")),
        ("readers", endpoints.get("readers")),
    ]
    spec = c.get("provision")
    if spec:
        rows += [
            ("provider", spec.get("provider")),
            ("memory", f"{(spec.get('size') or {}).get('memory_mb')} MB a server"),
            ("semi-sync", spec.get("semi_sync")),
            ("parameter group", spec.get("parameter_group")),
            ("own parameters", _pairs(spec.get("parameters"))),
            ("pending restart", _pairs(spec.get("pending_restart"))),
        ]
    rows.append(("deletion protection", (c.get("settings") or {}).get("deletion_protection")))
    return rows


def _pairs(values: dict | None) -> str | None:
    return ", ".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or None


def parameter_groups_table(groups: list[dict]):
    return list_table(
        groups,
        ("ID", field("id")),
        ("NAME", field("name")),
        ("TENANT", field("tenant")),
        ("PARAMETERS", lambda g: cell(_pairs(g.get("parameters")))),
        ("CLUSTERS", lambda g: cell(_group_clusters(g))),
    )


def _group_clusters(group: dict) -> list[str]:
    return [
        c["name"]
        + (f" (pending restart: {_pairs(c['pending_restart'])})" if c.get("pending_restart") else "")
        for c in group.get("clusters") or []
    ]


def parameter_group_detail(group: dict):
    head = Text.from_markup(
        f"parameter group [bold]{escape(group['name'])}[/] (id {group['id']}, tenant {escape(str(group.get('tenant')))})"
        f" · used by {cell(_group_clusters(group))}"
    )
    table = new_table("PARAMETER", "VALUE")
    for key, value in sorted((group.get("parameters") or {}).items()):
        table.add_row(cell(key), cell(value))
    parts = [head, table]
    for job in group.get("jobs") or []:
        parts.append(Text(f"job #{job['id']} {job['kind']} {job['state']} on cluster {job.get('cluster')}"))
    return Group(*parts)


def quota_table(quota: dict):
    table = new_table("RESOURCE", "LIMIT", "USED", "LEFT", title=f"quota of tenant {quota.get('tenant')}")
    for key, label in (("clusters", "clusters"), ("servers", "servers"), ("memory_mb", "memory (MB)")):
        values = quota.get(key) or {}
        table.add_row(label, cell(values.get("limit")), cell(values.get("used")), cell(values.get("left")))
    return table


def hosts_table(hosts: list[dict]):
    return list_table(
        hosts,
        ("ID", field("id")),
        ("NAME", field("name")),
        ("ADDRESS", field("address")),
        ("ZONE", field("zone")),
        ("INSTANCES", lambda h: cell((h.get("capacity") or {}).get("instances"))),
        ("MEMORY (MB)", lambda h: cell((h.get("capacity") or {}).get("memory_mb"))),
        ("DOWN", field("down")),
        ("CREATED", when("created_at")),
    )


def _size(item: dict) -> str:
    size = item.get("size_bytes")
    return cell(f"{size / 1e6:.1f} MB" if isinstance(size, int | float) else None)


def _verified(item: dict) -> str:
    verified = item.get("verified")
    return styled(
        {True: "yes", False: "FAILED", None: "not yet"}[verified], {"FAILED": "bold red", "yes": "green"}
    )


def backups_table(backups: list[dict]):
    return list_table(
        backups,
        ("ID", field("id")),
        (
            "CLUSTER",
            lambda b: cell(f"{b.get('cluster_name')}{' (deleted)' if b.get('cluster_deleted') else ''}"),
        ),
        ("KIND", field("kind")),
        ("STATUS", field("status")),
        ("SIZE", _size),
        ("GTID", field("gtid_position")),
        ("STARTED", when("started_at")),
        ("SECONDS", field("duration_seconds")),
        ("VERIFIED", _verified),
    )


def backup_detail(backup: dict):
    table = new_table("FIELD", "VALUE", title=f"backup #{backup['id']} of {backup.get('cluster_name')}")
    for key in (
        "kind",
        "status",
        "source",
        "storage",
        "compression",
        "encrypted",
        "size_bytes",
        "gtid_position",
        "started_at",
        "ended_at",
        "duration_seconds",
        "verified",
        "verified_reason",
        "keep_until",
        "error",
        "job",
    ):
        table.add_row(key, cell(backup.get(key)))
    return table


def address(server: dict) -> str:
    host = server["host"]
    return f"[{host}]:{server['port']}" if ":" in host else f"{host}:{server['port']}"


def topology_view(topology: dict, title: str = ""):
    table = new_table(
        "ID",
        "SERVER",
        "ROLE",
        "STATE",
        "READ ONLY",
        "GTID",
        "SOURCE",
        "IO",
        "SQL",
        "LAG",
        "MAINT",
        title=f"{title}primary {topology.get('primary') or 'none'} · epoch {topology.get('epoch')} "
        f"· observed {short_time(topology.get('updated_at'))}",
    )
    for s in topology.get("servers") or []:
        repl = s.get("replication") or {}
        role = s.get("role") or "-"
        table.add_row(
            cell(s.get("id")),
            cell(address(s)),
            f"[bold]{role}[/]" if role == "primary" else cell(role),
            styled(s.get("state") or "-", {"up": "green", "down": "red", "unreachable": "red"}),
            cell(s.get("read_only")),
            cell(s.get("gtid_current_pos")),
            cell(repl.get("source")),
            cell(repl.get("io_running")),
            cell(repl.get("sql_running")),
            cell(repl.get("seconds_behind")),
            cell(s.get("maintenance")),
        )
    parts = [table]
    findings = topology.get("findings") or []
    if findings:
        found = new_table("SEVERITY", "CODE", "SERVER", "SINCE", "MESSAGE", title="findings")
        for f in findings:
            found.add_row(
                styled(f.get("severity") or "-", SEVERITY_STYLE),
                cell(f.get("code")),
                cell(f.get("server")),
                short_time(f.get("opened_at")),
                cell(f.get("message")),
            )
        parts += [Text(""), found]
    return Group(*parts)


def events_table(events: list[dict]):
    return list_table(
        events,
        ("TIME", when("created_at")),
        ("SEVERITY", state("severity", SEVERITY_STYLE)),
        ("KIND", field("kind")),
        ("MESSAGE", field("message")),
    )


def event_line(event: dict) -> str:
    return f"{short_time(event.get('created_at'))}  {event.get('severity', '-'):8}  {event.get('kind', '-')}  {event.get('message', '')}"


def job_view(job: dict):
    result = job.get("result") or {}
    head = Text.from_markup(
        f"job [bold]#{job['id']}[/] {job['kind']} on cluster {job.get('cluster')}: {styled(job['state'], STATE_STYLE)}"
        + (f" · {result['detail']}" if result.get("detail") and job["state"] != "running" else "")
    )
    steps = new_table("#", "STEP", "STATE", "STARTED", "FINISHED", "DETAIL")
    for number, step in enumerate(job.get("steps") or [], 1):
        steps.add_row(
            str(number),
            cell(step.get("name")),
            styled(step.get("state") or "-", STATE_STYLE),
            short_time(step.get("started_at"))[11:] or "-",
            short_time(step.get("finished_at"))[11:] or "-",
            cell(step.get("detail")),
        )
    parts = [head, steps]
    checks = result.get("checks") or []
    if checks:
        parts.append(checks_table(checks))
    return Group(*parts)


def checks_table(checks: list[dict]):
    return list_table(
        checks,
        ("CHECK", field("name")),
        ("OK", lambda c: "[green]ok[/]" if c.get("ok") else "[red]FAILED[/]"),
        ("DETAIL", field("detail")),
        title="checks",
    )


def jobs_table(jobs: list[dict]):
    return list_table(
        jobs,
        ("ID", field("id")),
        ("KIND", field("kind")),
        ("STATE", state("state", STATE_STYLE)),
        ("REQUESTED BY", field("requested_by")),
        ("CREATED", when("created_at")),
        ("FINISHED", when("finished_at")),
    )


ROUTE_META = {"id", "cluster", "kind", "name", "secrets_set", "last_sync", "created_at", "updated_at"}


def _route_settings(route: dict) -> str:
    return cell(", ".join(f"{k}={v}" for k, v in route.items() if k not in ROUTE_META))


def _last_sync(route: dict) -> str:
    sync = route.get("last_sync") or {}
    if not sync.get("at"):
        return "-"
    return cell(f"{'ok' if sync.get('ok') else 'FAILED'} {short_time(sync['at'])} ({sync.get('trigger')})")


def routes_table(routes: list[dict]):
    return list_table(
        routes,
        ("ID", field("id")),
        ("NAME", field("name")),
        ("KIND", field("kind")),
        ("SETTINGS", _route_settings),
        ("SECRETS SET", field("secrets_set")),
        ("LAST SYNC", _last_sync),
    )


def tokens_table(tokens: list[dict]):
    return list_table(
        tokens,
        ("ID", field("id")),
        ("TEAM", field("team_name", "team")),
        ("NAME", field("name")),
        ("PREFIX", field("prefix")),
        ("SCOPE", field("scope")),
        ("EXPIRES", when("expires_at")),
        ("LAST USED", when("last_used_at")),
        ("ACTIVE", field("active")),
    )


def teams_table(teams: list[dict]):
    return list_table(
        teams,
        ("ID", field("id")),
        ("NAME", field("name")),
        ("TENANT", field("tenant_name", "tenant")),
        ("YOUR ROLE", field("your_role")),
    )


def members_table(members: list[dict]):
    return list_table(
        members, ("USER ID", field("user_id", "id")), ("EMAIL", field("email")), ("ROLE", field("role"))
    )


def grants_table(grants: list[dict]):
    return list_table(
        grants,
        ("CLUSTER", field("cluster")),
        ("NAME", field("cluster_name")),
        ("PERMISSIONS", field("permissions")),
    )
