"""The probe: what one server says about itself, in one round trip where possible.

The probe session is read-only: it runs SELECT and SHOW statements only and writes nothing.
Servers of a cluster are probed in parallel; connections are reused across ticks.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pymysql

from clusters.adapters.mysql import POOL, ConnectOptions, Credentials, ServerError, classify
from clusters.domain import probe as outcomes
from clusters.domain.probe import ProbeResult, ReplicationChannel

# Variables travel as ONE column (unit-separator joined): parsing column descriptors is most of a probe's
# CPU in PyMySQL, and monitoring 1,000 servers a second is CPU-bound.
_FIELDS_MARIADB = (
    "version", "server_id", "read_only", "gtid_current_pos", "gtid_binlog_pos", "gtid_slave_pos",
    "gtid_binlog_state", "gtid_strict_mode", "log_bin", "log_slave_updates", "binlog_format",
    "rpl_semi_sync_master_enabled:semi_master", "rpl_semi_sync_slave_enabled:semi_slave",
    "rpl_semi_sync_master_wait_point:wait_point", "max_connections", "report_host",
)
_FIELDS_MYSQL = (
    "version", "server_id", "read_only", "super_read_only", "gtid_executed", "gtid_purged", "gtid_mode",
    "log_bin", "log_replica_updates:log_slave_updates", "binlog_format", "max_connections", "report_host",
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
    "'Rpl_semi_sync_slave_status','Rpl_semi_sync_master_clients')"
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


class _Liveness:
    """Remembers when each replica's channel last received anything (an event or a heartbeat).

    MariaDB exposes counters, not the time of the last heartbeat, so the age is measured between probes.
    """

    def __init__(self):
        self._seen: dict[tuple[str, str], tuple[tuple, float]] = {}
        self._lock = threading.Lock()

    def age(self, address: str, channel: str, marker: tuple) -> float | None:
        now = time.monotonic()
        key = (address, channel)
        with self._lock:
            previous = self._seen.get(key)
            if previous is None or previous[0] != marker:
                self._seen[key] = (marker, now)
                return None if previous is None else 0.0
            return now - previous[1]


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


def _oldest_binlog_gtid_list(cursor, address: str, oldest: str) -> str | None:
    """MariaDB: the GTID list at the start of the oldest binlog (what was purged before it). Cached per file."""
    key = (address, oldest)
    if key in _purged_cache:
        return _purged_cache[key]
    cursor.execute("SHOW BINLOG EVENTS IN %s LIMIT 3", (oldest,))
    value = ""
    for row in cursor.fetchall():
        if row.get("Event_type") == "Gtid_list":
            info = row.get("Info") or ""
            value = info.strip("[]").replace(" ", "")
            break
    _purged_cache[key] = value
    return value


def _collect(conn, address: str) -> dict:
    """Run the probe statements on an open connection; return raw fields for ProbeResult."""
    server_version = conn.get_server_info() or ""
    mariadb = "mariadb" in server_version.lower()
    fields: dict = {"flavour": "mariadb" if mariadb else "mysql"}
    with conn.cursor() as cursor:
        statements = [_VARIABLES_MARIADB if mariadb else _VARIABLES_MYSQL, _STATUS,
                      "SHOW ALL SLAVES STATUS" if mariadb else "SHOW REPLICA STATUS", _TRX, _QUERIES]
        batched_logs = _log_bin_seen.get(address, False)
        if batched_logs:
            statements.append("SHOW BINARY LOGS")
        cursor.execute(";".join(statements))
        variables = _variables_row(_FIELDS_MARIADB if mariadb else _FIELDS_MYSQL, (cursor.fetchone() or {}).get("v"))
        cursor.nextset()
        status = {r["Variable_name"]: r["Value"] for r in cursor.fetchall()}
        cursor.nextset()
        channels = tuple(_channel(address, row) for row in cursor.fetchall())
        cursor.nextset()
        trx = cursor.fetchone() or {}
        cursor.nextset()
        queries = cursor.fetchone() or {}
        logs = None
        if batched_logs:
            cursor.nextset()
            logs = cursor.fetchall()
        while cursor.nextset():
            pass
        oldest = None
        gtid_list = None
        log_bin = bool(_bool(variables.get("log_bin")))
        _log_bin_seen[address] = log_bin
        if log_bin:
            if logs is None:
                cursor.execute("SHOW BINARY LOGS")
                logs = cursor.fetchall()
            if logs:
                oldest = logs[0]["Log_name"]
                if mariadb:
                    gtid_list = _oldest_binlog_gtid_list(cursor, address, oldest)
    fields.update(
        version=variables.get("version", server_version),
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
        max_connections=_int(variables.get("max_connections")),
        report_host=variables.get("report_host"),
        server_uuid=variables.get("server_uuid"),
        uptime_seconds=_int(status.get("Uptime")),
        threads_connected=_int(status.get("Threads_connected")),
        semi_sync_master_status=_bool(status.get("Rpl_semi_sync_master_status")),
        semi_sync_slave_status=_bool(status.get("Rpl_semi_sync_slave_status")),
        semi_sync_master_clients=_int(status.get("Rpl_semi_sync_master_clients")),
        replication=channels,
        longest_trx_seconds=_int(trx.get("longest_trx")) or 0,
        longest_write_trx_seconds=_int(trx.get("longest_write_trx")) or 0,
        longest_query_seconds=_int(queries.get("longest_query")) or 0,
        oldest_binlog=oldest,
        gtid_list_of_oldest_binlog=gtid_list,
    )
    return fields


def probe_server(address: str, credentials: Credentials, options: ConnectOptions = DEFAULT_OPTIONS) -> ProbeResult:
    """Probe one server; never raises for server-side failures (they are outcomes)."""
    started = time.monotonic()
    key = conn = None
    try:
        key, conn = POOL.acquire(address, credentials, options, multi_statements=True)
        fields = _collect(conn, address)
    except Exception as exc:  # noqa: BLE001 - classified into an outcome
        _log_bin_seen.pop(address, None)
        if conn is not None:
            POOL.release(key, conn, broken=True)
        error = classify(exc)
        if isinstance(exc, ServerError):
            error = exc
        elif not isinstance(exc, pymysql.err.MySQLError) and error.outcome == outcomes.ERROR:
            error = ServerError(outcomes.ERROR, f"probe failed: {exc.__class__.__name__}")
        return ProbeResult(address=address, outcome=error.outcome, error=str(error),
                           latency_ms=(time.monotonic() - started) * 1000)
    POOL.release(key, conn)
    return ProbeResult(address=address, outcome=outcomes.OK, latency_ms=(time.monotonic() - started) * 1000, **fields)


_EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="probe")


def probe_servers(targets: list[tuple[str, Credentials, ConnectOptions]]) -> dict[str, ProbeResult]:
    """Probe many servers in parallel; returns address -> result."""
    futures = {address: _EXECUTOR.submit(probe_server, address, creds, opts) for address, creds, opts in targets}
    return {address: future.result() for address, future in futures.items()}
