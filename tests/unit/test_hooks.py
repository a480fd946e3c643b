"""The hooks runner: only scripts by name from the operator's directory, the argument and environment
contract, a scrubbed environment, the timeout that kills the whole process group, bounded output."""

from __future__ import annotations

import os
import time

import pytest

from clusters.hooks import OUTPUT_LIMIT, HookError, resolve_hook, run_hook

pytestmark = pytest.mark.unit

CONTRACT = dict(
    event="switchover",
    phase="pre",
    cluster="acme/main",
    old_primary="10.0.0.1:3306",
    new_primary="[fd00::2]:3306",
)


@pytest.fixture
def hooks(tmp_path, settings):
    directory = tmp_path / "hooks"
    directory.mkdir()
    settings.DBPILOT_HOOKS_DIR = directory
    settings.DBPILOT_HOOK_TIMEOUT_SECONDS = 5

    def install(name: str, body: str, mode: int = 0o755):
        path = directory / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(mode)
        return path

    install.dir = directory
    return install


def test_a_hook_gets_the_contract_in_argv_and_environment_and_nothing_else(hooks, monkeypatch):
    monkeypatch.setenv("DBPILOT_FERNET_KEYS", "must-not-leak")
    monkeypatch.setenv("SECRET_KEY", "must-not-leak")
    hooks("show", 'printf "%s|" "$@"; echo; env | sort')
    result = run_hook("show", **CONTRACT)
    assert result.ok and result.exit_code == 0 and not result.timed_out
    argv, _, env_text = result.output.partition("\n")
    assert argv == "switchover|pre|acme/main|10.0.0.1:3306|[fd00::2]:3306|"
    env = dict(line.split("=", 1) for line in env_text.strip().splitlines())
    assert env["DBPILOT_EVENT"] == "switchover" and env["DBPILOT_PHASE"] == "pre"
    assert env["DBPILOT_CLUSTER"] == "acme/main"
    assert env["DBPILOT_OLD_PRIMARY"] == "10.0.0.1:3306" and env["DBPILOT_NEW_PRIMARY"] == "[fd00::2]:3306"
    # sh adds PWD, SHLVL and _ itself; nothing comes from dbpilot's own environment.
    assert set(env) - {"PWD", "SHLVL", "_"} == {
        "PATH",
        "DBPILOT_EVENT",
        "DBPILOT_PHASE",
        "DBPILOT_CLUSTER",
        "DBPILOT_OLD_PRIMARY",
        "DBPILOT_NEW_PRIMARY",
    }
    assert "must-not-leak" not in result.output


def test_a_failing_hook_reports_its_exit_code_and_output(hooks):
    hooks("vip", 'echo "vip still held" >&2; exit 3')
    result = run_hook("vip", **CONTRACT)
    assert not result.ok and result.exit_code == 3
    assert "vip still held" in result.output
    assert "exited 3" in result.summary()


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "/bin/true", "a/b", "..", ".hidden", "", "x" * 101, "a b", "a;b"]
)
def test_names_that_are_not_plain_script_names_are_refused(hooks, name):
    with pytest.raises(HookError, match="not a hook name"):
        resolve_hook(name)
    result = run_hook(name, **CONTRACT)
    assert not result.ok and result.exit_code is None and "not a hook name" in result.error


def test_missing_non_executable_and_non_regular_hooks_are_refused(hooks):
    hooks("plain", "exit 0", mode=0o644)
    (hooks.dir / "adir").mkdir()
    with pytest.raises(HookError, match="no hook named"):
        resolve_hook("missing")
    with pytest.raises(HookError, match="not executable"):
        resolve_hook("plain")
    with pytest.raises(HookError, match="not a regular file"):
        resolve_hook("adir")


def test_a_symlink_may_not_leave_the_hooks_directory(hooks, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\nexit 0\n")
    outside.chmod(0o755)
    (hooks.dir / "escape").symlink_to(outside)
    with pytest.raises(HookError, match="outside the hooks directory"):
        resolve_hook("escape")
    target = hooks("real", "exit 0")
    (hooks.dir / "alias").symlink_to(target)
    assert resolve_hook("alias") == target.resolve()


def test_a_missing_hooks_directory_is_a_clear_error(settings, tmp_path):
    settings.DBPILOT_HOOKS_DIR = tmp_path / "nowhere"
    with pytest.raises(HookError, match="does not exist"):
        resolve_hook("anything")


def test_the_timeout_kills_the_whole_process_group(hooks, tmp_path):
    marker = tmp_path / "child.pid"
    hooks("hang", f"sleep 30 & echo $! > {marker}; echo started; wait")
    started = time.monotonic()
    result = run_hook("hang", **CONTRACT, timeout=0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok and result.exit_code is None
    assert "started" in result.output and "timeout" in result.summary()
    child = int(marker.read_text())
    deadline = time.monotonic() + 2
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_output_is_kept_bounded(hooks):
    hooks("chatty", "head -c 200000 /dev/zero | tr '\\0' 'x'")
    result = run_hook("chatty", **CONTRACT)
    assert result.ok
    assert len(result.output) == OUTPUT_LIMIT


def test_unknown_events_and_phases_are_programming_errors(hooks):
    hooks("ok", "exit 0")
    with pytest.raises(ValueError):
        run_hook("ok", event="deploy", phase="pre", cluster="acme/main")
