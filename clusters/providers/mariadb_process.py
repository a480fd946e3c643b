"""One mariadbd process of a sandbox: start it (optionally inside a network namespace), see whether it
runs, wait until it answers, signal it, stop it.

A process may be our child (started here: we reap it) or one a previous command started (found again by
its pid and checked by its command line, so a recycled pid is never signalled).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pymysql

from clusters.providers.errors import SandboxError
from clusters.providers.mariadb_config import MARIADBD, NodeConfig


class MariadbProcess:
    """The server process of one node, identified by its configuration file."""

    def __init__(
        self, config: NodeConfig, netns: str | None = None, mariadbd: str = MARIADBD, pid: int | None = None
    ):
        self.config = config
        self.netns = netns
        self.mariadbd = mariadbd
        self.pid = pid
        self._child: subprocess.Popen | None = None

    def start(self) -> None:
        if self.running():
            return
        command = [self.mariadbd, f"--defaults-file={self.config.config_path}"]  # must be the first option
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]  # ip execs mariadbd: same pid
        with open(self.config.node_dir / "stdout.log", "ab") as out:
            # A session of its own: Ctrl-C in a test run or the CLI does not reach the server.
            self._child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        self.pid = self._child.pid

    def running(self) -> bool:
        """True while the process exists (stopped with SIGSTOP counts as running), False once it exited."""
        if self.pid is None:
            return False
        if self._child is not None:
            return self._child.poll() is None
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
        return state != "Z" and f"--defaults-file={self.config.config_path}".encode() in cmdline

    def signal(self, sig: int) -> None:
        if not self.running():
            raise SandboxError(f"server {self.config.server_id} is not running")
        os.kill(self.pid, sig)

    def wait_exited(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL and wait until the process is gone (its port is free again)."""
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
            if not self.wait_exited(30):
                raise SandboxError(
                    f"server {self.config.server_id} (pid {self.pid}) survived SIGKILL for 30 s"
                )

    def stop(self, timeout: float = 60) -> None:
        """A clean shutdown (SIGTERM); a frozen (SIGSTOP) server is resumed first so it can shut down."""
        if not self.running():
            return
        os.kill(self.pid, signal.SIGCONT)
        os.kill(self.pid, signal.SIGTERM)
        if not self.wait_exited(timeout):
            raise SandboxError(f"server {self.config.server_id} did not shut down within {timeout:.0f} s")

    def rss_bytes(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (FileNotFoundError, TypeError):
            pass
        return None

    def wait_ready(self, password: str, timeout: float) -> None:
        """Wait until root can log in through the socket; a server that exits meanwhile is an error."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise SandboxError(
                    f"server {self.config.server_id} exited at start-up:\n{self.error_log_tail()}"
                )
            if self.config.socket.exists():
                try:
                    pymysql.connect(
                        unix_socket=str(self.config.socket), user="root", password=password, connect_timeout=2
                    ).close()
                    return
                except pymysql.MySQLError:
                    pass
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"server {self.config.server_id} did not accept connections within {timeout:.0f} s:\n{self.error_log_tail()}"
                )
            time.sleep(0.05)

    def error_log_tail(self, lines: int = 12) -> str:
        texts = []
        for path in (self.config.error_log, self.config.node_dir / "stdout.log"):
            try:
                texts += path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                continue
        problems = [t for t in texts if "[ERROR]" in t or "rror" in t]
        return "\n".join((problems or texts)[-lines:]) or "(the error log is empty)"
