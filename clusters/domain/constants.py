"""Stable names shared by analysis, election and guards: finding codes and severities, roles, states, guards.

Finding codes are a public contract (events, API, alerts, docs/findings.md): never rename one.
"""

from __future__ import annotations

# Severities, mildest first (clusters.domain.findings.SEVERITIES orders them).
INFO = "info"
WARNING = "warning"
ERROR = "error"
CRITICAL = "critical"

# Roles of a server in the topology.
ROLE_PRIMARY = "primary"
ROLE_REPLICA = "replica"
ROLE_RELAY = "relay"  # replicates and has replicas of its own
ROLE_ORPHAN = "orphan"  # reachable, not the primary, replicates from nothing in the cluster
ROLE_UNKNOWN = "unknown"  # not reachable: its role cannot be seen

# States of a server as dbpilot sees it.
STATE_UP = "up"
STATE_SUSPECT = "suspect"  # failed at least one probe, fewer than failcount
STATE_DOWN = "down"  # failcount consecutive failed probes
STATE_AUTH_FAILED = "auth_failed"  # answers, but refuses dbpilot's credentials
STATE_ERROR_REPLY = "error_reply"  # answers with a MySQL error (1040 too many connections, ...): alive
STATE_UNREACHABLE = "unreachable"  # dbpilot cannot reach it, yet replicas still receive from it
STATE_UNKNOWN = "unknown"  # not probed yet

# --- finding codes (docs/findings.md) ---
PRIMARY_SUSPECT = "PRIMARY_SUSPECT"
PRIMARY_DOWN = "PRIMARY_DOWN"
PRIMARY_UNREACHABLE = "PRIMARY_UNREACHABLE"
PRIMARY_READ_ONLY = "PRIMARY_READ_ONLY"
PRIMARY_HAS_SOURCE = "PRIMARY_HAS_SOURCE"
NO_PRIMARY = "NO_PRIMARY"
TWO_WRITABLE_PRIMARIES = "TWO_WRITABLE_PRIMARIES"
NO_REPLICA = "NO_REPLICA"
AUTH_FAILED = "AUTH_FAILED"
SERVER_ERROR_REPLY = "SERVER_ERROR_REPLY"
REPLICA_UNREACHABLE = "REPLICA_UNREACHABLE"
REPLICA_IO_STOPPED = "REPLICA_IO_STOPPED"
REPLICA_SQL_STOPPED = "REPLICA_SQL_STOPPED"
REPLICA_NOT_RECEIVING = "REPLICA_NOT_RECEIVING"
REPLICA_LAGGING = "REPLICA_LAGGING"
REPLICA_NOT_READ_ONLY = "REPLICA_NOT_READ_ONLY"
REPLICA_WRONG_SOURCE = "REPLICA_WRONG_SOURCE"
SERVER_NOT_REPLICATING = "SERVER_NOT_REPLICATING"
ERRANT_GTID = "ERRANT_GTID"
GTID_UNREADABLE = "GTID_UNREADABLE"
BINLOG_PURGED_NEEDED = "BINLOG_PURGED_NEEDED"
GTID_NOT_USED = "GTID_NOT_USED"
GTID_STRICT_MODE_OFF = "GTID_STRICT_MODE_OFF"
LOG_BIN_OFF = "LOG_BIN_OFF"
LOG_SLAVE_UPDATES_OFF = "LOG_SLAVE_UPDATES_OFF"
BINLOG_FORMAT_NOT_ROW = "BINLOG_FORMAT_NOT_ROW"
SEMI_SYNC_OFF = "SEMI_SYNC_OFF"
SEMI_SYNC_INACTIVE = "SEMI_SYNC_INACTIVE"
SEMI_SYNC_WAIT_POINT = "SEMI_SYNC_WAIT_POINT"
VERSION_MISMATCH = "VERSION_MISMATCH"
SERVER_MAINTENANCE = "SERVER_MAINTENANCE"
FENCED_SERVER_WRITABLE = "FENCED_SERVER_WRITABLE"
SERVER_QUARANTINED = "SERVER_QUARANTINED"
ROUTE_STALE = "ROUTE_STALE"  # opened by route syncs (clusters/services/routing.py), not by analysis
# opened by the accounts check of provisioned clusters (clusters/services/accounts.py), not by analysis
DBPILOT_ACCOUNT_CHANGED = "DBPILOT_ACCOUNT_CHANGED"
# Opened by backup jobs and the binlog archiver (docs/backups.md), not by analysis.
BACKUP_UNVERIFIED = "BACKUP_UNVERIFIED"
BINLOG_ARCHIVE_GAP = "BINLOG_ARCHIVE_GAP"

FINDING_SEVERITY: dict[str, str] = {
    PRIMARY_SUSPECT: WARNING,
    PRIMARY_DOWN: CRITICAL,
    PRIMARY_UNREACHABLE: ERROR,
    PRIMARY_READ_ONLY: ERROR,
    PRIMARY_HAS_SOURCE: WARNING,
    NO_PRIMARY: CRITICAL,
    TWO_WRITABLE_PRIMARIES: CRITICAL,
    NO_REPLICA: WARNING,
    AUTH_FAILED: ERROR,
    SERVER_ERROR_REPLY: ERROR,
    REPLICA_UNREACHABLE: ERROR,
    REPLICA_IO_STOPPED: ERROR,
    REPLICA_SQL_STOPPED: ERROR,
    REPLICA_NOT_RECEIVING: ERROR,
    REPLICA_LAGGING: WARNING,
    REPLICA_NOT_READ_ONLY: ERROR,
    REPLICA_WRONG_SOURCE: ERROR,
    SERVER_NOT_REPLICATING: ERROR,
    ERRANT_GTID: ERROR,
    GTID_UNREADABLE: WARNING,
    BINLOG_PURGED_NEEDED: ERROR,
    GTID_NOT_USED: WARNING,
    GTID_STRICT_MODE_OFF: WARNING,
    LOG_BIN_OFF: ERROR,
    LOG_SLAVE_UPDATES_OFF: WARNING,
    BINLOG_FORMAT_NOT_ROW: WARNING,
    SEMI_SYNC_OFF: WARNING,
    SEMI_SYNC_INACTIVE: ERROR,
    SEMI_SYNC_WAIT_POINT: WARNING,
    VERSION_MISMATCH: WARNING,
    SERVER_MAINTENANCE: INFO,
    FENCED_SERVER_WRITABLE: CRITICAL,
    SERVER_QUARANTINED: WARNING,
    ROUTE_STALE: ERROR,
    DBPILOT_ACCOUNT_CHANGED: ERROR,
    BACKUP_UNVERIFIED: ERROR,
    BINLOG_ARCHIVE_GAP: ERROR,
}
FINDING_CODES = tuple(FINDING_SEVERITY)
# Findings that something other than a tick's analysis opens and resolves: monitoring never touches them.
OUTSIDE_ANALYSIS_CODES = frozenset(
    {ROUTE_STALE, DBPILOT_ACCOUNT_CHANGED, BACKUP_UNVERIFIED, BINLOG_ARCHIVE_GAP}
)

# Findings about the primary's availability open on the first tick that sees them (hysteresis);
# PRIMARY_READ_ONLY is left out on purpose: a switchover or promotion shows it for a moment.
FAST_OPEN_CODES = frozenset(
    {
        PRIMARY_SUSPECT,
        PRIMARY_DOWN,
        PRIMARY_UNREACHABLE,
        NO_PRIMARY,
        TWO_WRITABLE_PRIMARIES,
        FENCED_SERVER_WRITABLE,
    }
)

# --- detection ---
# A replica whose IO thread says Yes has still lost its source when nothing (event or heartbeat) arrived
# for this many heartbeat periods plus the grace (a SIGSTOPped primary keeps the TCP session open).
HEARTBEAT_STALE_PERIODS = 2.0
HEARTBEAT_GRACE_SECONDS = 0.5
# No automatic action on a cluster whose latest observation is older than this many ticks.
OBSERVATION_MAX_AGE_TICKS = 3

# --- guard and check names (the `checks` of a 409 or a refused job) ---
GUARD_FAILOVER_MODE = "failover_mode"
GUARD_FAILOVER_ARMED = "failover_armed"
GUARD_PLATFORM_PAUSED = "platform_paused"
GUARD_CLUSTER_PAUSED = "cluster_paused"
GUARD_FAILOVER_LIMIT = "failover_limit"
GUARD_FAILOVER_MIN_INTERVAL = "failover_min_interval"
GUARD_CANDIDATE = "electable_candidate"
GUARD_ERRANT = "no_errant_candidate"
GUARD_MAINTENANCE = "maintenance"
GUARD_OBSERVATION_FRESH = "observation_fresh"
GUARD_PRIMARY_FAILURE = "primary_failure_confirmed"
GUARD_PRIMARY_DEAD = "primary_not_alive"

CHECK_PRIMARY_UP = "primary_up"
CHECK_REPLICATION_SETTINGS = "replication_settings"
CHECK_REPLICATION_STATE = "replication_state"
CHECK_REPLICA_LAG = "replica_lag"
CHECK_CANDIDATE = "candidate"
CHECK_LONG_TRANSACTIONS = "long_transactions"
CHECK_LONG_QUERIES = "long_queries"
