"""Route decisions without servers: field validation, read membership and health answers, HAProxy output
parsing and command planning, DNS record sets, ProxySQL statements, the generated haproxy.cfg."""

from __future__ import annotations

import pytest

from clusters.routes.base import PRIMARY_CHANGED, PRIMARY_LEAVING, RoutePlan
from clusters.routes.bound import BoundRoute, ClusterServer
from clusters.routes.haproxy import HaproxyServer, parse_servers_state, plan_backend
from clusters.routes.haproxy_config import render_haproxy_config
from clusters.routes.health import primary_answer, read_members, replica_answer, serves_reads, unreadable
from clusters.routes.powerdns import rrsets_for
from clusters.routes.proxysql import Row, plan_statements
from clusters.routes.spec import RouteInvalid, parse_http_url, parse_runtime_api, validate_route

pytestmark = pytest.mark.unit

SERVERS = (
    ClusterServer(1, "10.0.0.1", 3306),
    ClusterServer(2, "10.0.0.2", 3306),
    ClusterServer(3, "10.0.0.3", 3306),
)
A, B, C = (s.address for s in SERVERS)


def bound(avoid=frozenset(), **settings) -> BoundRoute:
    return BoundRoute(1, "haproxy", "edge", "acme", "main", 1, settings, {}, SERVERS, frozenset(avoid))


def changed(primary: str, old: str | None = None) -> RoutePlan:
    return RoutePlan("acme/main", PRIMARY_CHANGED, primary, old, tuple(a for a in (A, B, C) if a != primary))


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["db_write;disable server x/y", "db write", "db\nwrite", "", "x" * 65, "a#b", "a'b"]
)
def test_backend_names_that_could_inject_commands_are_refused(name):
    with pytest.raises(RouteInvalid) as caught:
        validate_route("haproxy", {"runtime_api": "tcp://127.0.0.1:9999", "write_backend": name})
    assert "write_backend" in caught.value.errors


def test_a_valid_haproxy_route_gets_its_defaults():
    spec = validate_route(
        "haproxy", {"runtime_api": "unix:///run/dbpilot/haproxy.sock", "write_backend": "db_write"}
    )
    assert spec.settings["check"] == "mysql" and spec.settings["check_user"] == "haproxy_check"
    assert spec.endpoint.scheme == "unix" and spec.endpoint.path == "/run/dbpilot/haproxy.sock"
    assert spec.secrets == {}


@pytest.mark.parametrize(
    "value",
    [
        "unix://relative.sock",
        "unix:///run/../etc/x",
        "http://127.0.0.1:1",
        "tcp://host",
        "tcp://127.0.0.1:99999",
        "tcp://a b:1",
        7,
    ],
)
def test_runtime_api_must_be_a_socket_path_or_tcp_address(value):
    with pytest.raises(ValueError):
        parse_runtime_api(value)


@pytest.mark.parametrize(
    "value",
    [
        "ftp://127.0.0.1/",
        "http://user:pw@127.0.0.1:8081",
        "http://127.0.0.1:8081/?a=1",
        "http://127.0.0.1:notaport",
        "http:///nohost",
        "http://bad_host!:80",
    ],
)
def test_api_urls_are_plain_http_urls(value):
    with pytest.raises(ValueError):
        parse_http_url(value)


def test_powerdns_records_must_be_in_the_zone_and_the_key_is_a_secret():
    body = {
        "api_url": "http://127.0.0.1:8081",
        "api_key": "k" * 20,
        "zone": "db.example.",
        "write_record": "w.other.",
    }
    with pytest.raises(RouteInvalid) as caught:
        validate_route("powerdns", body)
    assert set(caught.value.errors) == {"write_record"}
    spec = validate_route("powerdns", {**body, "write_record": "write.db.example."})
    assert spec.secrets == {"api_key": "k" * 20} and "api_key" not in spec.settings
    assert spec.settings["ttl"] == 5


def test_a_change_keeps_secrets_and_fields_not_given():
    first = validate_route(
        "powerdns",
        {
            "api_url": "http://127.0.0.1:8081",
            "api_key": "secret-key-1",
            "zone": "z.",
            "write_record": "w.z.",
            "read_record": "r.z.",
        },
    )
    again = validate_route("powerdns", {"ttl": 30, "read_record": None}, first)
    assert again.secrets == {"api_key": "secret-key-1"}
    assert (
        again.settings["ttl"] == 30 and "read_record" not in again.settings and again.settings["zone"] == "z."
    )


def test_unknown_kinds_and_fields_are_named():
    with pytest.raises(RouteInvalid) as caught:
        validate_route("f5", {})
    assert "kind" in caught.value.errors
    with pytest.raises(RouteInvalid) as caught:
        validate_route("script", {"script": "move-vip", "shell": "rm -rf /"})
    assert "shell" in caught.value.errors
    with pytest.raises(RouteInvalid) as caught:
        validate_route("script", {"script": "../bin/sh"})
    assert "script" in caught.value.errors


def test_proxysql_hostgroups_are_bounded_integers():
    with pytest.raises(RouteInvalid) as caught:
        validate_route(
            "proxysql",
            {
                "admin_address": "127.0.0.1:6032",
                "admin_user": "admin",
                "admin_password": "p",
                "writer_hostgroup": "10; DROP TABLE x",
                "reader_hostgroup": -1,
            },
        )
    assert set(caught.value.errors) == {"writer_hostgroup", "reader_hostgroup"}


# --- read membership and health answers ---------------------------------------------------------------


def observed(address, role="replica", state="up", io="Yes", sql="Yes", behind=0, read_only=True):
    return {
        "address": address,
        "role": role,
        "state": state,
        "read_only": read_only,
        "replication": {"io_running": io, "sql_running": sql, "seconds_behind": behind},
    }


def test_reads_avoid_unhealthy_lagging_and_maintenance_servers():
    snapshot = {
        "primary": A,
        "servers": [
            observed(A, role="primary", read_only=False),
            observed(B, sql="No"),
            observed(C, behind=120),
        ],
    }
    assert unreadable(snapshot, [], 30) == {B, C}
    assert unreadable(
        {"primary": A, "servers": [observed(A, "primary"), observed(B), observed(C)]}, [C], 30
    ) == {C}
    assert serves_reads(observed(B, state="suspect"), 30) == (False, "state suspect")


def test_reads_fall_back_to_the_primary_when_no_replica_is_healthy():
    assert read_members(A, [B, C], frozenset({B})) == [C]
    assert read_members(A, [B, C], frozenset({B, C})) == [A]
    assert read_members(None, [B, C], frozenset({B, C})) == []


def test_a_recorded_switch_wins_over_an_older_snapshot():
    snapshot = {"primary": A, "servers": [observed(A, role="primary", read_only=False), observed(B)]}
    assert primary_answer(A, snapshot, A, False).healthy
    assert not primary_answer(B, snapshot, A, False).healthy
    assert primary_answer(B, snapshot, B, True).healthy and not primary_answer(A, snapshot, B, True).healthy
    assert replica_answer(A, snapshot, B, True, False, 30).healthy  # just demoted, still up
    assert not replica_answer(B, snapshot, B, True, False, 30).healthy
    assert not replica_answer(B, snapshot, A, False, True, 30).healthy  # maintenance


def test_a_read_only_or_down_primary_is_not_healthy():
    down = {"primary": A, "servers": [observed(A, role="primary", state="down")]}
    assert primary_answer(A, down, A, False).reason == "primary but down"
    frozen = {"primary": A, "servers": [observed(A, role="primary", read_only=True)]}
    assert primary_answer(A, frozen, A, False).reason == "primary but read-only"
    assert primary_answer(A, None, A, False).source == "inventory"


# --- HAProxy ---------------------------------------------------------------------------------------------

STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 db_write 1 s1 10.0.0.1 2 0 1 1 0 15 3 4 6 0 0 0 - 3306 - 0 0 - - 0
3 db_write 2 s2 10.0.0.2 0 5 1 1 1 1 0 0 14 0 0 0 - 3306 - 0 0 - - 0
3 db_write 3 s3 10.0.0.3 0 1 1 1 1 1 0 0 14 0 0 0 - 3306 - 0 0 - - 0
"""


def test_servers_state_is_parsed_by_its_header():
    rows = parse_servers_state("db_write", STATE)
    assert [(r.name, r.address, r.ready, r.forced_maint) for r in rows] == [
        ("s1", A, True, False),
        ("s2", B, False, True),
        ("s3", C, False, True),
    ]


def test_an_unknown_backend_is_a_permanent_error():
    from clusters.routes.base import RouteError

    with pytest.raises(RouteError) as caught:
        parse_servers_state("nope", "Can't find backend.\n")
    assert caught.value.permanent and "no backend named 'nope'" in caught.value.message


def test_switching_the_write_backend_puts_the_old_primary_in_maint_before_the_new_is_ready():
    rows = {a: [r] for a, r in zip((A, B, C), parse_servers_state("db_write", STATE), strict=True)}
    commands, summary = plan_backend("db_write", rows, {B}, {A})
    assert commands == [
        "set server db_write/s1 state maint",
        "set server db_write/s2 state ready",
        "shutdown sessions server db_write/s1",
    ]
    assert summary == [f"{A} maint", f"{B} ready"]
    leaving, _ = plan_backend("db_write", rows, set(), None)
    assert leaving == ["set server db_write/s1 state maint"]  # sessions in flight may finish
    unchanged, _ = plan_backend("db_write", {A: [HaproxyServer("db_write", "s1", A, 2, 0)]}, {A}, set())
    assert unchanged == []


def test_the_generated_config_names_the_socket_checks_and_starting_states():
    config = render_haproxy_config(
        cluster_label="acme/main",
        cluster_id=7,
        servers=SERVERS,
        primary=A,
        readers=[B, C],
        settings={
            "runtime_api": "tcp://127.0.0.1:9999",
            "write_backend": "db_write",
            "read_backend": "db_read",
            "write_bind": "*:3306",
            "read_bind": "127.0.0.1:3307",
            "health_url": "https://dbpilot.example:8443/x",
        },
        check="http",
    )
    assert "    stats socket ipv4@127.0.0.1:9999 level admin" in config
    assert "uri-lf /x/api/v1/health/clusters/7/servers/%[srv_name]/primary" in config
    assert 'hdr X-Dbpilot-Health-Key "${DBPILOT_HEALTH_KEY}"' in config
    assert "check-ssl check-sni dbpilot.example verify required" in config
    assert f"    server {B} {B}\n" in config  # http-check: every server starts in service
    mysql = render_haproxy_config(
        cluster_label="acme/main",
        cluster_id=7,
        servers=SERVERS,
        primary=A,
        readers=[B, C],
        settings={"runtime_api": "unix:///run/dbpilot/h.sock", "write_backend": "db_write"},
        check="mysql",
    )
    assert f"    server {A} {A}\n" in mysql and f"    server {B} {B} disabled\n" in mysql
    assert "option mysql-check user haproxy_check post-41" in mysql


# --- PowerDNS and ProxySQL ------------------------------------------------------------------------------


def test_dns_records_replace_one_type_and_delete_the_others():
    rrsets = rrsets_for("write.db.example.", ["10.0.0.2"], 5, single=True)
    assert rrsets[0] == {
        "name": "write.db.example.",
        "type": "A",
        "ttl": 5,
        "changetype": "REPLACE",
        "records": [{"content": "10.0.0.2", "disabled": False}],
    }
    assert [(r["type"], r["changetype"]) for r in rrsets[1:]] == [("AAAA", "DELETE"), ("CNAME", "DELETE")]
    named = rrsets_for("write.db.example.", ["db2.example"], 5, single=True)
    assert [r["records"][0]["content"] for r in named if r["changetype"] == "REPLACE"] == ["db2.example."]
    both = rrsets_for("read.db.example.", ["10.0.0.3", "::1"], 5, single=False)
    assert {r["type"] for r in both if r["changetype"] == "REPLACE"} == {"A", "AAAA"}


def test_proxysql_statements_touch_only_the_cluster_rows():
    route = bound()
    rows = [
        Row(10, A, "ONLINE"),
        Row(20, B, "ONLINE"),
        Row(20, C, "ONLINE"),
        Row(10, "10.9.9.9:3306", "ONLINE"),
    ]
    statements, summary = plan_statements(route, changed(B, A), rows, 10, 20)
    sql = [s for s, _ in statements]
    assert sql[0].startswith("INSERT INTO mysql_servers") and statements[0][1][:3] == (10, "10.0.0.2", 3306)
    assert (
        "DELETE FROM mysql_servers WHERE hostgroup_id = %s AND hostname = %s AND port = %s",
        (10, "10.0.0.1", 3306),
    ) in statements
    assert not any("10.9.9.9" in str(params) for _, params in statements)
    assert f"hostgroup 20: {B} OFFLINE_SOFT" in summary and f"hostgroup 20: {A} ONLINE" in summary
    leaving, _ = plan_statements(
        route, RoutePlan("acme/main", PRIMARY_LEAVING, None, A, (B, C)), rows, 10, 20
    )
    assert leaving == [
        (
            "UPDATE mysql_servers SET status = %s WHERE hostgroup_id = %s AND hostname = %s AND port = %s",
            ("OFFLINE_SOFT", 10, "10.0.0.1", 3306),
        )
    ]


def test_the_vip_example_takes_the_address_off_the_old_primary_and_puts_it_on_the_new(tmp_path):
    """docs/examples/move-vip.sh, run with the hooks contract's argv and a recording `ssh`."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs" / "examples"
    for name in ("move-vip.sh", "move-vip.conf"):
        shutil.copy(example / name, tmp_path / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/ssh.log\n')
    (bin_dir / "ssh").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    script = str(tmp_path / "move-vip.sh")
    for phase in ("pre", "post"):
        done = subprocess.run(
            [script, "switchover", phase, "acme/main", "10.0.0.1:3306", "[fd00::2]:3306"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
    calls = (tmp_path / "ssh.log").read_text().splitlines()
    assert "dbpilot-vip@10.0.0.1 sudo ip addr del 10.0.0.100/24 dev eth0" in calls[0]
    assert "dbpilot-vip@fd00::2" in calls[1] and "sudo ip addr add 10.0.0.100/24 dev eth0" in calls[1]
    assert "arping" in calls[2] and all("BatchMode=yes" in c for c in calls)
    assert os.access(example / "move-vip.sh", os.X_OK)
