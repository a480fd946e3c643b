"""A SIGKILL failover behind a real HAProxy: once the failover job told the routes, a client connecting
through the write frontend lands on the new primary, and the old primary, back again, gets no session. A
script route that hangs next to it is a failed step, and the failover completes all the same."""

from __future__ import annotations

import signal
import time

import pymysql
import pytest

pytest.importorskip("clusters.services.failover", reason="the failover job is not in this tree yet")
failover_helpers = pytest.importorskip("tests.integration.failover_helpers")

from tests.integration.routing_helpers import (  # noqa: E402
    HaproxyProcess,
    app_sessions,
    create_check_user,
    free_port,
    private_dir,
    remove_dir,
    server_id_through,
)
from tests.integration.switchover_helpers import node_of  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def test_after_a_sigkill_failover_writes_through_haproxy_reach_the_new_primary(
    sandbox_factory, settings, tmp_path
):
    hook = tmp_path / "hangs"
    hook.write_text("#!/bin/sh\nsleep 30\n")
    hook.chmod(0o755)
    settings.DBPILOT_HOOKS_DIR = tmp_path
    settings.DBPILOT_HOOK_TIMEOUT_SECONDS = 1.0
    sandbox = sandbox_factory(3, semi_sync=True)
    create_check_user(sandbox)
    cluster = failover_helpers.register_cluster(sandbox, failover_mode="automatic")
    assert cluster.failover_armed
    failover_helpers.tick(cluster)
    directory = private_dir("hf-")
    write_port = free_port()
    from clusters.services import routing

    route, _ = routing.create_route(
        cluster,
        {
            "kind": "haproxy",
            "runtime_api": f"unix://{directory}/admin.sock",
            "write_backend": "db_write",
            "read_backend": "db_read",
            "check_inter_ms": 300,
            "write_bind": f"127.0.0.1:{write_port}",
            "read_bind": f"127.0.0.1:{free_port()}",
        },
        requested_by="test",
    )
    script, _ = routing.create_route(cluster, {"kind": "script", "script": "hangs"}, requested_by="test")
    haproxy = HaproxyProcess(directory, routing.haproxy_config(route)).start()
    try:
        assert server_id_through(write_port, sandbox) == 1
        killed_at = time.monotonic()
        sandbox.kill(1, signal.SIGKILL)
        job = failover_helpers.tick_until(
            cluster, lambda: failover_helpers.finished_failover(cluster), message="the failover"
        )
        assert job.state == "succeeded", job.result
        assert job.result["routes_ok"] is False
        routes_step = next(s for s in job.steps if s["name"] == "routes_new_primary")
        assert (
            routes_step["state"] == "failed" and "hangs killed after 1.0s (timeout)" in routes_step["detail"]
        )
        by_route = {r["route"]: r for r in job.result["routes"]["primary_changed"]}
        assert (
            by_route[f"haproxy:{route.pk}"]["ok"] is True and by_route[f"script:{script.pk}"]["ok"] is False
        )
        new = node_of(sandbox, job.result["new_primary"])
        app = sandbox.accounts.app
        while True:  # the first write through HAProxy after the kill
            try:
                with (
                    pymysql.connect(
                        host="127.0.0.1",
                        port=write_port,
                        user=app.user,
                        password=app.password,
                        database="app",
                        connect_timeout=1,
                        autocommit=True,
                    ) as conn,
                    conn.cursor() as cur,
                ):
                    cur.execute("CREATE TABLE IF NOT EXISTS routed_failover (id INT PRIMARY KEY)")
                    break
            except pymysql.err.MySQLError:
                assert time.monotonic() - killed_at < 30, "no write through HAProxy within 30 s of the kill"
                time.sleep(0.01)
        assert {server_id_through(write_port, sandbox) for _ in range(6)} == {new}

        # The old primary comes back (read-only, fenced): HAProxy sends it no session.
        sandbox.start(1)
        assert {server_id_through(write_port, sandbox) for _ in range(6)} == {new}
        assert app_sessions(sandbox, 1) == 0
        route.refresh_from_db()
        assert route.last_sync_ok is True and route.last_sync_trigger == "job"
        script.refresh_from_db()
        assert script.last_sync_ok is False and "timeout" in script.last_sync_detail
    finally:
        haproxy.stop()
        remove_dir(directory)
