"""The installed `dbpilot` CLI provisioning real clusters with the local provider (no sandbox): parameter
groups and the quota, `clusters create --wait` of a primary and two replicas, a replica added and removed,
deletion protection refusing then a delete, a cluster from a spec with a provision block (idempotent,
scaled and given another group by changed specs, stopped and started, exported), and the platform's
database hosts by an operator. The transcript is tests/output/cli-provisioning-transcript.txt.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.cli.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, wait_until

pytestmark = [pytest.mark.integration]

MASTER_PASSWORD = "shop-owner-password-1"  # noqa: S105 - a test server's password


def _json(stack, *args: str, env: dict | None = None):
    result = stack.dbp(*args, "-o", "json", env=env, record=False)
    assert result.rc == 0, result.err
    return json.loads(result.out)


def _cluster(stack, name: str) -> dict:
    return _json(stack, "clusters", "show", name)


def _env(stack) -> dict:
    return stack.cli_env(SHOP_MASTER_PASSWORD=MASTER_PASSWORD)


def _replicas(cluster: dict) -> list[dict]:
    return [s for s in cluster["servers"] if f"{s['host']}:{s['port']}" != cluster["primary"]]


def test_parameter_groups_and_the_quota(provisioning_stack):
    stack = provisioning_stack
    quota = _json(stack, "quota")
    assert quota["tenant"] == "acme" and quota["clusters"]["used"] == 0
    table = stack.dbp("quota")
    assert table.rc == 0 and "memory (MB)" in table.out and "quota of tenant acme" in table.out

    created = stack.dbp("parameter-groups", "create", "oltp", "max_connections=300")
    assert created.rc == 0, created.err
    assert "max_connections" in created.out and "300" in created.out
    refused = stack.dbp("parameter-groups", "create", "unsafe", "init_file=/tmp/x")
    assert refused.rc == 2 and "init_file" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert (
        stack.dbp("parameter-groups", "create", "olap", "max_connections=200", "performance_schema=ON").rc
        == 0
    )
    listed = _json(stack, "parameter-groups", "list")
    assert sorted(g["name"] for g in listed) == ["olap", "oltp"]
    shown = yaml.safe_load(stack.dbp("parameter-groups", "show", "oltp", "-o", "yaml").out)
    assert shown["parameters"] == {"max_connections": "300"} and shown["clusters"] == []
    assert stack.dbp("parameter-groups", "show", "nope").rc == 3


def test_create_a_primary_and_two_replicas_scale_it_and_delete_it(provisioning_stack):
    stack = provisioning_stack
    literal = stack.dbp("clusters", "create", "shop", "--master-user", "owner", "--master-password", "secret")
    assert literal.rc == 2 and "env:NAME or file:PATH" in literal.err
    bad = stack.dbp("clusters", "create", "shop", "--replicas", "1", "--parameter-group", "missing")
    assert bad.rc == 2 and "no parameter group named 'missing'" in bad.err

    created = stack.dbp(
        "clusters",
        "create",
        "shop",
        "--replicas",
        "2",
        "--parameter-group",
        "oltp",
        "--master-user",
        "owner",
        "--master-password",
        "env:SHOP_MASTER_PASSWORD",
        "--wait",
        env=_env(stack),
        timeout=300,
    )
    assert created.rc == 0, created.out + created.err
    assert "cluster shop (id" in created.out and "is being provisioned" in created.out
    for step in ("place_servers", "wire_replication", "semi_sync_on", "first_healthy_tick"):
        assert re.search(rf"step \d/7 {step}: ok", created.out), created.out
    assert "provision succeeded" in created.out
    assert "writer" in created.out and "parameter group" in created.out  # the cluster's detail at the end

    shop = _cluster(stack, "shop")
    assert shop["origin"] == "provisioned" and len(shop["servers"]) == 3
    assert shop["provision"]["parameter_group"] == "oltp" and shop["settings"]["deletion_protection"] is True
    assert shop["endpoints"]["writer"] == shop["primary"]
    wait_until("failover armed", lambda: _cluster(stack, "shop")["failover_armed"], 60)
    in_use = stack.dbp("parameter-groups", "delete", "oltp")
    assert in_use.rc == 1 and "used by shop" in in_use.err

    added = stack.dbp("replicas", "add", "shop", "--wait", timeout=300)
    assert added.rc == 0, added.out + added.err
    assert re.search(r"step 2/6 clone: ok", added.out) and "add_replica succeeded" in added.out
    shop = _cluster(stack, "shop")
    assert len(shop["servers"]) == 4

    primary = stack.dbp("replicas", "remove", "shop", shop["primary"], "--yes")
    assert primary.rc == 1 and "is the primary: switch over" in primary.err
    newest = max(_replicas(shop), key=lambda s: s["id"])
    removed = stack.dbp("replicas", "remove", "shop", str(newest["id"]), "--yes", "--wait", timeout=120)
    assert removed.rc == 0, removed.out + removed.err
    assert "remove_replica succeeded" in removed.out
    assert len(_cluster(stack, "shop")["servers"]) == 3

    unconfirmed = stack.dbp("clusters", "delete", "shop")
    assert unconfirmed.rc == 2 and "--yes" in unconfirmed.err
    protected = stack.dbp("clusters", "delete", "shop", "--yes")
    assert protected.rc == 1 and "deletion protection on" in protected.err
    assert "dbpilot clusters deletion-protection shop off" in protected.err
    assert len(protected.err.strip().splitlines()) == 1
    assert stack.dbp("clusters", "deletion-protection", "shop", "off").rc == 0
    assert _cluster(stack, "shop")["settings"]["deletion_protection"] is False
    deleted = stack.dbp("clusters", "delete", "shop", "--yes", "--wait", timeout=180)
    assert deleted.rc == 0, deleted.out + deleted.err
    assert "destroy_servers: ok" in deleted.out and "cluster shop deleted" in deleted.out
    assert stack.dbp("clusters", "show", "shop").rc == 3
    assert _json(stack, "quota")["servers"]["used"] == 0
    assert stack.dbp("parameter-groups", "delete", "oltp").rc == 0


def _spec(**provision) -> dict:
    return {
        "name": "catalog",
        "team": "ops",
        "provision": {
            "replicas": 1,
            "parameter_group": "olap",
            "master_user": {"user": "owner", "password": "env:SHOP_MASTER_PASSWORD"},
            **provision,
        },
        "settings": {"deletion_protection": False, "failcount": 3},
    }


def _write(stack, spec: dict) -> str:
    path = stack.tmp / "catalog.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def test_a_spec_with_a_provision_block_creates_scales_and_regroups_the_cluster(provisioning_stack):
    stack = provisioning_stack
    path = _write(stack, _spec())
    planned = stack.dbp("diff", "-f", path, env=_env(stack))
    assert (
        planned.rc == 0 and "+ cluster catalog: provision 1 primary + 1 replica(s) with local" in planned.out
    )
    applied = stack.dbp("apply", "-f", path, "--wait", env=_env(stack), timeout=300)
    assert applied.rc == 0, applied.out + applied.err
    assert "created cluster catalog" in applied.out and "provision succeeded" in applied.out
    catalog = _cluster(stack, "catalog")
    assert len(catalog["servers"]) == 2 and catalog["provision"]["parameter_group"] == "olap"

    again = stack.dbp("apply", "-f", path, env=_env(stack))
    assert again.rc == 0 and "no changes: catalog matches the spec" in again.out

    path = _write(stack, _spec(replicas=2, parameter_group="oltp-2"))
    assert stack.dbp("parameter-groups", "create", "oltp-2", "max_connections=250").rc == 0
    planned = stack.dbp("diff", "-f", path, env=_env(stack))
    assert "~ replicas catalog: 1 -> 2 (add 1)" in planned.out
    assert "~ parameter_group catalog: olap -> oltp-2" in planned.out
    assert "plan for catalog: 0 to create, 2 to change, 0 to delete" in planned.out
    applied = stack.dbp("apply", "-f", path, env=_env(stack), timeout=400)
    assert applied.rc == 0, applied.out + applied.err
    assert "apply_parameters succeeded" in applied.out and "add_replica succeeded" in applied.out
    catalog = _cluster(stack, "catalog")
    assert len(catalog["servers"]) == 3 and catalog["provision"]["parameter_group"] == "oltp-2"
    again = stack.dbp("apply", "-f", path, env=_env(stack))
    assert "no changes: catalog matches the spec" in again.out

    # A fixed field is reported, not silently ignored, and apply exits 1 for it.
    fixed = stack.dbp(
        "apply",
        "-f",
        _write(stack, _spec(replicas=2, parameter_group="oltp-2", size={"memory_mb": 512})),
        env=_env(stack),
    )
    assert (
        fixed.rc == 1
        and "! provision memory_mb: 256 -> 512: fixed when the cluster was provisioned" in fixed.out
    )

    # The verbs on their own: another group (live settings only), and back.
    regrouped = stack.dbp("parameter-groups", "apply", "olap", "catalog", "--wait", timeout=400)
    assert regrouped.rc == 0, regrouped.out + regrouped.err
    assert "catalog: parameter group olap" in regrouped.out and "apply_parameters succeeded" in regrouped.out
    updated = stack.dbp("parameter-groups", "update", "olap", "max_connections=220", "--wait", timeout=120)
    assert updated.rc == 0 and "apply_live: ok" in updated.out, updated.out + updated.err
    assert _json(stack, "parameter-groups", "show", "olap")["parameters"]["max_connections"] == "220"

    exported = stack.dbp("export", "catalog")
    assert exported.rc == 0
    spec = yaml.safe_load(exported.out)
    assert "servers" not in spec and spec["provision"]["replicas"] == 2
    assert spec["provision"]["parameter_group"] == "olap"
    assert spec["provision"]["master_user"]["password"] == "env:DBPILOT_CATALOG_MASTER_PASSWORD"
    assert MASTER_PASSWORD not in exported.out + exported.err

    stopped = stack.dbp("clusters", "stop", "catalog", "--wait", timeout=180)
    assert stopped.rc == 0 and "stop_cluster succeeded" in stopped.out, stopped.out + stopped.err
    started = stack.dbp("clusters", "start", "catalog", "--wait", timeout=240)
    assert started.rc == 0 and "start_cluster succeeded" in started.out, started.out + started.err

    deleted = stack.dbp("clusters", "delete", "catalog", "--yes", "--wait", timeout=180)
    assert deleted.rc == 0 and "cluster catalog deleted" in deleted.out, deleted.out + deleted.err


def test_platform_hosts_by_an_operator(provisioning_stack):
    stack = provisioning_stack
    operator = stack.cli_env(
        DBPILOT_OPERATOR_EMAIL=OPERATOR_EMAIL, DBPILOT_OPERATOR_PASSWORD=OPERATOR_PASSWORD
    )
    unsigned = stack.dbp("platform", "hosts", "list")
    assert unsigned.rc == 2 and "DBPILOT_OPERATOR_EMAIL" in unsigned.err
    wrong = stack.dbp(
        "platform",
        "hosts",
        "list",
        env=stack.cli_env(DBPILOT_OPERATOR_EMAIL=OPERATOR_EMAIL, DBPILOT_OPERATOR_PASSWORD="wrong-password"),
    )
    assert wrong.rc == 3 and f"cannot sign in as {OPERATOR_EMAIL}" in wrong.err
    tenant_admin = stack.dbp(
        "platform",
        "hosts",
        "list",
        env=stack.cli_env(
            DBPILOT_OPERATOR_EMAIL="amara@acme.example", DBPILOT_OPERATOR_PASSWORD="amara-cli-pass-1"
        ),
    )
    assert tenant_admin.rc == 3 and "is not a platform operator" in tenant_admin.err

    added = stack.dbp(
        "platform",
        "hosts",
        "add",
        "db1",
        "--address",
        "127.0.0.1",
        "--zone",
        "zone-a",
        "--instances",
        "4",
        "--memory-mb",
        "8192",
        env=operator,
    )
    assert added.rc == 0 and "db1" in added.out and "zone-a" in added.out, added.err
    outside = stack.dbp(
        "platform",
        "hosts",
        "add",
        "db2",
        "--address",
        "192.0.2.7",
        "--zone",
        "zone-a",
        "--instances",
        "4",
        "--memory-mb",
        "8192",
        env=operator,
    )
    assert outside.rc == 2 and "address" in outside.err
    hosts = json.loads(stack.dbp("platform", "hosts", "list", "-o", "json", env=operator).out)
    assert [(h["name"], h["capacity"], h["down"]) for h in hosts] == [
        ("db1", {"instances": 4, "memory_mb": 8192}, False)
    ]
    assert stack.dbp("platform", "hosts", "remove", "db1", env=operator).rc == 0
    assert json.loads(stack.dbp("platform", "hosts", "list", "-o", "json", env=operator).out) == []
    assert stack.dbp("platform", "hosts", "remove", "db1", env=operator).rc == 3


def test_backup_verbs_back_up_list_show_and_restore_into_a_new_cluster(provisioning_stack):
    from tests.integration.provisioning_helpers import connect

    stack = provisioning_stack
    created = stack.dbp(
        "clusters",
        "create",
        "books",
        "--replicas",
        "1",
        "--master-user",
        "owner",
        "--master-password",
        "env:SHOP_MASTER_PASSWORD",
        "--wait",
        env=_env(stack),
        timeout=300,
    )
    assert created.rc == 0, created.out + created.err
    books = _cluster(stack, "books")
    with connect(books["primary"], "owner", MASTER_PASSWORD) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE lib")
        cursor.execute("CREATE TABLE lib.t (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO lib.t VALUES (1), (2), (3)")

    backed_up = stack.dbp("backups", "create", "books", "--wait", timeout=300)
    assert backed_up.rc == 0, backed_up.out + backed_up.err
    assert "backup succeeded" in backed_up.out
    page = _json(stack, "backups", "list", "books")
    assert page["method"] == "physical" and page["count"] == 1
    backup = page["results"][0]
    assert backup["status"] == "completed" and backup["gtid_position"]
    table = stack.dbp("backups", "list", "books")
    assert table.rc == 0 and "recoverable from" in table.out and "physical" in table.out
    shown = stack.dbp("backups", "show", str(backup["id"]))
    assert shown.rc == 0 and backup["gtid_position"] in shown.out
    assert stack.dbp("backups", "show", "999999").rc == 3

    neither = stack.dbp("restore", "books", "books-copy")
    assert neither.rc == 2 and "exactly one of --backup ID or --time" in neither.err
    outside = stack.dbp("restore", "books", "books-copy", "--time", "2001-01-01T00:00:00Z")
    assert outside.rc == 2 and len(outside.err.strip().splitlines()) == 1  # the window, in one line
    restored = stack.dbp(
        "restore",
        "books",
        "books-copy",
        "--backup",
        str(backup["id"]),
        "--replicas",
        "0",
        "--wait",
        timeout=300,
    )
    assert restored.rc == 0, restored.out + restored.err
    assert "is being restored" in restored.out and "restore succeeded" in restored.out
    copy = _cluster(stack, "books-copy")
    with connect(copy["primary"], "owner", MASTER_PASSWORD) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM lib.t")
        assert cursor.fetchone()["n"] == 3

    for name in ("books", "books-copy"):
        assert stack.dbp("clusters", "deletion-protection", name, "off").rc == 0
        deleted = stack.dbp("clusters", "delete", name, "--yes", "--wait", timeout=180)
        assert deleted.rc == 0, deleted.out + deleted.err
