"""A logical backup: `mariadb-dump --single-transaction --gtid --master-data=2` of every database, read
as a stream (for registered clusters, whose servers no provider or agent of dbpilot can reach on disk)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

MARIADB_DUMP = "/usr/bin/mariadb-dump"
CHUNK = 1 << 20
GTID_LINE = re.compile(rb"SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'")


# What mariadb-dump needs to see every database (without SELECT it silently dumps none) and to note the
# consistent GTID position (--master-data takes a short FLUSH TABLES WITH READ LOCK: RELOAD).
DUMP_PRIVILEGES = ("SELECT", "SHOW VIEW", "TRIGGER", "EVENT", "LOCK TABLES", "RELOAD")


class DumpError(RuntimeError):
    pass


def missing_privileges(cursor) -> list[str]:
    """The global privileges the connected user lacks for a complete dump."""
    cursor.execute(
        "SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
        "CONCAT('\\'', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '\\'@\\'', "
        "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '\\'')"
    )
    held = {row["p"] for row in cursor.fetchall()}
    return [p for p in DUMP_PRIVILEGES if p not in held]


class LogicalDump:
    """Iterate for the SQL bytes; `gtid` is the position the dump is consistent at, found in its header."""

    def __init__(self, host: str, port: int, user: str, password: str):
        if not os.access(MARIADB_DUMP, os.X_OK):
            raise DumpError(f"{MARIADB_DUMP} is missing: install the mariadb-client package")
        self.gtid = ""
        self._scratch = tempfile.TemporaryDirectory(prefix="dbp-dump-")
        defaults = Path(self._scratch.name) / "dump.cnf"
        fd = os.open(defaults, os.O_WRONLY | os.O_CREAT, 0o600)  # the password never goes on argv
        with os.fdopen(fd, "w") as out:
            out.write(f"[client]\nhost={host}\nport={port}\nuser={user}\npassword={password}\n")
        self._log = Path(self._scratch.name) / "dump.log"
        self._process = subprocess.Popen(
            [
                MARIADB_DUMP,
                f"--defaults-extra-file={defaults}",
                "--single-transaction",
                "--gtid",
                "--master-data=2",
                "--all-databases",
                "--routines",
                "--events",
                "--triggers",
                "--hex-blob",
            ],
            stdout=subprocess.PIPE,
            stderr=open(self._log, "wb"),
            stdin=subprocess.DEVNULL,
        )

    def __iter__(self):
        carry = b""
        try:
            while chunk := self._process.stdout.read(CHUNK):
                # With --gtid --master-data, the GTID state is printed after the mysql schema, anywhere in
                # the stream: look in every chunk (with the end of the previous one, for a split line).
                window = carry + chunk
                for match in GTID_LINE.finditer(window):
                    self.gtid = match.group(1).decode()
                carry = window[-200:]
                yield chunk
            if self._process.wait() != 0:
                tail = self._log.read_text(errors="replace").strip().splitlines()[-3:]
                raise DumpError("mariadb-dump failed: " + " | ".join(tail))
        finally:
            self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._scratch.cleanup()
