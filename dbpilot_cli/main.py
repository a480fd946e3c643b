"""`dbpilot`: the command line of the dbpilot API (noun then verb, tables for people, --output for scripts).

Exit codes: 0 success; 1 refused (the checks are printed) or a job that failed or was refused; 2 usage
error; 3 not found or not allowed; 4 the API cannot be reached.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from dbpilot_cli.client import Api, server_of
from dbpilot_cli.config import Config, load_config, save_config
from dbpilot_cli.errors import CliError
from dbpilot_cli.live import (
    TERMINAL_STATES,
    finish_job,
    follow_events,
    follow_job,
    job_started,
    watch_topology,
)
from dbpilot_cli.options import (
    CandidateOpt,
    ClusterArg,
    ForOpt,
    OnOff,
    OutputOpt,
    ServerArg,
    WaitOpt,
    parse_assignments,
)
from dbpilot_cli.output import Output, console, emit, err_console, one_row, report
from dbpilot_cli.views import (
    checks_table,
    cluster_detail,
    clusters_table,
    events_table,
    grants_table,
    job_view,
    jobs_table,
    members_table,
    routes_table,
    teams_table,
    tokens_table,
    topology_view,
)


class DbpilotTyper(typer.Typer):
    """Turns a CliError into one line on stderr (and a refusal's checks) and its exit code."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except CliError as exc:
            err_console.print("[bold red]error:[/] ", end="")
            err_console.print(exc.message, markup=False, soft_wrap=True)
            if exc.checks:
                err_console.print(checks_table(exc.checks))
            sys.exit(exc.code)


app = DbpilotTyper(help=__doc__, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False)
clusters_app = DbpilotTyper(
    help="Clusters: list, show, create, delete, stop, start, deletion-protection.", no_args_is_help=True
)
jobs_app = DbpilotTyper(help="Jobs: show (and follow) one, list a cluster's.", no_args_is_help=True)
routes_app = DbpilotTyper(
    help="A cluster's routes (HAProxy, PowerDNS, ProxySQL, scripts, ...).", no_args_is_help=True
)
tokens_app = DbpilotTyper(help="Team tokens: list, create, revoke.", no_args_is_help=True)
teams_app = DbpilotTyper(help="Teams, their members and their cluster grants.", no_args_is_help=True)
app.add_typer(clusters_app, name="clusters")
app.add_typer(jobs_app, name="jobs")
app.add_typer(routes_app, name="routes")
app.add_typer(tokens_app, name="tokens")
app.add_typer(teams_app, name="teams")


def api() -> Api:
    return Api(load_config())


# --- login -------------------------------------------------------------------------------------------------


@app.command()
def login(
    url: Annotated[str, typer.Option("--url", help="the API's address, e.g. https://dbpilot.example")],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            prompt=True,
            hide_input=True,
            envvar="DBPILOT_TOKEN",
            help="a team token (asked for when not given)",
        ),
    ],
):
    """Check a token against the API and save it (with the address) in the config file, mode 0600."""
    me = Api(Config(url=url.rstrip("/"), token=token)).get("auth/me/")
    path = save_config(url, token)
    described = me.get("token") or {}
    console.print(
        f"signed in to {url} as {described.get('name') or me.get('email')} "
        f"(team {described.get('team_name') or described.get('team') or '-'}, scope {described.get('scope') or '-'}); saved to {path}",
        markup=False,
    )


@app.command()
def whoami(output: OutputOpt = Output.table):
    """Who the token is: its team, scope, tenants."""
    me = api().get("auth/me/")
    emit(me, output if output != Output.table else Output.yaml)


# --- clusters ----------------------------------------------------------------------------------------------


@clusters_app.command("list")
def clusters_list(output: OutputOpt = Output.table):
    """Every cluster you may view (paused and unarmed ones too)."""
    emit(api().list_all("clusters/"), output, clusters_table)


@clusters_app.command("show")
def clusters_show(cluster: ClusterArg, output: OutputOpt = Output.table):
    """One cluster: its servers, settings, failover mode, last job."""
    emit(api().cluster(cluster), output, cluster_detail)


@app.command()
def topology(
    cluster: ClusterArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="redraw live as it changes")] = False,
    seconds: ForOpt = None,
    output: OutputOpt = Output.table,
):
    """The cluster's topology as last observed (roles, replication, findings); --watch follows it live."""
    client = api()
    found = client.cluster(cluster)
    if watch:
        watch_topology(client, found, output, seconds)
        return
    emit(client.get(f"clusters/{found['id']}/topology/"), output, topology_view)


@app.command()
def events(
    cluster: ClusterArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many recent events")] = 20,
    seconds: ForOpt = None,
    output: OutputOpt = Output.table,
):
    """The cluster's recent events, oldest first; --follow prints new ones as they happen."""
    client = api()
    found = client.cluster(cluster)
    recent = list(reversed(client.list_all(f"clusters/{found['id']}/events/", limit=limit)))
    if follow and output != Output.table:
        for event in recent:
            print(json.dumps(event), flush=True)
    else:
        emit(recent, output, events_table)
    if follow:
        follow_events(client, found, output, seconds)


def _ha_command(kind: str, doc: str):
    """switchover and failover: one shape, two verbs (the API refuses either with its checks)."""

    def command(
        cluster: ClusterArg,
        candidate: CandidateOpt = None,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        client = api()
        found = client.cluster(cluster)
        job = client.post(f"clusters/{found['id']}/{kind}/", {"candidate": candidate} if candidate else {})
        job_started(client, job, wait, output)

    command.__name__, command.__doc__ = kind, doc
    return app.command(kind)(command)


switchover = _ha_command(
    "switchover", "Planned switchover to another replica (refused with its checks when it is not safe)."
)
failover = _ha_command(
    "failover", "Manual failover of a primary that is down (a live primary: use switchover)."
)


@app.command()
def maintenance(
    cluster: ClusterArg,
    server: ServerArg,
    state: Annotated[OnOff, typer.Argument(help="on or off")],
    output: OutputOpt = Output.table,
):
    """Put a server in maintenance (never elected, never the subject of automatic action) or take it out."""
    client = api()
    found = client.cluster(cluster)
    picked = server_of(found, server)
    updated = client.post(
        f"clusters/{found['id']}/servers/{picked['id']}/maintenance/", {"on": state == OnOff.on}
    )
    report(updated, output, f"{server}: maintenance {state.value}")


@app.command()
def rebuild(cluster: ClusterArg, server: ServerArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
    """Wipe a server and clone it again from a healthy replica (provisioned clusters; docs/repair.md)."""
    client = api()
    found = client.cluster(cluster)
    job = client.post(f"clusters/{found['id']}/servers/{server_of(found, server)['id']}/rebuild/", {})
    job_started(client, job, wait, output)


@app.command()
def rejoin(
    cluster: ClusterArg,
    server: ServerArg,
    method: Annotated[
        str | None,
        typer.Option(
            "--method", help="gtid, flashback or reseed, or several comma-separated, tried in order"
        ),
    ] = None,
    wait: WaitOpt = False,
    output: OutputOpt = Output.table,
):
    """Rejoin a returning or quarantined server as a replica (clears its quarantine; docs/repair.md)."""
    client = api()
    found = client.cluster(cluster)
    body = {"method": [m.strip() for m in method.split(",") if m.strip()]} if method else {}
    job = client.post(f"clusters/{found['id']}/servers/{server_of(found, server)['id']}/rejoin/", body)
    job_started(client, job, wait, output)


@app.command()
def restart(cluster: ClusterArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
    """Rolling restart: replicas one by one, a switchover, then the old primary (provisioned clusters)."""
    client = api()
    found = client.cluster(cluster)
    job_started(client, client.post(f"clusters/{found['id']}/restart/", {}), wait, output)


# --- jobs --------------------------------------------------------------------------------------------------


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[int, typer.Argument(help="the job's id")],
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="show its steps live until it ends (exit 1 unless it succeeds)"),
    ] = False,
    output: OutputOpt = Output.table,
):
    """A job with its steps and result; --follow shows the steps live as they progress."""
    client = api()
    if follow:
        job = follow_job(client, job_id, output)
        if job["state"] in TERMINAL_STATES:
            finish_job(job)
        return
    emit(client.get(f"jobs/{job_id}/"), output, job_view)


@jobs_app.command("artifacts")
def jobs_artifacts(
    job_id: Annotated[int, typer.Argument(help="the job's id")],
    output: OutputOpt = Output.table,
):
    """The files a job kept (e.g. the SQL a flashback discarded), with the URL that downloads each."""
    client = api()
    items = client.get(f"jobs/{job_id}/artifacts/")
    if output == Output.table:
        for item in items:
            console.print(
                f"{item['name']}  {item['size']} bytes  {item['url']}  {item['description']}", markup=False
            )
        if not items:
            console.print(f"job #{job_id} kept no files", markup=False)
    else:
        emit(items, output)


@jobs_app.command("list")
def jobs_list(
    cluster: ClusterArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    output: OutputOpt = Output.table,
):
    """A cluster's jobs, newest first."""
    client = api()
    found = client.cluster(cluster)
    emit(client.list_all(f"clusters/{found['id']}/jobs/", limit=limit), output, jobs_table)


# --- routes ------------------------------------------------------------------------------------------------


@routes_app.command("list")
def routes_list(cluster: ClusterArg, output: OutputOpt = Output.table):
    """The cluster's routes and their last sync."""
    client = api()
    found = client.cluster(cluster)
    emit(client.list_all(f"clusters/{found['id']}/routes/"), output, routes_table)


@routes_app.command("add")
def routes_add(
    cluster: ClusterArg,
    kind: Annotated[str, typer.Argument(help="haproxy, powerdns, script, proxysql, maxscale, consul")],
    settings: Annotated[
        list[str] | None,
        typer.Argument(help="KEY=VALUE settings of the kind (secrets as env:NAME or file:PATH)"),
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    output: OutputOpt = Output.table,
):
    """Register a route (docs/routing.md lists each kind's settings)."""
    client = api()
    found = client.cluster(cluster)
    body = {"kind": kind, **parse_assignments(settings or [])}
    if name:
        body["name"] = name
    emit(client.post(f"clusters/{found['id']}/routes/", body), output, one_row(routes_table))


@routes_app.command("set")
def routes_set(
    cluster: ClusterArg,
    route_id: int,
    settings: Annotated[list[str], typer.Argument(help="KEY=VALUE")],
    output: OutputOpt = Output.table,
):
    """Change a route's settings."""
    client = api()
    found = client.cluster(cluster)
    emit(
        client.patch(f"clusters/{found['id']}/routes/{route_id}/", parse_assignments(settings)),
        output,
        one_row(routes_table),
    )


@routes_app.command("remove")
def routes_remove(cluster: ClusterArg, route_id: int):
    """Delete a route."""
    client = api()
    found = client.cluster(cluster)
    client.delete(f"clusters/{found['id']}/routes/{route_id}/")
    console.print(f"route {route_id} removed", markup=False)


@routes_app.command("sync")
def routes_sync(cluster: ClusterArg, route_id: int, output: OutputOpt = Output.table):
    """Push the current topology to a route now."""
    client = api()
    found = client.cluster(cluster)
    result = client.post(f"clusters/{found['id']}/routes/{route_id}/sync/")
    emit(result, output if output != Output.table else Output.yaml)


# --- tokens ------------------------------------------------------------------------------------------------


@tokens_app.command("list")
def tokens_list(output: OutputOpt = Output.table):
    """The tokens of your teams (never their secrets)."""
    emit(api().list_all("tokens/"), output, tokens_table)


@tokens_app.command("create")
def tokens_create(
    team: Annotated[str, typer.Option("--team", help="team name or id")],
    name: Annotated[str, typer.Option("--name")],
    scope: Annotated[str, typer.Option("--scope", help="read, operate or admin")] = "read",
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="ISO 8601")] = None,
    cluster: Annotated[
        list[str] | None, typer.Option("--cluster", help="restrict to these clusters (repeat)")
    ] = None,
    network: Annotated[
        list[str] | None, typer.Option("--network", help="allowed client networks, CIDR (repeat)")
    ] = None,
    output: OutputOpt = Output.table,
):
    """Create a token; its secret is printed once."""
    client = api()
    body: dict = {"team": client.team(team)["id"], "name": name, "scope": scope}
    if expires_at:
        body["expires_at"] = expires_at
    if cluster:
        body["clusters"] = [client.cluster(c)["id"] for c in cluster]
    if network:
        body["allowed_networks"] = network
    created = client.post("tokens/", body)
    if output == Output.table:
        console.print(tokens_table([created]))
        console.print("the token (shown once):", markup=False)
        print(created["token"], flush=True)
    else:
        emit(created, output)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int):
    """Revoke a token: it stops working at once."""
    api().post(f"tokens/{token_id}/revoke/")
    console.print(f"token {token_id} revoked", markup=False)


# --- teams -------------------------------------------------------------------------------------------------


@teams_app.command("list")
def teams_list(output: OutputOpt = Output.table):
    """Your teams (a tenant admin sees all of the tenant's)."""
    emit(api().list_all("teams/"), output, teams_table)


@teams_app.command("create")
def teams_create(
    name: str,
    tenant: Annotated[int | None, typer.Option("--tenant", help="tenant id")] = None,
    output: OutputOpt = Output.table,
):
    """Create a team (tenant admins)."""
    emit(
        api().post("teams/", {"name": name, **({"tenant": tenant} if tenant else {})}),
        output,
        one_row(teams_table),
    )


def _team_list(team: str, what: str, table, output: Output) -> None:
    client = api()
    emit(client.list_all(f"teams/{client.team(team)['id']}/{what}/"), output, table)


def _team_add(team: str, what: str, body: dict, table, output: Output) -> None:
    client = api()
    emit(client.post(f"teams/{client.team(team)['id']}/{what}/", body), output, one_row(table))


@teams_app.command("members")
def teams_members(team: str, output: OutputOpt = Output.table):
    """A team's members and roles."""
    _team_list(team, "members", members_table, output)


@teams_app.command("add-member")
def teams_add_member(
    team: str,
    email: str,
    role: Annotated[str, typer.Option("--role", help="viewer, operator or admin")] = "viewer",
    output: OutputOpt = Output.table,
):
    """Add a member (tenant admins)."""
    _team_add(team, "members", {"email": email, "role": role}, members_table, output)


@teams_app.command("grants")
def teams_grants(team: str, output: OutputOpt = Output.table):
    """The clusters granted to a team, with the permissions."""
    _team_list(team, "grants", grants_table, output)


@teams_app.command("grant")
def teams_grant(
    team: str,
    cluster: ClusterArg,
    permissions: Annotated[
        str, typer.Option("--permissions", help="comma-separated: view_cluster,operate_cluster,admin_cluster")
    ] = "view_cluster",
    output: OutputOpt = Output.table,
):
    """Grant a cluster to a team (replaces the team's permissions on it; tenant admins)."""
    found = api().cluster(cluster)
    body = {"cluster": found["id"], "permissions": [p.strip() for p in permissions.split(",") if p.strip()]}
    _team_add(team, "grants", body, grants_table, output)


@teams_app.command("revoke-grant")
def teams_revoke_grant(team: str, cluster: ClusterArg):
    """Take every permission on a cluster back from a team (tenant admins)."""
    client = api()
    found = client.cluster(cluster)
    client.delete(f"teams/{client.team(team)['id']}/grants/{found['id']}/")
    console.print(f"team {team} has no permission on {found['name']} now", markup=False)


# --- declarative specs and import --------------------------------------------------------------------------

from dbpilot_cli import (  # noqa: E402  (register their commands)
    backup_commands,
    provision_commands,
    spec_commands,
)

spec_commands.register(app, api)  # apply, diff, export, import-replication-manager
backup_commands.register(app, api)  # backups list/create/show/verify, restore
provision_commands.register(
    app, clusters_app, api
)  # create/delete/stop/start, replicas, groups, quota, hosts
