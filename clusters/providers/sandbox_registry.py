"""The sandboxes under one root directory: their state files, the lock that serialises allocation, the
choice of free ports and namespace indexes, and finding what crashed runs left behind.

Several processes (test runs, the demo, benchmarks) create sandboxes under the same root at once; a
sandbox's state file is written while the lock is held, so the ports it chose are never chosen twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clusters.providers import netns as netns_fabric
from clusters.providers.errors import SandboxError

DEFAULT_ROOT = Path("/tmp/dbp")
STATE_FILE = "sandbox.json"
NAME = re.compile(r"\A[a-z0-9][a-z0-9-]{0,30}\Z")
LOOPBACK = "127.0.0.1"
# Below the kernel's ephemeral range (32768+), so a client's source port never takes a node's port.
AUTO_PORTS = range(21000, 32000)


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SandboxError(f"sandbox name {name!r}: use 1-31 lowercase letters, digits and dashes")
    return name


@contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """Held while choosing ports or namespace indexes and while changing the shared bridge."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_state(root: Path, name: str) -> dict:
    path = root / name / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SandboxError(f"there is no sandbox named {name!r} under {root}") from None
    except ValueError:
        raise SandboxError(
            f"the state file {path} is damaged: remove the sandbox with `sandbox down {name}`"
        ) from None


def write_state(root: Path, name: str, state: dict) -> None:
    path = root / name / STATE_FILE
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=1)
    temporary.replace(path)


def other_states(root: Path, name: str) -> list[dict]:
    states = []
    for path in root.glob(f"*/{STATE_FILE}"):
        if path.parent.name == name:
            continue
        try:
            states.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return states


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As mariadbd does, so a port whose old connections linger in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def allocate_loopback_ports(root: Path, name: str, count: int, base_port: int | None) -> list[int]:
    """base_port..base_port+count-1 when given (each must be free), else free ports no other sandbox holds."""
    if base_port is not None:
        ports = [base_port + i for i in range(count)]
        for port in ports:
            if not port_is_free(LOOPBACK, port):
                raise SandboxError(port_taken_message(LOOPBACK, port))
        return ports
    reserved = {p for s in other_states(root, name) if not s.get("netns") for p in s.get("ports", [])}
    ports: list[int] = []
    for port in AUTO_PORTS:
        if port not in reserved and port_is_free(LOOPBACK, port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise SandboxError(
        f"no {count} free ports on {LOOPBACK} between {AUTO_PORTS.start} and {AUTO_PORTS.stop}"
    )


def port_taken_message(host: str, port: int) -> str:
    return (
        f"port {port} on {host} is already in use: choose another base port (--base-port) "
        "or leave it out to pick free ports"
    )


def allocate_netns_index(root: Path, name: str) -> int:
    """The lowest sandbox index (third octet of 10.231.k.x) that no live veth or other sandbox uses."""
    used = netns_fabric.used_indexes() | {
        s.get("netns_index") for s in other_states(root, name) if s.get("netns")
    }
    for index in range(1, netns_fabric.MAX_SANDBOX_INDEX + 1):
        if index not in used:
            return index
    raise SandboxError("every network-namespace sandbox index is in use: remove old sandboxes first")


def abandoned_sandboxes(root: Path) -> list[str]:
    """Temporary sandboxes (test runs, benchmarks) whose owning process has died."""
    names = []
    for path in sorted(root.glob(f"*/{STATE_FILE}")):
        try:
            owner = json.loads(path.read_text()).get("owner_pid")
        except (OSError, ValueError):
            continue
        if owner is not None and not Path(f"/proc/{owner}").exists():
            names.append(path.parent.name)
    return names


def kill_strays(root: Path, name: str) -> bool:
    """SIGKILL any mariadbd whose configuration lives in this sandbox's directory (e.g. a lost state file)."""
    marker = f"--defaults-file={root / name}/".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.startswith(marker) for arg in args[:5]):
            pids.append(int(proc.name))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)  # reaps it if it happens to be our child
            except ChildProcessError:
                pass
            time.sleep(0.02)
    return bool(pids)
