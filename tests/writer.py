"""A test writer: inserts rows at a steady rate and records exactly which ones were acknowledged.

It does its own connection handling, as an application that follows the primary would: on any error it
drops the connection and tries each server in turn (or only its fixed address) until one accepts the
insert. Every row has an id chosen by the writer; an id is *acknowledged* when the server returned OK for
its autocommit INSERT (the commit). An id whose outcome is unknown (the connection broke while the
statement was in flight) is kept apart: it may or may not exist, and is never counted as lost.

Used by the switchover and failover tests and by bench/: `largest_gap()` is the write gap clients saw
(last OK before to first OK after), `missing_on(address)` the acknowledged rows a server lacks.

    writer = Writer(addresses, app_user, app_password)   # table app.dbpilot_writes, 200 inserts/s
    writer.start(); ...; writer.stop()
    assert not writer.missing_on(address)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import pymysql

# Errors after which the insert certainly did not commit (refused before or instead of executing it).
_NOT_COMMITTED = {1290, 1040, 1045, 1044, 1142, 1146, 1203, 1836, 2003, 1205, 1213, 1180}


@dataclass(frozen=True)
class Ack:
    id: int
    at: float  # time.monotonic() when OK came back
    server: str


@dataclass(frozen=True)
class Gap:
    start: float  # the last acknowledgement before (monotonic)
    end: float  # the first one after
    before: str  # servers
    after: str

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Writer:
    """Insert `rate` rows per second from a background thread until `stop()`."""

    def __init__(
        self,
        servers: list[str],
        user: str,
        password: str,
        *,
        database: str = "app",
        table: str = "dbpilot_writes",
        rate: float = 200.0,
        fixed: str | None = None,
        connect_timeout: float = 0.5,
        read_timeout: float = 5.0,
        retry_pause: float = 0.001,
    ):
        self.servers = list(servers)
        self.user = user
        self.password = password
        self.database = database
        self.table = table
        self.interval = 1.0 / rate
        self.fixed = fixed
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry_pause = retry_pause
        self.acks: list[Ack] = []
        self.unknown: list[int] = []
        self.errors: Counter[str] = Counter()
        self._next_id = 1
        self._conns: dict[
            str, pymysql.connections.Connection
        ] = {}  # one kept per server, reconnected when broken
        self._server: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- connections ----------------------------------------------------------------------------------

    def _connect(self, address: str) -> pymysql.connections.Connection:
        host, port = _split(address)
        return pymysql.connect(
            host=host,
            port=port,
            user=self.user,
            password=self.password,
            database=self.database,
            autocommit=True,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            write_timeout=self.read_timeout,
        )

    def _drop(self, address: str) -> None:
        conn = self._conns.pop(address, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    def _drop_all(self) -> None:
        for address in list(self._conns):
            self._drop(address)

    def _candidates(self) -> list[str]:
        if self.fixed:
            return [self.fixed]
        # The server that last worked first, then the others in order.
        return ([self._server] if self._server else []) + [s for s in self.servers if s != self._server]

    def ensure_table(self) -> None:
        """Create the table on whichever server takes writes (it replicates to the others)."""
        statement = (
            f"CREATE TABLE IF NOT EXISTS `{self.table}` (id BIGINT PRIMARY KEY, "
            "written_at DOUBLE NOT NULL, server VARCHAR(80) NOT NULL)"
        )
        last = None
        for address in self._candidates():
            try:
                with self._connect(address) as conn, conn.cursor() as cursor:
                    cursor.execute(statement)
                    return
            except pymysql.MySQLError as exc:
                last = exc
        raise RuntimeError(f"no server accepted CREATE TABLE: {last}")

    # --- writing --------------------------------------------------------------------------------------

    def _insert(self, row_id: int) -> str:
        """Try one insert, following the writable server; returns the server that acknowledged it.

        The server that took the last insert is tried first, then the others; a refused insert (read-only)
        keeps its connection, a broken one is dropped and opened again on the next try."""
        while not self._stop.is_set():
            for address in self._candidates():
                conn = self._conns.get(address)
                try:
                    if conn is None:
                        conn = self._conns[address] = self._connect(address)
                    with conn.cursor() as cursor:
                        cursor.execute(
                            f"INSERT INTO `{self.table}` (id, written_at, server) VALUES (%s, %s, %s)",
                            (row_id, time.time(), address),
                        )
                    self._server = address
                    return address
                except pymysql.MySQLError as exc:
                    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
                    self.errors[f"{code}"] += 1
                    if not (0 < code < 2000) or code == 1927:
                        self._drop(address)
                    if address in self._conns or conn is None or code in _NOT_COMMITTED:
                        continue  # refused (read-only...) or never connected: it did not commit
                    # Lost while in flight: it may have committed. Never reuse the id.
                    with self._lock:
                        self.unknown.append(row_id)
                    raise _Unknown() from exc
            time.sleep(self.retry_pause)
        raise _Stopped()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            row_id = self._next_id
            self._next_id += 1
            try:
                server = self._insert(row_id)
            except _Unknown:
                continue
            except _Stopped:
                break
            with self._lock:
                self.acks.append(Ack(row_id, time.monotonic(), server))
            due += self.interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                due = time.monotonic()  # behind (a write gap): carry on at the rate, no burst
        self._drop_all()

    def start(self) -> Writer:
        self.ensure_table()
        self._thread = threading.Thread(target=self._run, name="test-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- what happened --------------------------------------------------------------------------------

    def acknowledged(self) -> set[int]:
        with self._lock:
            return {a.id for a in self.acks}

    def ack_count(self) -> int:
        with self._lock:
            return len(self.acks)

    def wait_for_acks(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` more acknowledgements arrived (the writer is flowing)."""
        target = self.ack_count() + count
        deadline = time.monotonic() + timeout
        while self.ack_count() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the writer got {self.ack_count()} of {target} acknowledgements in {timeout}s "
                    f"(errors: {dict(self.errors)})"
                )
            time.sleep(0.005)

    def largest_gap(self, since: float | None = None, until: float | None = None) -> Gap | None:
        """The longest time between consecutive acknowledgements, among gaps that overlap [since, until]
        (monotonic times)."""
        with self._lock:
            acks = list(self.acks)
        best = None
        for before, after in zip(acks, acks[1:], strict=False):
            if since is not None and after.at < since:
                continue
            if until is not None and before.at > until:
                break
            if best is None or after.at - before.at > best.end - best.start:
                best = Gap(before.at, after.at, before.server, after.server)
        return best

    def ids_on(self, address: str, user: str | None = None, password: str | None = None) -> set[int]:
        host, port = _split(address)
        with pymysql.connect(
            host=host,
            port=port,
            user=user or self.user,
            password=password or self.password,
            database=self.database,
            connect_timeout=2,
            read_timeout=30,
        ) as conn:
            with conn.cursor() as cursor:
                cursor.execute(f"SELECT id FROM `{self.table}`")
                return {int(row[0]) for row in cursor.fetchall()}

    def missing_on(self, address: str) -> set[int]:
        """Acknowledged ids the server does not have."""
        return self.acknowledged() - self.ids_on(address)


class _Unknown(Exception):
    pass


class _Stopped(Exception):
    pass
