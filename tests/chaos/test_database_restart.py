"""The control-plane database restarts: a private PostgreSQL under a real web server (daphne, DEBUG off).
While PostgreSQL is stopped the API answers 503 JSON `{"detail", "code"}` (never a 500 page); once it is
back the API answers again by itself, and what was committed before is still there."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tests.chaos.conftest import api, control_plane_env, create_tenant_token, free_port, listening
from tests.services_plugin import ManagedProcess, wait_for


def test_the_api_answers_503_json_while_postgresql_restarts_then_recovers(postgres, tmp_path):
    env = control_plane_env(postgres.url, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), tmp_path)
    token = create_tenant_token(env, "read")
    port = free_port()
    web = ManagedProcess(
        "chaos-web",
        [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "controlplane.asgi:application",
        ],
        env,
    )
    url = f"http://127.0.0.1:{port}/api/v1/clusters/"
    try:
        first = wait_for(
            lambda: (
                (lambda r: r if r[0] == 200 else None)(api("GET", url, token)) if listening(port) else None
            ),
            30,
            interval=0.2,
            message="the web server",
        )
        clusters_before = first[2]

        postgres.stop()
        stopped_at = time.monotonic()
        seen = []
        while time.monotonic() - stopped_at < 3:
            seen.append(api("GET", url, token))
            time.sleep(0.2)
        statuses = {status for status, _, _ in seen}
        assert statuses == {503}, statuses
        for _, content_type, body in seen:
            assert content_type.startswith("application/json")
            assert body["code"] == "database_unavailable" and body["detail"], body

        postgres.start()
        restarted_at = time.monotonic()
        status, _, body = wait_for(
            lambda: (lambda r: r if r[0] != 503 else None)(api("GET", url, token)),
            20,
            interval=0.2,
            message="the API to answer again",
        )
        print(
            f"503 while PostgreSQL was down; the API answered {status} "
            f"{time.monotonic() - restarted_at:.2f}s after PostgreSQL started again"
        )
        assert status == 200 and body == clusters_before  # recovered by itself; nothing committed was lost
    finally:
        web.stop()
