"""How the API's objects look as tables (rich renderables); --output json|yaml prints the objects instead."""

from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.text import Text

from dbpilot_cli.output import SEVERITY_STYLE, STATE_STYLE, cell, new_table, short_time, styled


def mode_of(cluster: dict) -> str:
    mode = cluster.get("failover_mode") or "-"
    if mode == "automatic" and not cluster.get("failover_armed"):
        mode += " (not armed)"
    return mode


def clusters_table(clusters: list[dict]):
    table = new_table(
        "ID", "NAME", "TENANT", "PRIMARY", "SERVERS", "HEALTH", "FAILOVER", "PAUSED", "LAST JOB"
    )
    for c in clusters:
        job = c.get("job")
        table.add_row(
            cell(c["id"]),
            cell(c["name"]),
            cell(c.get("tenant")),
            cell(c.get("primary")),
            cell(len(c.get("servers") or [])),
            styled(c.get("health") or "-", SEVERITY_STYLE),
            cell(mode_of(c)),
            cell(c.get("paused")),
            cell(f"{job['kind']} #{job['id']} {job['state']}" if job else None),
        )
    return table


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
    table = new_table("ID", "NAME", "TENANT", "PARAMETERS", "CLUSTERS")
    for g in groups:
        table.add_row(
            cell(g["id"]),
            cell(g["name"]),
            cell(g.get("tenant")),
            cell(_pairs(g.get("parameters"))),
            cell(_group_clusters(g)),
        )
    return table


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
    table = new_table("ID", "NAME", "ADDRESS", "ZONE", "INSTANCES", "MEMORY (MB)", "DOWN", "CREATED")
    for h in hosts:
        capacity = h.get("capacity") or {}
        table.add_row(
            cell(h["id"]),
            cell(h["name"]),
            cell(h.get("address")),
            cell(h.get("zone")),
            cell(capacity.get("instances")),
            cell(capacity.get("memory_mb")),
            cell(h.get("down")),
            short_time(h.get("created_at")),
        )
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
    table = new_table("TIME", "SEVERITY", "KIND", "MESSAGE")
    for e in events:
        table.add_row(
            short_time(e.get("created_at")),
            styled(e.get("severity") or "-", SEVERITY_STYLE),
            cell(e.get("kind")),
            cell(e.get("message")),
        )
    return table


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
    table = new_table("CHECK", "OK", "DETAIL", title="checks")
    for check in checks:
        table.add_row(
            cell(check.get("name")),
            "[green]ok[/]" if check.get("ok") else "[red]FAILED[/]",
            cell(check.get("detail")),
        )
    return table


def jobs_table(jobs: list[dict]):
    table = new_table("ID", "KIND", "STATE", "REQUESTED BY", "CREATED", "FINISHED")
    for j in jobs:
        table.add_row(
            cell(j["id"]),
            cell(j["kind"]),
            styled(j["state"], STATE_STYLE),
            cell(j.get("requested_by")),
            short_time(j.get("created_at")),
            short_time(j.get("finished_at")),
        )
    return table


ROUTE_META = {"id", "cluster", "kind", "name", "secrets_set", "last_sync", "created_at", "updated_at"}


def routes_table(routes: list[dict]):
    table = new_table("ID", "NAME", "KIND", "SETTINGS", "SECRETS SET", "LAST SYNC")
    for r in routes:
        sync = r.get("last_sync") or {}
        settings = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ROUTE_META)
        last = (
            "-"
            if not sync.get("at")
            else f"{'ok' if sync.get('ok') else 'FAILED'} {short_time(sync['at'])} ({sync.get('trigger')})"
        )
        table.add_row(
            cell(r["id"]),
            cell(r.get("name")),
            cell(r["kind"]),
            cell(settings),
            cell(r.get("secrets_set")),
            cell(last),
        )
    return table


def tokens_table(tokens: list[dict]):
    table = new_table("ID", "TEAM", "NAME", "PREFIX", "SCOPE", "EXPIRES", "LAST USED", "ACTIVE")
    for t in tokens:
        table.add_row(
            cell(t.get("id")),
            cell(t.get("team_name") or t.get("team")),
            cell(t.get("name")),
            cell(t.get("prefix")),
            cell(t.get("scope")),
            short_time(t.get("expires_at")),
            short_time(t.get("last_used_at")),
            cell(t.get("active")),
        )
    return table


def teams_table(teams: list[dict]):
    table = new_table("ID", "NAME", "TENANT", "YOUR ROLE")
    for t in teams:
        table.add_row(
            cell(t["id"]),
            cell(t["name"]),
            cell(t.get("tenant_name") or t.get("tenant")),
            cell(t.get("your_role")),
        )
    return table


def members_table(members: list[dict]):
    table = new_table("USER ID", "EMAIL", "ROLE")
    for m in members:
        table.add_row(cell(m.get("user_id") or m.get("id")), cell(m.get("email")), cell(m.get("role")))
    return table


def grants_table(grants: list[dict]):
    table = new_table("CLUSTER", "NAME", "PERMISSIONS")
    for g in grants:
        table.add_row(cell(g.get("cluster")), cell(g.get("cluster_name")), cell(g.get("permissions")))
    return table
