"""HAProxy routing on its own with `http-check` against dbpilot's health endpoints, served by the real
ASGI application (daphne) on loopback: no runtime API call moves anything, the checks alone do."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clusters.services.monitoring import tick_cluster
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.routing_helpers import (
    HaproxyProcess,
    create_check_user,
    free_port,
    private_dir,
    remove_dir,
    server_id_through,
    wait_until,
)
from tests.integration.switchover_helpers import address, restore_sandbox, switchover
from tests.services_plugin import ManagedProcess, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dbpilot_http(transactional_db, clean_redis):
    """The control plane's ASGI app under daphne, sharing the test database and Redis."""
    port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    process = ManagedProcess(
        "routing-daphne",
        [daphne, "-b", "127.0.0.1", "-p", str(port), "controlplane.asgi:application"],
        worker_environment(),
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            urllib.request.urlopen(f"{base}/api/v1/health/clusters/1/servers/127.0.0.1:1/primary", timeout=1)
        except urllib.error.HTTPError as exc:
            return exc.code == 404
        return False

    wait_until(answers, 30, "daphne to serve the API")
    yield base
    process.stop()


def health(base: str, cluster_id: int, server: str, role: str, key: str) -> int:
    request = urllib.request.Request(
        f"{base}/api/v1/health/clusters/{cluster_id}/servers/{server}/{role}",
        headers={"X-Dbpilot-Health-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_haproxy_with_http_checks_follows_a_switchover_on_its_own(sandbox_cluster, dbpilot_http):
    sandbox = sandbox_cluster
    restore_sandbox(sandbox)
    create_check_user(sandbox)
    sandbox.sql(sandbox.primary, "CREATE TABLE IF NOT EXISTS app.checked (id INT PRIMARY KEY)")
    sandbox.wait_replicating()
    client, created = tenant_client()
    cluster = register(created.team, sandbox)
    tick_cluster(cluster.id)
    key = client.post(f"/api/v1/clusters/{cluster.id}/health-key/").json()["health_key"]
    old, new = sandbox.primary, next(n for n in sandbox.nodes if n != sandbox.primary)
    assert health(dbpilot_http, cluster.id, address(sandbox, old), "primary", key) == 200
    assert health(dbpilot_http, cluster.id, address(sandbox, new), "primary", key) == 503
    assert health(dbpilot_http, cluster.id, address(sandbox, new), "replica", key) == 200
    assert health(dbpilot_http, cluster.id, address(sandbox, old), "primary", "wrong-" + key[6:]) == 404

    directory = private_dir("hc-")
    write_port, read_port = free_port(), free_port()
    made = client.post(
        f"/api/v1/clusters/{cluster.id}/routes/",
        {
            "kind": "haproxy",
            "runtime_api": f"unix://{directory}/admin.sock",
            "write_backend": "db_write",
            "read_backend": "db_read",
            "check": "http",
            "health_url": dbpilot_http,
            "check_inter_ms": 200,
            "write_bind": f"127.0.0.1:{write_port}",
            "read_bind": f"127.0.0.1:{read_port}",
        },
        format="json",
    ).json()
    config = client.get(f"/api/v1/clusters/{cluster.id}/routes/{made['id']}/haproxy.cfg").content.decode()
    assert '"${DBPILOT_HEALTH_KEY}"' in config and key not in config
    # No route left: nothing but the health checks can move HAProxy's servers.
    assert client.delete(f"/api/v1/clusters/{cluster.id}/routes/{made['id']}/").status_code == 204
    haproxy = HaproxyProcess(directory, config, env={"DBPILOT_HEALTH_KEY": key})
    try:
        haproxy.start()

        def only(port: int, expected: set[int]) -> bool:
            return {server_id_through(port, sandbox) for _ in range(6)} <= expected

        wait_until(lambda: only(write_port, {old}), 15, "writes on the primary only")
        wait_until(
            lambda: only(read_port, {n for n in sandbox.nodes if n != old}), 15, "reads on the replicas only"
        )

        job = switchover(cluster, candidate=address(sandbox, new))
        assert job.state == "succeeded", job.result
        wait_until(lambda: only(write_port, {new}), 15, "writes on the new primary only")
        wait_until(
            lambda: only(read_port, {n for n in sandbox.nodes if n != new}), 15, "reads on the new replicas"
        )
        state = haproxy.command("show servers state db_write")
        assert "db_write" in state
    finally:
        haproxy.stop()
        remove_dir(directory)
        restore_sandbox(sandbox)
