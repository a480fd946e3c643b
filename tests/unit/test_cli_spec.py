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


@pytest.mark.parametrize(
    "data, message",
    [
        ({"servers": SERVERS}, "`name` is required"),
        ({"name": "x"}, "`servers` is required"),
        ({"name": "x", "servers": SERVERS, "provision": {}}, "not in the API yet"),
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
