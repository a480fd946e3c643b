"""The accounts every sandbox server gets, and the exact privileges of each.

All of it runs with `sql_log_bin=0`, so a fresh cluster has no GTIDs from its own setup (otherwise every
replica would start with errant transactions). docs/sandbox.md lists the same grants for operators.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

ADMIN_USER = "dbpilot"
REPLICATION_USER = "repl"
APP_USER = "app"
APP_DATABASE = "app"

# The minimal set dbpilot's own connection needs on MariaDB 10.11, found by removing each privilege in
# turn (docs/sandbox.md says which statement needs which). No SUPER: READ_ONLY ADMIN is what
# `SET GLOBAL read_only` needs since 10.11, and CONNECTION ADMIN also lets dbpilot in past max_connections.
ADMIN_PRIVILEGES = (
    "PROCESS",  # information_schema.processlist and innodb_trx of every session
    "RELOAD",  # FLUSH TABLES WITH READ LOCK, RESET SLAVE ALL, FLUSH BINARY LOGS
    "BINLOG MONITOR",  # SHOW BINARY LOGS, SHOW MASTER STATUS (the old REPLICATION CLIENT)
    "SLAVE MONITOR",  # SHOW [ALL] SLAVES STATUS (also spelled REPLICA MONITOR)
    "REPLICATION SLAVE ADMIN",  # CHANGE MASTER, START/STOP SLAVE, gtid_slave_pos, slave_net_timeout, rpl_semi_sync_slave_*
    "REPLICATION MASTER ADMIN",  # rpl_semi_sync_master_*, SHOW SLAVE HOSTS
    "READ_ONLY ADMIN",  # SET GLOBAL read_only (and it writes through read_only: never write on a replica with it)
    "BINLOG ADMIN",  # SET sql_log_bin=0 for dbpilot's own setup statements, PURGE BINARY LOGS
    "CONNECTION ADMIN",  # KILL other users' sessions, SET GLOBAL max_connections, a slot past max_connections
    "BINLOG REPLAY",  # the BINLOG statements of a flashback's undo (rejoin_method flashback)
)


@dataclass(frozen=True)
class Credentials:
    """A user name and its password, as the API and the demo pass them on."""

    user: str
    password: str

    def as_dict(self) -> dict[str, str]:
        return {"user": self.user, "password": self.password}


@dataclass(frozen=True)
class SandboxAccounts:
    """The passwords of one sandbox: random per sandbox, the same on each of its servers."""

    root: Credentials
    admin: Credentials
    replication: Credentials
    app: Credentials

    @classmethod
    def generate(cls) -> SandboxAccounts:
        def new(user: str) -> Credentials:
            return Credentials(user, secrets.token_urlsafe(18))

        return cls(new("root"), new(ADMIN_USER), new(REPLICATION_USER), new(APP_USER))

    @classmethod
    def from_dict(cls, data: dict) -> SandboxAccounts:
        return cls(**{role: Credentials(**data[role]) for role in ("root", "admin", "replication", "app")})

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {
            "root": self.root.as_dict(),
            "admin": self.admin.as_dict(),
            "replication": self.replication.as_dict(),
            "app": self.app.as_dict(),
        }

    def role(self, name: str) -> Credentials:
        """Credentials by role name (root, admin, replication, app) or by user name."""
        for role, creds in self.__dict__.items():
            if name in (role, creds.user):
                return creds
        raise ValueError(f"unknown sandbox user {name!r}: use root, admin, replication or app")


def setup_statements(accounts: SandboxAccounts, client_host: str) -> list[tuple[str, tuple]]:
    """Statements (with their parameters) that create the accounts and the app database on one server.

    `client_host` is the host part of the accounts: where dbpilot, the replicas and the application
    connect from (127.0.0.1 on loopback, the namespaces' network otherwise). root stays local (socket).
    """
    admin, repl, app = accounts.admin, accounts.replication, accounts.app
    return [
        ("SET SESSION sql_log_bin=0", ()),
        ("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (accounts.root.password,)),
        ("CREATE USER %s@%s IDENTIFIED BY %s", (admin.user, client_host, admin.password)),
        (f"GRANT {', '.join(ADMIN_PRIVILEGES)} ON *.* TO %s@%s", (admin.user, client_host)),
        ("CREATE USER %s@%s IDENTIFIED BY %s", (repl.user, client_host, repl.password)),
        ("GRANT REPLICATION SLAVE ON *.* TO %s@%s", (repl.user, client_host)),
        ("CREATE USER %s@%s IDENTIFIED BY %s", (app.user, client_host, app.password)),
        (f"CREATE DATABASE `{APP_DATABASE}`", ()),
        (f"GRANT ALL PRIVILEGES ON `{APP_DATABASE}`.* TO %s@%s", (app.user, client_host)),
    ]
