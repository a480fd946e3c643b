"""The whole stack for the CLI tests, once per module: daphne (HTTP and websockets), a Celery worker for
every queue, beat, Redis (REDIS_URL's database, flushed) and a real 3-node semi-sync MariaDB sandbox (the
`stack` fixture; `provisioning_stack` has none: its servers are provisioned by the local provider under a
data root the `mysql` user can traverse, on ports of their own, destroyed afterwards); the tenant `acme`
with team `ops` and an admin-scoped token, and a platform operator. The CLI under test is the installed
console script (`.venv/bin/dbpilot`), run as a subprocess; every call is appended to
tests/output/cli-transcript.txt (tests/output/cli-provisioning-transcript.txt for provisioning).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.e2e.portal_server import isolated_environment, manage, start_portal_server
from tests.sandbox_plugin import _new_sandbox
from tests.services_plugin import OUTPUT, ManagedProcess

DBPILOT = Path(sys.executable).parent / "dbpilot"
TRANSCRIPT = OUTPUT / "cli-transcript.txt"
PROVISIONING_TRANSCRIPT = OUTPUT / "cli-provisioning-transcript.txt"
ADMIN_EMAIL = "amara@acme.example"
OPERATOR_EMAIL = "olu@platform.example"
OPERATOR_PASSWORD = "olu-operator-pass-1"
LOCAL_PORTS = "20700-20899"  # the provisioning tests' own range (the integration tests use 20100-20399)


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
    transcript: Path = TRANSCRIPT

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
            with open(self.transcript, "a") as handle:
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


@contextmanager
def running_stack(tmp: Path, *, sandbox_nodes: int, transcript: Path):
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc})")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    transcript.write_text("")
    sandbox = _new_sandbox(sandbox_nodes, semi_sync=True) if sandbox_nodes else None
    if sandbox is not None:
        sandbox.up()
    # Provisioned servers run as `mysql`: every directory above their data must be traversable by it
    # (pytest's own tmp directories are 0700); short, for the sockets' 108-byte limit.
    data_root = Path(tempfile.mkdtemp(prefix="cli", dir="/tmp/dbp" if Path("/tmp/dbp").is_dir() else None))
    os.chmod(data_root, 0o755)
    env = isolated_environment(data_root / "var")
    env.pop("DBPILOT_IN_MEMORY_CHANNELS")  # the worker's messages reach daphne through Redis
    env["REDIS_URL"] = url
    env["DBPILOT_LOCAL_PORTS"] = LOCAL_PORTS
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
        manage(
            {**env, "DJANGO_SUPERUSER_PASSWORD": OPERATOR_PASSWORD},
            "createsuperuser",
            "--noinput",
            "--username",
            OPERATOR_EMAIL,
            "--email",
            OPERATOR_EMAIL,
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
            base=base,
            token=token,
            env=env,
            hooks=hooks,
            tmp=tmp,
            sandbox=sandbox,
            processes=processes,
            transcript=transcript,
        )
        yield stack
    finally:
        for process in processes:
            process.stop()
        for extra in stack.extra_sandboxes if stack else []:
            extra.destroy()
        if sandbox is not None:
            sandbox.destroy()
        _destroy_provisioned(data_root / "var" / "servers")
        shutil.rmtree(data_root, ignore_errors=True)


def _destroy_provisioned(root: Path) -> None:
    """Every server the local provider started under `root`, killed with its data (none left behind)."""
    if not root.is_dir():
        return
    from clusters.providers.local_provider import LocalProvider

    provider = LocalProvider(root, LOCAL_PORTS)
    for instance in provider.instances():
        provider.destroy(instance)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("cli"), sandbox_nodes=3, transcript=TRANSCRIPT) as running:
        yield running


@pytest.fixture(scope="module")
def provisioning_stack(tmp_path_factory):
    with running_stack(
        tmp_path_factory.mktemp("cliprov"), sandbox_nodes=0, transcript=PROVISIONING_TRANSCRIPT
    ) as running:
        yield running
