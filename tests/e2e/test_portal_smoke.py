"""The portal in a real browser against the real ASGI server: login, clusters list, cluster page with
its live link, a viewer without actions, another tenant's user getting "not found", logout.

Screenshots go to tests/output/ (not committed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.e2e.portal_server import (
    ROOT,
    isolated_environment,
    manage,
    require_browser,
    run_scenario,
    start_portal_server,
)

pytestmark = pytest.mark.e2e

ADMIN = ("alice@acme.example", "alice-portal-pass-1")
VIEWER = ("victor@acme.example", "victor-portal-pass-1")
OTHER = ("bob@globex.example", "bob-portal-pass-1")


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    require_browser()
    env = isolated_environment(tmp_path_factory.mktemp("portal-e2e"))
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "create_tenant",
        "acme",
        "--team",
        "ops",
        "--user",
        ADMIN[0],
        "--password",
        ADMIN[1],
        "--token-scope",
        "admin",
    )
    manage(
        env,
        "create_tenant",
        "globex",
        "--team",
        "dba",
        "--user",
        OTHER[0],
        "--password",
        OTHER[1],
        "--token-scope",
        "read",
    )
    seed_env = dict(
        env,
        SEED_TENANT="acme",
        SEED_TEAM="ops",
        SEED_CLUSTER="orders",
        SEED_VIEWER=VIEWER[0],
        SEED_VIEWER_PASSWORD=VIEWER[1],
    )
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", open(ROOT / "tests/e2e/seed_portal.py").read()],
        cwd=ROOT,
        env=seed_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r"cluster_id=(\d+)", seeded.stdout)
    if not match:
        pytest.fail(f"seeding failed:\n{seeded.stdout}\n{seeded.stderr}")
    process, base = start_portal_server(env)
    yield {"base": base, "cluster_id": match.group(1), "cluster_name": "orders", "process": process}
    process.stop()


def test_portal_login_clusters_and_access_in_chromium(portal):
    result = run_scenario(
        "portal_smoke.mjs",
        {
            "PORTAL_URL": portal["base"],
            "CLUSTER_ID": portal["cluster_id"],
            "CLUSTER_NAME": portal["cluster_name"],
            "ADMIN_EMAIL": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "VIEWER_EMAIL": VIEWER[0],
            "VIEWER_PASSWORD": VIEWER[1],
            "OTHER_EMAIL": OTHER[0],
            "OTHER_PASSWORD": OTHER[1],
        },
    )
    server_log = portal["process"].log_text()[-2000:]
    assert "failure" not in result, (
        f"{result.get('failure')}\nsteps: {result['steps']}\nserver log:\n{server_log}"
    )
    steps = {step["name"]: step for step in result["steps"]}

    assert steps["redirected_to_login"]["url"] == "/login"
    assert (
        "password" in steps["bad_password_message"]["text"].lower()
        or "invalid" in steps["bad_password_message"]["text"].lower()
    )
    assert steps["clusters_list"]["rows"] == 1
    assert "orders" in steps["clusters_list"]["row"]

    cluster_page = steps["cluster_page"]
    assert cluster_page["nodes"] == 3
    assert cluster_page["live"] == "Live"
    # alice administers the cluster: the operator actions are offered (enabled or with a reason).
    assert "Switchover…" in cluster_page["actions"] and "Failover…" in cluster_page["actions"]
    assert "signed_out" in steps

    viewer = steps["viewer_cluster_page"]
    assert viewer["action_buttons"] == 0 and viewer["maintenance_buttons"] == 0
    assert "view-only" in viewer["note"]

    assert "does not exist, or you do not have access" in steps["other_tenant_not_found"]["text"]
    assert result["errors"] == [], result["errors"]
    for path in result["screenshots"]:
        assert os.path.getsize(path) > 10_000
