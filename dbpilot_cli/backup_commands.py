"""Backup verbs: list a cluster's backups (with its recoverable window), back up now, show and verify one,
restore a backup or a point in time into a NEW cluster (docs/backups.md).

Every verb that starts a job prints how to follow it, or follows it with --wait (exit 1 unless it succeeds).
"""

from __future__ import annotations

from typing import Annotated

import typer

from dbpilot_cli import errors
from dbpilot_cli.errors import CliError
from dbpilot_cli.live import job_started
from dbpilot_cli.options import ClusterArg, OutputOpt, WaitOpt
from dbpilot_cli.output import Output, console, emit
from dbpilot_cli.provision_commands import new_cluster_started
from dbpilot_cli.views import backup_detail, backups_table

backups_app = typer.Typer(
    help="Backups: list, back up now, show, verify, restore into a new cluster (docs/backups.md).",
    no_args_is_help=True,
)
BackupArg = Annotated[int, typer.Argument(help="the backup's id")]


def restore_body(name: str, backup: int | None, time: str | None, replicas: int | None) -> dict:
    """The restore request: exactly one of a backup or a time (the API says which window a time must be
    in); the provision block only when replicas are given (else the source's shape)."""
    if (backup is None) == (time is None):
        raise CliError("give exactly one of --backup ID or --time ISO-8601", errors.USAGE)
    body: dict = {"name": name}
    if backup is not None:
        body["backup"] = backup
    else:
        body["time"] = time
    if replicas is not None:
        body["provision"] = {"replicas": replicas}
    return body


def register(app: typer.Typer, api_factory) -> None:
    app.add_typer(backups_app, name="backups")

    @backups_app.command("list")
    def backups_list(
        cluster: Annotated[
            str | None, typer.Argument(help="the cluster (name or id); all you may see when left out")
        ] = None,
        output: OutputOpt = Output.table,
    ):
        """Backups newest first; for one cluster with its recoverable window and backup method."""
        client = api_factory()
        if cluster is None:
            emit(client.list_all("backups/"), output, backups_table)
            return
        found = client.cluster(cluster)
        page = client.get(f"clusters/{found['id']}/backups/", page_size=500)
        if output != Output.table:
            emit(page, output)
            return
        window = page.get("recoverable") or {}
        console.print(
            f"{found['name']}: {page.get('method')} backups; recoverable from {window.get('start') or '-'} "
            f"to {window.get('end') or '-'} (latest verified backup: {window.get('latest_verified_backup') or '-'})",
            markup=False,
        )
        emit(page.get("results", []), output, backups_table)

    @backups_app.command("create")
    def backups_create(cluster: ClusterArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
        """Back up now: physical from a healthy replica (provisioned clusters), logical otherwise."""
        client = api_factory()
        found = client.cluster(cluster)
        job_started(client, client.post(f"clusters/{found['id']}/backups/", {}), wait, output)

    @backups_app.command("show")
    def backups_show(backup: BackupArg, output: OutputOpt = Output.table):
        """One backup: size, GTID position, times, verification."""
        emit(api_factory().get(f"backups/{backup}/"), output, backup_detail)

    @backups_app.command("verify")
    def backups_verify(backup: BackupArg, wait: WaitOpt = False, output: OutputOpt = Output.table):
        """Prove a backup again: restored into a scratch server, tables checked against the source."""
        client = api_factory()
        job_started(client, client.post(f"backups/{backup}/verify/", {}), wait, output)

    @app.command("restore")
    def restore(
        cluster: Annotated[
            str,
            typer.Argument(help="the source cluster (name or id), or - for --backup of a deleted cluster"),
        ],
        name: Annotated[str, typer.Argument(help="the NEW cluster's name")],
        backup: Annotated[int | None, typer.Option("--backup", help="restore this backup")] = None,
        time: Annotated[
            str | None,
            typer.Option("--time", help="restore the cluster as it was at this time (ISO-8601, UTC)"),
        ] = None,
        replicas: Annotated[
            int | None, typer.Option("--replicas", min=0, max=8, help="replicas of the new cluster")
        ] = None,
        wait: WaitOpt = False,
        output: OutputOpt = Output.table,
    ):
        """Restore into a NEW cluster (the source is not touched); a time outside the recoverable window is
        refused with the window. `-` as the source restores --backup of a deleted cluster."""
        client = api_factory()
        body = restore_body(name, backup, time, replicas)
        if cluster == "-":
            if backup is None:
                raise CliError("without a source cluster, give --backup ID", errors.USAGE)
            created = client.post(
                f"backups/{backup}/restore/", {k: v for k, v in body.items() if k != "backup"}
            )
        else:
            found = client.cluster(cluster)
            created = client.post(f"clusters/{found['id']}/restore/", body)
        new_cluster_started(client, created, "restored", wait, output)
