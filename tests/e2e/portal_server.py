"""Helpers for browser tests: a real dbpilot ASGI server (daphne) on a free loopback port, and the
Node scenarios (playwright-core + Debian's Chromium) that drive the portal in it.

The server gets its own data root (a fresh SQLite database, generated secrets) unless the caller passes
an environment that points at a shared database (e.g. tests.services_plugin.worker_environment()).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services_plugin import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
CHROMIUM = os.environ.get("DBPILOT_CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = ROOT / "frontend" / "node_modules" / "playwright-core"


def require_browser() -> None:
    """Fail (not skip) when the browser toolchain is missing: scripts/setup.sh --tests installs it."""
    missing = [
        what
        for what, ok in [
            (f"Chromium at {CHROMIUM} (apt-get install chromium)", Path(CHROMIUM).exists()),
            ("node (apt-get install nodejs)", shutil.which("node") is not None),
            ("frontend/node_modules/playwright-core (cd frontend && npm ci)", PLAYWRIGHT.exists()),
        ]
        if not ok
    ]
    if missing:
        pytest.fail("browser tests need: " + ", ".join(missing))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_environment(data_root: Path) -> dict:
    """A dbpilot environment of its own: DEBUG, a fresh SQLite DB under data_root, in-memory channels."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        DBPILOT_DATA_ROOT=str(data_root),
        DBPILOT_IN_MEMORY_CHANNELS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict, *args: str) -> str:
    """Run `manage.py ARGS` with env; return its stdout (fail the test with its output on error)."""
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def start_portal_server(env: dict, name: str = "daphne") -> tuple[ManagedProcess, str]:
    """Start daphne on a free loopback port and wait until the portal answers; returns (process, base URL)."""
    port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    process = ManagedProcess(
        name, [daphne, "-b", "127.0.0.1", "-p", str(port), "controlplane.asgi:application"], env
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not process.alive():
            pytest.fail(f"daphne exited:\n{process.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/login", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    process.stop()
    pytest.fail(f"daphne did not answer on {base} within 30 s:\n{process.log_text()[-3000:]}")


def run_interactive_scenario(
    script: str, params: dict[str, str], handlers: dict, timeout: float = 180
) -> dict:
    """Like run_scenario, for scenarios that call `signal(NAME)` (browser.mjs): handlers[NAME]() runs here
    (e.g. kills a server) and its return value, as text, is the scenario's answer."""
    env = dict(os.environ, E2E_OUTPUT=str(OUTPUT), DBPILOT_CHROMIUM=CHROMIUM, **params)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    stderr = open(OUTPUT / f"{Path(script).stem}.stderr", "w+")
    proc = subprocess.Popen(
        ["node", str(Path(__file__).parent / script)],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    deadline = time.monotonic() + timeout
    result = None
    try:
        for line in proc.stdout:
            if time.monotonic() > deadline:
                pytest.fail(f"{script} ran longer than {timeout} s")
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if "signal" in message:
                answer = handlers[message["signal"]]()
                proc.stdin.write(f"{answer if answer is not None else 'ok'}\n")
                proc.stdin.flush()
            else:
                result = message
                proc.stdin.close()  # the scenario is done: let node exit
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr.seek(0)
        errors = stderr.read()
        stderr.close()
    if proc.returncode != 0 or result is None:
        pytest.fail(f"{script} exited {proc.returncode}:\n{errors[-3000:]}")
    return result


def run_scenario(script: str, params: dict[str, str], timeout: float = 120) -> dict:
    """Run tests/e2e/SCRIPT with node; PARAMS go in its environment; returns the JSON line it printed."""
    env = dict(os.environ, E2E_OUTPUT=str(OUTPUT), DBPILOT_CHROMIUM=CHROMIUM, **params)
    proc = subprocess.run(
        ["node", str(Path(__file__).parent / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
