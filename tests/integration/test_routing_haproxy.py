"""A real HAProxy with write and read frontends in front of a real 3-node cluster, configured by the
haproxy.cfg dbpilot generates and driven through its runtime API by dbpilot's jobs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from clusters import hotstate
from clusters.models import Cluster
from clusters.routes.models import Route
from clusters.services.monitoring import tick_cluster
from clusters.services.routing import check_all_proxies, check_proxy_state, on_topology_changed
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.routing_helpers import (
    HaproxyProcess,
    app_sessions,
    create_check_user,
    free_port,
    private_dir,
    remove_dir,
    server_id_through,
)
from tests.integration.switchover_helpers import address, restore_sandbox, step, switchover

pytestmark = pytest.mark.django_db(transaction=True)

RECORDER = """#!/bin/sh
# Records its arguments and the DBPILOT_* environment, one file per phase.
out="$(dirname "$0")/../calls"
mkdir -p "$out"
{ printf '%s\\n' "$@"; env | grep '^DBPILOT_' | sort; } > "$out/$2"
"""


@dataclass
class Routed:
    sandbox: object
    cluster: Cluster
    client: object
    route: dict
    haproxy: HaproxyProcess
    write_port: int
    read_port: int

    def config(self, **query) -> str:
        url = f"/api/v1/clusters/{self.cluster.id}/routes/{self.route['id']}/haproxy.cfg"
        response = self.client.get(url, query)
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        return response.content.decode()


@pytest.fixture(scope="module")
def servers(sandbox_cluster):
    create_check_user(sandbox_cluster)
    # A switchover waits for the candidate to reach the primary's GTID position: give it one.
    sandbox_cluster.sql(sandbox_cluster.primary, "CREATE TABLE IF NOT EXISTS app.routed (id INT PRIMARY KEY)")
    sandbox_cluster.wait_replicating()
    return sandbox_cluster


@pytest.fixture
def routed(servers, clean_redis):
    sandbox = servers
    restore_sandbox(sandbox)
    client, created = tenant_client()
    cluster = register(created.team, sandbox)
    tick_cluster(cluster.id)  # what monitoring does within a second: the primary is observed
    directory = private_dir("hx-")
    write_port, read_port = free_port(), free_port()
    response = client.post(
        f"/api/v1/clusters/{cluster.id}/routes/",
        {
            "kind": "haproxy",
            "name": "edge",
            "runtime_api": f"unix://{directory}/admin.sock",
            "write_backend": "db_write",
            "read_backend": "db_read",
            "check_inter_ms": 300,
            "write_bind": f"127.0.0.1:{write_port}",
            "read_bind": f"127.0.0.1:{read_port}",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    haproxy = HaproxyProcess(directory, "")
    yield Routed(sandbox, cluster, client, response.json(), haproxy, write_port, read_port)
    haproxy.stop()
    remove_dir(directory)
    restore_sandbox(sandbox)


def test_generated_config_passes_haproxy_check_and_routes_writes_and_reads(routed):
    sandbox = routed.sandbox
    # Registered before HAProxy runs: the first sync says so.
    assert routed.route["last_sync"]["ok"] is False
    assert "not reachable" in routed.route["last_sync"]["detail"]
    config = routed.config()
    assert "option mysql-check user haproxy_check post-41" in config
    routed.haproxy.config_path.write_text(config)
    routed.haproxy.start()  # runs `haproxy -c` first and fails the test if it refuses the file

    primary = sandbox.primary
    replicas = {n for n in sandbox.nodes if n != primary}
    assert server_id_through(routed.write_port, sandbox) == primary
    assert {server_id_through(routed.read_port, sandbox) for _ in range(6)} <= replicas

    synced = routed.client.post(f"/api/v1/clusters/{routed.cluster.id}/routes/{routed.route['id']}/sync/")
    assert synced.status_code == 200
    assert synced.json()["last_sync"]["ok"] is True, synced.json()["last_sync"]
    assert synced.json()["last_sync"]["detail"] == "already as wanted"


def test_after_a_switchover_writes_reach_the_new_primary_only(routed, settings, tmp_path):
    sandbox = routed.sandbox
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    script = hooks / "move-vip"
    script.write_text(RECORDER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    settings.DBPILOT_HOOKS_DIR = hooks
    added = routed.client.post(
        f"/api/v1/clusters/{routed.cluster.id}/routes/",
        {"kind": "script", "script": "move-vip"},
        format="json",
    )
    assert added.status_code == 201 and "not run" in added.json()["last_sync"]["detail"]

    routed.haproxy.config_path.write_text(routed.config())
    routed.haproxy.start()
    old, new = sandbox.primary, next(n for n in sandbox.nodes if n != sandbox.primary)
    app = sandbox.accounts.app
    held = pymysql.connect(
        host="127.0.0.1",
        port=routed.write_port,
        user=app.user,
        password=app.password,
        connect_timeout=3,
        read_timeout=3,
    )
    with held.cursor() as cursor:
        cursor.execute("SELECT @@server_id")
        assert cursor.fetchone()[0] == old

    job = switchover(routed.cluster, candidate=address(sandbox, new))
    assert job.state == "succeeded", "\n".join(f"{s['name']} {s['state']} {s['detail']}" for s in job.steps)
    assert job.result["routes_ok"] is True, job.result["routes"]
    assert step(job, "routes_primary_leaving")["state"] == "ok"
    assert step(job, "routes_new_primary")["state"] == "ok"
    leaving = {r["route"]: r for r in job.result["routes"]["primary_leaving"]}
    edge = Route.objects.get(cluster=routed.cluster, kind="haproxy")
    assert f"db_write: {address(sandbox, old)} maint" in leaving[f"haproxy:{edge.id}"]["detail"]

    # The session that was open on the old primary was shut down; new ones all land on the new primary.
    with pytest.raises(pymysql.err.OperationalError):
        with held.cursor() as cursor:
            cursor.execute("SELECT 1")
    sessions = [
        pymysql.connect(
            host="127.0.0.1", port=routed.write_port, user=app.user, password=app.password, connect_timeout=3
        )
        for _ in range(8)
    ]
    try:
        for conn in sessions:
            with conn.cursor() as cursor:
                cursor.execute("SELECT @@server_id, @@read_only")
                assert cursor.fetchone() == (new, 0)
        assert app_sessions(sandbox, old) == 0
        assert app_sessions(sandbox, new) >= len(sessions)
    finally:
        for conn in sessions:
            conn.close()
    assert server_id_through(routed.read_port, sandbox) != new

    # The script route got the hooks contract, before and after.
    calls = hooks.parent / "calls"
    cluster_label = f"{routed.cluster.tenant.name}/{routed.cluster.name}"
    assert (calls / "pre").read_text().splitlines()[:5] == [
        "switchover",
        "pre",
        cluster_label,
        address(sandbox, old),
        "",
    ]
    post = (calls / "post").read_text().splitlines()
    assert post[:5] == ["switchover", "post", cluster_label, address(sandbox, old), address(sandbox, new)]
    assert f"DBPILOT_NEW_PRIMARY={address(sandbox, new)}" in post
    edge.refresh_from_db()
    assert edge.last_sync_ok is True and edge.last_sync_trigger == "job"
    assert edge.proxy_state.get("pid")

    # HAProxy restarts from its file (which still names the old primary): the runtime changes are gone
    # until dbpilot notices the new process and applies the routing again.
    routed.haproxy.restart()
    assert server_id_through(routed.write_port, sandbox) == old
    assert check_all_proxies() == 1  # what beat runs every 5 s: one route re-applied
    assert server_id_through(routed.write_port, sandbox) == new
    assert check_proxy_state(routed.cluster.id) == []  # the same process again: nothing to do
    edge.refresh_from_db()
    assert edge.last_sync_trigger == "restart"


def test_the_runtime_api_over_tcp_works_like_the_socket(routed):
    tcp_port = free_port()
    config = routed.config().replace(
        f"stats socket {routed.haproxy.socket_path} mode 600 level admin",
        f"stats socket {routed.haproxy.socket_path} mode 600 level admin\n"
        f"    stats socket ipv4@127.0.0.1:{tcp_port} level admin",
    )
    # Start with a wrong write backend state (everything in service), so the sync has work to do.
    routed.haproxy.config_path.write_text(config.replace(" disabled", ""))
    routed.haproxy.start()
    changed = routed.client.patch(
        f"/api/v1/clusters/{routed.cluster.id}/routes/{routed.route['id']}/",
        {"runtime_api": f"tcp://127.0.0.1:{tcp_port}"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    result = changed.json()["last_sync"]
    assert result["ok"] is True and result["trigger"] == "changed", result
    sandbox = routed.sandbox
    others = [address(sandbox, n) for n in sandbox.nodes if n != sandbox.primary]
    assert all(f"db_write: {a} maint" in result["detail"] for a in others), result["detail"]
    assert f"db_read: {address(sandbox, sandbox.primary)} maint" in result["detail"]
    assert {server_id_through(routed.write_port, sandbox) for _ in range(5)} == {sandbox.primary}
    assert Path(routed.haproxy.socket_path).exists() and os.access(routed.haproxy.socket_path, os.W_OK)


def test_a_replica_that_stops_replicating_leaves_the_read_backend(routed):
    sandbox = routed.sandbox
    routed.haproxy.config_path.write_text(routed.config())
    routed.haproxy.start()
    assert (
        routed.client.post(f"/api/v1/clusters/{routed.cluster.id}/routes/{routed.route['id']}/sync/").json()[
            "last_sync"
        ]["ok"]
        is True
    )
    replicas = [n for n in sandbox.nodes if n != sandbox.primary]
    stopped = replicas[0]
    before = hotstate.read_topology(routed.cluster.id)
    sandbox.sql(stopped, "STOP SLAVE SQL_THREAD")
    try:
        tick_cluster(routed.cluster.id)
        after = hotstate.read_topology(routed.cluster.id)
        assert on_topology_changed(routed.cluster.id, after, before, inline=True) is True
        assert {server_id_through(routed.read_port, sandbox) for _ in range(8)} == {replicas[1]}
        assert on_topology_changed(routed.cluster.id, after, after, inline=True) is False
    finally:
        sandbox.sql(stopped, "START SLAVE")
    sandbox.wait_replicating()
    tick_cluster(routed.cluster.id)
    assert on_topology_changed(
        routed.cluster.id, hotstate.read_topology(routed.cluster.id), after, inline=True
    )
    assert {server_id_through(routed.read_port, sandbox) for _ in range(8)} == set(replicas)
    edge = Route.objects.get(pk=routed.route["id"])
    assert edge.last_sync_ok is True and edge.last_sync_trigger == "health"
