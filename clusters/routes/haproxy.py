"""The HAProxy runtime API driver: only the primary `ready` in the write backend, healthy replicas in the
read backend, sessions to a demoted primary shut down.

HAProxy's servers are matched to the cluster's servers by address and port (`show servers state`), so
names in the proxy's configuration do not matter and servers of anything else sharing the proxy are never
touched. The reads (`show info`, `show servers state` of both backends) go in one round trip and the
changes in another; a change is only sent when a server is not already in the wanted state. Runtime
changes are lost when HAProxy restarts: the driver reports the process id and start time it saw
(`extra["proxy"]`) so clusters.services.routing can re-apply after a restart (mariadb-notes.md).
"""

from __future__ import annotations

import logging
import re
import socket
import time
from dataclasses import dataclass

from clusters.domain.addresses import AddressError, format_address
from clusters.routes.base import PRIMARY_CHANGED, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute, canonical
from clusters.routes.registry import register_driver
from clusters.routes.spec import NAME, parse_runtime_api
from controlplane.netpolicy import NotAllowed, check_socket_path, pin_host

TIMEOUT = 2.0
# srv_admin_state bits (HAProxy include/haproxy/server-t.h): forced, inherited, resolution and hostname
# maintenance; forced drain. A server configured `disabled` (0x04) is in service once FMAINT is cleared.
FORCED_MAINT = 0x01
MAINT_MASK = 0x01 | 0x02 | 0x20 | 0x40
FORCED_DRAIN = 0x08
SERVER_NAME = re.compile(r"\A[A-Za-z0-9_.:-]{1,128}\Z")  # what HAProxy itself accepts as a server name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HaproxyServer:
    backend: str
    name: str
    address: str  # host:port as HAProxy resolved it
    op_state: int
    admin_state: int

    @property
    def ready(self) -> bool:
        return not self.admin_state & (MAINT_MASK | FORCED_DRAIN)

    @property
    def forced_maint(self) -> bool:
        return bool(self.admin_state & FORCED_MAINT)


class HaproxyRuntime:
    """One HAProxy's runtime API (`unix:///path` or `tcp://host:port`), each call on a new connection."""

    def __init__(self, runtime_api: str, timeout: float = TIMEOUT):
        try:
            endpoint = parse_runtime_api(runtime_api)
        except ValueError as exc:
            raise RouteError(f"runtime_api {runtime_api!r} {exc}", permanent=True) from None
        self.label = runtime_api
        self.timeout = timeout
        try:
            if endpoint.scheme == "unix":
                self.family, self.target = socket.AF_UNIX, str(check_socket_path(endpoint.path))
            else:
                ip = pin_host(endpoint.host)
                self.family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                self.target = (ip, endpoint.port)
        except (NotAllowed, AddressError) as exc:
            raise RouteError(
                f"HAProxy runtime API {runtime_api}: {exc}", permanent=isinstance(exc, NotAllowed)
            ) from None

    def _exchange(self, line: str) -> str:
        try:
            with socket.socket(self.family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.target)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as exc:
            raise RouteError(
                f"HAProxy runtime API {self.label} is not reachable: {exc.strerror or exc}"
            ) from None
        return b"".join(chunks).decode("utf-8", errors="replace")

    def run(self, commands: list[str]) -> list[str]:
        """Send commands in one line (`;`-separated) and split the answer: each command's output ends with
        an empty line. Commands are built from validated names only."""
        for command in commands:
            if any(ch in command for ch in ";\r\n#"):
                raise RouteError(f"refusing to send a command with a separator: {command!r}", permanent=True)
        text = self._exchange(";".join(commands))
        answers, current = [], []
        for line in text.split("\n"):
            if line == "":
                answers.append("\n".join(current))
                current = []
            else:
                current.append(line)
        if current:
            answers.append("\n".join(current))
        if len(answers) < len(commands):
            raise RouteError(
                f"HAProxy runtime API {self.label} gave an unexpected answer to "
                f"{'; '.join(commands)!r}: {text[:200]!r}"
            )
        return answers[: len(commands)]

    def info(self) -> dict[str, str]:
        return parse_info(self.run(["show info"])[0])


def parse_info(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def parse_servers_state(backend: str, text: str) -> list[HaproxyServer]:
    """Rows of `show servers state <backend>` (format 1: a version line, a `#` header, one row per server)."""
    if text.startswith("Can't find backend"):
        raise RouteError(f"HAProxy has no backend named {backend!r}", permanent=True, public=True)
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line[2:].split() for line in lines if line.startswith("# ")), None)
    if not lines or lines[0].strip() != "1" or header is None:
        raise RouteError(f"unexpected answer to show servers state {backend}: {text[:200]!r}")
    column = {name: i for i, name in enumerate(header)}
    servers = []
    for line in lines[2:]:
        fields = line.split()
        try:
            name, addr, port = (
                fields[column["srv_name"]],
                fields[column["srv_addr"]],
                int(fields[column["srv_port"]]),
            )
            op_state, admin_state = (
                int(fields[column["srv_op_state"]]),
                int(fields[column["srv_admin_state"]]),
            )
        except (KeyError, IndexError, ValueError):
            raise RouteError(f"unexpected row in show servers state {backend}: {line[:200]!r}") from None
        if not SERVER_NAME.fullmatch(name):
            raise RouteError(
                f"an HAProxy server name in {backend} is not a plain name", permanent=True, public=True
            )
        address = format_address(addr, port) if addr != "-" else f"-:{port}"
        servers.append(HaproxyServer(backend, name, address, op_state, admin_state))
    return servers


def _resolved(address: str) -> set[str]:
    """Every `ip:port` a cluster server's address stands for (a host name may resolve to several)."""
    try:
        spelled = canonical(address)
    except (ValueError, AddressError):
        return set()
    host, _, port = spelled.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return {spelled}
    return {spelled} | {format_address(info[4][0], int(port)) for info in infos}


def match_servers(
    bound: BoundRoute, rows: list[HaproxyServer]
) -> tuple[dict[str, list[HaproxyServer]], list[HaproxyServer]]:
    """Cluster address -> HAProxy servers with that address; and the HAProxy servers matching none."""
    spellings = {server.address: _resolved(server.address) for server in bound.servers}
    matched: dict[str, list[HaproxyServer]] = {}
    unmatched = []
    for row in rows:
        try:
            spelled = canonical(row.address)
        except (ValueError, AddressError):
            spelled = row.address
        owner = next((address for address, names in spellings.items() if spelled in names), None)
        if owner is None:
            unmatched.append(row)
        else:
            matched.setdefault(owner, []).append(row)
    return matched, unmatched


def plan_backend(
    backend: str, matched: dict[str, list[HaproxyServer]], ready: set[str], shutdown: set[str] | None
) -> tuple[list[str], list[str]]:
    """Commands that make exactly the `ready` addresses ready in `backend` (others maint), then shut down
    sessions on the servers going to maint and on the `shutdown` addresses (the demoted primary); and a
    summary. `shutdown=None`: no session is shut down (in-flight work may finish)."""
    ready_commands, maint_commands, shutdowns, summary = [], [], [], []
    for address, rows in sorted(matched.items()):
        for row in rows:
            target = f"{backend}/{row.name}"
            if address in ready:
                if not row.ready:
                    ready_commands.append(f"set server {target} state ready")
                    summary.append(f"{address} ready")
            else:
                if not row.forced_maint:
                    maint_commands.append(f"set server {target} state maint")
                    summary.append(f"{address} maint")
                if shutdown is not None and (address in shutdown or not row.forced_maint):
                    shutdowns.append(f"shutdown sessions server {target}")
    # Maintenance first: between the two, no new session can land on a server that lost its role.
    return maint_commands + ready_commands + shutdowns, summary


@register_driver("haproxy")
class HaproxyRuntimeDriver(RouteDriver):
    """`runtime_api`, `write_backend`, optional `read_backend` (BoundRoute settings)."""

    route: BoundRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        started = time.monotonic()
        settings = self.route.settings
        write_backend, read_backend = settings["write_backend"], settings.get("read_backend")
        for backend in filter(None, (write_backend, read_backend)):
            if not NAME.fullmatch(backend):
                raise RouteError(f"backend name {backend!r} is not a plain name", permanent=True, public=True)
        runtime = HaproxyRuntime(settings["runtime_api"])
        backends = [write_backend] + ([read_backend] if read_backend else [])
        answers = runtime.run(["show info"] + [f"show servers state {b}" for b in backends])
        info = parse_info(answers[0])
        proxy = {
            "pid": info.get("Pid"),
            "start_time": info.get("Start_time_sec"),
            "uptime": info.get("Uptime_sec"),
        }
        rows = {
            backend: parse_servers_state(backend, text)
            for backend, text in zip(backends, answers[1:], strict=True)
        }

        problems, commands, summary = [], [], []
        matched, unmatched = match_servers(self.route, rows[write_backend])
        if not matched:
            log.warning(
                "route %s: HAProxy backend %s has %s",
                self.route.name,
                write_backend,
                ", ".join(r.address for r in rows[write_backend]) or "no servers",
            )
            raise RouteError(
                f"no server of backend {write_backend} matches a server of cluster {self.route.cluster}",
                permanent=True,
                public=True,
            )
        if unmatched:
            problems.append(
                f"{write_backend} has servers matching no cluster server, left as they are: "
                + ", ".join(f"{r.name} ({r.address})" for r in unmatched)
            )
        primary = plan.primary if plan.phase == PRIMARY_CHANGED else None
        primary_address = self.route.server(primary).address if self.route.server(primary) else primary
        if primary_address and primary_address not in matched:
            problems.append(f"the primary {primary} has no server in backend {write_backend}")
        old = self.route.server(plan.old_primary)
        # Leaving: no new session lands on the old primary, and those in flight get the job's
        # switchover_wait_kill_ms; once the new primary is announced, what is left there is shut down.
        shutdown = ({old.address} if old and old.address != primary_address else set()) if primary else None
        write_commands, write_summary = plan_backend(
            write_backend, matched, {primary_address} if primary_address else set(), shutdown
        )
        commands += write_commands
        summary += [f"{write_backend}: {s}" for s in write_summary]

        if read_backend and primary:  # reads are left alone while the primary is only leaving
            read_matched, read_unmatched = match_servers(self.route, rows[read_backend])
            if read_unmatched:
                problems.append(
                    f"{read_backend} has servers matching no cluster server, left as they are: "
                    + ", ".join(f"{r.name} ({r.address})" for r in read_unmatched)
                )
            members = {
                self.route.server(a).address for a in self.route.read_members(plan) if self.route.server(a)
            }
            # Reads on a server leaving the read backend may finish: no session shutdown there.
            read_commands, read_summary = plan_backend(read_backend, read_matched, members, None)
            commands += read_commands
            summary += [f"{read_backend}: {s}" for s in read_summary]

        if commands:
            failed = [
                f"{command}: {answer.strip()}"
                for command, answer in zip(commands, runtime.run(commands), strict=True)
                if answer.strip()
            ]
            if failed:
                raise RouteError("HAProxy refused: " + "; ".join(failed))
        detail = ", ".join(summary) if summary else "already as wanted"
        extra = {"proxy": proxy, "commands": commands}
        elapsed = (time.monotonic() - started) * 1000
        if problems:
            raise RouteError(f"{'; '.join(problems)} (applied: {detail})", permanent=True)
        return RouteResult(self.name, True, detail, duration_ms=elapsed, extra=extra)
