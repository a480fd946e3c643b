"""Real HAProxy and PowerDNS processes for the routing tests (and bench/route.py), on free loopback ports.

Each lives in its own directory (under /tmp/dbp, an allowed socket directory in the test settings), with
its own configuration; nothing of the distribution's configuration is read, and each is stopped by the
test that started it. PowerDNS runs with the sqlite3 backend (a fresh database from Debian's schema),
caches off and `security-poll-suffix=` empty, so it never looks anything up outside the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pymysql

HAPROXY = "/usr/sbin/haproxy"
PDNS_SERVER = "/usr/sbin/pdns_server"
PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
SOCKET_ROOT = Path("/tmp/dbp")
CHECK_USER = "haproxy_check"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_dir(prefix: str) -> Path:
    SOCKET_ROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=SOCKET_ROOT))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last error
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def haproxy_check(config_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HAPROXY, "-c", "-f", str(config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


class HaproxyProcess:
    """`haproxy -db -f <config>` in the foreground of a child process."""

    def __init__(self, directory: Path, config: str, env: dict | None = None):
        self.dir = directory
        self.config_path = directory / "haproxy.cfg"
        self.config_path.write_text(config)
        self.env = {**os.environ, **(env or {})}
        self.log_path = directory / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.dir / "admin.sock"

    def start(self, ready_socket: Path | None = None) -> HaproxyProcess:
        checked = haproxy_check(self.config_path, self.env)
        assert checked.returncode == 0, f"haproxy -c refused the config:\n{checked.stdout}{checked.stderr}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.config_path)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        target = ready_socket or self.socket_path
        wait_until(
            lambda: self.command("show info", target).startswith("Name: HAProxy"), 10, "HAProxy to start"
        )
        return self

    def command(self, line: str, target: Path | None = None) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(target or self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


class PowerDns:
    """pdns_server with its HTTP API and a sqlite3 backend, on free loopback ports."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dns_port = free_port()
        self.api_port = free_port()
        self.api_key = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> PowerDns:
        database = self.dir / "pdns.sqlite3"
        subprocess.run(["sqlite3", str(database)], input=PDNS_SCHEMA.read_text(), text=True, check=True)
        (self.dir / "pdns.conf").write_text(
            "\n".join(
                [
                    "launch=gsqlite3",
                    f"gsqlite3-database={database}",
                    f"local-address=127.0.0.1:{self.dns_port}",
                    "api=yes",
                    f"api-key={self.api_key}",
                    "webserver=yes",
                    "webserver-address=127.0.0.1",
                    f"webserver-port={self.api_port}",
                    "webserver-allow-from=127.0.0.0/8",
                    "security-poll-suffix=",
                    "cache-ttl=0",
                    "negquery-cache-ttl=0",
                    "query-cache-ttl=0",
                    "zone-cache-refresh-interval=0",
                    "consistent-backends=yes",
                    f"socket-dir={self.dir}",
                    "guardian=no",
                    "daemon=no",
                    "disable-syslog=yes",
                    "loglevel=4",
                ]
            )
            + "\n"
        )
        with open(self.dir / "pdns.log", "ab") as log:
            self.proc = subprocess.Popen(
                [PDNS_SERVER, f"--config-dir={self.dir}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: self.api("GET", "/api/v1/servers/localhost")[0] == 200, 15, "the PowerDNS API")
        return self

    def api(self, method: str, path: str, body=None, key: str | None = None) -> tuple[int, object]:
        request = urllib.request.Request(
            self.api_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-API-Key": key or self.api_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def create_zone(self, zone: str) -> None:
        status, body = self.api(
            "POST", "/api/v1/servers/localhost/zones", {"name": zone, "kind": "Native", "nameservers": []}
        )
        assert status == 201, body

    def query(self, name: str, rtype: str = "A") -> list[str]:
        """Ask the DNS server itself (dig, no cache in between)."""
        out = subprocess.run(
            ["dig", "+short", "+tries=1", "+time=2", "@127.0.0.1", "-p", str(self.dns_port), name, rtype],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sorted(line.strip() for line in out.stdout.splitlines() if line.strip())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def create_check_user(sandbox) -> None:
    """The user HAProxy's `option mysql-check` logs in as: no password, no privileges (outside the binlog)."""
    host = sandbox.client_host
    for node in sandbox.nodes:
        with sandbox.connect(node) as conn, conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_log_bin=0")
            cursor.execute("CREATE USER IF NOT EXISTS %s@%s", (CHECK_USER, host))


def server_id_through(port: int, sandbox, timeout: float = 3.0) -> int:
    """Connect as the application user through a proxy port and ask which server answered."""
    app = sandbox.accounts.app
    with (
        pymysql.connect(
            host="127.0.0.1",
            port=port,
            user=app.user,
            password=app.password,
            connect_timeout=timeout,
            read_timeout=timeout,
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT @@server_id")
        return int(cursor.fetchone()[0])


def app_sessions(sandbox, node: int) -> int:
    user = sandbox.accounts.app.user
    return sandbox.sql(
        node, "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE user = %s", (user,)
    )[0]["n"]


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
