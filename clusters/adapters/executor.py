"""The SQL actions of HA jobs on one server: freeze and open writes, kill sessions, wait for GTIDs, repoint.

A `ServerSession` is one dedicated connection for the length of a job (not the probe pool): opened before
the write freeze, so the frozen window spends no time connecting. Every session starts with
`SET SESSION sql_log_bin=0`, so nothing dbpilot runs creates a GTID, and with a short `lock_wait_timeout`,
so `FLUSH TABLES WITH READ LOCK` and `SET GLOBAL read_only` never wait a day behind a long statement.
dbpilot only runs administrative statements here, never DML: its privileges pass through read_only, so a
write through this connection on a replica would be an errant transaction.

`Dialect` builds the statements for MariaDB (verified against 10.11) and MySQL 8 (unit-tested only: no
MySQL server can run here). Multi-source replication (named channels) is not handled: the default channel.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass

import pymysql

from clusters.adapters.mysql import ConnectOptions, Credentials, ServerError, classify, connect

PROGRAM_NAME = "dbpilot"  # clusters.adapters.mysql.connect sets it as the connection's program_name
DEFAULT_LOCK_WAIT_TIMEOUT = 5
# Threads that are never killed: replication (both sides), the server's own.
_REPLICATION_COMMANDS = {
    "binlog dump",
    "binlog dump gtid",
    "slave_io",
    "slave_sql",
    "slave_worker",
    "daemon",
    "register slave",
}
_SYSTEM_USERS = {"system user", "event_scheduler"}
_READ_STATEMENT = re.compile(r"^\s*(\(\s*)*(select|show|explain|describe|desc|with|help|do)\b", re.IGNORECASE)
ER_UNKNOWN_THREAD = 1094
ER_NO_SUCH_THREAD = 1095  # "You are not owner of thread" (missing CONNECTION ADMIN)


@dataclass(frozen=True)
class Dialect:
    """Statements for one server flavour and version."""

    flavour: str = "mariadb"
    version: tuple[int, int, int] = (10, 11, 0)

    @classmethod
    def from_version(cls, server_version: str) -> Dialect:
        numbers = re.match(r"(\d+)\.(\d+)\.(\d+)", server_version or "")
        version = tuple(int(n) for n in numbers.groups()) if numbers else (0, 0, 0)
        flavour = "mariadb" if "mariadb" in (server_version or "").lower() else "mysql"
        return cls(flavour, version)  # type: ignore[arg-type]

    @property
    def mariadb(self) -> bool:
        return self.flavour == "mariadb"

    @property
    def _mysql_replica_words(self) -> bool:
        return not self.mariadb and self.version >= (8, 0, 22)

    @property
    def _mysql_source_words(self) -> bool:
        return not self.mariadb and self.version >= (8, 0, 23)

    @property
    def _mysql_semi_sync_source_words(self) -> bool:
        return not self.mariadb and self.version >= (8, 0, 26)

    def set_read_only(self, on: bool) -> list[str]:
        """MySQL's super_read_only also stops SUPER users; turning it off needs read_only off after it."""
        if self.mariadb:
            return [f"SET GLOBAL read_only={int(on)}"]
        if on:
            return ["SET GLOBAL super_read_only=1"]  # implies read_only=1
        return ["SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"]

    def replication_status(self) -> str:
        return "SHOW REPLICA STATUS" if self._mysql_replica_words else "SHOW SLAVE STATUS"

    def stop_replication(self) -> str:
        return "STOP REPLICA" if self._mysql_replica_words else "STOP SLAVE"

    def start_replication(self, thread: str = "") -> str:
        """Both threads, or only `IO_THREAD` / `SQL_THREAD`."""
        verb = "START REPLICA" if self._mysql_replica_words else "START SLAVE"
        return f"{verb} {thread}".strip()

    def reset_replication_all(self) -> str:
        """Forget the source entirely (never RESET MASTER: the binary log and GTID history stay)."""
        return "RESET REPLICA ALL" if self._mysql_replica_words else "RESET SLAVE ALL"

    def change_source(
        self, host: str, port: int, credentials: Credentials, delay: int = 0, *, own_history: bool = False
    ) -> tuple[str, tuple]:
        """Replicate by GTID with a 1 s connect retry and heartbeat, keeping the given MASTER_DELAY.

        `own_history` (a demoted primary still holding a switchover's read lock, MariaDB): start from
        gtid_current_pos, which counts its own binlogged transactions, instead of gtid_slave_pos, which
        is stale and cannot be set while the lock is held (`use_slave_pos` switches later)."""
        if self.mariadb:
            use = "current_pos" if own_history else "slave_pos"
            return (
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                f"MASTER_USE_GTID={use}, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, "
                f"MASTER_DELAY={int(delay)}",
                (host, int(port), credentials.user, credentials.password),
            )
        if self._mysql_source_words:
            return (
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%s, SOURCE_USER=%s, SOURCE_PASSWORD=%s, "
                "SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, "
                f"SOURCE_DELAY={int(delay)}",
                (host, int(port), credentials.user, credentials.password),
            )
        return (
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            f"MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, MASTER_DELAY={int(delay)}",
            (host, int(port), credentials.user, credentials.password),
        )

    def wait_for_gtid(self, position: str, timeout: float) -> tuple[str, tuple]:
        """A statement returning 0 once the server has applied `position`, else -1 (MariaDB) / 1 (MySQL)."""
        if self.mariadb:
            return "SELECT MASTER_GTID_WAIT(%s, %s) AS waited", (position, float(timeout))
        return "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS waited", (position, float(timeout))

    def executed_gtids(self) -> str:
        """The server's complete history: its binlog position (MariaDB) or gtid_executed (MySQL)."""
        return "SELECT @@gtid_binlog_pos AS pos" if self.mariadb else "SELECT @@gtid_executed AS pos"

    def demoted_primary_position(self) -> list[str]:
        """Before a former primary replicates: its own transactions are in gtid_binlog_pos, its
        gtid_slave_pos is stale (MariaDB). MySQL's gtid_executed already holds everything."""
        return ["SET GLOBAL gtid_slave_pos=@@gtid_binlog_pos"] if self.mariadb else []

    def use_slave_pos(self) -> list[str]:
        """With replication stopped: from gtid_current_pos to gtid_slave_pos, which holds everything the
        server has (its binlog: log_slave_updates) once `demoted_primary_position` ran (MariaDB)."""
        return ["CHANGE MASTER TO MASTER_USE_GTID=slave_pos"] if self.mariadb else []

    def _semi_sync_names(self) -> tuple[str, str, str]:
        if self._mysql_semi_sync_source_words:
            return "rpl_semi_sync_source", "rpl_semi_sync_replica", "wait_for_replica_count"
        return "rpl_semi_sync_master", "rpl_semi_sync_slave", "wait_no_slave"

    def semi_sync_as_primary(self, timeout_ms: int, wait_forever: bool) -> list[str]:
        """The master side on, AFTER_SYNC; `wait_forever` keeps commits waiting for an acknowledgement
        instead of falling back to async after the timeout (semi_sync_on_timeout: wait)."""
        source, replica, _ = self._semi_sync_names()
        timeout = 4294967295 if wait_forever else int(timeout_ms)
        statements = [
            f"SET GLOBAL {source}_wait_point=AFTER_SYNC",
            f"SET GLOBAL {source}_timeout={timeout}",
            f"SET GLOBAL {source}_enabled=1",
            f"SET GLOBAL {replica}_enabled=0",
        ]
        if self.mariadb:
            statements.insert(2, "SET GLOBAL rpl_semi_sync_master_wait_no_slave=1")
        return statements

    def semi_sync_as_replica(self) -> list[str]:
        """The slave side on (read when the IO thread starts), the master side off."""
        return self.semi_sync_replica_side() + self.semi_sync_source_off()

    def semi_sync_replica_side(self) -> list[str]:
        _, replica, _ = self._semi_sync_names()
        return [f"SET GLOBAL {replica}_enabled=1"]

    def semi_sync_source_off(self) -> list[str]:
        """Must be off before the SQL thread applies anything: a replica's binlogged commits would
        otherwise wait for acknowledgements from replicas it does not have."""
        source, _, _ = self._semi_sync_names()
        return [f"SET GLOBAL {source}_enabled=0"]

    def semi_sync_clients(self) -> str:
        source = (
            "Rpl_semi_sync_source_clients"
            if self._mysql_semi_sync_source_words
            else "Rpl_semi_sync_master_clients"
        )
        return f"SHOW GLOBAL STATUS LIKE '{source}'"


@dataclass(frozen=True)
class ClientSession:
    """A session on a server that is neither replication, the server's own, nor dbpilot's."""

    id: int
    user: str
    host: str
    command: str
    seconds: int
    info: str
    in_write_transaction: bool  # an open transaction that has written or locked rows or tables
    transaction_seconds: int | None
    # InnoDB still lists a transaction that is committing (trx_operation_state set); under semi-sync
    # AFTER_SYNC load MariaDB 10.11 can keep such an entry for seconds after the client got its OK.
    transaction_committing: bool = False
    state: str = ""  # the processlist STATE, e.g. 'Waiting for semi-sync ACK from slave', 'Commit'

    @property
    def waiting_for_semi_sync_ack(self) -> bool:
        """A commit (a binlog group commit's leader) waiting for a replica's acknowledgement."""
        return "semi-sync" in self.state.lower()

    @property
    def waiting_for_global_lock(self) -> bool:
        """A statement queued behind a pending read_only / global read lock: it has not written yet."""
        state = self.state.lower()
        return "backup lock" in state or "global read lock" in state

    @property
    def open_transaction_seconds(self) -> int | None:
        """How long an open (not committing) transaction has been running, or None."""
        return None if self.transaction_committing else self.transaction_seconds

    @property
    def running(self) -> bool:
        """Running a statement (a read or a write)."""
        return self.command.lower() in ("query", "execute") and bool(self.info)

    @property
    def writing(self) -> bool:
        """In a write transaction, or running a statement that may write (anything but a read)."""
        running = self.command.lower() in ("query", "execute")
        return self.in_write_transaction or (
            running and bool(self.info) and not _READ_STATEMENT.match(self.info)
        )


_SESSIONS = (
    "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, p.TIME AS seconds, "
    "p.INFO AS info, p.STATE AS state, t.trx_started AS trx_started, "
    "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS trx_seconds, "
    "(t.trx_rows_modified > 0 OR t.trx_rows_locked > 0 OR t.trx_tables_locked > 0) AS trx_writes, "
    "t.trx_operation_state AS trx_operation "
    "FROM information_schema.PROCESSLIST p "
    "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
    "WHERE p.ID <> CONNECTION_ID()"
)
_PROGRAMS = (
    "SELECT PROCESSLIST_ID AS id, ATTR_VALUE AS program FROM performance_schema.session_connect_attrs "
    "WHERE ATTR_NAME = 'program_name'"
)


class ServerSession:
    """One job's connection to one server. Not thread-safe: one thread uses it at a time."""

    def __init__(
        self,
        address: str,
        credentials: Credentials,
        options: ConnectOptions,
        *,
        lock_wait_timeout: int = DEFAULT_LOCK_WAIT_TIMEOUT,
    ):
        self.address = address
        self.credentials = credentials
        self.options = options
        self.lock_wait_timeout = lock_wait_timeout
        self._conn: pymysql.connections.Connection | None = None
        self.dialect = Dialect()
        self.performance_schema = False
        # Statements from several threads (a background START SLAVE SQL_THREAD, the next step) take turns.
        self.lock = threading.RLock()

    # --- connection -----------------------------------------------------------------------------------

    def open(self) -> ServerSession:
        with self.lock:
            return self._open_locked()

    def _open_locked(self) -> ServerSession:
        if self._conn is not None:
            return self
        conn = connect(self.address, self.credentials, self.options)
        try:
            self.dialect = Dialect.from_version(conn.get_server_info() or "")
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION sql_log_bin=0")
                cursor.execute(f"SET SESSION lock_wait_timeout={int(self.lock_wait_timeout)}")
                cursor.execute("SELECT @@performance_schema AS ps")
                self.performance_schema = bool(int((cursor.fetchone() or {}).get("ps") or 0))
        except Exception as exc:
            conn.close()
            raise classify(exc) from exc
        self._conn = conn
        return self

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @contextlib.contextmanager
    def read_timeout(self, seconds: float):
        """Let one statement (a bounded wait) run longer than the session's read timeout."""
        with self.lock:
            self.open()
            sock: socket.socket | None = getattr(self._conn, "_sock", None)
            previous = self.options.read_timeout
            if sock is not None:
                sock.settimeout(seconds)
            try:
                yield
            finally:
                if sock is not None and self._conn is not None and getattr(self._conn, "_sock", None) is sock:
                    sock.settimeout(previous)

    def _run(self, statement: str, args: tuple | None = None) -> list[dict]:
        with self.lock:
            return self._run_locked(statement, args)

    def _run_locked(self, statement: str, args: tuple | None) -> list[dict]:
        guard = getattr(self, "guard", None)
        if guard is not None and not guard():
            # A job's lease is its fencing token: past its deadline the worker sends nothing.
            raise ServerError(
                "error", f"{self.address}: not sent, the job's lease has passed ({statement[:60]})"
            )
        self.open()
        try:
            with self._conn.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(statement, args)
                return list(cursor.fetchall() or [])
        except pymysql.err.MySQLError as exc:
            if isinstance(
                exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)
            ) and not _server_error(exc):
                self.close()  # the connection is gone: the next call reconnects
            raise _described(exc, statement, self.address) from exc
        except (TimeoutError, OSError) as exc:
            self.close()
            raise _described(exc, statement, self.address) from exc

    def query(self, statement: str, args: tuple | None = None) -> list[dict]:
        return self._run(statement, args)

    def execute(self, *statements: str) -> None:
        for statement in statements:
            self._run(statement)

    # --- reading state --------------------------------------------------------------------------------

    def variables(self) -> dict:
        names = ["read_only", "max_connections", "server_id", "log_bin"]
        if self.dialect.mariadb:
            names += [
                "gtid_binlog_pos",
                "gtid_current_pos",
                "gtid_slave_pos",
                "rpl_semi_sync_master_enabled",
                "rpl_semi_sync_slave_enabled",
            ]
        else:
            names += ["super_read_only", "gtid_executed"]
        row = self._run("SELECT " + ", ".join(f"@@{n} AS {n}" for n in names))[0]
        return row

    def read_only(self) -> bool:
        return bool(int(self._run("SELECT @@read_only AS ro")[0]["ro"]))

    def executed_gtids(self) -> str:
        return (self._run(self.dialect.executed_gtids())[0]["pos"] or "").replace("\n", "")

    def replication_status(self) -> dict | None:
        """The default channel's status row, or None when the server replicates from nothing."""
        rows = self._run(self.dialect.replication_status())
        return rows[0] if rows else None

    def semi_sync_clients(self) -> int:
        rows = self._run(self.dialect.semi_sync_clients())
        return int(rows[0]["Value"]) if rows else 0

    # --- freezing and opening writes ------------------------------------------------------------------

    def set_read_only(self, on: bool) -> None:
        self.execute(*self.dialect.set_read_only(on))

    def set_max_connections(self, value: int) -> int:
        """Set max_connections; returns what the server kept (MariaDB raises values below 10 to 10)."""
        self._run(f"SET GLOBAL max_connections={int(value)}")
        return int(self._run("SELECT @@max_connections AS m")[0]["m"])

    def flush_tables_quietly(self, lock_wait_timeout: float = 1.0) -> bool:
        """Close cached tables ahead of FLUSH TABLES WITH READ LOCK so that one takes a millisecond instead
        of tens (not written to the binlog: no GTID). Best effort: False when it could not."""
        try:
            self._run(f"SET SESSION lock_wait_timeout={max(1, int(lock_wait_timeout))}")
            self._run("FLUSH NO_WRITE_TO_BINLOG TABLES")
            return True
        except ServerError:
            return False
        finally:
            with contextlib.suppress(ServerError):
                self._run(f"SET SESSION lock_wait_timeout={int(self.lock_wait_timeout)}")

    def lock_tables_for_freeze(self) -> None:
        """FLUSH TABLES WITH READ LOCK, held by this session until `unlock_tables` or its end."""
        self._run("FLUSH TABLES WITH READ LOCK")

    def unlock_tables(self) -> None:
        self._run("UNLOCK TABLES")

    # --- sessions -------------------------------------------------------------------------------------

    def client_sessions(self, own_user: str) -> list[ClientSession]:
        """Every session except replication threads, the server's own, this one, and dbpilot's (its user,
        and its program_name when performance_schema shows connection attributes)."""
        rows = self._run(_SESSIONS)
        programs: dict[int, str] = {}
        if self.performance_schema:
            with contextlib.suppress(ServerError):
                programs = {int(r["id"]): r["program"] for r in self._run(_PROGRAMS)}
        out = []
        for row in rows:
            user = row.get("user") or ""
            command = (row.get("command") or "").strip()
            if user.lower() in _SYSTEM_USERS or command.lower() in _REPLICATION_COMMANDS:
                continue
            session_id = int(row["id"])
            if user == own_user and (not programs or programs.get(session_id) == PROGRAM_NAME):
                continue
            out.append(
                ClientSession(
                    id=session_id,
                    user=user,
                    host=row.get("host") or "",
                    command=command,
                    seconds=int(row.get("seconds") or 0),
                    info=(row.get("info") or "")[:200],
                    in_write_transaction=bool(row.get("trx_writes")),
                    transaction_seconds=int(row["trx_seconds"])
                    if row.get("trx_seconds") is not None
                    else None,
                    transaction_committing=bool(row.get("trx_operation")),
                    state=row.get("state") or "",
                )
            )
        return out

    def long_running(self, own_user: str) -> dict[str, int]:
        """The oldest open transaction, open write transaction and running statement of client sessions,
        in seconds (what clusters.domain.guards.long_running_checks judges)."""
        sessions = self.client_sessions(own_user)
        trx = [x.open_transaction_seconds for x in sessions if x.open_transaction_seconds is not None]
        writes = [
            x.open_transaction_seconds
            for x in sessions
            if x.in_write_transaction and x.open_transaction_seconds is not None
        ]
        queries = [x.seconds for x in sessions if x.command.lower() in ("query", "execute")]
        return {
            "longest_trx_seconds": max(trx, default=0),
            "longest_write_trx_seconds": max(writes, default=0),
            "longest_query_seconds": max(queries, default=0),
        }

    def connection_id(self) -> int:
        return int(self._run("SELECT CONNECTION_ID() AS id")[0]["id"])

    def session_state(self, session_id: int) -> str | None:
        """The processlist STATE of one session ('' when none), None when it is gone."""
        rows = self._run(
            "SELECT STATE AS state FROM information_schema.PROCESSLIST WHERE ID = %s", (int(session_id),)
        )
        return (rows[0]["state"] or "") if rows else None

    def kill(self, session_ids: list[int]) -> list[int]:
        """KILL CONNECTION each; sessions already gone are fine. Returns the ids killed."""
        killed = []
        for session_id in session_ids:
            try:
                self._run(f"KILL CONNECTION {int(session_id)}")
                killed.append(session_id)
            except ServerError as exc:
                if f"{ER_UNKNOWN_THREAD}" not in str(exc):
                    raise
        return killed

    # --- replication ----------------------------------------------------------------------------------

    def wait_for_gtid(self, position: str, timeout: float) -> bool:
        """Wait (bounded) until the server has applied `position`; True when it has."""
        statement, args = self.dialect.wait_for_gtid(position, timeout)
        with self.read_timeout(timeout + 5):
            value = self._run(statement, args)[0]["waited"]
        return value is not None and int(value) == 0

    def stop_replication(self) -> None:
        self._run(self.dialect.stop_replication())

    def start_replication(self, thread: str = "") -> None:
        self._run(self.dialect.start_replication(thread))

    def reset_replication_all(self) -> None:
        self._run(self.dialect.reset_replication_all())

    def change_source(
        self, host: str, port: int, credentials: Credentials, delay: int = 0, *, own_history: bool = False
    ) -> None:
        statement, args = self.dialect.change_source(host, port, credentials, delay, own_history=own_history)
        self._run(statement, args)

    def adopt_own_history(self) -> None:
        """On a demoted primary, before it replicates (MariaDB: gtid_slave_pos = gtid_binlog_pos)."""
        self.execute(*self.dialect.demoted_primary_position())

    def settle_slave_pos(self) -> None:
        """A server replicating from gtid_current_pos (a demoted primary) moves to gtid_slave_pos:
        STOP SLAVE; gtid_slave_pos = gtid_binlog_pos; MASTER_USE_GTID=slave_pos (left stopped). Events
        relay-logged but not applied are fetched again: GTID replication restarts from the position."""
        self.stop_replication()
        self.adopt_own_history()
        self.execute(*self.dialect.use_slave_pos())

    def semi_sync_as_primary(self, timeout_ms: int, wait_forever: bool) -> None:
        self.execute(*self.dialect.semi_sync_as_primary(timeout_ms, wait_forever))

    def semi_sync_as_replica(self) -> None:
        self.execute(*self.dialect.semi_sync_as_replica())

    def wait_for_semi_sync_clients(self, count: int, timeout: float, interval: float = 0.002) -> int:
        """Poll until `count` semi-sync replicas are connected (or the timeout); returns the last count."""
        deadline = time.monotonic() + timeout
        clients = self.semi_sync_clients()
        while clients < count and time.monotonic() < deadline:
            time.sleep(interval)
            clients = self.semi_sync_clients()
        return clients


def _server_error(exc: BaseException) -> bool:
    """An error the server sent (the connection is still usable), as opposed to a lost connection."""
    code = exc.args[0] if getattr(exc, "args", None) else None
    return isinstance(code, int) and code < 2000


def _described(exc: BaseException, statement: str, address: str) -> ServerError:
    error = classify(exc)
    verb = statement.split("(")[0].strip().split()[:3]
    code = exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else None
    if code is not None and code < 2000:
        text = exc.args[1] if len(exc.args) > 1 else ""
        return ServerError(error.outcome, f"{address}: {' '.join(verb)}: error {code}: {text}")
    return ServerError(error.outcome, f"{address}: {' '.join(verb)}: {error}")
