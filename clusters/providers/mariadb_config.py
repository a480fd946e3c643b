"""The configuration file of a sandbox server, and the cached template data directory nodes start from.

Running `mariadb-install-db` costs about a second; it runs once per MariaDB version into a template that
each node copies, which is most of why three nodes come up in about two seconds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clusters.providers.errors import SandboxError

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"

# Settings that shape the files of a fresh data directory: template and nodes must agree on them.
DATADIR_SHAPE = {"innodb_log_file_size": "16M"}

# Small, quiet instances: an idle node stays around 55 MB RSS.
SMALL_INSTANCE = {
    "innodb_buffer_pool_size": "32M",
    "innodb_log_buffer_size": "2M",
    "performance_schema": "OFF",
    "table_definition_cache": "400",
    "table_open_cache": "400",
    "key_buffer_size": "8M",
    "aria_pagecache_buffer_size": "8M",
    "query_cache_type": "0",
    "query_cache_size": "0",
}

OPTION_NAME = re.compile(r"\A[a-z][a-z0-9_-]{1,63}\Z")
# What places and identifies a server, or keeps it unprivileged, is the provider's to decide.
RESERVED_OPTIONS = {
    "user",
    "datadir",
    "tmpdir",
    "secure_file_priv",
    "socket",
    "pid_file",
    "log_error",
    "bind_address",
    "port",
    "server_id",
    "report_host",
    "report_port",
    "read_only",
    "log_bin",
    "relay_log",
}


@dataclass(frozen=True)
class NodeConfig:
    """What makes one server different from its peers; everything else is the same on all of them."""

    server_id: int
    host: str
    port: int
    node_dir: Path
    socket: Path
    run_as: str | None
    max_connections: int
    semi_sync: bool
    extra: Mapping[str, str]
    # Where it listens when not only at `host`: "0.0.0.0" lets one server be reached at many loopback
    # aliases (the monitoring benchmark's clusters share servers that way, one address per cluster).
    bind_address: str = ""

    @property
    def datadir(self) -> Path:
        return self.node_dir / "data"

    @property
    def config_path(self) -> Path:
        return self.node_dir / "my.cnf"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "mariadbd.pid"

    @property
    def error_log(self) -> Path:
        return self.node_dir / "error.log"

    @property
    def tmpdir(self) -> Path:
        return self.node_dir / "tmp"

    @property
    def files_dir(self) -> Path:
        return self.node_dir / "files"


def validate_extra_options(extra: Mapping[str, object] | None) -> dict[str, str]:
    """Extra server options (e.g. innodb_flush_log_at_trx_commit) must be plain name=value pairs."""
    clean: dict[str, str] = {}
    for name, value in (extra or {}).items():
        text = str(value)
        if not OPTION_NAME.fullmatch(name) or any(c in text for c in "\n\r[]") or text != text.strip():
            raise SandboxError(
                f"invalid server option {name}={text!r}: use a plain option name and a one-line value"
            )
        if name.replace("-", "_") in RESERVED_OPTIONS:
            raise SandboxError(f"server option {name} is set by the provider and cannot be changed")
        clean[name] = text
    return clean


def render_node_config(node: NodeConfig) -> str:
    """The whole my.cnf of one node; `read_only=ON` on every node, so a restarted primary never takes writes."""
    options: dict[str, str] = {
        "datadir": str(node.datadir),
        "tmpdir": str(node.tmpdir),  # private: instances sharing /tmp delete each other's temporary tables
        "secure_file_priv": str(node.files_dir),
        "socket": str(node.socket),
        "pid_file": str(node.pid_file),
        "log_error": str(node.error_log),
        "bind_address": node.bind_address or node.host,
        "port": str(node.port),
        "skip_name_resolve": "ON",
        "local_infile": "OFF",
        "character_set_server": "utf8mb4",
        "collation_server": "utf8mb4_general_ci",
        "max_connections": str(node.max_connections),
        "server_id": str(node.server_id),
        "report_host": node.host,
        "report_port": str(node.port),
        "log_bin": "mysql-bin",
        "relay_log": "relay-bin",
        "log_slave_updates": "ON",
        "binlog_format": "ROW",
        "gtid_strict_mode": "ON",
        "read_only": "ON",
        "slave_net_timeout": "4",
        "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
        **DATADIR_SHAPE,
        **SMALL_INSTANCE,
    }
    if node.semi_sync:
        # The slave side is harmless on a primary, so every node has it; the master side follows the
        # primary and is switched on at run time only (on a replica it would stall the SQL thread).
        options["rpl_semi_sync_slave_enabled"] = "ON"
    if node.run_as:
        options["user"] = node.run_as
    options.update(node.extra)
    lines = [
        "# Written by dbpilot's local provider; node settings only, nothing from /etc/mysql.",
        "[mysqld]",
    ]
    lines += [f"{name}={value}" for name, value in options.items()]
    lines += ["", "[client]", f"socket={node.socket}", ""]
    return "\n".join(lines)


def mariadb_version(mariadbd: str = MARIADBD) -> str:
    if not os.access(mariadbd, os.X_OK):
        raise SandboxError(
            f"{mariadbd} is missing: install the mariadb-server package (apt-get install mariadb-server)"
        )
    out = subprocess.run([mariadbd, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"Ver\s+(\S+)", out)
    if not match:
        raise SandboxError(f"{mariadbd} --version printed nothing usable: is it a MariaDB server binary?")
    return match.group(1)


def datadir_template(
    root: Path, run_as: str | None, mariadbd: str = MARIADBD, install_db: str = INSTALL_DB
) -> Path:
    """The template data directory for this MariaDB version, built on first use (under a lock)."""
    version = mariadb_version(mariadbd)
    shape = "-".join(f"{k}={v}" for k, v in sorted(DATADIR_SHAPE.items()))
    templates = root / ".templates"
    template = templates / re.sub(r"[^A-Za-z0-9.=_-]", "_", f"{version}-{shape}")
    if (template / "mysql").is_dir():
        return template
    templates.mkdir(parents=True, exist_ok=True)
    with open(templates / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / "mysql").is_dir():
            _build_template(template, run_as, install_db)
    return template


def _build_template(template: Path, run_as: str | None, install_db: str) -> None:
    if not os.access(install_db, os.X_OK):
        raise SandboxError(
            f"{install_db} is missing: install the mariadb-server package (apt-get install mariadb-server)"
        )
    build = template.with_name(f".build-{os.getpid()}")
    shutil.rmtree(build, ignore_errors=True)
    (build / "data").mkdir(parents=True)
    (build / "tmp").mkdir()
    config = build / "install.cnf"
    config.write_text(
        "[mysqld]\n"
        f"datadir={build / 'data'}\ntmpdir={build / 'tmp'}\nskip_networking\n"
        + "".join(f"{k}={v}\n" for k, v in {**DATADIR_SHAPE, **SMALL_INSTANCE}.items())
    )
    # Only root@localhost (socket) remains; each node gives it a password before anything else connects.
    extra_sql = build / "extra.sql"
    extra_sql.write_text(
        "DELETE FROM mysql.global_priv WHERE NOT (User='root' AND Host='localhost') AND User<>'mariadb.sys';\n"
        "DELETE FROM mysql.proxies_priv WHERE Host<>'localhost';\n"
    )
    if run_as:
        shutil.chown(build / "data", run_as, run_as)
        shutil.chown(build / "tmp", run_as, run_as)
    command = [
        install_db,
        f"--defaults-file={config}",  # must come first, or /etc/mysql is read too
        f"--datadir={build / 'data'}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
        f"--extra-file={extra_sql}",
    ]
    if run_as:
        command.append(f"--user={run_as}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        shutil.rmtree(build, ignore_errors=True)
        raise SandboxError(
            "mariadb-install-db failed while building the template data directory:\n" + "\n".join(detail)
        )
    if run_as:
        for path in (build / "data").rglob("*"):
            shutil.chown(path, run_as, run_as)
    shutil.rmtree(template, ignore_errors=True)
    (build / "data").rename(template)
    shutil.rmtree(build, ignore_errors=True)
