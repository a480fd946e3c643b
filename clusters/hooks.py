"""The hooks runner: operator-installed scripts, chosen by name, run with one argument contract.

A tenant only ever names a hook (a cluster setting such as `pre_failover: "drop-vip"`); the script itself
must already sit in `settings.DBPILOT_HOOKS_DIR`, installed by the platform operator. So the name must
match a strict pattern (no path, no `..`), resolve to a regular, executable file inside that directory
(symlinks are followed only while they stay inside it), and run without a shell:

    argv: NAME EVENT PHASE CLUSTER OLD_PRIMARY NEW_PRIMARY
    env:  PATH, DBPILOT_EVENT, DBPILOT_PHASE, DBPILOT_CLUSTER, DBPILOT_OLD_PRIMARY, DBPILOT_NEW_PRIMARY

EVENT is `switchover`, `failover` or `fence`; PHASE `pre` or `post`; CLUSTER `tenant/name`; addresses
`host:port` (IPv6 `[addr]:port`), empty when unknown. Nothing else of dbpilot's environment (no secrets)
reaches the script. It runs in its own process group, killed whole at the timeout
(`DBPILOT_HOOK_TIMEOUT_SECONDS`); its combined stdout and stderr are kept up to `OUTPUT_LIMIT` bytes. Exit
code 0 is success. docs/hooks.md is the operator's guide.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings

from clusters.domain.settings import HOOK_NAME

EVENTS = ("switchover", "failover", "fence")
PHASES = ("pre", "post")
OUTPUT_LIMIT = 16 * 1024
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class HookError(ValueError):
    """The hook cannot be run at all (bad name, missing, not executable, outside the directory)."""


@dataclass(frozen=True)
class HookResult:
    name: str
    ok: bool
    exit_code: int | None  # None when it was killed at the timeout or could not start
    timed_out: bool
    duration_ms: float
    output: str
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.error:
            return f"hook {self.name}: {self.error}"
        if self.timed_out:
            return f"hook {self.name} killed after {self.duration_ms / 1000:.1f}s (timeout)"
        return f"hook {self.name} exited {self.exit_code} after {self.duration_ms:.0f} ms"


def hooks_dir() -> Path:
    return Path(settings.DBPILOT_HOOKS_DIR)


def resolve_hook(name: str) -> Path:
    """The script's path inside the hooks directory; HookError saying what is wrong otherwise."""
    if not isinstance(name, str) or not HOOK_NAME.fullmatch(name) or name in (".", ".."):
        raise HookError(f"{name!r} is not a hook name (letters, digits, . _ -; no path)")
    directory = hooks_dir()
    try:
        root = directory.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise HookError(f"the hooks directory {directory} does not exist") from None
    candidate = directory / name
    try:
        target = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise HookError(f"no hook named {name!r} in {directory}") from None
    except RuntimeError:  # a symlink loop
        raise HookError(f"hook {name!r} is a symlink loop") from None
    if target.parent != root and root not in target.parents:
        raise HookError(f"hook {name!r} points outside the hooks directory")
    if not target.is_file():
        raise HookError(f"hook {name!r} is not a regular file")
    if not os.access(target, os.X_OK):
        raise HookError(f"hook {name!r} is not executable")
    return target


def hook_environment(
    event: str, phase: str, cluster: str, old_primary: str, new_primary: str
) -> dict[str, str]:
    return {
        "PATH": SAFE_PATH,
        "DBPILOT_EVENT": event,
        "DBPILOT_PHASE": phase,
        "DBPILOT_CLUSTER": cluster,
        "DBPILOT_OLD_PRIMARY": old_primary,
        "DBPILOT_NEW_PRIMARY": new_primary,
    }


def _read_bounded(stream, sink: bytearray) -> None:
    """Keep the first OUTPUT_LIMIT bytes, drain the rest so the script never blocks on a full pipe."""
    while True:
        chunk = stream.read(4096)
        if not chunk:
            break
        room = OUTPUT_LIMIT - len(sink)
        if room > 0:
            sink.extend(chunk[:room])
    stream.close()


def run_hook(
    name: str,
    *,
    event: str,
    phase: str,
    cluster: str,
    old_primary: str = "",
    new_primary: str = "",
    timeout: float | None = None,
) -> HookResult:
    """Run one hook; never raises for the script's own failures (they are in the result)."""
    if event not in EVENTS or phase not in PHASES:
        raise ValueError(f"hook event {event!r} / phase {phase!r}: use {EVENTS} and {PHASES}")
    timeout = float(timeout if timeout is not None else settings.DBPILOT_HOOK_TIMEOUT_SECONDS)
    started = time.monotonic()
    try:
        path = resolve_hook(name)
    except HookError as exc:
        return HookResult(name, False, None, False, 0.0, "", str(exc))
    argv = [str(path), event, phase, cluster, old_primary or "", new_primary or ""]
    try:
        process = subprocess.Popen(
            argv,
            cwd=str(path.parent),
            env=hook_environment(event, phase, cluster, old_primary or "", new_primary or ""),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the timeout kills its children too
            close_fds=True,
        )
    except OSError as exc:
        return HookResult(
            name,
            False,
            None,
            False,
            (time.monotonic() - started) * 1000,
            "",
            f"could not start: {exc.strerror or exc}",
        )
    output = bytearray()
    reader = threading.Thread(target=_read_bounded, args=(process.stdout, output), daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    # Children that kept the pipe open after the script exited must not hold the job up.
    reader.join(1.0)
    if reader.is_alive():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reader.join(1.0)
    text = bytes(output).decode("utf-8", errors="replace")
    exit_code = None if timed_out else process.returncode
    return HookResult(name, exit_code == 0, exit_code, timed_out, (time.monotonic() - started) * 1000, text)
