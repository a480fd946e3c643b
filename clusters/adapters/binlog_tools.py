"""The MariaDB client tools a flashback needs, run as subprocesses: `mariadb-binlog` reads a server's binary
log over the replication protocol (`--read-from-remote-server`, with the cluster's replication user), as
readable SQL or reversed (`--flashback`); `mariadb` applies SQL with `sql_log_bin=0`. Passwords go in the
environment (MYSQL_PWD), never on argv; the address is the one that passed the allowlist."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from clusters.adapters.mysql import Credentials

MARIADB_BINLOG = shutil.which("mariadb-binlog") or "/usr/bin/mariadb-binlog"
MARIADB_CLIENT = shutil.which("mariadb") or "/usr/bin/mariadb"
TOOL_TIMEOUT_SECONDS = 300


class BinlogToolError(RuntimeError):
    """A tool failed; the message has its exit status and the start of its error output."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    credentials: Credentials


def _env(credentials: Credentials) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
    env["MYSQL_PWD"] = credentials.password
    return env


def _connection_args(endpoint: Endpoint) -> list[str]:
    return [f"--host={endpoint.host}", f"--port={endpoint.port}", f"--user={endpoint.credentials.user}"]


def read_binlog(endpoint: Endpoint, log: str, start_pos: int, *, flashback: bool) -> str:
    """The events from `log`:`start_pos` to the end of the last binlog: readable (row events decoded as
    commented SQL) or, with `flashback`, the statements that undo them, last first."""
    if not os.access(MARIADB_BINLOG, os.X_OK):
        raise BinlogToolError(f"{MARIADB_BINLOG} is missing: install the mariadb-client package")
    args = [
        MARIADB_BINLOG,
        "--no-defaults",
        "--read-from-remote-server",
        *_connection_args(endpoint),
        "--to-last-log",
        f"--start-position={int(start_pos)}",
    ]
    args += ["--flashback"] if flashback else ["--verbose", "--verbose", "--base64-output=DECODE-ROWS"]
    done = subprocess.run(
        [*args, log],
        env=_env(endpoint.credentials),
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise BinlogToolError(f"mariadb-binlog exited {done.returncode}: {done.stderr.strip()[:400]}")
    return done.stdout


def apply_sql(endpoint: Endpoint, sql: str) -> None:
    """Run `sql` in one client session that binlogs nothing (sql_log_bin=0): no new GTIDs."""
    if not os.access(MARIADB_CLIENT, os.X_OK):
        raise BinlogToolError(f"{MARIADB_CLIENT} is missing: install the mariadb-client package")
    done = subprocess.run(
        [MARIADB_CLIENT, "--no-defaults", "--batch", *_connection_args(endpoint)],
        input="SET SESSION sql_log_bin=0;\n" + sql,
        env=_env(endpoint.credentials),
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
    )
    if done.returncode != 0:
        raise BinlogToolError(f"mariadb exited {done.returncode}: {done.stderr.strip()[:400]}")
