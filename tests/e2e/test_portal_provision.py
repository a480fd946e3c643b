"""Create a cluster from the portal against the whole stack (daphne, a Celery worker on every queue and
beat, Redis): the provision job runs on the `long` queue with the local provider, its steps complete on
the job page, and the three servers show up in the topology graph. Screenshots go to tests/output/."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import redis

from tests.e2e.portal_server import (
    isolated_environment,
    manage,
    require_browser,
    run_scenario,
    start_portal_server,
)
from tests.services_plugin import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EMAIL, PASSWORD = "pia@acme.example", "pia-portal-pass-1"


@pytest.fixture
def stack(tmp_path):
    require_browser()
    from django.conf import settings

    url = settings.REDIS_URL  # the run's own Redis database: flushed before use
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc}); scripts/test.sh starts one")
    # The servers' directory must be reachable by the `mysql` user (pytest's tmp_path is not).
    Path("/tmp/dbp").mkdir(exist_ok=True)
    data_root = Path(tempfile.mkdtemp(prefix="e2e", dir="/tmp/dbp"))
    os.chmod(data_root, 0o755)
    env = isolated_environment(data_root)
    env.pop("DBPILOT_IN_MEMORY_CHANNELS")  # the worker's messages reach daphne through Redis
    env["REDIS_URL"] = url
    env["DBPILOT_LOCAL_PORTS"] = "20400-20499"
    manage(env, "migrate", "--noinput", "-v", "0")
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
    bin_dir = Path(sys.executable).parent
    processes = [
        ManagedProcess(
            "portal-provision-worker",
            [
                str(bin_dir / "celery"),
                "-A",
                "controlplane",
                "worker",
                "-n",
                "portal-provision@%h",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        ),
        ManagedProcess(
            "portal-provision-beat",
            [str(bin_dir / "celery"), "-A", "controlplane", "beat", "-s", str(tmp_path / "beat-schedule")],
            env,
        ),
    ]
    daphne, base = start_portal_server(env, name="portal-provision-daphne")
    processes.append(daphne)
    yield {"base": base, "processes": processes}
    for process in processes:
        process.stop()
    from clusters.providers.local_provider import LocalProvider

    provider = LocalProvider(data_root / "servers", "20400-20499")
    for instance in provider.instances():
        provider.destroy(instance)
    shutil.rmtree(data_root, ignore_errors=True)


def test_create_a_cluster_from_the_portal_and_watch_it_come_up(stack):
    result = run_scenario(
        "portal_provision.mjs",
        {"PORTAL_URL": stack["base"], "EMAIL": EMAIL, "PASSWORD": PASSWORD},
        timeout=240,
    )
    logs = "\n".join(f"--- {p.name}\n{p.log_text()[-1500:]}" for p in stack["processes"])
    assert "failure" not in result, f"{result.get('failure')}\nsteps: {result['steps']}\n{logs}"
    steps = {step["name"]: step for step in result["steps"]}
    assert steps["provisioned"]["steps"] == ["ok"] * 7
    assert steps["topology"]["primary"]
    assert "rebuild job" in steps["rebuilt"]["title"] and steps["rebuilt"]["steps"] == ["ok"] * 7
    print(f"provisioned from the portal in {steps['provisioned']['seconds']:.1f} s")
    assert result["errors"] == [], result["errors"]
