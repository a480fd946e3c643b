"""The chaos suite: faults injected into dbpilot's own processes and services (beat, Redis through
Sentinel, the PostgreSQL control-plane database), each test bounded in time. Every test here carries the
`chaos` marker: `pytest -m chaos tests/chaos` runs them alone."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.services_plugin import ROOT


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/chaos/" in str(item.path):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.timeout(150))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")


def log_times(text: str, *needles: str) -> list[float]:
    """Epoch times of the Celery log lines (`[YYYY-mm-dd HH:MM:SS,mmm: ...`) that contain every needle."""
    times = []
    for line in text.splitlines():
        match = _STAMP.match(line)
        if match and all(n in line for n in needles):
            times.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times


# --- a private PostgreSQL for the control-plane database (the chaos tests that restart it) ----------------


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

    def stop(self, mode: str = "fast") -> None:
        """`fast` (clients disconnected, a clean shutdown) or `immediate` (as a crash: recovery at start)."""
        self._as_postgres(self.bin / "pg_ctl", "-D", self.dir, "-m", mode, "-w", "stop")

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


def control_plane_env(database_url: str, redis_url: str, data_root) -> dict:
    """The environment of dbpilot's own processes (web, worker, beat) run as in production: the real
    settings, DEBUG off, on the given control-plane database and Redis; servers on loopback allowed."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DEBUG="0",
        SECRET_KEY="chaos-test-secret-key-" + "x" * 40,
        DBPILOT_TOKEN_PEPPER="chaos-pepper",
        DBPILOT_FERNET_KEYS=Fernet.generate_key().decode(),
        DBPILOT_DATA_ROOT=str(data_root),
        DBPILOT_ALLOWED_NETWORKS="127.0.0.0/8",
        PYTHONUNBUFFERED="1",
    )
    return env


def create_tenant_token(env: dict, scope: str) -> str:
    """migrate, then `manage.py create_tenant`: the new team token of that scope."""
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
            scope,
        ],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return created.stdout.strip().splitlines()[-1]


def api(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, str, dict | None]:
    """One API call: (status, content type, JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, content_type, raw = (
                response.status,
                response.headers.get("Content-Type", ""),
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        status, content_type, raw = exc.code, exc.headers.get("Content-Type", ""), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, "", {"error": str(exc)}
    try:
        return status, content_type, json.loads(raw)
    except ValueError:
        return status, content_type, None


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
