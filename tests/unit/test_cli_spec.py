"""The CLI's declarative specs: parsing, the plan (what apply would change) and export, without a server."""

from __future__ import annotations

import pytest

from dbpilot_cli.spec import Spec, SpecError, State, describe, export_spec, parse_spec, plan, resolve_secret

pytestmark = pytest.mark.unit

SERVERS = ["127.0.0.1:3306", "127.0.0.1:3307"]


def spec(**changes) -> Spec:
    data = {
        "name": "orders",
        "servers": SERVERS,
        "credentials": {"user": "dbp", "password": "env:PW"},
        "settings": {"failcount": 3},
        "routes": [
            {"name": "lb", "kind": "haproxy", "runtime_api": "tcp://127.0.0.1:9999", "write_backend": "w"}
        ],
    }
    data.update(changes)
    return parse_spec(data)


def cluster(**settings) -> dict:
    return {
        "id": 7,
        "name": "orders",
        "tenant": "acme",
        "failover_mode": "manual",
        "paused": False,
        "servers": [
            {"id": 1, "host": "127.0.0.1", "port": 3306},
            {"id": 2, "host": "127.0.0.1", "port": 3307},
        ],
        "settings": {
            "failover_mode": "manual",
            "paused": False,
            "failcount": 3,
            "tick_seconds": 1.0,
            **settings,
        },
    }


def route(**fields) -> dict:
    return {
        "id": 4,
        "cluster": 7,
        "kind": "haproxy",
        "name": "lb",
        "runtime_api": "tcp://127.0.0.1:9999",
        "write_backend": "w",
        "check": "mysql",
        "secrets_set": [],
        "last_sync": {},
        **fields,
    }


def test_a_missing_cluster_is_created_with_its_routes():
    changes = plan(spec(), State(cluster=None))
    assert [(c.action, c.target, c.name) for c in changes] == [
        ("create", "cluster", "orders"),
        ("create", "route", "lb"),
    ]
    body = changes[0].body
    assert body["servers"] == [{"host": "127.0.0.1", "port": 3306}, {"host": "127.0.0.1", "port": 3307}]
    assert body["credentials"] == {"user": "dbp", "password": "env:PW"}  # resolved only when applied


def test_a_matching_cluster_needs_no_change():
    changes = plan(spec(), State(cluster=cluster(), routes=[route()]))
    assert not [c for c in changes if c.changes_something or c.action == "patch"]
    assert describe(changes, "orders") == ["no changes: orders matches the spec"]


def test_only_what_changed_is_planned():
    changes = plan(
        spec(
            settings={"failcount": 5},
            routes=[
                {
                    "name": "lb",
                    "kind": "haproxy",
                    "runtime_api": "tcp://127.0.0.1:9999",
                    "write_backend": "w2",
                }
            ],
        ),
        State(cluster=cluster(), routes=[route()]),
    )
    assert [(c.action, c.target, c.name, c.detail) for c in changes if c.action != "patch"] == [
        ("update", "setting", "failcount", "3 -> 5"),
        ("update", "route", "lb", "write_backend: w -> w2"),
    ]
    patch = next(c for c in changes if c.action == "patch")
    assert patch.body == {"settings": {"failcount": 5}}
    assert next(c for c in changes if c.target == "route").body == {"write_backend": "w2"}


def test_nothing_is_deleted_without_prune():
    state = State(
        cluster=cluster(), routes=[route(), route(id=5, name="old")], grants={"dba": ["view_cluster"]}
    )
    kept = plan(spec(), state)
    assert {(c.action, c.name) for c in kept if c.target in ("route", "grant")} == {
        ("keep", "old"),
        ("keep", "dba"),
    }
    pruned = plan(spec(prune=True), state)
    assert {(c.action, c.name, c.ref) for c in pruned if c.action == "delete"} == {
        ("delete", "old", 5),
        ("delete", "dba", "dba"),
    }


def test_secrets_are_sent_once_and_never_compared():
    wanted = spec(routes=[{"name": "dns", "kind": "powerdns", "api_key": "env:PDNS_KEY"}])
    unset = plan(
        wanted,
        State(cluster=cluster(), routes=[{"id": 9, "kind": "powerdns", "name": "dns", "secrets_set": []}]),
    )
    assert next(c for c in unset if c.target == "route").body == {"api_key": "env:PDNS_KEY"}
    stored = plan(
        wanted,
        State(
            cluster=cluster(),
            routes=[{"id": 9, "kind": "powerdns", "name": "dns", "secrets_set": ["api_key"]}],
        ),
    )
    assert not [c for c in stored if c.target == "route"]


def test_servers_that_differ_are_reported_not_silently_ignored():
    changes = plan(spec(servers=SERVERS + ["127.0.0.1:3308"]), State(cluster=cluster(), routes=[route()]))
    assert [c.action for c in changes if c.target == "servers"] == ["unsupported"]
    assert "add 127.0.0.1:3308" in changes[0].detail


def test_grants_are_compared_per_team():
    wanted = spec(grants=[{"team": "dba", "permissions": "view_cluster,operate_cluster"}])
    changes = plan(wanted, State(cluster=cluster(), routes=[route()], grants={"dba": ["view_cluster"]}))
    grant = next(c for c in changes if c.target == "grant")
    assert (grant.action, grant.body) == ("update", {"permissions": ["view_cluster", "operate_cluster"]})


def test_a_backup_block_is_the_schedule_settings_and_only_a_change_is_planned():
    scheduled = spec(backup={"window": "01:00-03:00", "retention_days": 14})
    assert scheduled.settings["backup_window"] == "01:00-03:00"
    assert scheduled.settings["backup_retention_days"] == 14
    changes = plan(
        scheduled,
        State(cluster=cluster(backup_window="01:00-03:00", backup_retention_days=7), routes=[route()]),
    )
    assert [(c.action, c.target, c.name, c.detail) for c in changes if c.action != "patch"] == [
        ("update", "setting", "backup_retention_days", "7 -> 14"),
    ]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"servers": SERVERS}, "`name` is required"),
        ({"name": "x"}, "`servers` is required"),
        ({"name": "x", "servers": SERVERS, "provision": {}}, "keep one of the two"),
        ({"name": "x", "servers": SERVERS, "backup": {}}, "window"),
        ({"name": "x", "servers": SERVERS, "backup": {"every": "day"}}, "window"),
        (
            {
                "name": "x",
                "servers": SERVERS,
                "backup": {"window": "01:00-02:00"},
                "settings": {"backup_window": ""},
            },
            "keep one",
        ),
        ({"name": "x", "servers": SERVERS, "backups": {}}, "the `backup` block"),
        ({"name": "x", "parameter_group": "oltp", "provision": {}}, "inside the `provision` block"),
        ({"name": "x", "provision": {"replicas": 9}}, "from 0 to 8"),
        ({"name": "x", "provision": {"replicas": 0, "semi_sync": "yes"}}, "true or false"),
        ({"name": "x", "provision": {"parameter_group": "a", "parameters": {}}}, "not both"),
        ({"name": "x", "provision": {"engine": "mysql"}}, "unknown keys engine"),
        ({"name": "x", "provision": {"master_user": {"user": "o"}}}, "master_user"),
        ({"name": "x", "servers": SERVERS, "colour": "red"}, "unknown keys colour"),
        ({"name": "x", "servers": ["a:1", "a:1"]}, "listed twice"),
        ({"name": "x", "servers": SERVERS, "settings": {"paused": True}}, "top level"),
        (
            {"name": "x", "servers": SERVERS, "grants": [{"team": "t", "permissions": ["root"]}]},
            "unknown permissions",
        ),
    ],
)
def test_a_bad_spec_says_what_to_fix(data, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(data)


def test_export_writes_references_never_values_and_plans_no_change_against_itself():
    current = cluster()
    routes = [route(secrets_set=["api_key"], kind="powerdns", name="dns")]
    exported = export_spec(current, routes, {"ops": ["view_cluster", "operate_cluster", "admin_cluster"]})
    assert exported["credentials"] == {
        "user": "env:DBPILOT_ORDERS_DB_USER",
        "password": "env:DBPILOT_ORDERS_DB_PASSWORD",
    }
    assert exported["routes"][0]["api_key"] == "env:DBPILOT_ORDERS_DNS_API_KEY"
    assert exported["team"] == "ops"
    again = plan(
        parse_spec(exported),
        State(
            cluster=current,
            routes=routes,
            grants={"ops": ["view_cluster", "operate_cluster", "admin_cluster"]},
        ),
    )
    assert not [c for c in again if c.changes_something or c.action == "patch"], again


def test_secret_references_resolve_from_the_environment_and_files(monkeypatch, tmp_path):
    monkeypatch.setenv("DBP_TEST_PW", "s3cret")
    (tmp_path / "pw").write_text("from-file\n")
    assert resolve_secret("env:DBP_TEST_PW") == "s3cret"
    assert resolve_secret(f"file:{tmp_path / 'pw'}") == "from-file"
    with pytest.raises(SpecError, match="not set"):
        resolve_secret("env:DBP_TEST_UNSET_VARIABLE")


# --- provision blocks -------------------------------------------------------------------------------------


def provisioned_spec(**block) -> Spec:
    return parse_spec(
        {
            "name": "shop",
            "team": "ops",
            "provision": {
                "replicas": 2,
                "parameter_group": "oltp",
                "master_user": {"user": "owner", "password": "env:SHOP_PW"},
                **block,
            },
            "settings": {"deletion_protection": True},
        }
    )


def provisioned_cluster(servers: int = 3, group: str | None = "oltp", **provision) -> dict:
    listed = [
        {"id": 10 + n, "host": "127.0.0.1", "port": 20100 + n, "maintenance": False} for n in range(servers)
    ]
    return {
        "id": 9,
        "name": "shop",
        "tenant": "acme",
        "origin": "provisioned",
        "failover_mode": "automatic",
        "paused": False,
        "primary": "127.0.0.1:20100" if servers else None,
        "servers": listed,
        "settings": {"failover_mode": "automatic", "paused": False, "deletion_protection": True},
        "job": {"id": 5, "kind": "provision", "state": "succeeded" if servers else "running"},
        "provision": {
            "provider": "local",
            "semi_sync": True,
            "size": {"memory_mb": 256},
            "parameter_group": group,
            "parameters": {},
            "pending_restart": {},
            **provision,
        },
    }


def test_a_provision_block_creates_a_provisioned_cluster_with_the_api_defaults():
    changes = plan(provisioned_spec(), State(cluster=None))
    assert [(c.action, c.target) for c in changes] == [("create", "cluster")]
    body = changes[0].body
    assert body["name"] == "shop" and "servers" not in body and "credentials" not in body
    assert body["provision"] == {
        "provider": "local",
        "replicas": 2,
        "size": {"memory_mb": 256},
        "parameter_group": "oltp",
        "master_user": {"user": "owner", "password": "env:SHOP_PW"},  # resolved only when applied
    }
    assert body["settings"] == {"deletion_protection": True}
    assert "1 primary + 2 replica(s)" in changes[0].detail


def test_a_provisioned_cluster_that_matches_needs_no_change_even_while_it_is_provisioned():
    for current in (provisioned_cluster(), provisioned_cluster(servers=0)):
        changes = plan(provisioned_spec(), State(cluster=current))
        assert not [c for c in changes if c.changes_something or c.action == "patch"], changes
    waiting = plan(provisioned_spec(replicas=4), State(cluster=provisioned_cluster(servers=0)))
    assert [(c.action, c.target) for c in waiting] == [("keep", "replicas")]
    assert "no servers yet (job #5 provision running)" in waiting[0].detail


def test_a_changed_replica_count_scales_up_or_removes_the_newest_replicas():
    up = plan(provisioned_spec(replicas=4), State(cluster=provisioned_cluster()))
    assert [(c.action, c.target, c.body) for c in up] == [("update", "replicas", {"add": 2})]
    down = plan(provisioned_spec(replicas=0), State(cluster=provisioned_cluster()))
    assert [(c.action, c.target, c.body) for c in down] == [("update", "replicas", {"remove": [12, 11]})]
    # The primary is never chosen, even when it is the newest server.
    current = provisioned_cluster()
    current["primary"] = "127.0.0.1:20102"
    down = plan(provisioned_spec(replicas=1), State(cluster=current))
    assert down[0].body == {"remove": [11]}


def test_a_changed_parameter_group_is_applied_and_a_missing_one_is_kept_without_prune():
    changes = plan(provisioned_spec(parameter_group="olap"), State(cluster=provisioned_cluster()))
    assert [(c.action, c.target, c.body) for c in changes] == [
        ("update", "parameter_group", {"parameter_group": "olap"})
    ]
    spec_without = parse_spec(
        {"name": "shop", "provision": {"replicas": 2}, "settings": {"deletion_protection": True}}
    )
    kept = plan(spec_without, State(cluster=provisioned_cluster()))
    assert [(c.action, c.target) for c in kept] == [("keep", "parameter_group")]
    spec_without.prune = True
    pruned = plan(spec_without, State(cluster=provisioned_cluster()))
    assert [(c.action, c.body) for c in pruned] == [("update", {"parameter_group": None})]


def test_settings_are_patched_before_scaling_and_fixed_fields_are_reported():
    spec = provisioned_spec(replicas=3, size={"memory_mb": 512})
    spec.settings["failcount"] = 5
    changes = plan(spec, State(cluster=provisioned_cluster()))
    assert [(c.action, c.target, c.name) for c in changes] == [
        ("update", "setting", "failcount"),
        ("patch", "cluster", "shop"),
        ("unsupported", "provision", "memory_mb"),
        ("update", "replicas", "shop"),
    ]
    assert "256 -> 512: fixed when the cluster was provisioned" in changes[2].detail


def test_provision_and_servers_do_not_mix_across_origins():
    registered = cluster()
    registered["origin"] = "registered"
    refused = plan(provisioned_spec(), State(cluster={**registered, "provision": None}))
    assert ("unsupported", "provision") in [(c.action, c.target) for c in refused]
    assert "is a registered cluster" in [c for c in refused if c.target == "provision"][0].detail
    refused = plan(spec(), State(cluster=provisioned_cluster()))
    assert ("unsupported", "servers") in [(c.action, c.target) for c in refused]


def test_export_of_a_provisioned_cluster_writes_its_provision_block_and_plans_no_change():
    current = provisioned_cluster()
    exported = export_spec(current, [], {"ops": ["view_cluster", "operate_cluster", "admin_cluster"]})
    assert "servers" not in exported and "credentials" not in exported
    assert exported["provision"] == {
        "provider": "local",
        "replicas": 2,
        "semi_sync": True,
        "size": {"memory_mb": 256},
        "parameter_group": "oltp",
        "master_user": {
            "user": "env:DBPILOT_SHOP_MASTER_USER",
            "password": "env:DBPILOT_SHOP_MASTER_PASSWORD",
        },
    }
    again = plan(
        parse_spec(exported),
        State(cluster=current, grants={"ops": ["view_cluster", "operate_cluster", "admin_cluster"]}),
    )
    assert not [c for c in again if c.changes_something or c.action == "patch"], again
    # On an empty control plane the exported spec provisions the cluster again.
    created = plan(parse_spec(exported), State(cluster=None))
    assert created[0].action == "create" and created[0].body["provision"]["replicas"] == 2


def test_the_owning_teams_grant_is_never_pruned_and_a_refused_part_is_not_called_a_match():
    owner = provisioned_spec()
    owner.prune = True
    changes = plan(
        owner,
        State(cluster=provisioned_cluster(), grants={"ops": ["admin_cluster"], "dba": ["view_cluster"]}),
    )
    assert [(c.action, c.target, c.name) for c in changes] == [("delete", "grant", "dba")]
    fixed = plan(provisioned_spec(size={"memory_mb": 512}), State(cluster=provisioned_cluster()))
    assert (
        describe(fixed, "shop")[-1]
        == "nothing to change in shop but the 1 part(s) marked !, which cannot be applied"
    )
