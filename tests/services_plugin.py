"""Fixtures for real services: Redis (from REDIS_URL), and dbpilot's own Celery worker and beat as processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "output"


@pytest.fixture(scope="session")
def redis_client():
    """The Redis that settings.REDIS_URL names; the test command starts one on a private port."""
    from django.conf import settings

    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        client.ping()
    except redis_lib.RedisError as exc:
        pytest.fail(f"Redis at {settings.REDIS_URL} does not answer ({exc}); scripts/test.sh starts one")
    return client


@pytest.fixture
def clean_redis(redis_client):
    redis_client.flushdb()
    yield redis_client
    redis_client.flushdb()


def worker_environment() -> dict:
    """Environment for a dbpilot process that must share the test database and Redis."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "controlplane.test_settings"
    env["REDIS_URL"] = settings.REDIS_URL
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ManagedProcess:
    """A child process with its output in tests/output/, stopped at teardown."""

    def __init__(self, name: str, argv: list[str], env: dict):
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUTPUT / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def start_worker(name: str = "worker", queues: str | None = None, concurrency: int = 2) -> ManagedProcess:
    argv = [
        _bin("celery"),
        "-A",
        "controlplane",
        "worker",
        "-n",
        f"{name}@%h",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    if queues:
        argv += ["-Q", queues]
    return ManagedProcess(name, argv, worker_environment())


def start_beat(name: str = "beat") -> ManagedProcess:
    schedule = OUTPUT / f"{name}-schedule"
    argv = [_bin("celery"), "-A", "controlplane", "beat", "--loglevel", "INFO", "-s", str(schedule)]
    return ManagedProcess(name, argv, worker_environment())


@pytest.fixture
def dbpilot_processes(transactional_db, clean_redis):
    """Start dbpilot's worker(s) and beat as real processes; yields a dict of ManagedProcess."""
    started: dict[str, ManagedProcess] = {}

    def start(kind: str = "all", **kwargs) -> ManagedProcess:
        process = start_beat(**kwargs) if kind == "beat" else start_worker(**kwargs)
        started[process.name] = process
        return process

    yield start
    for process in started.values():
        process.stop()


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll until predicate() is truthy; return its value or fail with a message."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.1f}s waiting for {message} (last: {last!r})")
