"""The agent's operations, by name: a registry other features extend (a backup agent operation registers
itself with `@operation("name")` in a module imported by clusters.agent.tasks).

Each operation takes the agent's context and the request's arguments (already unsealed) and returns a
JSON value. Servers live under `<DBPILOT_DATA_ROOT>/servers` of the host, on ports of
`DBPILOT_LOCAL_PORTS`, bound to the host's address, exactly as the `local` provider's.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.agent.sealed_stream import SealedWriter
from clusters.providers.base import ProviderError, ServerSpec
from clusters.providers.local_provider import DEFAULT_PORTS, LocalProvider, check_backup_tools

Operation = Callable[["AgentContext", dict], Any]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    def register(function: Operation) -> Operation:
        OPERATIONS[name] = function
        return function

    return register


@dataclass
class AgentContext:
    """The agent's own configuration (from its environment) and a way to report progress."""

    host: str
    data_root: Path
    ports: str = DEFAULT_PORTS
    report: Callable[[dict], None] = lambda progress: None

    @classmethod
    def from_environment(cls, report: Callable[[dict], None] | None = None) -> AgentContext:
        host = os.environ.get("DBPILOT_AGENT_HOST", "")
        if not host:
            raise ProviderError("DBPILOT_AGENT_HOST is not set: this worker is not a dbpilot agent")
        root = Path(os.environ.get("DBPILOT_DATA_ROOT", "/var/lib/dbpilot"))
        ports = os.environ.get("DBPILOT_LOCAL_PORTS", DEFAULT_PORTS)
        return cls(host, root, ports, report or (lambda progress: None))

    def provider(self, address: str = "127.0.0.1") -> LocalProvider:
        root = self.data_root / "servers"
        root.mkdir(parents=True, exist_ok=True)
        return LocalProvider(root, self.ports, host=address)

    def clone_dir(self, instance: str) -> Path:
        path = self.data_root / "clones" / instance
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path


def spec_of(raw: dict) -> ServerSpec:
    return ServerSpec(
        instance=raw["instance"],
        server_id=int(raw["server_id"]),
        memory_mb=int(raw["memory_mb"]),
        semi_sync=bool(raw["semi_sync"]),
        parameters=dict(raw.get("parameters") or {}),
        binlog_expire_seconds=int(raw["binlog_expire_seconds"]),
        group=raw.get("group", ""),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.timedelta):
        return str(value)
    return value


@operation("ping")
def ping(agent: AgentContext, args: dict) -> dict:
    return {"host": agent.host, "instances": len(agent.provider().instances()), "time": time.time()}


@operation("create")
def create(agent: AgentContext, args: dict) -> dict:
    return agent.provider(args["address"]).create(spec_of(args["spec"])).as_dict()


@operation("start")
def start(agent: AgentContext, args: dict) -> None:
    agent.provider().start(args["instance"], args.get("root_password"), float(args.get("timeout", 60)))


@operation("stop")
def stop(agent: AgentContext, args: dict) -> None:
    agent.provider().stop(args["instance"], float(args.get("timeout", 60)))


@operation("reconfigure")
def reconfigure(agent: AgentContext, args: dict) -> bool:
    return agent.provider().reconfigure(spec_of(args["spec"]))


@operation("destroy")
def destroy(agent: AgentContext, args: dict) -> bool:
    work = agent.data_root / "clones" / args["instance"]
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return agent.provider().destroy(args["instance"])


@operation("running")
def running(agent: AgentContext, args: dict) -> bool:
    return agent.provider().running(args["instance"])


@operation("instances")
def instances(agent: AgentContext, args: dict) -> list[str]:
    return agent.provider().instances()


@operation("execute")
def execute(agent: AgentContext, args: dict) -> list[dict]:
    """SQL as the server's local root through its socket (how dbpilot creates and repairs its accounts)."""
    statements = [s if isinstance(s, str) else (s[0], tuple(s[1])) for s in args["statements"]]
    rows = agent.provider().execute(args["instance"], args.get("password"), statements)
    return [{k: _jsonable(v) for k, v in row.items()} for row in rows]


# --- cloning between hosts: the target listens, the source streams to it, the target prepares ----------


@operation("clone_receive")
def clone_receive(agent: AgentContext, args: dict) -> dict:
    """Place the new instance and start a receiver (a process of its own, so it outlives this task)
    listening on the host's address for the source agent's stream; its port."""
    check_backup_tools()
    provider = agent.provider(args["address"])
    spec = spec_of(args["spec"])
    done = provider.cloned(spec)
    placement = provider.placement(spec.instance)
    if done is not None and placement is not None:
        return {"placement": placement.as_dict(), "stream_port": 0, "gtid": done.gtid}
    target = provider.receiving_dir(spec)
    work = agent.clone_dir(spec.instance)
    for name in ("port", "status.json"):
        (work / name).unlink(missing_ok=True)
    receiver = subprocess.Popen(
        [sys.executable, "-m", "clusters.agent.receiver", args["address"], str(target), str(work)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "receiver.log", "wb"),  # noqa: SIM115 - the receiver owns it from now on
        start_new_session=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    receiver.stdin.write(args["token"].encode() + b"\n")
    receiver.stdin.close()
    deadline = time.monotonic() + 15
    while not (work / "port").exists():
        if receiver.poll() is not None or time.monotonic() > deadline:
            raise ProviderError(
                f"the clone receiver on {agent.host} did not start: "
                + (work / "receiver.log").read_text(errors="replace")[-500:],
                permanent=False,
            )
        time.sleep(0.02)
    placement = provider.placement(spec.instance)
    return {"placement": placement.as_dict(), "stream_port": int((work / "port").read_text())}


@operation("clone_send")
def clone_send(agent: AgentContext, args: dict) -> dict:
    """Stream mariadb-backup of a running instance of this host to the target agent's receiver."""
    import socket

    started = time.monotonic()
    last = [0.0]

    def progress(copied: int) -> None:
        if time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            agent.report({"bytes": copied})

    try:
        sock = socket.create_connection((args["target_host"], int(args["target_port"])), timeout=30)
    except OSError as exc:
        raise ProviderError(
            f"cannot reach the receiving agent at {args['target_host']}:{args['target_port']}: {exc}",
            permanent=False,
        ) from None
    with sock:
        sock.settimeout(300)
        sealed = SealedWriter(args["token"], sock.sendall)  # the token itself never crosses the network
        copied = agent.provider().send_clone(args["instance"], args["root_password"], sealed.write, progress)
        sealed.close()
        sock.shutdown(socket.SHUT_WR)
    return {"bytes": copied, "seconds": time.monotonic() - started}


@operation("clone_finish")
def clone_finish(agent: AgentContext, args: dict) -> dict:
    """Wait for the receiver to have written the whole stream, then prepare the copy; its GTID position."""
    provider = agent.provider()
    work = agent.clone_dir(args["instance"])
    status_file = work / "status.json"
    deadline = time.monotonic() + float(args.get("timeout", 60))
    while not status_file.exists():
        if time.monotonic() > deadline:
            raise ProviderError(f"the clone receiver on {agent.host} did not finish", permanent=False)
        time.sleep(0.05)
    status = json.loads(status_file.read_text())
    if not status.get("ok"):
        raise ProviderError(
            f"receiving the clone on {agent.host} failed: {status.get('error')}", permanent=False
        )
    gtid = provider.finish_clone(args["instance"])
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return {"gtid": gtid, "bytes": int(status.get("bytes", 0))}
