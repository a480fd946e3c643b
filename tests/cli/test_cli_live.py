"""The installed `dbpilot` CLI against a live control plane and a real 3-node cluster.

The tests run in order on one stack (tests/cli/conftest.py): the spec registers the cluster, the read
commands, exit codes and both output formats are checked on it, a switchover is waited for and another
followed, a failover is watched live, the cluster is exported, deleted and recreated from the export, and
finally a replication-manager configuration with two clusters is imported.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli.conftest import OUTPUT, wait_until
from tests.sandbox_plugin import _new_sandbox

pytestmark = [pytest.mark.integration]

SAMPLES = Path(__file__).parent / "samples"


def _api(stack, method: str, path: str, body: dict | None = None):
    response = httpx.request(
        method,
        f"{stack.base}/api/v1/{path}",
        json=body,
        timeout=30,
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    return response


def _spec(stack, **changes) -> dict:
    admin = stack.sandbox.describe()["credentials"]
    spec = {
        "name": "orders",
        "team": "ops",
        "servers": [stack.address(n) for n in (1, 2, 3)],
        "credentials": {"user": admin["admin"]["user"], "password": "env:ORDERS_DB_PASSWORD"},
        "replication_credentials": {
            "user": admin["replication"]["user"],
            "password": "env:ORDERS_REPL_PASSWORD",
        },
        "failover_mode": "manual",
        "settings": {"failcount": 3, "pre_failover": "hold-3s", "switchover_wait_trx_seconds": 10},
        "routes": [{"name": "log", "kind": "script", "script": "route-log"}],
        "grants": [{"team": "ops", "permissions": ["view_cluster", "operate_cluster", "admin_cluster"]}],
    }
    spec.update(changes)
    return spec


def _write(stack, name: str, spec: dict) -> str:
    path = stack.tmp / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def _secrets_env(stack) -> dict:
    creds = stack.sandbox.describe()["credentials"]
    return stack.cli_env(
        ORDERS_DB_PASSWORD=creds["admin"]["password"], ORDERS_REPL_PASSWORD=creds["replication"]["password"]
    )


def _cluster(stack) -> dict:
    return json.loads(stack.dbp("clusters", "show", "orders", "-o", "json", record=False).out)


# --- usage, configuration, exit codes -----------------------------------------------------------------------


def test_usage_errors_config_and_unreachable_api(stack):
    assert stack.dbp("clusters", "show").rc == 2  # missing argument
    bad_format = stack.dbp("clusters", "list", "--output", "xml")
    assert bad_format.rc == 2 and "xml" in bad_format.err
    no_config = {k: v for k, v in stack.cli_env().items() if k not in ("DBPILOT_URL", "DBPILOT_TOKEN")}
    missing = stack.dbp("clusters", "list", env=no_config)
    assert missing.rc == 2 and "DBPILOT_URL" in missing.err
    unreachable = stack.dbp("clusters", "list", env=stack.cli_env(DBPILOT_URL="http://127.0.0.1:9"))
    assert unreachable.rc == 4 and "cannot reach the API" in unreachable.err
    assert len(unreachable.err.strip().splitlines()) == 1  # one clear line
    bad_token = stack.dbp("clusters", "list", env=stack.cli_env(DBPILOT_TOKEN="dbp_nokey_nosecret"))
    assert bad_token.rc == 3 and "not signed in" in bad_token.err

    # login checks the token and writes a 0600 file; commands then work without DBPILOT_* variables.
    login = stack.dbp("login", "--url", stack.base, "--token", stack.token, env=no_config)
    assert login.rc == 0, login.err
    config = stack.tmp / "config" / "dbpilot" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stack.token in config.read_text()
    assert stack.dbp("whoami", "-o", "json", env=no_config).rc == 0
    assert stack.dbp("clusters", "list", env=no_config).rc == 0

    # Shell completion (typer's): the bash script, and a completion of `dbpilot clu`.
    script = stack.dbp(env=stack.cli_env(_DBPILOT_COMPLETE="source_bash"), record=False)
    assert script.rc == 0 and "_dbpilot_completion" in script.out
    completed = stack.dbp(
        env=stack.cli_env(_DBPILOT_COMPLETE="complete_bash", COMP_WORDS="dbpilot clu", COMP_CWORD="1"),
        record=False,
    )
    assert completed.out.split() == ["clusters"]


# --- declarative specs -----------------------------------------------------------------------------------


def test_apply_registers_the_cluster_and_a_second_apply_changes_nothing(stack):
    path = _write(stack, "orders.yaml", _spec(stack))
    planned = stack.dbp("diff", "-f", path, env=_secrets_env(stack))
    assert planned.rc == 0, planned.err
    assert "+ cluster orders" in planned.out and "+ route log" in planned.out
    assert stack.dbp("clusters", "list", "-o", "json").out.strip() == "[]"  # diff changed nothing

    first = stack.dbp("apply", "-f", path, env=_secrets_env(stack))
    assert first.rc == 0, first.out + first.err
    assert "created cluster orders" in first.out and "created route log" in first.out
    cluster = _cluster(stack)
    assert cluster["failover_mode"] == "manual" and cluster["settings"]["pre_failover"] == "hold-3s"
    wait_until("the first tick to see the primary", lambda: _cluster(stack)["primary"], timeout=30)

    def route_definitions():  # what apply writes (a route's sync state moves on its own)
        listed = json.loads(stack.dbp("routes", "list", "orders", "-o", "json", record=False).out)
        return [{k: v for k, v in r.items() if k not in ("last_sync", "updated_at")} for r in listed]

    routes_before = route_definitions()

    second = stack.dbp("apply", "-f", path, env=_secrets_env(stack))
    assert second.rc == 0, second.err
    assert "no changes: orders matches the spec" in second.out
    assert "created" not in second.out and "changed" not in second.out
    # Nothing was written: the settings, the routes and the event log say so.
    assert _cluster(stack)["settings"] == cluster["settings"]
    assert route_definitions() == routes_before
    kinds = [
        e["kind"]
        for e in json.loads(stack.dbp("events", "orders", "-n", "100", "-o", "json", record=False).out)
    ]
    assert "settings_changed" not in kinds and kinds.count("route_registered") == 1


def test_a_changed_spec_changes_exactly_what_changed(stack):
    before = _cluster(stack)
    spec = _spec(stack)
    spec["settings"]["failcount"] = 5
    spec["routes"].append({"name": "audit", "kind": "script", "script": "route-log"})
    path = _write(stack, "orders-v2.yaml", spec)
    planned = stack.dbp("diff", "-f", path, env=_secrets_env(stack))
    changes = [line for line in planned.out.splitlines() if line[:2] in ("+ ", "~ ", "- ")]
    assert changes == ["~ setting failcount: 3 -> 5", "+ route audit: script: script=route-log"], planned.out
    applied = stack.dbp("apply", "-f", path, env=_secrets_env(stack))
    assert applied.rc == 0, applied.err
    after = _cluster(stack)
    changed = {k for k in after["settings"] if after["settings"][k] != before["settings"][k]}
    assert changed == {"failcount"}
    routes = json.loads(stack.dbp("routes", "list", "orders", "-o", "json").out)
    assert sorted(r["name"] for r in routes) == ["audit", "log"]
    assert "no changes" in stack.dbp("apply", "-f", path, env=_secrets_env(stack)).out

    # Dropping the route from the spec keeps it (no prune); prune: true deletes it.
    spec["routes"].pop()
    kept = stack.dbp("apply", "-f", _write(stack, "orders-v3.yaml", spec), env=_secrets_env(stack))
    assert "= route audit: not in the spec" in kept.out and "no changes" in kept.out
    spec["prune"] = True
    pruned = stack.dbp("apply", "-f", _write(stack, "orders-v4.yaml", spec), env=_secrets_env(stack))
    assert "- route audit" in pruned.out and "deleted route audit" in pruned.out
    assert [r["name"] for r in json.loads(stack.dbp("routes", "list", "orders", "-o", "json").out)] == ["log"]


# --- read commands, both formats, exit codes ------------------------------------------------------------


def test_read_commands_in_tables_json_and_yaml(stack):
    cluster = _cluster(stack)
    listed = stack.dbp("clusters", "list")
    assert listed.rc == 0 and "orders" in listed.out and "manual" in listed.out and "PAUSED" in listed.out
    assert [c["name"] for c in json.loads(stack.dbp("clusters", "list", "-o", "json").out)] == ["orders"]
    assert [c["name"] for c in yaml.safe_load(stack.dbp("clusters", "list", "-o", "yaml").out)] == ["orders"]
    by_id = json.loads(stack.dbp("clusters", "show", str(cluster["id"]), "-o", "json").out)
    assert by_id["name"] == "orders"
    shown = stack.dbp("clusters", "show", "acme/orders")
    assert shown.rc == 0 and "failcount" in shown.out and cluster["primary"] in shown.out

    topology = stack.dbp("topology", "orders")
    assert topology.rc == 0 and f"primary {cluster['primary']}" in topology.out
    topo = yaml.safe_load(stack.dbp("topology", "orders", "-o", "yaml").out)
    assert len(topo["servers"]) == 3 and topo["primary"] == cluster["primary"]

    events = stack.dbp("events", "orders", "-n", "5")
    assert events.rc == 0 and "route_deleted" in events.out
    assert "route_registered" in [
        e["kind"] for e in json.loads(stack.dbp("events", "orders", "-n", "50", "-o", "json").out)
    ]
    assert stack.dbp("jobs", "list", "orders").rc == 0
    assert "log" in stack.dbp("routes", "list", "orders").out
    assert "ops" in stack.dbp("teams", "list").out
    assert ADMIN in stack.dbp("teams", "members", "ops").out
    grants = json.loads(stack.dbp("teams", "grants", "ops", "-o", "json").out)
    assert grants[0]["cluster_name"] == "orders" and "admin_cluster" in grants[0]["permissions"]
    assert stack.dbp("tokens", "list", "-o", "yaml").rc == 0

    missing = stack.dbp("clusters", "show", "nosuch")
    assert missing.rc == 3 and "no cluster named 'nosuch'" in missing.err
    assert stack.dbp("jobs", "show", "999999").rc == 3
    assert stack.dbp("topology", "999999").rc == 3


ADMIN = "amara@acme.example"


def test_maintenance_routes_tokens_and_refusals(stack):
    replica = next(stack.address(n) for n in (1, 2, 3) if stack.address(n) != _cluster(stack)["primary"])
    follower = stack.spawn("events", "orders", "--follow", "--for", "7", "-n", "1")
    time.sleep(2.5)  # the follower is connected before the events happen
    on = json.loads(stack.dbp("maintenance", "orders", replica, "on", "-o", "json").out)
    assert next(s for s in on["servers"] if f"{s['host']}:{s['port']}" == replica)["maintenance"] is True
    off = stack.dbp("maintenance", "orders", replica, "off")
    assert off.rc == 0 and "maintenance off" in off.out
    followed, _ = follower.communicate(timeout=30)
    with open(OUTPUT / "cli-transcript.txt", "a") as handle:
        handle.write(f"$ dbpilot events orders --follow -n 1\n{followed}\n")
    assert follower.returncode == 0
    assert f"{replica} maintenance on by" in followed and f"{replica} maintenance off by" in followed, (
        followed
    )
    assert stack.dbp("maintenance", "orders", "127.0.0.1:1", "on").rc == 3
    assert stack.dbp("maintenance", "orders", replica, "sideways").rc == 2

    added = json.loads(
        stack.dbp(
            "routes", "add", "orders", "script", "script=route-log", "--name", "extra", "-o", "json"
        ).out
    )
    assert added["name"] == "extra"
    changed = stack.dbp("routes", "set", "orders", str(added["id"]), "script=hold-1s")
    assert changed.rc == 0 and "hold-1s" in changed.out
    synced = stack.dbp("routes", "sync", "orders", str(added["id"]), "-o", "json")
    assert synced.rc == 0, synced.err
    assert stack.dbp("routes", "remove", "orders", str(added["id"])).rc == 0
    invalid = stack.dbp(
        "routes", "add", "orders", "haproxy", "runtime_api=tcp://192.0.2.1:9999", "write_backend=w"
    )
    assert invalid.rc == 2 and len(invalid.err.strip().splitlines()) == 1

    # Tenant-admin actions are not for team tokens: not allowed (3), one line.
    for args in (
        ("teams", "create", "qa"),
        ("teams", "grant", "ops", "orders", "--permissions", "view_cluster"),
        ("teams", "add-member", "ops", "zed@acme.example"),
        ("teams", "revoke-grant", "ops", "orders"),
    ):
        refused_admin = stack.dbp(*args)
        assert refused_admin.rc == 3 and "tenant admin" in refused_admin.err, (args, refused_admin.err)

    # A live primary: a failover is refused (409) with its checks; exit 1.
    refused = stack.dbp("failover", "orders")
    assert refused.rc == 1 and "checks" in refused.err, refused.err

    # Repairs (docs/repair.md): a registered cluster's servers are not dbpilot's to rebuild or restart, and
    # the primary has nothing to rejoin: 409, exit 1, one line that says why.
    not_owned = stack.dbp("rebuild", "orders", replica)
    assert not_owned.rc == 1 and "does not own" in not_owned.err, not_owned.err
    assert stack.dbp("restart", "orders").rc == 1
    primary_rejoin = stack.dbp("rejoin", "orders", _cluster(stack)["primary"], "--method", "flashback")
    assert primary_rejoin.rc == 1 and "primary" in primary_rejoin.err, primary_rejoin.err
    assert stack.dbp("rejoin", "orders", replica, "--method", "rebuild").rc == 2
    missing_job = stack.dbp("jobs", "artifacts", "999999")
    assert missing_job.rc == 3 and len(missing_job.err.strip().splitlines()) == 1, missing_job.err

    created = stack.dbp("tokens", "create", "--team", "ops", "--name", "ci-read", "--scope", "read")
    assert created.rc == 0, created.err
    read_token = created.out.strip().splitlines()[-1]
    assert read_token.startswith("dbp_")
    as_reader = stack.cli_env(DBPILOT_TOKEN=read_token)
    assert stack.dbp("clusters", "list", env=as_reader).rc == 0
    forbidden = stack.dbp("switchover", "orders", env=as_reader)
    assert forbidden.rc == 3 and "operate" in forbidden.err
    token_id = next(
        t["id"] for t in json.loads(stack.dbp("tokens", "list", "-o", "json").out) if t["name"] == "ci-read"
    )
    assert stack.dbp("tokens", "revoke", str(token_id)).rc == 0
    assert stack.dbp("clusters", "list", env=as_reader).rc == 3


# --- jobs: switchover --wait, jobs show --follow ----------------------------------------------------------


def test_switchover_wait_then_follow_another_switchover_live(stack):
    old = _cluster(stack)["primary"]
    waited = stack.dbp("switchover", "orders", "--wait", timeout=120)
    assert waited.rc == 0, waited.out + waited.err
    assert re.search(r"job #\d+ switchover succeeded", waited.out), waited.out
    assert "pre_failover_hook: ok" in waited.out
    new = wait_until(
        "the new primary in the cluster object",
        lambda: (lambda p: p if p and p != old else None)(_cluster(stack)["primary"]),
        timeout=20,
    )

    started = json.loads(stack.dbp("switchover", "orders", "--candidate", old, "-o", "json").out)
    assert started["kind"] == "switchover"
    follower = stack.spawn("jobs", "show", str(started["id"]), "--follow")
    lines: list[tuple[float, str]] = []
    for line in follower.stdout:
        lines.append((time.monotonic(), line.rstrip("\n")))
    follower.wait(timeout=120)
    with open(OUTPUT / "cli-transcript.txt", "a") as handle:
        handle.write(
            f"$ dbpilot jobs show {started['id']} --follow\n" + "\n".join(text for _, text in lines) + "\n\n"
        )
    assert follower.returncode == 0, follower.stderr.read()
    texts = [text for _, text in lines]
    step_lines = [(at, text) for at, text in lines if " step " in text]
    assert any(": running" in text for _, text in step_lines), texts
    assert any(": ok" in text for _, text in step_lines), texts
    assert texts[-1].endswith(f"job #{started['id']} switchover succeeded") or "succeeded" in texts[-1], texts
    # The steps were printed as they progressed: the hook's 3 s hold separates the first and last lines.
    assert step_lines[-1][0] - step_lines[0][0] >= 0.8, lines
    assert wait_until("the old primary back", lambda: _cluster(stack)["primary"] == old, timeout=20)
    assert new != old


# --- topology --watch during a failover -------------------------------------------------------------------


def test_topology_watch_shows_a_failover_as_it_happens(stack):
    primary = _cluster(stack)["primary"]
    node = next(n for n in (1, 2, 3) if stack.address(n) == primary)
    watcher = stack.spawn("topology", "orders", "--watch", "--for", "90")
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: [lines.append(line.rstrip("\n")) for line in watcher.stdout], daemon=True
    )
    reader.start()
    try:
        wait_until(
            "the first topology on screen",
            lambda: any(f"primary {primary}" in line for line in lines),
            timeout=20,
        )
        stack.sandbox.kill(node)
        attempts = []

        def failover_done():
            result = stack.dbp("failover", "orders", "--wait", timeout=120)
            attempts.append(result)
            return result.rc == 0

        wait_until("a manual failover that is accepted", failover_done, timeout=60, interval=1.0)
        new = wait_until(
            "the new primary",
            lambda: (lambda p: p if p and p != primary else None)(_cluster(stack)["primary"]),
            timeout=20,
        )
        wait_until(
            "the watch to show the new primary",
            lambda: any(f"primary {new}" in line for line in lines),
            timeout=20,
        )
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=20)
        reader.join(timeout=5)
    capture = "\n".join(lines)
    (OUTPUT / "cli-topology-watch.txt").write_text(capture + "\n")
    with open(OUTPUT / "cli-transcript.txt", "a") as handle:
        handle.write(f"$ dbpilot topology orders --watch\n{capture}\n\n")
    first_old = next(i for i, line in enumerate(lines) if f"primary {primary}" in line)
    first_new = next(i for i, line in enumerate(lines) if f"primary {new}" in line)
    assert first_old < first_new
    between = "\n".join(lines[first_old:first_new])
    assert "failover" in between, capture  # the failover job's progress, live, before the new topology
    assert watcher.returncode == 0
    stack.sandbox.start(node)  # the old primary comes back (fenced, rejoined by autorejoin)


# --- export, then apply on an empty control plane ---------------------------------------------------------


def _delete_orders(stack) -> None:
    cluster = _cluster(stack)

    def deleted():
        response = _api(stack, "DELETE", f"clusters/{cluster['id']}/")
        return response.status_code == 204

    wait_until("the cluster's jobs to end so it can be deleted", deleted, timeout=60, interval=1.0)


def test_export_then_apply_on_an_empty_control_plane_recreates_the_definition(stack):
    exported = stack.dbp("export", "orders")
    assert exported.rc == 0, exported.err
    spec = yaml.safe_load(exported.out)
    creds = stack.sandbox.describe()["credentials"]
    assert (
        creds["admin"]["password"] not in exported.out
        and creds["replication"]["password"] not in exported.out
    )
    assert spec["credentials"]["password"].startswith("env:") and "set before applying" in exported.err
    path = stack.tmp / "exported.yaml"
    path.write_text(exported.out)

    _delete_orders(stack)
    assert json.loads(stack.dbp("clusters", "list", "-o", "json").out) == []
    env = stack.cli_env(
        DBPILOT_ORDERS_DB_USER=creds["admin"]["user"],
        DBPILOT_ORDERS_DB_PASSWORD=creds["admin"]["password"],
        DBPILOT_ORDERS_REPL_USER=creds["replication"]["user"],
        DBPILOT_ORDERS_REPL_PASSWORD=creds["replication"]["password"],
    )
    applied = stack.dbp("apply", "-f", str(path), env=env)
    assert applied.rc == 0, applied.out + applied.err
    again = stack.dbp("export", "orders")
    assert yaml.safe_load(again.out) == spec
    assert "no changes" in stack.dbp("diff", "-f", str(path), env=env).out


# --- import from replication-manager ----------------------------------------------------------------------


def test_import_replication_manager_registers_both_clusters(stack):
    _delete_orders(stack)
    billing = _new_sandbox(2)
    stack.extra_sandboxes.append(billing)
    billing.up()
    creds = stack.sandbox.describe()["credentials"]
    billing_creds = billing.describe()["credentials"]
    source = SAMPLES / "replication-manager"
    target = stack.tmp / "repman"
    (target / "cluster.d").mkdir(parents=True)
    (target / "config.toml").write_text((source / "config.toml").read_text())
    orders = (source / "cluster.d" / "orders.toml").read_text()
    orders = orders.replace(
        "10.0.0.11:3306,10.0.0.12:3306,10.0.0.13:3306", ",".join(stack.address(n) for n in (1, 2, 3))
    )
    orders = orders.replace("10.0.0.11:3306", stack.address(1)).replace("10.0.0.13:3306", stack.address(3))
    orders = orders.replace(
        "repman:orders-db-secret", f"{creds['admin']['user']}:{creds['admin']['password']}"
    )
    orders = orders.replace(
        "repl:orders-repl-secret", f"{creds['replication']['user']}:{creds['replication']['password']}"
    )
    (target / "cluster.d" / "orders.toml").write_text(orders)
    bill = (source / "cluster.d" / "billing.toml").read_text()
    bill = bill.replace(
        "10.0.1.21:3306,10.0.1.22:3306", ",".join(f"{billing.host(n)}:{billing.port(n)}" for n in (1, 2))
    )
    bill = bill.replace(
        "repman:billing-db-secret", f"{billing_creds['admin']['user']}:{billing_creds['admin']['password']}"
    )
    bill = bill.replace(
        "repl:billing-repl-secret",
        f"{billing_creds['replication']['user']}:{billing_creds['replication']['password']}",
    )
    (target / "cluster.d" / "billing.toml").write_text(bill)
    config = str(target / "config.toml")

    dry = stack.dbp("import-replication-manager", config, "--dry-run", "--hooks-dir", str(stack.hooks))
    assert dry.rc == 0, dry.err
    assert "--- spec of orders" in dry.out and "--- spec of billing" in dry.out
    assert creds["admin"]["password"] not in dry.out
    assert json.loads(stack.dbp("clusters", "list", "-o", "json").out) == []

    imported = stack.dbp("import-replication-manager", config, "--hooks-dir", str(stack.hooks), timeout=120)
    assert imported.rc == 0, imported.out + imported.err
    for key in (
        "title",
        "backup-physical-type",
        "proxysql-copy-grants",
        "db-servers-connect-timeout",
        "haproxy-write-port",
        "http-port",
        "log-file",
        "autorejoin-flashback",
    ):
        assert f"not mapped: {key}" in imported.out or f"not mapped ([Default]): {key}" in imported.out, key
    assert "asked for automatic failover: orders" in imported.out
    clusters = {c["name"]: c for c in json.loads(stack.dbp("clusters", "list", "-o", "json").out)}
    assert set(clusters) == {"orders", "billing"}
    assert {c["failover_mode"] for c in clusters.values()} == {"manual"}
    orders_settings, billing_settings = clusters["orders"]["settings"], clusters["billing"]["settings"]
    assert orders_settings["failcount"] == 5 and orders_settings["failover_limit"] == 3
    assert orders_settings["preferred_servers"] == [stack.address(1)]
    assert orders_settings["ignored_servers"] == [stack.address(3)]
    assert orders_settings["candidate_requires_semi_sync"] is True
    assert orders_settings["pre_failover"] == "pre-failover.sh"
    assert billing_settings["failover_limit"] == 1 and billing_settings["switchover_wait_trx_seconds"] == 30
    routes = {r["kind"]: r for r in json.loads(stack.dbp("routes", "list", "orders", "-o", "json").out)}
    assert routes["haproxy"]["write_backend"] == "orders_write"
    proxysql = json.loads(stack.dbp("routes", "list", "billing", "-o", "json").out)[0]
    assert (
        proxysql["kind"] == "proxysql"
        and proxysql["writer_hostgroup"] == 10
        and proxysql["secrets_set"] == ["admin_password"]
    )

    armed = stack.dbp(
        "import-replication-manager", config, "--hooks-dir", str(stack.hooks), "--arm", timeout=120
    )
    assert armed.rc == 0, armed.out + armed.err
    assert "orders: failover_mode automatic" in armed.out
    clusters = {c["name"]: c for c in json.loads(stack.dbp("clusters", "list", "-o", "json").out)}
    assert (
        clusters["orders"]["failover_mode"] == "automatic"
        and clusters["billing"]["failover_mode"] == "manual"
    )
    assert os.environ.get("REDIS_URL")  # the stack ran on this shell's own Redis database
