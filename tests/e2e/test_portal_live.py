"""The live topology view against the whole stack: daphne, the Celery worker and beat, Redis and a real
3-node MariaDB cluster. A replica killed with SIGKILL shows as down in the browser, and back up after a
restart, from websocket messages alone (no reload). Screenshots go to tests/output/.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.e2e.portal_server import (
    isolated_environment,
    manage,
    require_browser,
    run_interactive_scenario,
    start_portal_server,
)
from tests.services_plugin import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EMAIL, PASSWORD = "olga@acme.example", "olga-portal-pass-1"
REDIS_DB = 13  # this test's own Redis database: flushed before use


def _redis_url() -> str:
    from django.conf import settings

    base = settings.REDIS_URL.rsplit("/", 1)[0] if settings.REDIS_URL.count("/") > 2 else settings.REDIS_URL
    return f"{base}/{REDIS_DB}"


@pytest.fixture
def stack(sandbox_factory, tmp_path):
    require_browser()
    url = _redis_url()
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc}); scripts/test.sh starts one")
    sandbox = sandbox_factory(3)
    env = isolated_environment(tmp_path / "var")
    env.pop("DBPILOT_IN_MEMORY_CHANNELS")  # the worker's messages reach daphne through Redis
    env["REDIS_URL"] = url
    manage(env, "migrate", "--noinput", "-v", "0")
    token = (
        manage(
            env,
            "create_tenant",
            "acme",
            "--team",
            "ops",
            "--user",
            EMAIL,
            "--password",
            PASSWORD,
            "--token-scope",
            "admin",
        )
        .strip()
        .splitlines()[-1]
    )
    bin_dir = Path(sys.executable).parent
    processes = [
        ManagedProcess(
            "portal-live-worker",
            [
                str(bin_dir / "celery"),
                "-A",
                "controlplane",
                "worker",
                "-n",
                "portal-live@%h",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        ),
        ManagedProcess(
            "portal-live-beat",
            [str(bin_dir / "celery"), "-A", "controlplane", "beat", "-s", str(tmp_path / "beat-schedule")],
            env,
        ),
    ]
    daphne, base = start_portal_server(env, name="portal-live-daphne")
    processes.append(daphne)
    described = sandbox.describe()
    body = {
        "name": "orders",
        "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
        "credentials": described["credentials"]["admin"],
        "replication_credentials": described["credentials"]["replication"],
    }
    request = urllib.request.Request(
        f"{base}/api/v1/clusters/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        cluster = json.loads(response.read())
    yield {"base": base, "cluster": cluster, "sandbox": sandbox, "processes": processes}
    for process in processes:
        process.stop()


def test_portal_shows_a_replica_going_down_and_back_live(stack):
    sandbox = stack["sandbox"]
    replica = f"{sandbox.host(3)}:{sandbox.port(3)}"
    result = run_interactive_scenario(
        "portal_live.mjs",
        {
            "PORTAL_URL": stack["base"],
            "CLUSTER_ID": str(stack["cluster"]["id"]),
            "REPLICA": replica,
            "EMAIL": EMAIL,
            "PASSWORD": PASSWORD,
        },
        handlers={"kill_replica": lambda: sandbox.kill(3), "start_replica": lambda: sandbox.start(3)},
    )
    logs = "\n".join(f"--- {p.name}\n{p.log_text()[-1500:]}" for p in stack["processes"])
    assert "failure" not in result, f"{result.get('failure')}\nsteps: {result['steps']}\n{logs}"
    steps = {step["name"]: step for step in result["steps"]}
    assert steps["healthy"]["primary"] == f"{sandbox.host(1)}:{sandbox.port(1)}"
    down = steps["replica_down"]
    assert down["same_page"], "the page reloaded"
    assert replica in down["findings"]
    assert any(replica in row for row in down["events"]), down["events"]
    print(
        f"replica shown down {down['seconds']:.1f} s after SIGKILL; "
        f"shown up {steps['replica_back']['seconds']:.1f} s after the restart returned"
    )
    assert steps["replica_back"]["same_page"]
    assert result["errors"] == [], result["errors"]
