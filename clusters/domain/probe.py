"""What one probe of one server returns: plain data, produced by clusters.adapters.probe.

A probe either reached the server (`outcome == "ok"`) or failed in one of four distinguishable ways
(`refused`, `timeout`, `auth_failed`, `error_reply`: a MySQL error reply such as 1040), or some other
error (`error`). `auth_failed` and `error_reply` mean the server answered: it is alive. Fields are None when the server
does not have the variable (e.g. MySQL has no gtid_binlog_state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK = "ok"
REFUSED = "refused"  # connection refused: nothing listens, or the process died (kill -9)
TIMEOUT = "timeout"  # connect or read timed out: host down, isolated, or server frozen (SIGSTOP)
AUTH_FAILED = "auth_failed"  # error 1045: wrong credentials
ERROR = "error"  # anything else (protocol error, not a MySQL server, ...)
# The server answered with a MySQL error reply (1040 too many connections, 1203 / 1226 user limits, 1129
# host blocked, ...): it is alive, only refusing or failing dbpilot's session. Never a failed probe.
ERROR_REPLY = "error_reply"
FAILURE_OUTCOMES = (REFUSED, TIMEOUT, AUTH_FAILED, ERROR, ERROR_REPLY)
ALIVE_OUTCOMES = (OK, AUTH_FAILED, ERROR_REPLY)  # it answered: alive, whatever it said


@dataclass(frozen=True)
class ReplicationChannel:
    """One row of SHOW ALL SLAVES STATUS (MariaDB) / SHOW REPLICA STATUS (MySQL)."""

    connection_name: str = ""
    source_host: str = ""
    source_port: int = 0
    io_running: str = "No"  # "Yes", "No", "Connecting", "Preparing"
    sql_running: bool = False
    io_state: str = ""
    sql_state: str = ""
    last_io_errno: int = 0
    last_io_error: str = ""
    last_sql_errno: int = 0
    last_sql_error: str = ""
    seconds_behind: int | None = None
    using_gtid: str = "No"  # MariaDB: No, Slave_Pos, Current_Pos; MySQL: "Yes"/"No" (auto-position)
    gtid_io_pos: str = ""  # MariaDB: what the IO thread has received
    sql_delay: int = 0  # MASTER_DELAY
    heartbeat_period: float | None = None
    retried_connections: int | None = None
    slave_received_heartbeats: int | None = None
    last_heartbeat_age_seconds: float | None = None  # seconds since the last event or heartbeat, when known
    relay_log_space: int = 0
    exec_master_log_pos: int = 0
    read_master_log_pos: int = 0
    source_server_id: int | None = (
        None  # Master_Server_Id: maps the source to inventory when host names differ
    )


@dataclass(frozen=True)
class ProbeResult:
    address: str  # host:port as configured in dbpilot
    outcome: str
    error: str = ""
    latency_ms: float = 0.0
    errno: int | None = None  # the MySQL error number of an `error_reply` / `auth_failed`
    flavour: str = ""  # "mariadb" or "mysql"
    version: str = ""
    server_id: int | None = None
    read_only: bool | None = None
    super_read_only: bool | None = None
    gtid_current_pos: str | None = None
    gtid_binlog_pos: str | None = None
    gtid_slave_pos: str | None = None
    gtid_binlog_state: str | None = None
    gtid_executed: str | None = None  # MySQL
    gtid_purged: str | None = None  # MySQL
    gtid_strict_mode: bool | None = None
    gtid_mode: str | None = None  # MySQL
    log_bin: bool | None = None
    log_slave_updates: bool | None = None
    binlog_format: str | None = None
    oldest_binlog: str | None = None
    gtid_list_of_oldest_binlog: str | None = None  # MariaDB: GTIDs purged before the oldest binlog
    replication: tuple[ReplicationChannel, ...] = ()
    semi_sync_master_enabled: bool | None = None
    semi_sync_slave_enabled: bool | None = None
    semi_sync_master_status: bool | None = None
    semi_sync_slave_status: bool | None = None
    semi_sync_master_clients: int | None = None
    semi_sync_wait_point: str | None = None
    semi_sync_timeout_ms: int | None = None  # rpl_semi_sync_master_timeout
    semi_sync_wait_no_slave: bool | None = None  # rpl_semi_sync_master_wait_no_slave
    uptime_seconds: int | None = None
    threads_connected: int | None = None
    max_connections: int | None = None
    longest_trx_seconds: int | None = None
    longest_write_trx_seconds: int | None = None
    longest_query_seconds: int | None = None
    reads_total: int | None = None  # Com_select (a detail): for read rates in the history
    writes_total: int | None = None  # Com_insert + Com_update + Com_delete + Com_replace
    # Age of the costlier details above (status counters, semi-sync status, longest transaction and query,
    # oldest binlog): a tick re-reads them about every 10 s, every probe reads the rest (adapters.probe).
    details_age_seconds: float | None = None
    report_host: str | None = None
    server_uuid: str | None = None  # MySQL @@server_uuid: the primary's own GTIDs are never errant
    extra: dict = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.outcome == OK

    @property
    def channel(self) -> ReplicationChannel | None:
        """The default (unnamed) replication channel, or the only one."""
        for ch in self.replication:
            if ch.connection_name == "":
                return ch
        return self.replication[0] if self.replication else None
