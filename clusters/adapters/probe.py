"""The probe: what one server says about itself, in one round trip.

The probe session is read-only: it runs SELECT and SHOW statements only and writes nothing. Connections are
reused across ticks; many servers are probed at once from one thread (clusters.adapters.wire: every batch
is sent, then each reply is read as it arrives).

Every probe reads what decides roles and health (read_only, GTID positions, replication channels, the
configuration variables). The costlier details (status counters, semi-sync status, the longest
transaction and query, the binlog list) are read on a new connection, when asked for (`details=True`, as
jobs and registration do), and otherwise about every DETAIL_SECONDS per connection, staggered; in between
a probe repeats the last ones and says how old they are (`details_age_seconds`). Reading the process list
every second costs a busy server more CPU than all the rest of the probe (docs/benchmarks.md).
"""

from __future__ import annotations

import heapq
import random
import selectors
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pymysql

from clusters.adapters import wire
from clusters.adapters.mysql import POOL, ConnectOptions, Credentials, ServerError, classify
from clusters.domain import probe as outcomes
from clusters.domain.probe import ProbeResult, ReplicationChannel

# Variables travel as ONE column (unit-separator joined): parsing column descriptors is most of a probe's
# CPU in PyMySQL, and monitoring 1,000 servers a second is CPU-bound.
_FIELDS_MARIADB = (
    "version",
    "server_id",
    "read_only",
    "gtid_current_pos",
    "gtid_binlog_pos",
    "gtid_slave_pos",
    "gtid_binlog_state",
    "gtid_strict_mode",
    "log_bin",
    "log_slave_updates",
    "binlog_format",
    "rpl_semi_sync_master_enabled:semi_master",
    "rpl_semi_sync_slave_enabled:semi_slave",
    "rpl_semi_sync_master_wait_point:wait_point",
    "max_connections",
    "report_host",
    "rpl_semi_sync_master_timeout:semi_timeout",
    "rpl_semi_sync_master_wait_no_slave:semi_wait_no_slave",
)
_FIELDS_MYSQL = (
    "version",
    "server_id",
    "read_only",
    "super_read_only",
    "gtid_executed",
    "gtid_purged",
    "gtid_mode",
    "log_bin",
    "log_replica_updates:log_slave_updates",
    "binlog_format",
    "max_connections",
    "report_host",
    "server_uuid",
)
_SEPARATOR = "\x1f"
_NULL = "\x1e"


def _variables_query(fields) -> str:
    parts = ", ".join(f"IFNULL(@@{f.split(':')[0]}, CHAR(30))" for f in fields)
    return f"SELECT CONCAT_WS(CHAR(31), {parts}) AS v"


def _variables_row(fields, raw: str | None) -> dict:
    values = (raw or "").split(_SEPARATOR)
    row = {}
    for field, value in zip(fields, values, strict=False):  # an older server may lack a variable
        row[field.split(":")[-1]] = None if value == _NULL else value
    return row


_VARIABLES_MARIADB = _variables_query(_FIELDS_MARIADB)
_VARIABLES_MYSQL = _variables_query(_FIELDS_MYSQL)
_STATUS = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Uptime','Threads_connected','Rpl_semi_sync_master_status',"
    "'Rpl_semi_sync_slave_status','Rpl_semi_sync_master_clients','Com_select','Com_insert','Com_update',"
    "'Com_delete','Com_replace')"
)
# Longest open transaction (and longest one that has written), and longest running client query.
_TRX = (
    "SELECT COALESCE(MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())), 0) AS longest_trx, "
    "COALESCE(MAX(CASE WHEN trx_rows_modified > 0 OR trx_rows_locked > 0 OR trx_tables_locked > 0 "
    "THEN TIMESTAMPDIFF(SECOND, trx_started, NOW()) END), 0) AS longest_write_trx "
    "FROM information_schema.INNODB_TRX"
)
_QUERIES = (
    "SELECT COALESCE(MAX(TIME), 0) AS longest_query FROM information_schema.PROCESSLIST "
    "WHERE COMMAND = 'Query' AND ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler')"
)


def _bool(value) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.upper() in ("1", "ON", "YES", "TRUE")
    return bool(value)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def error_reply_errno(exc: BaseException) -> int | None:
    """The MySQL error number when `exc` is an error reply from the server itself (a number below 2000,
    the client library's own errors start at 2000), other than access denied (1045, `auth_failed`).

    Checked before any text matching: "Lock wait timeout exceeded" (1205) is an answer, not a timeout.
    A connect failure arrives classified (ServerError) with the driver's error as its cause."""
    if isinstance(exc, ServerError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if not isinstance(exc, pymysql.err.MySQLError) or not exc.args or not isinstance(exc.args[0], int):
        return None
    errno = exc.args[0]
    if errno <= 0 or errno >= 2000 or errno == 1045:
        return None
    return errno


class _Liveness:
    """Remembers when each replica's channel last received anything (an event or a heartbeat).

    MariaDB exposes counters, not the time of the last heartbeat, so the age is measured between probes
    of this process: None at first sight, 0 when the counters moved since the previous probe, else the
    time since they were first seen where they are. A change seen after a long gap (another process did
    the probing meanwhile, or the address now belongs to another server) says nothing about when it
    happened: the age is then unknown again.
    """

    def __init__(self):
        self._seen: dict[tuple[str, str], tuple[tuple, float, float]] = {}  # marker, first seen, last seen
        self._lock = threading.Lock()

    def age(self, address: str, channel: str, marker: tuple) -> float | None:
        now = time.monotonic()
        key = (address, channel)
        with self._lock:
            previous = self._seen.get(key)
            if previous is None or previous[0] != marker:
                self._seen[key] = (marker, now, now)
                if previous is None or now - previous[2] > LIVENESS_GAP_SECONDS:
                    return None
                return 0.0
            self._seen[key] = (marker, previous[1], now)
            return now - previous[1]


LIVENESS_GAP_SECONDS = 3.0
LIVENESS = _Liveness()
DEFAULT_OPTIONS = ConnectOptions()
_purged_cache: dict[tuple[str, str], str] = {}
# Whether each server had log_bin on at its last probe: SHOW BINARY LOGS then joins the one batch.
_log_bin_seen: dict[str, bool] = {}


def _channel(address: str, row: dict) -> ReplicationChannel:
    name = row.get("Connection_name", "") or ""
    marker = (
        row.get("Slave_received_heartbeats"),
        row.get("Gtid_IO_Pos") or row.get("Retrieved_Gtid_Set"),
        row.get("Read_Master_Log_Pos") or row.get("Read_Source_Log_Pos"),
        row.get("Master_Log_File") or row.get("Source_Log_File"),
    )
    age = LIVENESS.age(address, name, marker)
    period = row.get("Slave_heartbeat_period")
    return ReplicationChannel(
        connection_name=name,
        source_host=row.get("Master_Host") or row.get("Source_Host") or "",
        source_port=_int(row.get("Master_Port") or row.get("Source_Port")) or 0,
        io_running=row.get("Slave_IO_Running") or row.get("Replica_IO_Running") or "No",
        sql_running=_bool(row.get("Slave_SQL_Running") or row.get("Replica_SQL_Running")) or False,
        io_state=row.get("Slave_IO_State") or row.get("Replica_IO_State") or "",
        sql_state=row.get("Slave_SQL_Running_State") or row.get("Replica_SQL_Running_State") or "",
        last_io_errno=_int(row.get("Last_IO_Errno")) or 0,
        last_io_error=row.get("Last_IO_Error") or "",
        last_sql_errno=_int(row.get("Last_SQL_Errno")) or 0,
        last_sql_error=row.get("Last_SQL_Error") or "",
        seconds_behind=_int(row.get("Seconds_Behind_Master", row.get("Seconds_Behind_Source"))),
        using_gtid=row.get("Using_Gtid") or ("Yes" if _bool(row.get("Auto_Position")) else "No"),
        gtid_io_pos=row.get("Gtid_IO_Pos") or row.get("Retrieved_Gtid_Set") or "",
        sql_delay=_int(row.get("SQL_Delay")) or 0,
        heartbeat_period=float(period) if period not in (None, "") else None,
        retried_connections=_int(row.get("Retried_transactions")),
        slave_received_heartbeats=_int(row.get("Slave_received_heartbeats")),
        last_heartbeat_age_seconds=age,
        relay_log_space=_int(row.get("Relay_Log_Space")) or 0,
        exec_master_log_pos=_int(row.get("Exec_Master_Log_Pos") or row.get("Exec_Source_Log_Pos")) or 0,
        read_master_log_pos=_int(row.get("Read_Master_Log_Pos") or row.get("Read_Source_Log_Pos")) or 0,
        source_server_id=_int(row.get("Master_Server_Id") or row.get("Source_Server_Id")),
    )


def _sum_counters(status: dict, names: tuple[str, ...]) -> int | None:
    values = [_int(status.get(name)) for name in names]
    return sum(v for v in values if v is not None) if any(v is not None for v in values) else None


DETAIL_SECONDS = 10.0  # how often (about) each connection re-reads the costly details
_DETAIL_FIELDS = (
    "uptime_seconds",
    "threads_connected",
    "semi_sync_master_status",
    "semi_sync_slave_status",
    "semi_sync_master_clients",
    "longest_trx_seconds",
    "longest_write_trx_seconds",
    "longest_query_seconds",
    "oldest_binlog",
    "gtid_list_of_oldest_binlog",
    "reads_total",
    "writes_total",
)


def _statements(mariadb: bool, details: bool, with_logs: bool) -> bytes:
    statements = [
        _VARIABLES_MARIADB if mariadb else _VARIABLES_MYSQL,
        "SHOW ALL SLAVES STATUS" if mariadb else "SHOW REPLICA STATUS",
    ]
    if details:
        statements += [_STATUS, _TRX, _QUERIES]
        if with_logs:
            statements.append("SHOW BINARY LOGS")
    return ";".join(statements).encode()


def _oldest_binlog_gtid_list(conn, address: str, oldest: str) -> str | None:
    """MariaDB: the GTID list at the start of the oldest binlog (what was purged before it). Cached per file."""
    key = (address, oldest)
    if key in _purged_cache:
        return _purged_cache[key]
    with conn.cursor() as cursor:
        cursor.execute("SHOW BINLOG EVENTS IN %s LIMIT 3", (oldest,))
        rows = cursor.fetchall()
    value = ""
    for row in rows:
        if row.get("Event_type") == "Gtid_list":
            info = row.get("Info") or ""
            value = info.strip("[]").replace(" ", "")
            break
    _purged_cache[key] = value
    return value


class _Probe:
    """One server's probe in a batch: its connection, what was sent, and when it must have answered."""

    __slots__ = (
        "address",
        "credentials",
        "options",
        "key",
        "conn",
        "mariadb",
        "details",
        "with_logs",
        "started",
        "deadline",
        "result",
    )

    def __init__(self, address: str, credentials: Credentials, options: ConnectOptions):
        self.address, self.credentials, self.options = address, credentials, options
        self.key = self.conn = None
        self.mariadb = self.details = self.with_logs = False
        self.started = time.monotonic()
        self.deadline = 0.0
        self.result: ProbeResult | None = None

    def fail(self, exc: BaseException) -> None:
        _log_bin_seen.pop(self.address, None)
        if self.conn is not None:
            POOL.release(self.key, self.conn, broken=True)
            self.conn = None
        errno = error_reply_errno(exc)
        if errno is not None:
            # The server answered with a MySQL error (1040 too many connections, 1203/1226 user limits...):
            # alive and answering, so not a failed probe (clusters.domain.detection.count_failures).
            message = exc.args[1] if len(exc.args) > 1 else ""
            self.result = ProbeResult(
                address=self.address,
                outcome=outcomes.ERROR_REPLY,
                errno=errno,
                error=f"the server answered with error {errno}: {message}",
                latency_ms=(time.monotonic() - self.started) * 1000,
            )
            return
        error = classify(exc)
        if isinstance(exc, ServerError):
            error = exc
        elif not isinstance(exc, pymysql.err.MySQLError) and error.outcome == outcomes.ERROR:
            error = ServerError(outcomes.ERROR, f"probe failed: {exc.__class__.__name__}")
        self.result = ProbeResult(
            address=self.address,
            outcome=error.outcome,
            error=str(error),
            latency_ms=(time.monotonic() - self.started) * 1000,
            errno=1045 if error.outcome == outcomes.AUTH_FAILED else None,
        )

    def send(self, want_details: bool) -> None:
        conn = self.conn
        server_version = conn.get_server_info() or ""
        self.mariadb = "mariadb" in server_version.lower()
        cached = getattr(conn, "dbpilot_details", None)
        self.details = want_details or cached is None or time.monotonic() >= conn.dbpilot_details_due
        self.with_logs = self.details and _log_bin_seen.get(self.address, False)
        wire.send_query(conn, _statements(self.mariadb, self.details, self.with_logs))
        self.deadline = time.monotonic() + self.options.read_timeout

    def receive(self) -> None:
        conn = self.conn
        results = wire.read_results(conn)
        fields = self._fields(conn, results)
        latency = (time.monotonic() - self.started) * 1000
        POOL.release(self.key, conn)
        self.conn = None
        self.result = ProbeResult(address=self.address, outcome=outcomes.OK, latency_ms=latency, **fields)

    def _fields(self, conn, results) -> dict:
        mariadb = self.mariadb
        variables_rows = wire.as_dicts(results[0])
        variables = _variables_row(
            _FIELDS_MARIADB if mariadb else _FIELDS_MYSQL,
            variables_rows[0].get("v") if variables_rows else None,
        )
        channels = tuple(_channel(self.address, row) for row in wire.as_dicts(results[1]))
        log_bin = bool(_bool(variables.get("log_bin")))
        _log_bin_seen[self.address] = log_bin
        if self.details:
            details = self._details(conn, results, log_bin)
            conn.dbpilot_details = (details, time.monotonic())
            # Staggered, so that a thousand connections opened together do not all re-read on one tick.
            conn.dbpilot_details_due = time.monotonic() + DETAIL_SECONDS * random.uniform(0.75, 1.25)
            age = 0.0
        else:
            details, read_at = conn.dbpilot_details
            age = time.monotonic() - read_at
        return dict(
            details,
            flavour="mariadb" if mariadb else "mysql",
            details_age_seconds=round(age, 3),
            version=variables.get("version", conn.get_server_info() or ""),
            server_id=_int(variables.get("server_id")),
            read_only=_bool(variables.get("read_only")),
            super_read_only=_bool(variables.get("super_read_only")),
            gtid_current_pos=variables.get("gtid_current_pos"),
            gtid_binlog_pos=variables.get("gtid_binlog_pos"),
            gtid_slave_pos=variables.get("gtid_slave_pos"),
            gtid_binlog_state=variables.get("gtid_binlog_state"),
            gtid_executed=(variables.get("gtid_executed") or "").replace("\n", "") if not mariadb else None,
            gtid_purged=(variables.get("gtid_purged") or "").replace("\n", "") if not mariadb else None,
            gtid_mode=variables.get("gtid_mode"),
            gtid_strict_mode=_bool(variables.get("gtid_strict_mode")),
            log_bin=_bool(variables.get("log_bin")),
            log_slave_updates=_bool(variables.get("log_slave_updates")),
            binlog_format=variables.get("binlog_format"),
            semi_sync_master_enabled=_bool(variables.get("semi_master")),
            semi_sync_slave_enabled=_bool(variables.get("semi_slave")),
            semi_sync_wait_point=variables.get("wait_point"),
            semi_sync_timeout_ms=_int(variables.get("semi_timeout")),
            semi_sync_wait_no_slave=_bool(variables.get("semi_wait_no_slave")),
            max_connections=_int(variables.get("max_connections")),
            report_host=variables.get("report_host"),
            server_uuid=variables.get("server_uuid"),
            replication=channels,
        )

    def _details(self, conn, results, log_bin: bool) -> dict:
        status = {r["Variable_name"]: r["Value"] for r in wire.as_dicts(results[2])}
        trx = (wire.as_dicts(results[3]) or [{}])[0]
        queries = (wire.as_dicts(results[4]) or [{}])[0]
        oldest = gtid_list = None
        if log_bin:
            if self.with_logs:
                logs = wire.as_dicts(results[5])
            else:  # log_bin was not known on: one more round trip, this time only
                with conn.cursor() as cursor:
                    cursor.execute("SHOW BINARY LOGS")
                    logs = cursor.fetchall()
            if logs:
                oldest = logs[0]["Log_name"]
                if self.mariadb:
                    gtid_list = _oldest_binlog_gtid_list(conn, self.address, oldest)
        return dict(
            uptime_seconds=_int(status.get("Uptime")),
            threads_connected=_int(status.get("Threads_connected")),
            semi_sync_master_status=_bool(status.get("Rpl_semi_sync_master_status")),
            semi_sync_slave_status=_bool(status.get("Rpl_semi_sync_slave_status")),
            semi_sync_master_clients=_int(status.get("Rpl_semi_sync_master_clients")),
            reads_total=_int(status.get("Com_select")),
            writes_total=_sum_counters(status, ("Com_insert", "Com_update", "Com_delete", "Com_replace")),
            longest_trx_seconds=_int(trx.get("longest_trx")) or 0,
            longest_write_trx_seconds=_int(trx.get("longest_write_trx")) or 0,
            longest_query_seconds=_int(queries.get("longest_query")) or 0,
            oldest_binlog=oldest,
            gtid_list_of_oldest_binlog=gtid_list,
        )


_EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="probe-connect")


def _connect(probe: _Probe) -> _Probe:
    try:
        probe.key, probe.conn = POOL.acquire(
            probe.address, probe.credentials, probe.options, multi_statements=True
        )
    except Exception as exc:  # noqa: BLE001 - classified into an outcome
        probe.fail(exc)
    return probe


def probe_many(
    targets: list[tuple[str, Credentials, ConnectOptions]], *, details: bool = True
) -> list[ProbeResult]:
    """Probe many servers at once (the same address may appear several times); results in target order.

    Pooled connections are sent their batch at once; new connections are opened in parallel and sent
    theirs as they come up. Replies are read as they arrive, each within its own read timeout.
    `details=False` lets a connection repeat its last costly details (see the module docstring).
    """
    probes = [_Probe(address, creds, opts) for address, creds, opts in targets]
    selector = selectors.DefaultSelector()
    deadlines: list[tuple[float, int, _Probe]] = []  # a heap: the next reply to give up on

    def send(probe: _Probe) -> None:
        try:
            probe.send(details)
            selector.register(probe.conn._sock, selectors.EVENT_READ, probe)
            heapq.heappush(deadlines, (probe.deadline, id(probe), probe))
        except Exception as exc:  # noqa: BLE001 - classified into an outcome
            probe.fail(exc)

    try:
        connecting = []
        for probe in probes:
            pooled = POOL.take_idle(probe.address, probe.credentials, probe.options, multi_statements=True)
            if pooled is None:
                connecting.append(_EXECUTOR.submit(_connect, probe))
            else:
                probe.key, probe.conn = pooled
                send(probe)
        while connecting or deadlines:
            if connecting:
                still = []
                for future in connecting:
                    if not future.done():
                        still.append(future)
                    elif (probe := future.result()).result is None:
                        send(probe)
                connecting = still
            while deadlines and deadlines[0][2].result is not None:
                heapq.heappop(deadlines)  # answered already
            if not deadlines:
                if connecting:
                    connecting[0].exception()  # nothing to read yet: wait for a connection instead
                continue
            timeout = max(0.0, deadlines[0][0] - time.monotonic())
            if connecting:
                timeout = min(timeout, 0.005)
            for key, _ in selector.select(timeout):
                selector.unregister(key.fileobj)
                probe = key.data
                try:
                    probe.receive()
                except Exception as exc:  # noqa: BLE001 - classified into an outcome
                    probe.fail(exc)
            now = time.monotonic()
            while deadlines and (deadlines[0][2].result is not None or deadlines[0][0] <= now):
                _, _, probe = heapq.heappop(deadlines)
                if probe.result is None:
                    selector.unregister(probe.conn._sock)
                    probe.fail(TimeoutError("timed out waiting for the reply"))
    finally:
        selector.close()
    return [probe.result for probe in probes]


def probe_server(
    address: str, credentials: Credentials, options: ConnectOptions = DEFAULT_OPTIONS, *, details: bool = True
) -> ProbeResult:
    """Probe one server; never raises for server-side failures (they are outcomes)."""
    return probe_many([(address, credentials, options)], details=details)[0]


def probe_servers(
    targets: list[tuple[str, Credentials, ConnectOptions]], *, details: bool = True
) -> dict[str, ProbeResult]:
    """Probe several servers at once; returns address -> result."""
    return {result.address: result for result in probe_many(targets, details=details)}
