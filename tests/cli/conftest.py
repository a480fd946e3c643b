"""The whole stack for the CLI tests, once per module: daphne (HTTP and websockets), a Celery worker for
every queue, beat, Redis (REDIS_URL's database, flushed) and a real 3-node semi-sync MariaDB sandbox; the
tenant `acme` with team `ops` and an admin-scoped token. The CLI under test is the installed console
script (`.venv/bin/dbpilot`), run as a subprocess; every call is appended to tests/output/cli-transcript.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.e2e.portal_server import isolated_environment, manage, start_portal_server
from tests.sandbox_plugin import _new_sandbox
from tests.services_plugin import OUTPUT, ManagedProcess

DBPILOT = Path(sys.executable).parent / "dbpilot"
TRANSCRIPT = OUTPUT / "cli-transcript.txt"
ADMIN_EMAIL = "amara@acme.example"


@dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclass
class Stack:
    base: str
    token: str
    env: dict
    hooks: Path
    tmp: Path
    sandbox: object
    processes: list = field(default_factory=list)
    extra_sandboxes: list = field(default_factory=list)

    def cli_env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBPILOT_")}
        env.update(
            DBPILOT_URL=self.base,
            DBPILOT_TOKEN=self.token,
            XDG_CONFIG_HOME=str(self.tmp / "config"),
            COLUMNS="150",
            NO_COLOR="1",
        )
        env.update(extra)
        return env

    def dbp(self, *args: str, env: dict | None = None, timeout: float = 90, record: bool = True) -> Result:
        """Run the installed CLI; record the command and its output in the transcript."""
        proc = subprocess.run(
            [str(DBPILOT), *args], env=env or self.cli_env(), capture_output=True, text=True, timeout=timeout
        )
        if record:
            with open(TRANSCRIPT, "a") as handle:
                handle.write(
                    f"$ dbpilot {' '.join(args)}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}]\n\n"
                )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(DBPILOT), *args],
            env=self.cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def address(self, node: int) -> str:
        return f"{self.sandbox.host(node)}:{self.sandbox.port(node)}"


def wait_until(what: str, predicate, timeout: float, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc})")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    TRANSCRIPT.write_text("")
    tmp = tmp_path_factory.mktemp("cli")
    sandbox = _new_sandbox(3, semi_sync=True)
    sandbox.up()
    env = isolated_environment(tmp / "var")
    env.pop("DBPILOT_IN_MEMORY_CHANNELS")  # the worker's messages reach daphne through Redis
    env["REDIS_URL"] = url
    hooks = tmp / "hooks"
    hooks.mkdir()
    # A pre_failover hook that holds 3 s, so a job's steps visibly progress; a script route that logs.
    (hooks / "hold-3s").write_text("#!/bin/sh\nsleep 3\n")
    (hooks / "hold-1s").write_text("#!/bin/sh\nsleep 1\n")
    (hooks / "route-log").write_text(f'#!/bin/sh\necho "$@" >> {tmp}/route-log.txt\n')
    (hooks / "pre-failover.sh").write_text("#!/bin/sh\nexit 0\n")
    for script in hooks.iterdir():
        script.chmod(0o755)
    env["DBPILOT_HOOKS_DIR"] = str(hooks)
    stack = None
    processes: list[ManagedProcess] = []
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        token = (
            manage(
                env,
                "create_tenant",
                "acme",
                "--team",
                "ops",
                "--user",
                ADMIN_EMAIL,
                "--password",
                "amara-cli-pass-1",
                "--token-scope",
                "admin",
            )
            .strip()
            .splitlines()[-1]
        )
        bin_dir = Path(sys.executable).parent
        processes += [
            ManagedProcess(
                "cli-worker",
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "controlplane",
                    "worker",
                    "-n",
                    "cli@%h",
                    "--concurrency",
                    "3",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env,
            ),
            ManagedProcess(
                "cli-beat",
                [str(bin_dir / "celery"), "-A", "controlplane", "beat", "-s", str(tmp / "beat-schedule")],
                env,
            ),
        ]
        daphne, base = start_portal_server(env, name="cli-daphne")
        processes.append(daphne)
        stack = Stack(
            base=base, token=token, env=env, hooks=hooks, tmp=tmp, sandbox=sandbox, processes=processes
        )
        yield stack
    finally:
        for process in processes:
            process.stop()
        for extra in stack.extra_sandboxes if stack else []:
            extra.destroy()
        sandbox.destroy()
