"""The control-plane database restarts: a private PostgreSQL under a real web server (daphne, DEBUG off).
While PostgreSQL is stopped the API answers 503 JSON `{"detail", "code"}` (never a 500 page); once it is
back the API answers again by itself, and what was committed before is still there."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.chaos.conftest import free_port
from tests.services_plugin import ROOT, ManagedProcess, wait_for


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(found[-1]) if found else None


class PrivatePostgres:
    def __init__(self):
        self.bin = _pg_bin()
        self.top = Path(tempfile.mkdtemp(prefix="dbpilot-chaos-pg-"))  # not under pytest's root-only tmp
        self.top.chmod(0o755)
        self.dir = self.top / "pg"
        self.port = free_port()
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres")
        self._as_postgres(self.bin / "initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres")

    def _as_postgres(self, *argv) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, argv)], check=True, capture_output=True, timeout=60
        )

    def start(self) -> None:
        self._as_postgres(
            self.bin / "pg_ctl",
            "-D",
            self.dir,
            "-l",
            self.dir / "server.log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.dir, "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.dir / "postmaster.pid").exists()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/dbpilot"


@pytest.fixture
def postgres():
    if _pg_bin() is None or os.geteuid() != 0:
        pytest.fail(
            "needs Debian's postgresql and root (to run it as the postgres user), as scripts/test.sh does"
        )
    server = PrivatePostgres()
    try:
        server.start()
        server._as_postgres(
            server.bin / "createdb", "-h", "127.0.0.1", "-p", server.port, "-U", "postgres", "dbpilot"
        )
        yield server
    finally:
        if server.running():
            server.stop()
        shutil.rmtree(server.top, ignore_errors=True)


def _get(url: str, token: str) -> tuple[int, str, dict | None]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, content_type, body = (
                response.status,
                response.headers.get("Content-Type", ""),
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        status, content_type, body = exc.code, exc.headers.get("Content-Type", ""), exc.read()
    try:
        return status, content_type, json.loads(body)
    except ValueError:
        return status, content_type, None


def test_the_api_answers_503_json_while_postgresql_restarts_then_recovers(postgres, tmp_path):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        DATABASE_URL=postgres.url,
        DEBUG="0",
        SECRET_KEY="chaos-test-secret-key-" + "x" * 40,
        DBPILOT_TOKEN_PEPPER="chaos-pepper",
        DBPILOT_FERNET_KEYS=Fernet.generate_key().decode(),
        DBPILOT_DATA_ROOT=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=120, cwd=ROOT)
    created = subprocess.run(
        [
            *manage,
            "create_tenant",
            "chaos",
            "--team",
            "ops",
            "--user",
            "ops@example.com",
            "--token-scope",
            "read",
        ],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    token = created.stdout.strip().splitlines()[-1]
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
            lambda: (lambda r: r if r[0] == 200 else None)(_get(url, token)) if _listening(port) else None,
            30,
            interval=0.2,
            message="the web server",
        )
        clusters_before = first[2]

        postgres.stop()
        stopped_at = time.monotonic()
        seen = []
        while time.monotonic() - stopped_at < 3:
            seen.append(_get(url, token))
            time.sleep(0.2)
        statuses = {status for status, _, _ in seen}
        assert statuses == {503}, statuses
        for _, content_type, body in seen:
            assert content_type.startswith("application/json")
            assert body["code"] == "database_unavailable" and body["detail"], body

        postgres.start()
        restarted_at = time.monotonic()
        status, _, body = wait_for(
            lambda: (lambda r: r if r[0] != 503 else None)(_get(url, token)),
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


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
