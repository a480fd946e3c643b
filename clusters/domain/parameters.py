"""Parameter groups: which my.cnf settings a tenant may set on provisioned servers, their types and ranges,
and whether a change applies live (`SET GLOBAL`) or needs a restart.

Only the allowlist is accepted: settings that place or identify a server, reach the file system or load
code (`secure_file_priv`, `plugin_dir`, `init_file`, log file paths, `datadir`, ...) are refused with a
message saying why; anything else not listed is refused as unknown. Pure Python (no Django).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SIZE = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True)
class Parameter:
    """One allowlisted setting: `kind` is int, size (bytes, with K/M/G), bool or choice."""

    name: str
    kind: str
    dynamic: bool
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()


ALLOWED: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("max_connections", "int", True, 10, 100000),
        Parameter("innodb_buffer_pool_size", "size", True, 32 << 20, 64 << 30),
        Parameter("innodb_log_file_size", "size", True, 4 << 20, 4 << 30),  # dynamic since 10.9
        Parameter("innodb_flush_log_at_trx_commit", "int", True, 0, 2),
        Parameter("sync_binlog", "int", True, 0, 1000),
        Parameter("innodb_io_capacity", "int", True, 100, 100000),
        Parameter("innodb_lock_wait_timeout", "int", True, 1, 3600),
        Parameter("lock_wait_timeout", "int", True, 1, 31536000),
        Parameter("wait_timeout", "int", True, 1, 31536000),
        Parameter("interactive_timeout", "int", True, 1, 31536000),
        Parameter("max_allowed_packet", "size", True, 1 << 10, 1 << 30),
        Parameter("tmp_table_size", "size", True, 1 << 10, 4 << 30),
        Parameter("max_heap_table_size", "size", True, 16 << 10, 4 << 30),
        Parameter("table_open_cache", "int", True, 10, 1000000),
        Parameter("table_definition_cache", "int", True, 400, 2097152),
        Parameter("thread_cache_size", "int", True, 0, 16384),
        Parameter("long_query_time", "int", True, 0, 31536000),
        Parameter("slow_query_log", "bool", True),
        Parameter("binlog_expire_logs_seconds", "int", True, 3600, 8553600),
        Parameter("character_set_server", "choice", True, choices=("utf8mb4", "latin1", "utf8mb3")),
        Parameter(
            "sql_mode",
            "choice",
            True,
            choices=(
                "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION",
                "TRADITIONAL",
                "ANSI",
                "",
            ),
        ),
        # Set at start-up only here (10.11 names it tx_isolation at run time).
        Parameter(
            "transaction_isolation",
            "choice",
            False,
            choices=("READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE"),
        ),
        Parameter("innodb_read_io_threads", "int", True, 1, 64),  # dynamic since 10.11
        Parameter("innodb_write_io_threads", "int", True, 1, 64),
        Parameter("performance_schema", "bool", False),
    )
}

# Refused with a reason of their own: they reach the file system, load code, or are dbpilot's to set.
DANGEROUS: dict[str, str] = {
    "secure_file_priv": "it opens the server's file system to SQL (LOAD DATA, SELECT ... INTO OUTFILE)",
    "plugin_dir": "it loads code from a directory",
    "plugin_load": "it loads code",
    "plugin_load_add": "it loads code",
    "init_file": "it runs a file's statements as root at start-up",
    "init_connect": "it runs statements in every session",
    "log_error": "log file paths are the provider's",
    "general_log_file": "log file paths are the provider's",
    "slow_query_log_file": "log file paths are the provider's",
    "log_bin": "replication is dbpilot's to configure",
    "log_bin_basename": "log file paths are the provider's",
    "relay_log": "replication is dbpilot's to configure",
    "datadir": "the provider places the data",
    "tmpdir": "the provider places the data",
    "socket": "the provider places the server",
    "port": "the provider places the server",
    "bind_address": "the provider places the server",
    "user": "the server runs as the provider's user",
    "server_id": "dbpilot numbers the servers",
    "read_only": "dbpilot opens and closes writes",
    "gtid_strict_mode": "failover relies on it",
    "log_slave_updates": "failover relies on it",
    "binlog_format": "failover relies on ROW",
    "local_infile": "it reads the client's or server's files",
    "general_log": "it writes every statement, passwords included, to a file",
    "skip_grant_tables": "it disables authentication",
}


class ParameterError(ValueError):
    """Invalid parameters: `errors` maps a setting's name to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _normalise(parameter: Parameter, value: object) -> str:
    if parameter.kind == "bool":
        if isinstance(value, bool):
            return "ON" if value else "OFF"
        text = str(value).upper()
        if text in ("ON", "1", "TRUE"):
            return "ON"
        if text in ("OFF", "0", "FALSE"):
            return "OFF"
        raise ValueError("must be true or false")
    if parameter.kind == "choice":
        if str(value) not in parameter.choices:
            raise ValueError("must be one of " + ", ".join(repr(c) for c in parameter.choices))
        return str(value)
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if parameter.kind == "int":
        try:
            number = int(str(value))
        except ValueError:
            raise ValueError("must be an integer") from None
        text = str(number)
    else:  # size
        match = SIZE.fullmatch(str(value).strip())
        if not match:
            raise ValueError("must be a size in bytes, or with K, M or G (e.g. 256M)")
        number = int(match.group(1)) * UNITS[match.group(2).upper()]
        text = str(number)
    if parameter.minimum is not None and number < parameter.minimum:
        raise ValueError(f"must be at least {parameter.minimum}")
    if parameter.maximum is not None and number > parameter.maximum:
        raise ValueError(f"must be at most {parameter.maximum}")
    return text


def validate_parameters(raw: object) -> dict[str, str]:
    """The settings as my.cnf values (sizes in bytes, booleans ON/OFF); ParameterError naming each bad one."""
    if not isinstance(raw, Mapping):
        raise ParameterError({"parameters": 'must be an object {"name": value}'})
    clean: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, value in raw.items():
        key = str(name).replace("-", "_").lower()
        if key in DANGEROUS:
            errors[str(name)] = f"not allowed: {DANGEROUS[key]}"
            continue
        parameter = ALLOWED.get(key)
        if parameter is None:
            errors[str(name)] = (
                "unknown or not allowed: see docs/provisioning.md for the settings a parameter group may set"
            )
            continue
        try:
            clean[key] = _normalise(parameter, value)
        except ValueError as exc:
            errors[str(name)] = str(exc)
    if errors:
        raise ParameterError(errors)
    return clean


@dataclass(frozen=True)
class ParameterChange:
    """What changing a group does: settings applied live, and settings waiting for a restart."""

    live: dict[str, str]
    pending_restart: dict[str, str]
    removed: tuple[str, ...]

    @property
    def needs_restart(self) -> bool:
        return bool(self.pending_restart or self.removed)


def plan_change(old: Mapping[str, str], new: Mapping[str, str]) -> ParameterChange:
    """Split a change: dynamic settings go live, static ones (and removed ones: their default comes back
    only with a restart) wait for a rolling restart."""
    live: dict[str, str] = {}
    pending: dict[str, str] = {}
    for name, value in new.items():
        if old.get(name) == value:
            continue
        (live if ALLOWED[name].dynamic else pending)[name] = value
    removed = tuple(sorted(set(old) - set(new)))
    return ParameterChange(live, pending, removed)
