"""`dbpilot apply`, `diff`, `export` and `import-replication-manager`: the declarative side of the CLI.

The plan comes from dbpilot_cli.spec (pure); this module reads the control plane's state through the API,
prints the plan, and carries it out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dbpilot_cli import errors
from dbpilot_cli.client import Api
from dbpilot_cli.errors import CliError
from dbpilot_cli.live import TERMINAL_STATES, job_started
from dbpilot_cli.output import Output, console, dump, err_console
from dbpilot_cli.rmimport import import_config, read_config, report_lines
from dbpilot_cli.spec import (
    SECRET_ROUTE_FIELDS,
    Change,
    Spec,
    SpecError,
    State,
    describe,
    export_spec,
    load_spec_file,
    parse_spec,
    plan,
    resolve_secret,
    secret_references,
)

SYMBOL_STYLE = {"+": "green", "~": "yellow", "-": "red", "=": "dim", "!": "magenta"}


def read_spec(path: Path) -> Spec:
    try:
        return parse_spec(load_spec_file(path))
    except SpecError as exc:
        raise CliError(str(exc), errors.USAGE) from None


def cluster_grants(api: Api, cluster_id: int) -> dict[str, list[str]]:
    """team name -> permissions on the cluster, for the teams whose grants the caller may read."""
    grants: dict[str, list[str]] = {}
    for team in api.list_all("teams/"):
        try:
            listed = api.list_all(f"teams/{team['id']}/grants/")
        except CliError as exc:
            if exc.code == errors.NOT_FOUND:
                continue
            raise
        for grant in listed:
            if grant["cluster"] == cluster_id:
                grants[team["name"]] = list(grant["permissions"])
    return grants


def current_state(api: Api, spec: Spec) -> State:
    ref = f"{spec.tenant}/{spec.name}" if spec.tenant else spec.name
    cluster = api.cluster_or_none(ref)
    if cluster is None:
        return State(cluster=None)
    return State(
        cluster=cluster,
        routes=api.list_all(f"clusters/{cluster['id']}/routes/"),
        grants=cluster_grants(api, cluster["id"]),
    )


def print_plan(changes: list[Change], name: str) -> None:
    for line in describe(changes, name):
        style = SYMBOL_STYLE.get(line[:1])
        console.print(line, style=style, markup=False)


def _resolved(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {k: resolve_secret(v) for k, v in values.items()}


def _follow(api: Api, job: dict) -> None:
    """Long jobs run one at a time on a cluster: the next change waits for this one (exit 1 if it fails)."""
    job_started(api, job, True, Output.table)


def _provision_change(api: Api, cluster: dict, change: Change) -> None:
    if change.target == "parameter_group":
        status, updated = api.answer(
            "POST", f"clusters/{cluster['id']}/parameter-group/", body=dict(change.body or {})
        )
        group = (change.body or {}).get("parameter_group") or "none"
        console.print(f"parameter group of {cluster['name']}: {group}", markup=False)
        if status == 202 and isinstance(updated, dict) and updated.get("job"):
            _follow(api, updated["job"])
        return
    body = change.body or {}
    for _ in range(body.get("add", 0)):
        console.print(f"adding a replica to {cluster['name']}", markup=False)
        _follow(api, api.post(f"clusters/{cluster['id']}/servers/", {}))
    for server_id in body.get("remove", []):
        console.print(f"removing server {server_id} of {cluster['name']}", markup=False)
        _follow(api, api.request("DELETE", f"clusters/{cluster['id']}/servers/{server_id}/"))


def _creation_body(change: Change) -> dict:
    """The create request with its secret references resolved (only now: never kept in the plan)."""
    body = dict(change.body or {})
    if "provision" in body:
        block = dict(body["provision"])
        if block.get("master_user"):
            block["master_user"] = _resolved(block["master_user"])
        body["provision"] = block
        return body
    body["credentials"] = _resolved(body.get("credentials"))
    if body.get("replication_credentials"):
        body["replication_credentials"] = _resolved(body["replication_credentials"])
    return body


def execute(api: Api, spec: Spec, changes: list[Change]) -> dict | None:
    """Carry out a plan in order; returns the cluster (created or found)."""
    cluster = api.cluster_or_none(f"{spec.tenant}/{spec.name}" if spec.tenant else spec.name)
    teams: dict[str, int] = {}

    def team_id(name: str) -> int:
        if name not in teams:
            teams[name] = api.team(name)["id"]
        return teams[name]

    try:
        for change in changes:
            if change.action in ("keep", "unsupported"):
                continue
            if change.target == "cluster" and change.action == "create":
                body = _creation_body(change)
                if spec.team:
                    body["team"] = team_id(spec.team)
                cluster = api.post("clusters/", body)
                console.print(f"created cluster {cluster['name']} (id {cluster['id']})", markup=False)
                if cluster.get("job"):
                    job = cluster["job"]
                    console.print(
                        f"job #{job['id']} {job['kind']} {job['state']}: "
                        f"follow it with `dbpilot jobs show {job['id']} --follow`",
                        markup=False,
                    )
            elif change.target in ("replicas", "parameter_group"):
                _provision_change(api, cluster, change)
            elif change.target == "cluster" and change.action == "patch":
                cluster = api.patch(f"clusters/{cluster['id']}/", change.body)
                console.print(
                    f"changed settings of {cluster['name']}: {', '.join(sorted(change.body.get('settings', {})) + [k for k in change.body if k != 'settings'])}",
                    markup=False,
                )
            elif change.target == "route":
                base = f"clusters/{cluster['id']}/routes/"
                body = {
                    k: (resolve_secret(v) if k in SECRET_ROUTE_FIELDS else v)
                    for k, v in (change.body or {}).items()
                }
                if change.action == "create":
                    api.post(base, body)
                elif change.action == "update":
                    api.patch(f"{base}{change.ref}/", body)
                elif change.action == "delete":
                    api.delete(f"{base}{change.ref}/")
                verb = {"create": "created", "update": "changed", "delete": "deleted"}[change.action]
                console.print(f"{verb} route {change.name}", markup=False)
            elif change.target == "grant":
                tid = team_id(change.ref)
                if change.action != "delete" and sorted(
                    cluster_grants(api, cluster["id"]).get(change.ref, [])
                ) == sorted(change.body["permissions"]):
                    continue  # e.g. the team that registered the cluster: it holds every permission already
                if change.action == "delete":
                    api.delete(f"teams/{tid}/grants/{cluster['id']}/")
                    console.print(f"revoked team {change.ref}'s grant", markup=False)
                else:
                    api.post(
                        f"teams/{tid}/grants/",
                        {"cluster": cluster["id"], "permissions": change.body["permissions"]},
                    )
                    console.print(
                        f"granted {', '.join(change.body['permissions'])} to team {change.ref}", markup=False
                    )
    except SpecError as exc:
        raise CliError(str(exc), errors.USAGE) from None
    return cluster


FileOpt = Annotated[
    Path,
    typer.Option(
        "--file", "-f", help="the spec, YAML (.yaml/.yml) or TOML (.toml)", exists=True, dir_okay=False
    ),
]


def register(app: typer.Typer, api_factory) -> None:
    @app.command()
    def diff(file: FileOpt):
        """Show what `apply` would change (nothing is changed)."""
        spec = read_spec(file)
        api = api_factory()
        print_plan(plan(spec, current_state(api, spec)), spec.name)

    @app.command()
    def apply(
        file: FileOpt,
        wait: Annotated[
            bool,
            typer.Option(
                "--wait",
                help="follow a provision job the apply started to its end (exit 1 unless it succeeds)",
            ),
        ] = False,
    ):
        """Create or update a cluster to match a spec: shows the plan, then carries it out. Idempotent; deletes
        nothing unless the spec says `prune: true`. Exit 1 when part of the spec cannot be applied. Scaling
        and parameter-group changes are jobs that apply follows one after the other."""
        spec = read_spec(file)
        api = api_factory()
        changes = plan(spec, current_state(api, spec))
        print_plan(changes, spec.name)
        if any(c.changes_something or c.action == "patch" for c in changes):
            cluster = execute(api, spec, changes)
            job = (cluster or {}).get("job") or {}
            if wait and job.get("kind") == "provision" and job.get("state") not in TERMINAL_STATES:
                _follow(api, job)
        unsupported = [c for c in changes if c.action == "unsupported"]
        if unsupported:
            raise CliError(
                f"{len(unsupported)} part(s) of the spec could not be applied (marked !)", errors.REFUSED
            )

    @app.command()
    def export(
        cluster: Annotated[str, typer.Argument(help="the cluster: name or id")],
        output: Annotated[
            Output, typer.Option("--output", "-o", help="yaml (default) or json")
        ] = Output.yaml,
    ):
        """Print a cluster's spec; secrets are references (env:NAME), never values."""
        api = api_factory()
        found = api.cluster(cluster)
        spec = export_spec(
            found, api.list_all(f"clusters/{found['id']}/routes/"), cluster_grants(api, found["id"])
        )
        print(dump(spec, Output.json if output == Output.json else Output.yaml))
        refs = secret_references(spec)
        if refs:
            err_console.print(f"# set before applying: {', '.join(refs)}", markup=False)

    @app.command("import-replication-manager")
    def import_replication_manager(
        config: Annotated[
            Path, typer.Argument(help="replication-manager's config.toml", exists=True, dir_okay=False)
        ],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="print the report and the specs; change nothing")
        ] = False,
        arm: Annotated[
            bool,
            typer.Option(
                "--arm",
                help="switch failover_mode to automatic for the clusters that had "
                "it in replication-manager (only once replication-manager is stopped)",
            ),
        ] = False,
        hooks_dir: Annotated[
            Path | None,
            typer.Option(
                "--hooks-dir",
                help="dbpilot's hooks directory, to check that pre/post failover scripts are installed",
            ),
        ] = None,
        output: Annotated[
            Output, typer.Option("--output", "-o", help="for --dry-run: yaml (default) or json")
        ] = Output.yaml,
    ):
        """Register the clusters of a replication-manager configuration (always failover_mode manual first)."""
        try:
            sections, files = read_config(config)
            hooks = {p.name for p in hooks_dir.iterdir() if p.is_file()} if hooks_dir else None
            report = import_config(sections, files, hooks)
            specs = [(c, parse_spec(c.spec)) for c in report.clusters]
        except (SpecError, OSError) as exc:
            raise CliError(str(exc), errors.USAGE) from None
        for line in report_lines(report):
            console.print(line, markup=False)
        if dry_run:
            for imported, _ in specs:
                console.print(f"--- spec of {imported.name}", markup=False)
                print(dump(imported.printable_spec(), Output.json if output == Output.json else Output.yaml))
            return
        api = api_factory()
        failed = []
        for imported, spec in specs:
            changes = plan(spec, current_state(api, spec))
            print_plan(changes, spec.name)
            try:
                cluster = execute(api, spec, changes)
            except CliError as exc:
                err_console.print(f"{spec.name}: {exc.message}", markup=False)
                failed.append(spec.name)
                continue
            if (
                arm
                and imported.asked_automatic
                and cluster is not None
                and cluster.get("failover_mode") != "automatic"
            ):
                cluster = api.patch(f"clusters/{cluster['id']}/", {"failover_mode": "automatic"})
                job = cluster.get("job") or {}
                console.print(
                    f"{spec.name}: failover_mode automatic; the adopt job #{job.get('id')} arms it",
                    markup=False,
                )
        if failed:
            raise CliError(f"not imported: {', '.join(failed)}", errors.REFUSED)
