"""Routes that cannot be updated: each gives a clear error in its last sync result, an event and a finding;
in a switchover a failed step, never a failed job."""

from __future__ import annotations

import stat

import pytest

from clusters.models import Event, Finding
from clusters.routes.models import Route
from clusters.services.monitoring import tick_cluster
from clusters.services.routing import ROUTE_STALE
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.routing_helpers import (
    HaproxyProcess,
    PowerDns,
    free_port,
    private_dir,
    remove_dir,
)
from tests.integration.switchover_helpers import address, restore_sandbox, step, switchover

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def servers(sandbox_cluster):
    sandbox_cluster.sql(
        sandbox_cluster.primary, "CREATE TABLE IF NOT EXISTS app.broken_routes (id INT PRIMARY KEY)"
    )
    sandbox_cluster.wait_replicating()
    return sandbox_cluster


@pytest.fixture
def cluster(servers, clean_redis):
    restore_sandbox(servers)
    client, created = tenant_client()
    registered = register(created.team, servers)
    tick_cluster(registered.id)
    yield client, registered, servers
    restore_sandbox(servers)


def haproxy_config(sandbox, socket_path) -> str:
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        "    timeout client 10s",
        "    timeout server 10s",
        "backend db_write",
    ]
    lines += [f"    server n{n} {address(sandbox, n)}" for n in sandbox.nodes]
    lines += ["backend foreign", "    server other1 127.0.0.1:1", "    server other2 127.0.0.1:2"]
    return "\n".join(lines) + "\n"


def add(client, cluster, body) -> dict:
    response = client.post(f"/api/v1/clusters/{cluster.id}/routes/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_each_bad_route_says_what_is_wrong(cluster):
    client, registered, sandbox = cluster
    directory = private_dir("he-")
    haproxy = HaproxyProcess(directory, haproxy_config(sandbox, directory / "admin.sock")).start()
    pdns_dir = private_dir("pe-")
    powerdns = PowerDns(pdns_dir).start()
    try:
        powerdns.create_zone("db.test.")
        socket = f"unix://{directory}/admin.sock"
        cases = {
            "no-socket": (
                {
                    "kind": "haproxy",
                    "runtime_api": f"unix://{directory}/missing.sock",
                    "write_backend": "db_write",
                },
                "is not reachable",
            ),
            "closed-port": (
                {
                    "kind": "haproxy",
                    "runtime_api": f"tcp://127.0.0.1:{free_port()}",
                    "write_backend": "db_write",
                },
                "is not reachable",
            ),
            "unknown-backend": (
                {"kind": "haproxy", "runtime_api": socket, "write_backend": "nope"},
                "HAProxy has no backend named 'nope'",
            ),
            "foreign-servers": (
                {"kind": "haproxy", "runtime_api": socket, "write_backend": "foreign"},
                "no server of backend foreign matches a server of cluster",
            ),
            "wrong-key": (
                {
                    "kind": "powerdns",
                    "api_url": powerdns.api_url,
                    "api_key": "not-the-key",
                    "zone": "db.test.",
                    "write_record": "write.db.test.",
                },
                "refused the API key",
            ),
        }
        made = {name: add(client, registered, {"name": name, **body}) for name, (body, _) in cases.items()}
        for name, (_, expected) in cases.items():
            result = made[name]["last_sync"]
            assert result["ok"] is False, (name, result)
            assert expected in result["detail"], (name, result["detail"])
        stale = Finding.objects.filter(cluster=registered, code=ROUTE_STALE, resolved_at__isnull=True)
        assert {f.details["route_id"] for f in stale} == {m["id"] for m in made.values()}
        failures = Event.objects.filter(cluster=registered, kind="route_sync_failed")
        assert {e.data["route_id"] for e in failures} == {m["id"] for m in made.values()}
        # Fixing a route brings it back in sync, closes its finding and says so.
        fixed = client.patch(
            f"/api/v1/clusters/{registered.id}/routes/{made['unknown-backend']['id']}/",
            {"write_backend": "db_write"},
            format="json",
        ).json()
        assert fixed["last_sync"]["ok"] is True, fixed["last_sync"]
        assert not stale.filter(details__route_id=fixed["id"]).exists()
        assert Event.objects.filter(
            cluster=registered, kind="route_synced", data__route_id=fixed["id"]
        ).exists()
        # Servers HAProxy knows that are not the cluster's were never touched.
        assert "other1 127.0.0.1 2 0" in haproxy.command("show servers state foreign")
    finally:
        haproxy.stop()
        powerdns.stop()
        remove_dir(directory)
        remove_dir(pdns_dir)


def test_failing_and_hanging_routes_fail_their_steps_not_the_switchover(cluster, settings, tmp_path):
    client, registered, sandbox = cluster
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name, body in {
        "fails": "echo 'vip move failed: no such interface' >&2\nexit 3\n",
        "hangs": "sleep 30\n",
    }.items():
        script = hooks / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    settings.DBPILOT_HOOKS_DIR = hooks
    settings.DBPILOT_HOOK_TIMEOUT_SECONDS = 1.0
    for body in (
        {"kind": "script", "script": "fails"},
        {"kind": "script", "script": "hangs"},
        {"kind": "haproxy", "runtime_api": f"tcp://127.0.0.1:{free_port()}", "write_backend": "db_write"},
    ):
        add(client, registered, body)
    old, new = sandbox.primary, next(n for n in sandbox.nodes if n != sandbox.primary)

    job = switchover(registered, candidate=address(sandbox, new))

    assert job.state == "succeeded", job.result
    assert job.result["new_primary"] == address(sandbox, new)
    assert job.result["routes_ok"] is False
    for name in ("routes_primary_leaving", "routes_new_primary"):
        detail = step(job, name)["detail"]
        assert step(job, name)["state"] == "failed", step(job, name)
        assert "exited 3" in detail and "no such interface" in detail, detail
        assert "killed after 1.0s (timeout)" in detail, detail
        assert "is not reachable" in detail, detail
    routes = {r.settings.get("script", r.kind): r for r in Route.objects.filter(cluster=registered)}
    assert all(r.last_sync_ok is False and r.last_sync_trigger == "job" for r in routes.values())
    assert "exited 3" in routes["fails"].last_sync_detail
    assert Event.objects.filter(cluster=registered, kind="route_stale").count() == 2
    assert Finding.objects.filter(cluster=registered, code=ROUTE_STALE, resolved_at__isnull=True).count() == 3
    assert sandbox.sql(new, "SELECT @@read_only AS ro")[0]["ro"] == 0
    assert sandbox.sql(old, "SELECT @@read_only AS ro")[0]["ro"] == 1
