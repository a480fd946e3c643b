"""The `local` provider: provisioned mariadbd servers on the host where the worker runs.

Each instance lives in `<DBPILOT_DATA_ROOT>/servers/<instance>/` (my.cnf, data/, tmp/, files/, its socket,
`instance.json` with its port and desired state, and a systemd unit for hosts that run systemd). Ports
come from `DBPILOT_LOCAL_PORTS` (default 20000-20999, below the kernel's ephemeral range). mariadbd runs
as the `mysql` user when the worker is root, in a session of its own: a server outlives the worker that
started it, and any later worker finds it again by its pid file (checked against its command line, so a
recycled pid is never taken for it). After a host reboot, `python manage.py local_servers start` (run by
the written systemd unit, or at boot by the operator) starts every instance whose desired state is
running, read-only as always: dbpilot's monitoring and jobs take it from there.

It reuses the sandbox's building blocks: the same configuration (read_only=ON, GTID, semi-sync slave
side), the template data directory and the process handling.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pymysql
import pymysql.cursors

from clusters.providers.base import (
    BackupCapable,
    BackupStream,
    CloneResult,
    InstanceInfo,
    Placement,
    Progress,
    Provider,
    ProviderError,
    ServerSpec,
)
from clusters.providers.errors import SandboxError
from clusters.providers.local import unprivileged_user
from clusters.providers.mariadb_config import (
    INSTALL_DB,
    MARIADBD,
    NodeConfig,
    datadir_template,
    render_node_config,
)
from clusters.providers.mariadb_process import MariadbProcess
from clusters.providers.sandbox_registry import LOOPBACK, port_is_free, root_lock

STATE_FILE = "instance.json"
MARIADB_BACKUP = "/usr/bin/mariadb-backup"
MBSTREAM = "/usr/bin/mbstream"
DEFAULT_PORTS = "20000-20999"
SOCKET_PATH_MAX = 107
CHUNK = 1 << 20


def parse_port_range(text: str) -> range:
    """`20000-20999` (inclusive) -> range; ProviderError naming the setting when it is malformed."""
    try:
        first, last = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise ProviderError(f"DBPILOT_LOCAL_PORTS={text!r}: write a range such as {DEFAULT_PORTS}") from None
    if not 1024 <= first <= last <= 65535:
        raise ProviderError(f"DBPILOT_LOCAL_PORTS={text!r}: ports from 1024 to 65535, first <= last")
    return range(first, last + 1)


def check_backup_tools() -> None:
    for tool in (MARIADB_BACKUP, MBSTREAM):
        if not os.access(tool, os.X_OK):
            raise ProviderError(f"{tool} is missing: install the mariadb-backup package")


def memory_options(memory_mb: int) -> dict[str, str]:
    """The buffer pool takes half of the server's memory (32 MB at least): the rest is sessions and caches."""
    return {"innodb_buffer_pool_size": f"{max(32, memory_mb // 2)}M"}


class LocalProvider(Provider, BackupCapable):
    name = "local"

    def __init__(self, root: Path | str, ports: range | str = DEFAULT_PORTS, host: str = LOOPBACK):
        self.root = Path(root)
        self.ports = parse_port_range(ports) if isinstance(ports, str) else ports
        self.host = host
        self.run_as = unprivileged_user()

    # ----- layout -------------------------------------------------------------------------------------

    def dir(self, instance: str) -> Path:
        return self.root / instance

    def _state(self, instance: str) -> dict | None:
        try:
            return json.loads((self.dir(instance) / STATE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _write_state(self, instance: str, state: dict) -> None:
        path = self.dir(instance) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(path)

    def _config(self, instance: str, state: dict) -> NodeConfig:
        node_dir = self.dir(instance)
        return NodeConfig(
            server_id=state["server_id"],
            host=state["host"],
            port=state["port"],
            node_dir=node_dir,
            socket=node_dir / "mariadbd.sock",
            run_as=self.run_as,
            max_connections=400,
            semi_sync=state["semi_sync"],
            extra=state["options"],
        )

    def _process(self, instance: str, state: dict | None = None) -> MariadbProcess | None:
        state = state or self._state(instance)
        if state is None:
            return None
        config = self._config(instance, state)
        pid = None
        try:
            pid = int(config.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        return MariadbProcess(config, None, MARIADBD, pid)

    def placement(self, instance: str) -> Placement | None:
        state = self._state(instance)
        return Placement(instance, state["host"], state["port"]) if state else None

    def instances(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob(f"*/{STATE_FILE}"))

    def list_instances(self) -> list[InstanceInfo]:
        """Every instance directory, with its creation time (recorded in its state; for instances made
        before that was recorded, the time its systemd unit file was written: once, when it was placed).
        A directory without a state file is a placement cut short: listed too, aged by the directory."""
        found = []
        for node_dir in sorted(p for p in self.root.glob("*") if p.is_dir() and not p.name.startswith(".")):
            state = self._state(node_dir.name)
            created = state.get("created_at") if state else None
            if created is None:
                unit = node_dir / f"dbpilot-{node_dir.name}.service"
                try:
                    created = (unit if unit.exists() else node_dir).stat().st_mtime
                except FileNotFoundError:  # removed meanwhile
                    continue
            found.append(InstanceInfo(node_dir.name, float(created)))
        return found

    # ----- creating -----------------------------------------------------------------------------------

    def _options(self, spec: ServerSpec) -> dict[str, str]:
        options = {
            **memory_options(spec.memory_mb),
            "binlog_expire_logs_seconds": str(spec.binlog_expire_seconds),
        }
        options.update({k: str(v) for k, v in spec.parameters.items()})
        return options

    def _place(self, spec: ServerSpec) -> tuple[dict, bool]:
        """The instance's state, allocating a port and writing its files the first time; (state, new)."""
        existing = self._state(spec.instance)
        if existing is not None:
            return existing, False
        socket = self.dir(spec.instance) / "mariadbd.sock"
        if len(str(socket).encode()) > SOCKET_PATH_MAX:
            raise ProviderError(
                f"the socket path {socket} is too long for a unix socket: choose a shorter DBPILOT_DATA_ROOT"
            )
        with root_lock(self.root):
            self.root.chmod(0o755)  # mariadbd, as `mysql`, must reach its directory
            reserved = {s["port"] for i in self.instances() if (s := self._state(i))}
            port = next((p for p in self.ports if p not in reserved and port_is_free(self.host, p)), None)
            if port is None:
                raise ProviderError(
                    f"no free port left in DBPILOT_LOCAL_PORTS ({self.ports.start}-{self.ports.stop - 1}) "
                    f"on {self.host}: widen the range or remove unused servers",
                    permanent=False,
                )
            node_dir = self.dir(spec.instance)
            shutil.rmtree(node_dir, ignore_errors=True)  # a half-made instance without its state file
            node_dir.mkdir(mode=0o750, parents=True)
            state = {
                "instance": spec.instance,
                "host": self.host,
                "port": port,
                "server_id": spec.server_id,
                "semi_sync": spec.semi_sync,
                "options": self._options(spec),
                "desired": "stopped",
                "data": "none",
                "created_at": time.time(),
            }
            config = self._config(spec.instance, state)
            for path in (config.tmpdir, config.files_dir):
                path.mkdir(mode=0o750)
            if self.run_as:
                for path in (node_dir, config.tmpdir, config.files_dir):
                    shutil.chown(path, self.run_as, self.run_as)
            config.config_path.write_text(render_node_config(config))
            self._write_unit(spec.instance)
            self._write_state(spec.instance, state)
        return state, True

    def _write_unit(self, instance: str) -> None:
        """A systemd unit an operator can install (docs/provisioning.md): the server after a host reboot."""
        node_dir = self.dir(instance)
        (node_dir / f"dbpilot-{instance}.service").write_text(
            "[Unit]\nDescription=dbpilot local server " + instance + "\nAfter=network.target\n\n"
            "[Service]\nType=simple\n"
            f"ExecStart={MARIADBD} --defaults-file={node_dir / 'my.cnf'}\n"
            "Restart=no\nTimeoutStopSec=120\n\n[Install]\nWantedBy=multi-user.target\n"
        )

    def create(self, spec: ServerSpec) -> Placement:
        state, _ = self._place(spec)
        if state["data"] != "ready":
            config = self._config(spec.instance, state)
            try:
                template = datadir_template(self.root, self.run_as, MARIADBD, INSTALL_DB)
            except SandboxError as exc:
                raise ProviderError(str(exc)) from None
            shutil.rmtree(config.datadir, ignore_errors=True)
            copy = subprocess.run(
                ["cp", "-a", "--reflink=auto", str(template), str(config.datadir)],
                capture_output=True,
                text=True,
            )
            if copy.returncode != 0:
                raise ProviderError(f"copying the template data directory failed: {copy.stderr.strip()}")
            state["data"] = "ready"
            self._write_state(spec.instance, state)
        return Placement(spec.instance, state["host"], state["port"])

    def reconfigure(self, spec: ServerSpec) -> bool:
        state = self._state(spec.instance)
        if state is None:
            raise ProviderError(f"server {spec.instance} does not exist")
        options = self._options(spec)
        if options == state["options"] and spec.semi_sync == state["semi_sync"]:
            return False
        state["options"], state["semi_sync"] = options, spec.semi_sync
        self._config(spec.instance, state).config_path.write_text(
            render_node_config(self._config(spec.instance, state))
        )
        self._write_state(spec.instance, state)
        return True

    # ----- running ------------------------------------------------------------------------------------

    def running(self, instance: str) -> bool:
        process = self._process(instance)
        return bool(process and process.running())

    def start(self, instance: str, root_password: str | None, timeout: float = 60) -> None:
        state = self._state(instance)
        if state is None or state["data"] != "ready":
            raise ProviderError(f"server {instance} has no data directory: create or clone it first")
        process = self._process(instance, state)
        state["desired"] = "running"
        self._write_state(instance, state)
        if not process.running():
            if not port_is_free(state["host"], state["port"]):
                raise ProviderError(
                    f"port {state['port']} on {state['host']} is already in use by another program: "
                    "free it or remove this server",
                    permanent=False,
                )
            process.start()
        try:
            process.wait_ready(root_password or "", timeout)
        except SandboxError as exc:
            raise ProviderError(f"server {instance} did not start: {exc}", permanent=False) from None

    def stop(self, instance: str, timeout: float = 60) -> None:
        state = self._state(instance)
        if state is None:
            return
        state["desired"] = "stopped"
        self._write_state(instance, state)
        try:
            self._process(instance, state).stop(timeout)
        except SandboxError as exc:
            raise ProviderError(str(exc), permanent=False) from None

    def shutdown(self, instance: str, timeout: float = 60) -> None:
        """A clean shutdown that keeps the desired state (the host going down, not a user's stop)."""
        process = self._process(instance)
        if process is not None:
            process.stop(timeout)

    def wipe(self, instance: str) -> None:
        state = self._state(instance)
        if state is None:
            raise ProviderError(f"no instance {instance} here to rebuild")
        process = self._process(instance, state)
        if process is not None:
            process.kill()
        shutil.rmtree(self._config(instance, state).datadir, ignore_errors=True)
        state["data"] = "none"  # clone() fills it again
        self._write_state(instance, state)

    def destroy(self, instance: str) -> bool:
        node_dir = self.dir(instance)
        if not node_dir.exists():
            return False
        process = self._process(instance)
        if process is not None:
            process.kill()
        shutil.rmtree(node_dir, ignore_errors=True)
        return True

    def root_connection(self, instance: str, password: str | None, timeout: float = 5):
        state = self._state(instance)
        if state is None:
            raise ProviderError(f"server {instance} does not exist")
        return pymysql.connect(
            unix_socket=str(self.dir(instance) / "mariadbd.sock"),
            user="root",
            password=password or "",
            autocommit=True,
            connect_timeout=timeout,
            read_timeout=max(timeout, 30),
            cursorclass=pymysql.cursors.DictCursor,
        )

    def desired(self, instance: str) -> str | None:
        state = self._state(instance)
        return state.get("desired") if state else None

    def start_desired(self) -> list[str]:
        """After a host reboot: start every instance whose desired state is running (without waiting for
        it to answer: monitoring sees it come back); returns their names."""
        started = []
        for instance in self.instances():
            state = self._state(instance)
            if (
                state
                and state.get("desired") == "running"
                and state.get("data") == "ready"
                and not self.running(instance)
            ):
                self._process(instance, state).start()
                started.append(instance)
        return started

    # ----- cloning ------------------------------------------------------------------------------------

    def clone(
        self, source: str, spec: ServerSpec, root_password: str, progress: Progress | None = None
    ) -> CloneResult:
        """Stream `mariadb-backup --backup --stream=xbstream` of the running source into the new instance's
        data directory, prepare it, and return the GTID position the copy holds."""
        if self._state(source) is None or not self.running(source):
            raise ProviderError(f"cannot clone from {source}: it is not running here", permanent=False)
        check_backup_tools()
        done = self.cloned(spec)
        if done is not None:  # a resumed job: the copy was made and prepared already
            return done
        target = self.receiving_dir(spec)
        started = time.monotonic()
        extract = subprocess.Popen(
            [MBSTREAM, "-x", "-C", str(target)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        try:
            copied = self.send_clone(source, root_password, extract.stdin.write, progress)
        finally:
            try:
                extract.stdin.close()
            except BrokenPipeError:
                pass
            extract_err = extract.stderr.read().decode(errors="replace")
            extract.wait()
        if extract.returncode != 0:
            raise ProviderError(f"mbstream -x failed: {extract_err.strip()}", permanent=False)
        gtid = self.finish_clone(spec.instance)
        return CloneResult(gtid, copied, time.monotonic() - started)

    def cloned(self, spec: ServerSpec) -> CloneResult | None:
        """The clone of a resumed job, when its copy was made and prepared already."""
        state = self._state(spec.instance)
        if state is not None and state["data"] == "ready":
            return CloneResult(self._binlog_info(self._config(spec.instance, state).datadir), 0, 0.0)
        return None

    def receiving_dir(self, spec: ServerSpec) -> Path:
        """Place the new instance and return its empty data directory, where the backup stream goes."""
        state, _ = self._place(spec)
        target = self._config(spec.instance, state).datadir
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(mode=0o750)
        return target

    def send_clone(
        self,
        source: str,
        root_password: str,
        write: Callable[[bytes], object],
        progress: Progress | None = None,
    ) -> int:
        """Run `mariadb-backup --backup --stream=xbstream` of the running instance `source` and hand every
        chunk to `write` (an extracting mbstream, or the socket to another host's agent); bytes sent."""
        source_state = self._state(source)
        if source_state is None or not self.running(source):
            raise ProviderError(f"cannot clone from {source}: it is not running here", permanent=False)
        check_backup_tools()
        source_config = self._config(source, source_state)
        with tempfile.TemporaryDirectory(prefix="dbp-clone-") as scratch:
            defaults = Path(scratch) / "backup.cnf"
            fd = os.open(defaults, os.O_WRONLY | os.O_CREAT, 0o600)  # the password never goes on argv
            with os.fdopen(fd, "w") as out:
                out.write(
                    f"[mariadb-backup]\nuser=root\npassword={root_password}\nsocket={source_config.socket}\n"
                    f"datadir={source_config.datadir}\n"
                )
            with open(Path(scratch) / "backup.log", "wb") as log:
                backup = subprocess.Popen(
                    [
                        MARIADB_BACKUP,
                        f"--defaults-file={defaults}",
                        "--backup",
                        "--stream=xbstream",
                        f"--target-dir={scratch}",
                        "--parallel=2",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                )
                copied = 0
                failed_write = ""
                try:
                    while chunk := backup.stdout.read(CHUNK):
                        write(chunk)
                        copied += len(chunk)
                        if progress:
                            progress(copied)
                except OSError as exc:  # the receiving side went away
                    failed_write = str(exc)
                    backup.kill()
                backup.wait()
            if backup.returncode != 0 or failed_write:
                log_tail = (
                    (Path(scratch) / "backup.log").read_text(errors="replace").strip().splitlines()[-5:]
                )
                raise ProviderError(
                    "mariadb-backup from "
                    + source
                    + " failed: "
                    + " | ".join(([failed_write] if failed_write else []) + log_tail),
                    permanent=False,
                )
        return copied

    def finish_clone(self, instance: str) -> str:
        """Prepare the received copy, hand it to the server's user, mark the data ready; its GTID position."""
        state = self._state(instance)
        if state is None:
            raise ProviderError(f"server {instance} does not exist")
        target = self._config(instance, state).datadir
        if state["data"] == "ready":
            return self._binlog_info(target)
        return self._prepare_received(instance, state, target)

    def _prepare_received(self, instance: str, state: dict, target: Path) -> str:
        """Prepare a copy extracted into `target` (a clone or a restored backup), hand it to the server's
        user, mark the data ready; its GTID position."""
        prepare = subprocess.run(
            [MARIADB_BACKUP, "--no-defaults", "--prepare", f"--target-dir={target}"],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if prepare.returncode != 0:
            raise ProviderError(
                "mariadb-backup --prepare failed: " + " | ".join(prepare.stderr.strip().splitlines()[-5:])
            )
        if self.run_as:
            subprocess.run(["chown", "-R", f"{self.run_as}:{self.run_as}", str(target)], check=True)
        state["data"] = "ready"
        self._write_state(instance, state)
        return self._binlog_info(target)

    @staticmethod
    def _binlog_info(datadir: Path) -> str:
        for name in ("mariadb_backup_binlog_info", "xtrabackup_binlog_info"):
            path = datadir / name
            if path.exists():
                fields = path.read_text().split()
                return fields[2] if len(fields) >= 3 else ""
        return ""

    # ----- backups (clusters.backups) -----------------------------------------------------------------

    def backup_stream(self, instance: str, root_password: str) -> BackupStream:
        """`mariadb-backup --backup --stream=xbstream` of the running instance, read chunk by chunk: the
        caller streams it to storage, no local copy is made."""
        state = self._state(instance)
        if state is None or not self.running(instance):
            raise ProviderError(f"cannot back up {instance}: it is not running here", permanent=False)
        if not os.access(MARIADB_BACKUP, os.X_OK):
            raise ProviderError(f"{MARIADB_BACKUP} is missing: install the mariadb-backup package")
        return _LocalBackupStream(self._config(instance, state), root_password, instance)

    def restore_stream(self, spec: ServerSpec, chunks, progress: Progress | None = None) -> CloneResult:
        """Place a new server whose data directory is extracted (mbstream) from a physical backup stream
        and prepared; returns the GTID position it holds. A resumed call on a ready server does nothing."""
        for tool in (MARIADB_BACKUP, MBSTREAM):
            if not os.access(tool, os.X_OK):
                raise ProviderError(f"{tool} is missing: install the mariadb-backup package")
        state, _ = self._place(spec)
        target = self._config(spec.instance, state).datadir
        if state["data"] == "ready":
            return CloneResult(self._binlog_info(target), 0, 0.0)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(mode=0o750)
        started = time.monotonic()
        extract = subprocess.Popen(
            [MBSTREAM, "-x", "-C", str(target)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        copied = 0
        try:
            for chunk in chunks:
                extract.stdin.write(chunk)
                copied += len(chunk)
                if progress:
                    progress(copied)
            extract.stdin.close()
        except BaseException:
            extract.kill()
            extract.wait()
            shutil.rmtree(target, ignore_errors=True)
            raise
        error = extract.stderr.read().decode(errors="replace").strip()
        if extract.wait() != 0:
            raise ProviderError(f"mbstream could not extract the backup: {error[-300:]}")
        gtid = self._prepare_received(spec.instance, state, target)
        return CloneResult(gtid, copied, time.monotonic() - started)


class _LocalBackupStream(BackupStream):
    def __init__(self, config, root_password: str, instance: str):
        self.instance = instance
        self._scratch = tempfile.TemporaryDirectory(prefix="dbp-backup-")
        scratch = Path(self._scratch.name)
        defaults = scratch / "backup.cnf"
        fd = os.open(defaults, os.O_WRONLY | os.O_CREAT, 0o600)  # the password never goes on argv
        with os.fdopen(fd, "w") as out:
            out.write(
                f"[mariadb-backup]\nuser=root\npassword={root_password}\nsocket={config.socket}\n"
                f"datadir={config.datadir}\n"
            )
        self._log = scratch / "backup.log"
        self._process = subprocess.Popen(
            [
                MARIADB_BACKUP,
                f"--defaults-file={defaults}",
                "--backup",
                "--stream=xbstream",
                f"--target-dir={scratch}",
                "--parallel=2",
            ],
            stdout=subprocess.PIPE,
            stderr=open(self._log, "wb"),
            stdin=subprocess.DEVNULL,
        )

    def __iter__(self):
        try:
            while chunk := self._process.stdout.read(CHUNK):
                yield chunk
            if self._process.wait() != 0:
                tail = self._log.read_text(errors="replace").strip().splitlines()[-5:]
                raise ProviderError(
                    f"mariadb-backup of {self.instance} failed: " + " | ".join(tail), permanent=False
                )
            self.gtid = _logged_gtid(self._log.read_text(errors="replace"))
        finally:
            self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._scratch.cleanup()


def _logged_gtid(log: str) -> str:
    """The GTID mariadb-backup logs with the binlog position ("GTID of the last change '0-1-5'")."""
    match = re.search(r"GTID of the last change '([^']*)'", log)
    return match.group(1) if match else ""
