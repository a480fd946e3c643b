"""ProxySQL, MaxScale and Consul drivers against faithful doubles (none of the three can be installed here,
so these drivers are NOT verified against live servers; docs/routing.md says so).

- MaxScale and Consul: in-process HTTP servers on loopback implementing the part of each REST API the
  drivers use (paths, methods, auth, status codes and bodies as documented by MariaDB and HashiCorp).
- ProxySQL: its admin interface speaks the MySQL protocol and its `mysql_servers` is a SQL table; the
  double is a REAL MariaDB server holding tables shaped like ProxySQL's `mysql_servers`,
  `runtime_mysql_servers` and `disk_mysql_servers`. The shim (`ProxysqlShim`) is the only translation:
  `LOAD MYSQL SERVERS TO RUNTIME` copies mysql_servers into runtime_mysql_servers and `SAVE MYSQL
  SERVERS TO DISK` into disk_mysql_servers, as ProxySQL does; every other statement the driver sends
  runs unchanged.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from clusters.routes import (
    drivers,  # noqa: F401 - registers the drivers
    proxysql,
)
from clusters.routes.base import PRIMARY_CHANGED, PRIMARY_LEAVING, RoutePlan
from clusters.routes.bound import BoundRoute, ClusterServer
from clusters.routes.notify import apply_route

SERVERS = (
    ClusterServer(1, "127.0.0.1", 3301),
    ClusterServer(2, "127.0.0.1", 3302),
    ClusterServer(3, "127.0.0.1", 3303),
)
A, B, C = (s.address for s in SERVERS)


def bound(kind: str, settings: dict, secrets: dict | None = None, avoid=frozenset()) -> BoundRoute:
    return BoundRoute(
        id=7,
        kind=kind,
        name=kind,
        tenant="acme",
        cluster_name="main",
        cluster_id=1,
        settings=settings,
        secrets=secrets or {},
        servers=SERVERS,
        avoid_for_reads=frozenset(avoid),
    )


def changed(primary: str, old: str | None = None) -> RoutePlan:
    return RoutePlan(
        "acme/main", PRIMARY_CHANGED, primary, old, tuple(a for a in (A, B, C) if a != primary), 5, None
    )


def leaving(old: str) -> RoutePlan:
    return RoutePlan(
        "acme/main", PRIMARY_LEAVING, None, old, tuple(a for a in (A, B, C) if a != old), 5, None
    )


class Double:
    """A ThreadingHTTPServer on a free loopback port running `handler`; requests are recorded."""

    def __init__(self, handler_class):
        self.requests: list[tuple[str, str, dict, bytes]] = []
        double = self

        class Handler(handler_class):
            owner = double

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    owner: Double

    def answer(self, status: int, body=None, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def record(self, body: bytes = b"") -> None:
        self.owner.requests.append((self.command, self.path, dict(self.headers), body))


# --- MaxScale --------------------------------------------------------------------------------------------


class MaxscaleApi(JsonHandler):
    """GET /v1/servers; PUT /v1/servers/:id/set|clear?state=...; HTTP basic auth (admin:mariadb).
    Like MaxScale, it refuses master/slave on a server a monitor watches (403 with an errors list)."""

    servers: dict  # id -> {"address", "port", "states": set, "monitored": bool}

    def authorized(self) -> bool:
        expected = "Basic " + base64.b64encode(b"admin:mariadb").decode()
        if self.headers.get("Authorization") != expected:
            self.answer(401, {"errors": [{"detail": "Unauthorized"}]})
            return False
        return True

    def do_GET(self):
        self.record()
        if not self.authorized():
            return
        if self.path != "/v1/servers":
            return self.answer(404, {"errors": [{"detail": "not found"}]})
        data = [
            {
                "id": sid,
                "type": "servers",
                "attributes": {
                    "parameters": {"address": s["address"], "port": s["port"]},
                    "state": ", ".join(sorted(s["states"])) or "Running",
                },
                "relationships": {"monitors": {"data": [{"id": "MariaDB-Monitor", "type": "monitors"}]}}
                if s["monitored"]
                else {},
            }
            for sid, s in self.servers.items()
        ]
        self.answer(200, {"data": data})

    def do_PUT(self):
        self.record()
        if not self.authorized():
            return
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        state = (parse_qs(parts.query).get("state") or [""])[0]
        if len(segments) != 4 or segments[:2] != ["v1", "servers"] or segments[3] not in ("set", "clear"):
            return self.answer(404, {"errors": [{"detail": "not found"}]})
        server = self.servers.get(unquote(segments[2]))
        if server is None:
            return self.answer(404, {"errors": [{"detail": f"No server named {segments[2]}"}]})
        if state not in ("master", "slave", "maintenance", "drain"):
            return self.answer(403, {"errors": [{"detail": f"Invalid state: {state}"}]})
        if state in ("master", "slave") and server["monitored"]:
            return self.answer(403, {"errors": [{"detail": "Cannot set state of a monitored server"}]})
        display = {"master": "Master", "slave": "Slave", "maintenance": "Maintenance", "drain": "Draining"}[
            state
        ]
        (server["states"].add if segments[3] == "set" else server["states"].discard)(display)
        self.answer(204)


@pytest.fixture
def maxscale():
    servers = {
        "db-a": {"address": "127.0.0.1", "port": 3301, "states": {"Master", "Running"}, "monitored": False},
        "db-b": {"address": "127.0.0.1", "port": 3302, "states": {"Slave", "Running"}, "monitored": False},
        "db-c": {"address": "127.0.0.1", "port": 3303, "states": {"Slave", "Running"}, "monitored": True},
        "elsewhere": {"address": "127.0.0.1", "port": 4000, "states": {"Running"}, "monitored": False},
    }
    double = Double(type("Api", (MaxscaleApi,), {"servers": servers}))
    double.servers = servers
    yield double
    double.close()


def test_maxscale_driver_moves_master_and_maintenance(maxscale):
    route = bound("maxscale", {"api_url": maxscale.url, "user": "admin"}, {"password": "mariadb"})
    result = apply_route(route, leaving(A))
    assert result.ok, result.detail
    assert "Maintenance" in maxscale.servers["db-a"]["states"]
    result = apply_route(route, changed(B, old=A))
    assert result.ok, result.detail
    assert maxscale.servers["db-b"]["states"] == {"Master", "Running"}
    assert maxscale.servers["db-a"]["states"] == {"Slave", "Running"}  # maintenance cleared, now a reader
    assert maxscale.servers["db-c"]["states"] == {"Slave", "Running"}  # monitored: left to the monitor
    assert maxscale.servers["elsewhere"]["states"] == {"Running"}  # not the cluster's: never touched
    assert all(path.startswith("/v1/servers") for _, path, _, _ in maxscale.requests)
    again = apply_route(route, changed(B, old=A))
    assert again.ok and again.detail == "already as wanted"


def test_maxscale_driver_reports_bad_credentials(maxscale):
    result = apply_route(
        bound("maxscale", {"api_url": maxscale.url, "user": "admin"}, {"password": "nope"}), changed(B)
    )
    assert not result.ok and result.permanent
    assert "refused the user name or password" in result.detail


# --- Consul ----------------------------------------------------------------------------------------------


class ConsulApi(JsonHandler):
    """PUT /v1/kv/<key> (answers true), PUT /v1/catalog/register; ACL token in X-Consul-Token."""

    token = "consul-acl-token"
    kv: dict
    catalog: dict

    def do_PUT(self):
        body = self.body()
        self.record(body)
        if self.headers.get("X-Consul-Token") != self.token:
            return self.answer(403, raw=b"ACL not found")
        path = urlsplit(self.path).path
        if path.startswith("/v1/kv/"):
            self.kv[unquote(path[len("/v1/kv/") :])] = body.decode()
            return self.answer(200, raw=b"true")
        if path == "/v1/catalog/register":
            entry = json.loads(body)
            self.catalog[entry["Service"]["ID"]] = entry
            return self.answer(200, raw=b"true")
        self.answer(404, raw=b"not found")


@pytest.fixture
def consul():
    kv, catalog = {}, {}
    double = Double(type("Api", (ConsulApi,), {"kv": kv, "catalog": catalog}))
    double.kv, double.catalog = kv, catalog
    yield double
    double.close()


def test_consul_driver_writes_the_primary_and_the_catalog(consul):
    route = bound(
        "consul",
        {"api_url": consul.url, "key_prefix": "dbpilot", "service": "maindb", "node": "db-ext"},
        {"token": ConsulApi.token},
        avoid={C},
    )
    assert apply_route(route, leaving(A)).ok and consul.kv == {}  # nothing to publish while leaving
    result = apply_route(route, changed(B, old=A))
    assert result.ok, result.detail
    assert consul.kv["dbpilot/acme/main/primary"] == B
    assert json.loads(consul.kv["dbpilot/acme/main/replicas"]) == [A]  # C is unhealthy
    tags = {entry["Service"]["Port"]: entry["Service"]["Tags"] for entry in consul.catalog.values()}
    assert tags == {3301: ["replica"], 3302: ["primary"], 3303: ["standby"]}
    assert {entry["Node"] for entry in consul.catalog.values()} == {"db-ext"}


def test_consul_driver_reports_a_refused_token(consul):
    result = apply_route(bound("consul", {"api_url": consul.url}, {"token": "wrong"}), changed(B))
    assert not result.ok and "refused the ACL token (403)" in result.detail


def test_http_drivers_follow_no_redirect_and_respect_the_allowlist(consul, settings, caplog):
    class Redirect(JsonHandler):
        def do_PUT(self):
            self.send_response(307)
            self.send_header("Location", "http://10.0.0.1/v1/kv/x")
            self.end_headers()

    double = Double(Redirect)
    try:
        result = apply_route(bound("consul", {"api_url": double.url}), changed(B))
        # The tenant sees one generic failure; the operator's log says why (docs/security.md).
        assert not result.ok and "operator's log" in result.detail
        assert "follows no redirects" in caplog.text
    finally:
        double.close()
    import ipaddress

    settings.DBPILOT_ALLOWED_NETWORKS = [ipaddress.ip_network("10.231.0.0/16")]
    result = apply_route(bound("consul", {"api_url": consul.url}, {"token": ConsulApi.token}), changed(B))
    assert not result.ok and "operator's log" in result.detail
    assert "DBPILOT_ALLOWED_NETWORKS" in caplog.text
    assert consul.requests == []


# --- ProxySQL (a MariaDB server holding ProxySQL's tables) ------------------------------------------------

MYSQL_SERVERS = """(
  hostgroup_id INT UNSIGNED NOT NULL DEFAULT 0, hostname VARCHAR(255) NOT NULL, port INT NOT NULL DEFAULT 3306,
  gtid_port INT NOT NULL DEFAULT 0, status VARCHAR(16) NOT NULL DEFAULT 'ONLINE', weight INT NOT NULL DEFAULT 1,
  compression INT NOT NULL DEFAULT 0, max_connections INT NOT NULL DEFAULT 1000, max_replication_lag INT NOT NULL DEFAULT 0,
  use_ssl INT NOT NULL DEFAULT 0, max_latency_ms INT NOT NULL DEFAULT 0, comment VARCHAR(255) NOT NULL DEFAULT '',
  PRIMARY KEY (hostgroup_id, hostname, port))"""


class ProxysqlShim:
    """Wraps a PyMySQL connection to the MariaDB double; translates only LOAD ... TO RUNTIME and SAVE ... TO DISK."""

    TRANSLATIONS = {
        proxysql.LOAD: [
            "DELETE FROM runtime_mysql_servers",
            "INSERT INTO runtime_mysql_servers SELECT * FROM mysql_servers",
        ],
        proxysql.SAVE: [
            "DELETE FROM disk_mysql_servers",
            "INSERT INTO disk_mysql_servers SELECT * FROM mysql_servers",
        ],
    }

    def __init__(self, connection, log: list):
        self.connection, self.log = connection, log

    def cursor(self):
        shim = self

        class Cursor:
            def __init__(self):
                self.inner = shim.connection.cursor()

            def execute(self, sql, args=None):
                shim.log.append(sql)
                for statement in shim.TRANSLATIONS.get(sql, [sql]):
                    self.inner.execute(statement, args if statement == sql else None)

            def fetchall(self):
                return self.inner.fetchall()

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.inner.close()

        return Cursor()

    def close(self):
        self.connection.close()


@pytest.fixture(scope="module")
def proxysql_double(request):
    from clusters.providers import LocalSandbox

    sandbox = LocalSandbox(f"t-px{id(request) % 10000:04d}", 1, temporary=True)
    sandbox.up()
    for table in ("mysql_servers", "runtime_mysql_servers", "disk_mysql_servers"):
        sandbox.sql(1, f"CREATE TABLE IF NOT EXISTS app.{table} {MYSQL_SERVERS}")
    yield sandbox
    sandbox.destroy()


def test_proxysql_driver_moves_the_writer_hostgroup(proxysql_double, monkeypatch):
    sandbox = proxysql_double
    sandbox.sql(1, "DELETE FROM app.mysql_servers")
    sandbox.sql(
        1,
        "INSERT INTO app.mysql_servers (hostgroup_id, hostname, port, status) VALUES "
        "(10, '127.0.0.1', 3301, 'ONLINE'), (20, '127.0.0.1', 3302, 'ONLINE'), (20, '127.0.0.1', 3303, 'ONLINE'), "
        "(10, 'other.example', 3306, 'ONLINE')",
    )
    log, dialled = [], []

    def connect_admin(address, user, password):
        dialled.append((address, user, password))
        return ProxysqlShim(sandbox.connect(1, database="app"), log)

    monkeypatch.setattr(proxysql, "connect_admin", connect_admin)
    route = bound(
        "proxysql",
        {
            "admin_address": "127.0.0.1:6032",
            "admin_user": "radmin",
            "writer_hostgroup": 10,
            "reader_hostgroup": 20,
            "save_to_disk": True,
        },
        {"admin_password": "radmin-pw"},
    )

    result = apply_route(route, leaving(A))
    assert result.ok, result.detail
    rows = sandbox.sql(
        1, "SELECT hostgroup_id AS hg, port, status FROM app.runtime_mysql_servers ORDER BY hg, port"
    )
    assert {(r["hg"], r["port"], r["status"]) for r in rows} >= {(10, 3301, "OFFLINE_SOFT")}

    result = apply_route(route, changed(B, old=A))
    assert result.ok, result.detail
    runtime = {
        (r["hg"], r["host"], r["port"], r["status"])
        for r in sandbox.sql(
            1, "SELECT hostgroup_id AS hg, hostname AS host, port, status FROM app.runtime_mysql_servers"
        )
    }
    assert runtime == {
        (10, "127.0.0.1", 3302, "ONLINE"),
        (10, "other.example", 3306, "ONLINE"),
        (20, "127.0.0.1", 3301, "ONLINE"),
        (20, "127.0.0.1", 3302, "OFFLINE_SOFT"),
        (20, "127.0.0.1", 3303, "ONLINE"),
    }
    disk = sandbox.sql(1, "SELECT COUNT(*) AS n FROM app.disk_mysql_servers")[0]["n"]
    assert disk == len(runtime)
    assert dialled[0] == ("127.0.0.1:6032", "radmin", "radmin-pw")
    assert log.count(proxysql.LOAD) == 2 and log.count(proxysql.SAVE) == 2
    again = apply_route(route, changed(B, old=A))
    assert again.ok and again.detail == "already as wanted" and log.count(proxysql.LOAD) == 2


def test_proxysql_driver_reports_an_unreachable_admin_interface(caplog):
    from tests.integration.routing_helpers import free_port

    route = bound(
        "proxysql",
        {"admin_address": f"127.0.0.1:{free_port()}", "admin_user": "radmin", "writer_hostgroup": 10},
        {"admin_password": "x"},
    )
    result = apply_route(route, changed(B))
    assert not result.ok and "operator's log" in result.detail
    assert "ProxySQL admin interface at" in caplog.text
