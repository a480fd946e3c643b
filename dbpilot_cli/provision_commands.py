"""Provisioning verbs: create, delete, stop and start clusters; add and remove replicas; deletion protection;
parameter groups (and giving one to a cluster); the tenant's quota; the platform's database hosts.

Every verb that starts a job prints how to follow it, or follows it with --wait (exit 1 unless it succeeds).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated

import typer

from dbpilot_cli import errors
from dbpilot_cli.client import Api, server_of
from dbpilot_cli.config import load_config
from dbpilot_cli.errors import CliError
from dbpilot_cli.live import job_started
from dbpilot_cli.options import ClusterArg, OnOff, OutputOpt, WaitOpt, parse_assignments
from dbpilot_cli.output import Output, console, emit, one_row, report
from dbpilot_cli.spec import SpecError, resolve_secret
from dbpilot_cli.views import (
    cluster_detail,
    hosts_table,
    parameter_group_detail,
    parameter_groups_table,
    quota_table,
)

DELETED_WITHIN_SECONDS = 60.0  # a deprovision job's cluster row goes right after the job succeeds

replicas_app = typer.Typer(
    help="Replicas of a provisioned cluster: add (cloned), remove.", no_args_is_help=True
)
groups_app = typer.Typer(
    help="Parameter groups: allowlisted my.cnf settings shared by clusters (docs/provisioning.md).",
    no_args_is_help=True,
)
platform_app = typer.Typer(
    help="Platform operators: the database hosts of the `hosts` provider.", no_args_is_help=True
)
hosts_app = typer.Typer(help="The pool of database hosts (platform operators only).", no_args_is_help=True)
platform_app.add_typer(hosts_app, name="hosts")


def new_cluster_started(client: Api, cluster: dict, doing: str, wait: bool, output: Output) -> None:
    """A cluster the API just created with its job (provision, restore): say so, then follow the job with
    --wait and end with the cluster's detail; or print the cluster object (--output json|yaml)."""
    if output == Output.table:
        console.print(f"cluster {cluster['name']} (id {cluster['id']}) is being {doing}", markup=False)
    elif not wait:
        emit(cluster, output)
        return
    job_started(client, cluster["job"], wait, output)
    if wait and output == Output.table:
        emit(client.cluster(str(cluster["id"])), output, cluster_detail)


def master_password(reference: str | None, user: str | None) -> str | None:
    """The master user's password from env:NAME or file:PATH, or asked on the terminal; never a literal
    on the command line (it would stay in the shell's history)."""
    if user is None:
        if reference is not None:
            raise CliError("--master-password goes with --master-user", errors.USAGE)
        return None
    if reference is None:
        if not sys.stdin.isatty():
            raise CliError("--master-user needs --master-password env:NAME or file:PATH", errors.USAGE)
        return typer.prompt(f"password of {user}", hide_input=True, confirmation_prompt=True)
    if not reference.startswith(("env:", "file:")):
        raise CliError(
            "--master-password: give env:NAME or file:PATH (a password on the command line stays in the "
            "shell's history), or leave it out to be asked",
            errors.USAGE,
        )
    try:
        return resolve_secret(reference)
    except SpecError as exc:
        raise CliError(str(exc), errors.USAGE) from None


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Pass --yes to confirm (there is no terminal to ask on).", errors.USAGE)
    typer.confirm(question, abort=True)


def wait_until_deleted(client: Api, cluster: dict) -> None:
    """After its deprovision job, the cluster row (and the job) are removed: wait for the 404."""
    deadline = time.monotonic() + DELETED_WITHIN_SECONDS
    while client.cluster_or_none(str(cluster["id"])) is not None:
        if time.monotonic() > deadline:
            raise CliError(
                f"the deprovision job ended but cluster {cluster['name']} is still listed after "
                f"{DELETED_WITHIN_SECONDS:.0f} s",
                errors.REFUSED,
            )
        time.sleep(0.5)


def follow_deprovision(client: Api, cluster: dict, job: dict, output: Output) -> None:
    try:
        job_started(client, job, True, output)
    except CliError as exc:
        if exc.code != errors.NOT_FOUND:  # the job went with the cluster: the cluster's 404 says it succeeded
            raise
    wait_until_deleted(client, cluster)
    console.print(f"cluster {cluster['name']} deleted", markup=False)


def group_of(client: Api, ref: str) -> dict:
    """A parameter group by id or name (among the tenants the token sees)."""
    groups = client.list_all("parameter-groups/")
    found = [g for g in groups if str(g["id"]) == ref or g["name"] == ref]
    if not found:
        names = ", ".join(sorted(g["name"] for g in groups)) or "none"
        raise CliError(f"no parameter group {ref!r} (you see: {names})", errors.NOT_FOUND)
    if len(found) > 1:
        raise CliError(f"{ref!r} names groups in several tenants: use the id", errors.USAGE)
    return found[0]


def host_of(client: Api, ref: str) -> dict:
    for host in client.get("platform/hosts/"):
        if str(host["id"]) == ref or host["name"] == ref:
            return host
    raise CliError(f"no database host {ref!r}", errors.NOT_FOUND)


def operator_api() -> Api:
    """An Api signed in as a platform operator: the email from DBPILOT_OPERATOR_EMAIL, the password from
    DBPILOT_OPERATOR_PASSWORD (both asked on a terminal when unset)."""
    email = os.environ.get("DBPILOT_OPERATOR_EMAIL")
    password = os.environ.get("DBPILOT_OPERATOR_PASSWORD")
    if not (email and password) and not sys.stdin.isatty():
        raise CliError(
            "platform commands sign in as an operator: set DBPILOT_OPERATOR_EMAIL and DBPILOT_OPERATOR_PASSWORD",
            errors.USAGE,
        )
    email = email or typer.prompt("operator email")
    password = password or typer.prompt(f"password of {email}", hide_input=True)
    client = Api(load_config(require_token=False))
    client.sign_in_as_operator(email, password)
    return client


def register(app: typer.Typer, clusters_app: typer.Typer, api_factory) -> None:
    app.add_typer(replicas_app, name="replicas")
    app.add_typer(groups_app, name="parameter-groups")
    app.add_typer(platform_app, name="platform")

    # --- clusters --------------------------------------------------------------------------------------

    @clusters_app.command("create")
    def clusters_create(
        name: Annotated[
            str, typer.Argument(help="the new cluster's name (lowercase letters, digits, dashes)")
        ],
        replicas: Annotated[
            int, typer.Option("--replicas", min=0, max=8, help="replicas besides the primary (0: one server)")
        ] = 2,
        memory_mb: Annotated[
            int | None, typer.Option("--memory-mb", help="memory of each server, MB (default 256)")
        ] = None,
        parameter_group: Annotated[
            str | None, typer.Option("--parameter-group", help="a parameter group of your tenant")
        ] = None,
        parameter: Annotated[
            list[str] | None,
            typer.Option("--parameter", help="KEY=VALUE my.cnf setting of the cluster's own (repeat)"),
        ] = None,
        semi_sync: Annotated[
            bool | None,
            typer.Option("--semi-sync/--no-semi-sync", help="default: on with one or more replicas"),
        ] = None,
        provider: Annotated[str, typer.Option("--provider", help="where the servers run")] = "local",
        master_user: Annotated[
            str | None, typer.Option("--master-user", help="your own account on every server")
        ] = None,
        master_password_ref: Annotated[
            str | None,
            typer.Option("--master-password", help="env:NAME or file:PATH (asked when left out)"),
        ] = None,
        team: Annotated[str | None, typer.Option("--team", help="the owning team (name or id)")] = None,
        setting: Annotated[
            list[str] | None, typer.Option("--setting", help="KEY=VALUE cluster setting (repeat)")
        ] = None,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Provision a new cluster: a primary and its replicas, GTID replication, semi-sync, armed for
        automatic failover once healthy; deletion protection on."""
        client = api_factory()
        provision: dict = {"provider": provider, "replicas": replicas}
        if semi_sync is not None:
            provision["semi_sync"] = semi_sync
        if memory_mb is not None:
            provision["size"] = {"memory_mb": memory_mb}
        if parameter_group:
            provision["parameter_group"] = parameter_group
        if parameter:
            provision["parameters"] = parse_assignments(parameter)
        password = master_password(master_password_ref, master_user)
        if master_user:
            provision["master_user"] = {"user": master_user, "password": password}
        body: dict = {"name": name, "provision": provision}
        if setting:
            body["settings"] = parse_assignments(setting)
        if team:
            body["team"] = client.team(team)["id"]
        new_cluster_started(client, client.post("clusters/", body), "provisioned", wait, output)

    @clusters_app.command("delete")
    def clusters_delete(
        cluster: ClusterArg,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Delete a cluster: a provisioned one's servers and data are destroyed (a job); a registered one is
        forgotten (its servers are left as they are). Refused while deletion protection is on."""
        client = api_factory()
        found = client.cluster(cluster)
        provisioned = found.get("origin") == "provisioned"
        confirm(
            f"Delete cluster {found['name']}"
            + (" and destroy its servers with their data?" if provisioned else " (forget it)?"),
            yes,
        )
        try:
            status, answer = client.answer("DELETE", f"clusters/{found['id']}/")
        except CliError as exc:
            if exc.api_code == "deletion_protected":
                exc.message += f"; or run: dbpilot clusters deletion-protection {found['name']} off"
            raise
        if status == 204 or not isinstance(answer, dict):
            console.print(
                f"cluster {found['name']} forgotten (its servers were left as they are)", markup=False
            )
            return
        if wait:
            follow_deprovision(client, found, answer["job"], output)
        else:
            job_started(client, answer["job"], False, output)

    def _cluster_job(cluster: str, path: str, body: dict | None, wait: bool, output: Output) -> dict:
        client = api_factory()
        found = client.cluster(cluster)
        return job_started(client, client.post(f"clusters/{found['id']}/{path}", body), wait, output)

    @clusters_app.command("stop")
    def clusters_stop(cluster: ClusterArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
        """Stop every server of a provisioned cluster (replicas first, then the primary); the data stays."""
        _cluster_job(cluster, "stop/", None, wait, output)

    @clusters_app.command("start")
    def clusters_start(cluster: ClusterArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
        """Start a stopped provisioned cluster (the primary first); re-armed after a healthy observation."""
        _cluster_job(cluster, "start/", None, wait, output)

    @clusters_app.command("deletion-protection")
    def clusters_deletion_protection(
        cluster: ClusterArg,
        state: Annotated[OnOff, typer.Argument(help="on or off")],
        output: OutputOpt = Output.table,
    ):
        """Turn deletion protection on or off (on: `clusters delete` is refused)."""
        client = api_factory()
        found = client.cluster(cluster)
        updated = client.patch(
            f"clusters/{found['id']}/", {"settings": {"deletion_protection": state == OnOff.on}}
        )
        report(updated, output, f"{found['name']}: deletion protection {state.value}")

    # --- replicas --------------------------------------------------------------------------------------

    @replicas_app.command("add")
    def replicas_add(
        cluster: ClusterArg,
        host: Annotated[str | None, typer.Option("--host", help="the database host (hosts provider)")] = None,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Add a replica, cloned with mariadb-backup from a running replica (a job)."""
        _cluster_job(cluster, "servers/", {"host": host} if host else {}, wait, output)

    @replicas_app.command("remove")
    def replicas_remove(
        cluster: ClusterArg,
        server: Annotated[str, typer.Argument(help="the replica: host:port or its id")],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Remove a replica and destroy its data (a job); the primary is refused: switch over first."""
        client = api_factory()
        found = client.cluster(cluster)
        picked = server_of(found, server)
        confirm(f"Remove {picked['host']}:{picked['port']} from {found['name']} and destroy its data?", yes)
        job = client.request("DELETE", f"clusters/{found['id']}/servers/{picked['id']}/")
        job_started(client, job, wait, output)

    # --- parameter groups ------------------------------------------------------------------------------

    @groups_app.command("list")
    def groups_list(output: OutputOpt = Output.table):
        """Your tenant's parameter groups and the clusters using each."""
        emit(api_factory().list_all("parameter-groups/"), output, parameter_groups_table)

    @groups_app.command("show")
    def groups_show(
        group: Annotated[str, typer.Argument(help="name or id")], output: OutputOpt = Output.table
    ):
        """One group: its settings, its clusters (and what waits for a restart on each)."""
        client = api_factory()
        emit(client.get(f"parameter-groups/{group_of(client, group)['id']}/"), output, parameter_group_detail)

    @groups_app.command("create")
    def groups_create(
        name: str,
        parameters: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE settings")] = None,
        output: OutputOpt = Output.table,
    ):
        """Create a group (tenant admins); settings outside the allowlist are refused with the reason."""
        body = {"name": name, "parameters": parse_assignments(parameters or [])}
        emit(api_factory().post("parameter-groups/", body), output, parameter_group_detail)

    @groups_app.command("update")
    def groups_update(
        group: Annotated[str, typer.Argument(help="name or id")],
        parameters: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE settings to set")] = None,
        unset: Annotated[
            list[str] | None, typer.Option("--unset", help="a setting to remove (repeat)")
        ] = None,
        replace: Annotated[
            bool, typer.Option("--replace", help="the group's settings become exactly the ones given")
        ] = False,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Change a group: dynamic settings go live on every cluster using it, static ones by a rolling
        restart (one apply_parameters job per cluster; --wait follows them)."""
        client = api_factory()
        found = group_of(client, group)
        wanted = {} if replace else dict(found.get("parameters") or {})
        for key in unset or []:
            if key not in wanted:
                raise CliError(f"--unset {key}: the group has no such setting", errors.USAGE)
            del wanted[key]
        wanted.update(parse_assignments(parameters or []))
        updated = client.patch(f"parameter-groups/{found['id']}/", {"parameters": wanted})
        jobs = updated.get("jobs") or []
        if not wait or output != Output.table:
            emit(updated, output, parameter_group_detail)
        if wait:
            for job in jobs:
                job_started(client, job, True, output)

    @groups_app.command("delete")
    def groups_delete(group: Annotated[str, typer.Argument(help="name or id")]):
        """Delete a group no cluster uses (refused, naming the clusters, otherwise)."""
        client = api_factory()
        found = group_of(client, group)
        client.delete(f"parameter-groups/{found['id']}/")
        console.print(f"parameter group {found['name']} deleted", markup=False)

    def _set_group(cluster: str, group: str | None, wait: bool, output: Output) -> None:
        client = api_factory()
        found = client.cluster(cluster)
        status, updated = client.answer(
            "POST", f"clusters/{found['id']}/parameter-group/", body={"parameter_group": group}
        )
        updated = updated if isinstance(updated, dict) else {}
        label = group or "none"
        if status == 200:
            report(
                updated,
                output,
                f"{found['name']}: parameter group {label}; no setting changes, nothing to apply",
            )
            return
        if output == Output.table:
            console.print(f"{found['name']}: parameter group {label}", markup=False)
        job_started(client, updated["job"], wait, output)

    @groups_app.command("apply")
    def groups_apply(
        group: Annotated[str, typer.Argument(help="the group's name")],
        cluster: ClusterArg,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Give a provisioned cluster this group: changed settings go live, static ones by a rolling restart."""
        _set_group(cluster, group, wait, output)

    @groups_app.command("detach")
    def groups_detach(cluster: ClusterArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
        """Take a cluster's group away: its settings go back to the defaults (static ones at a rolling restart)."""
        _set_group(cluster, None, wait, output)

    # --- quota and hosts -------------------------------------------------------------------------------

    @app.command()
    def quota(output: OutputOpt = Output.table):
        """What your tenant may still create: clusters, servers, server memory."""
        emit(api_factory().get("quota/"), output, quota_table)

    @hosts_app.command("list")
    def hosts_list(output: OutputOpt = Output.table):
        """The database hosts, with whether each is down."""
        emit(operator_api().get("platform/hosts/"), output, hosts_table)

    @hosts_app.command("add")
    def hosts_add(
        name: str,
        address: Annotated[str, typer.Option("--address", help="the host's address (an allowed network)")],
        zone: Annotated[str, typer.Option("--zone", help="its failure zone")],
        instances: Annotated[int, typer.Option("--instances", help="how many servers it may hold")],
        memory_mb: Annotated[int, typer.Option("--memory-mb", help="memory for servers, MB")],
        output: OutputOpt = Output.table,
    ):
        """Register a database host (start its agent as docs/provisioning.md says)."""
        body = {
            "name": name,
            "address": address,
            "zone": zone,
            "capacity": {"instances": instances, "memory_mb": memory_mb},
        }
        emit(operator_api().post("platform/hosts/", body), output, one_row(hosts_table))

    @hosts_app.command("remove")
    def hosts_remove(host: Annotated[str, typer.Argument(help="name or id")]):
        """Remove a database host from the pool."""
        client = operator_api()
        found = host_of(client, host)
        client.delete(f"platform/hosts/{found['id']}/")
        console.print(f"host {found['name']} removed", markup=False)
