"""The local provider: a replicating MariaDB cluster on this host, for the demo, the tests and benchmarks.

`LocalSandbox("demo", nodes=3).up()` starts three mariadbd servers under /tmp/dbp/demo, creates the
accounts with `sql_log_bin=0` (no setup GTIDs), makes node 1 the writable primary and the others GTID
replicas of it, and returns a JSON-able description with the passwords. The state is remembered in
`<root>/<name>/sandbox.json` (mode 0600), so another process (`manage.py sandbox down`) finds it again.

Nodes are numbered from 1; node 1 is the primary at creation. Every server has `read_only=ON` in its
configuration: a node restarted with `start(i)` comes back read-only, whatever its role was.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql
import pymysql.cursors

from clusters.providers import netns as netns_fabric
from clusters.providers.accounts import APP_DATABASE, SandboxAccounts, setup_statements
from clusters.providers.errors import SandboxError
from clusters.providers.mariadb_config import (
    INSTALL_DB,
    MARIADBD,
    NodeConfig,
    datadir_template,
    render_node_config,
    validate_extra_options,
)
from clusters.providers.mariadb_process import MariadbProcess
from clusters.providers.sandbox_registry import (
    DEFAULT_ROOT,
    LOOPBACK,
    abandoned_sandboxes,
    allocate_loopback_ports,
    allocate_netns_index,
    kill_strays,
    port_taken_message,
    read_state,
    root_lock,
    validate_name,
    write_state,
)

SOCKET_PATH_MAX = 107
SIGNALS = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT, signal.SIGTERM}


def unprivileged_user() -> str | None:
    """mariadbd never runs as root: as root we start it as `mysql`; otherwise it runs as the current user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mysql")
    except KeyError:
        raise SandboxError(
            "the system user `mysql` does not exist: install mariadb-server (apt-get install mariadb-server)"
        ) from None
    return "mysql"


def remove_namespaces(root: Path, name: str, veths: list[str]) -> bool:
    """Delete a sandbox's veths and namespaces, and the bridge once no sandbox uses it; True if any."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False  # without root there are no namespaces to remove
    namespaces = netns_fabric.leftover_namespaces(name)
    if not (namespaces or veths):
        return False
    with root_lock(root):
        for veth in veths:
            netns_fabric.delete_veth(veth)
        for namespace in namespaces:
            netns_fabric.delete_namespace(namespace)
        netns_fabric.remove_bridge_if_unused()
    return bool(namespaces)


class LocalSandbox:
    """N MariaDB 10.11 servers on this host, replicating by GTID from node 1."""

    def __init__(
        self,
        name: str,
        nodes: int = 3,
        *,
        semi_sync: bool = False,
        netns: bool = False,
        base_port: int | None = None,
        max_connections: int = 400,
        root: Path | str = DEFAULT_ROOT,
        extra_config: dict[str, object] | None = None,
        temporary: bool = False,
        start_timeout: float = 60.0,
        bind_address: str = "",
    ):
        validate_name(name)
        if not isinstance(nodes, int) or not 1 <= nodes <= 9:
            raise SandboxError(f"nodes={nodes!r}: a sandbox has 1 to 9 nodes")
        if base_port is not None and not (1024 <= base_port <= 65535 - nodes):
            raise SandboxError(f"base_port={base_port}: choose a port from 1024 to {65535 - nodes}")
        if not 10 <= max_connections <= 100000:
            raise SandboxError(f"max_connections={max_connections}: choose 10 to 100000")
        self.name = name
        self.node_count = nodes
        self.semi_sync = semi_sync
        self.netns = netns
        self.base_port = base_port
        self.max_connections = max_connections
        self.root = Path(root)
        self.extra_config = validate_extra_options(extra_config)
        self.temporary = temporary
        self.start_timeout = start_timeout
        self.bind_address = bind_address
        self.primary = 1
        self.accounts: SandboxAccounts | None = None
        self.netns_index: int | None = None
        self.ports: list[int] = []
        self.run_as = unprivileged_user()
        self._processes: dict[int, MariadbProcess] = {}
        socket_path = self.node_dir(nodes) / "mariadbd.sock"
        if len(str(socket_path).encode()) > SOCKET_PATH_MAX:
            raise SandboxError(
                f"the socket path {socket_path} is longer than 107 bytes: use a shorter root or name"
            )

    # ----- layout -------------------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def nodes(self) -> list[int]:
        return list(range(1, self.node_count + 1))

    def node_dir(self, node: int) -> Path:
        return self.dir / f"n{node}"

    def host(self, node: int) -> str:
        return netns_fabric.node_address(self.netns_index, node) if self.netns else LOOPBACK

    def port(self, node: int) -> int:
        return self.ports[self._check(node) - 1]

    def namespace(self, node: int) -> str | None:
        return netns_fabric.namespace_name(self.name, node) if self.netns else None

    def _node_config(self, node: int) -> NodeConfig:
        return NodeConfig(
            server_id=node,
            host=self.host(node),
            bind_address=getattr(self, "bind_address", ""),
            port=self.port(node),
            node_dir=self.node_dir(node),
            socket=self.node_dir(node) / "mariadbd.sock",
            run_as=self.run_as,
            max_connections=self.max_connections,
            semi_sync=self.semi_sync,
            extra=self.extra_config,
        )

    def _check(self, node: int) -> int:
        if not isinstance(node, int) or not 1 <= node <= self.node_count:
            raise SandboxError(f"node {node!r}: this sandbox has nodes 1 to {self.node_count}")
        return node

    def process(self, node: int) -> MariadbProcess:
        return self._processes[self._check(node)]

    # ----- creating and removing -----------------------------------------------------------------------

    def up(self) -> dict:
        """Start, wire and wait until every replica replicates; on any failure, remove what was started."""
        if self.netns:
            netns_fabric.check_available()
        self.remove_leftovers(self.name, self.root)
        try:
            with root_lock(self.root):
                self._allocate_addresses()
                self.accounts = SandboxAccounts.generate()
                try:
                    self._prepare_dirs()
                except OSError as exc:
                    raise SandboxError(
                        f"cannot create the sandbox's files under {self.root}: {exc}"
                    ) from None
                self._save_state("starting")
            template = datadir_template(self.root, self.run_as, MARIADBD, INSTALL_DB)
            with ThreadPoolExecutor(max_workers=self.node_count) as pool:
                list(pool.map(lambda n: self._create_node(n, template), self.nodes))
                self._save_state("starting")
                # The primary first, so replicas find semi-sync on when they connect.
                self._wire_node(self.primary)
                list(pool.map(self._wire_node, [n for n in self.nodes if n != self.primary]))
            self.wait_replicating(timeout=30, primary=self.primary)
            self._save_state("running")
        except BaseException:
            self.destroy()
            raise
        return self.describe()

    def _allocate_addresses(self) -> None:
        if not self.netns:
            self.ports = allocate_loopback_ports(self.root, self.name, self.node_count, self.base_port)
            return
        self.netns_index = allocate_netns_index(self.root, self.name)
        self.ports = [self.base_port or 3306] * self.node_count  # each node has an address of its own
        netns_fabric.ensure_bridge()
        for node in self.nodes:
            veth = netns_fabric.host_veth_name(self.netns_index, node)
            netns_fabric.create_node_namespace(self.namespace(node), veth, self.host(node))

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # mariadbd, as `mysql`, must reach its directory
        self.dir.mkdir(mode=0o755)
        for node in self.nodes:
            config = self._node_config(node)
            config.node_dir.mkdir(mode=0o750)
            config.tmpdir.mkdir(mode=0o750)
            config.files_dir.mkdir(mode=0o750)
            if self.run_as:
                for path in (config.node_dir, config.tmpdir, config.files_dir):
                    shutil.chown(path, self.run_as, self.run_as)
            config.config_path.write_text(render_node_config(config))
            self._processes[node] = MariadbProcess(config, self.namespace(node), MARIADBD)

    def _create_node(self, node: int, template: Path) -> None:
        process = self._processes[node]
        config = process.config
        copy = subprocess.run(
            ["cp", "-a", "--reflink=auto", str(template), str(config.datadir)], capture_output=True, text=True
        )
        if copy.returncode != 0:
            raise SandboxError(f"copying the template data directory failed: {copy.stderr.strip()}")
        process.start()
        try:
            process.wait_ready("", self.start_timeout)  # root@localhost has no password until setup below
        except SandboxError as exc:
            if "Address already in use" in str(exc):
                raise SandboxError(port_taken_message(config.host, config.port)) from None
            raise
        with pymysql.connect(
            unix_socket=str(config.socket), user="root", password="", autocommit=True
        ) as conn:
            with conn.cursor() as cursor:
                for statement, args in setup_statements(self.accounts, self.client_host):
                    cursor.execute(statement, args or None)

    @property
    def client_host(self) -> str:
        """Where dbpilot, the replicas and applications connect from: the host part of every account."""
        return "10.231.0.0/255.255.0.0" if self.netns else LOOPBACK

    def _wire_node(self, node: int) -> None:
        if node == self.primary:
            self.sql(node, "SET GLOBAL read_only=0")  # the configuration says ON: writable at run time only
            if self.semi_sync:
                self.sql(node, "SET GLOBAL rpl_semi_sync_master_enabled=1")
            return
        repl = self.accounts.replication
        self.sql(
            node,
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
            (self.host(self.primary), self.port(self.primary), repl.user, repl.password),
        )
        self.sql(node, "START SLAVE")

    def destroy(self) -> None:
        """Kill every server (no clean shutdown: the data goes too), remove namespaces and files."""
        for process in self._processes.values():
            process.kill()
        kill_strays(self.root, self.name)
        veths = (
            [netns_fabric.host_veth_name(self.netns_index, n) for n in self.nodes] if self.netns_index else []
        )
        remove_namespaces(self.root, self.name, veths)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        if not self._processes:
            self.up()
        return self

    def __exit__(self, *exc_info) -> None:
        self.destroy()

    @classmethod
    def load(cls, name: str, root: Path | str = DEFAULT_ROOT) -> LocalSandbox:
        """The sandbox NAME as a previous `up()` (in any process) left it; SandboxError when there is none."""
        state = read_state(Path(root), validate_name(name))
        sandbox = cls(
            name,
            state["nodes"],
            semi_sync=state["semi_sync"],
            netns=state["netns"],
            base_port=state.get("base_port"),
            max_connections=state["max_connections"],
            root=root,
            extra_config=state.get("extra_config"),
            temporary=state.get("owner_pid") is not None,
        )
        sandbox.ports = state["ports"]
        sandbox.netns_index = state.get("netns_index")
        sandbox.primary = state.get("primary", 1)
        sandbox.accounts = SandboxAccounts.from_dict(state["credentials"])
        for node in sandbox.nodes:
            pid = state["pids"][node - 1]
            sandbox._processes[node] = MariadbProcess(
                sandbox._node_config(node), sandbox.namespace(node), MARIADBD, pid
            )
        return sandbox

    @classmethod
    def remove_leftovers(cls, name: str, root: Path | str = DEFAULT_ROOT) -> bool:
        """Remove whatever a previous sandbox of this name left behind; True when there was something."""
        root = Path(root)
        found = (root / name).exists()
        try:
            previous = cls.load(name, root)
        except SandboxError:
            previous = None
        if previous is not None:
            previous.destroy()
            return True
        found |= kill_strays(root, name)
        found |= remove_namespaces(root, name, [])
        shutil.rmtree(root / name, ignore_errors=True)
        return found

    @classmethod
    def remove_abandoned(cls, root: Path | str = DEFAULT_ROOT) -> list[str]:
        """Remove temporary sandboxes (test runs) whose owning process has died; returns their names."""
        names = abandoned_sandboxes(Path(root))
        for name in names:
            cls.remove_leftovers(name, root)
        return names

    # ----- state --------------------------------------------------------------------------------------

    def _save_state(self, status: str) -> None:
        state = {
            "status": status,
            "nodes": self.node_count,
            "semi_sync": self.semi_sync,
            "netns": self.netns,
            "netns_index": self.netns_index,
            "base_port": self.base_port,
            "ports": self.ports,
            "max_connections": self.max_connections,
            "extra_config": self.extra_config,
            "primary": self.primary,
            "owner_pid": os.getpid() if self.temporary else None,
            "pids": [self._processes[n].pid if n in self._processes else None for n in self.nodes],
            "credentials": self.accounts.as_dict(),
        }
        write_state(self.root, self.name, state)

    def describe(self) -> dict:
        """What a user or test needs to reach the cluster: addresses, files, pids and the credentials."""
        return {
            "name": self.name,
            "netns": self.netns,
            "semi_sync": self.semi_sync,
            "primary": self.primary,
            "control_address": netns_fabric.CONTROL_ADDRESS if self.netns else LOOPBACK,
            "nodes": [
                {
                    "node": node,
                    "host": self.host(node),
                    "port": self.port(node),
                    "address": f"{self.host(node)}:{self.port(node)}",
                    "server_id": node,
                    "socket": str(self.process(node).config.socket),
                    "datadir": str(self.process(node).config.datadir),
                    "config": str(self.process(node).config.config_path),
                    "pid": self.process(node).pid,
                    "running": self.process(node).running(),
                    "netns": self.namespace(node),
                }
                for node in self.nodes
            ],
            "credentials": self.accounts.as_dict(),
            "app_database": APP_DATABASE,
        }

    # ----- controlling nodes (tests) ------------------------------------------------------------------

    def kill(self, node: int, sig: int = signal.SIGKILL) -> None:
        """SIGKILL (waits until the process is gone), SIGSTOP (frozen: accepts TCP, never answers), SIGCONT."""
        if sig not in SIGNALS:
            raise SandboxError(f"signal {sig!r}: use SIGKILL, SIGSTOP, SIGCONT or SIGTERM")
        process = self.process(node)
        if sig == signal.SIGKILL:
            process.kill()
        else:
            process.signal(sig)

    def stop(self, node: int, timeout: float = 60) -> None:
        """A clean shutdown of one node."""
        self.process(node).stop(timeout)

    def start(self, node: int, timeout: float | None = None) -> None:
        """Start a stopped or killed node again with its configuration (so it comes back read-only)."""
        process = self.process(node)
        if process.running():
            return
        process.start()
        process.wait_ready(self.accounts.root.password, timeout or self.start_timeout)
        self._save_state("running")

    def running(self, node: int) -> bool:
        return self.process(node).running()

    def rss_bytes(self, node: int) -> int | None:
        return self.process(node).rss_bytes()

    def connect(
        self, node: int, user: str = "root", database: str | None = None, timeout: float = 5.0
    ) -> pymysql.Connection:
        """A PyMySQL connection (autocommit, dict rows): root through the unix socket, other users over TCP."""
        creds = self.accounts.role(user)
        options = {
            "user": creds.user,
            "password": creds.password,
            "database": database,
            "autocommit": True,
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "write_timeout": timeout,
            "cursorclass": pymysql.cursors.DictCursor,
        }
        if creds.user == "root":
            return pymysql.connect(unix_socket=str(self.process(node).config.socket), **options)
        return pymysql.connect(host=self.host(node), port=self.port(node), **options)

    def sql(
        self,
        node: int,
        statement: str,
        args=None,
        *,
        user: str = "root",
        database: str | None = None,
        timeout: float = 5.0,
    ) -> list[dict]:
        """Run one statement on a node and return its rows as dicts (a test helper)."""
        with self.connect(node, user, database, timeout) as conn, conn.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def replication_status(self, node: int) -> dict | None:
        rows = self.sql(node, "SHOW SLAVE STATUS")
        return rows[0] if rows else None

    def find_primary(self) -> int:
        """The running node that replicates from nobody; SandboxError when that is not exactly one."""
        candidates = [n for n in self.nodes if self.running(n) and self.replication_status(n) is None]
        if len(candidates) != 1:
            raise SandboxError(f"cannot tell the primary: running nodes without replication are {candidates}")
        return candidates[0]

    def wait_replicating(self, timeout: float = 30, primary: int | None = None) -> None:
        """Wait until every other running node replicates from the primary and has applied all it wrote."""
        deadline = time.monotonic() + timeout
        primary = primary or self.find_primary()
        target = self.sql(primary, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
        for node in self.nodes:
            if node == primary or not self.running(node):
                continue
            while True:
                status = self.replication_status(node)
                if status and status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes":
                    break
                if time.monotonic() > deadline:
                    keys = ("Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error")
                    detail = {k: status[k] for k in keys} if status else "no replication configured"
                    raise SandboxError(f"node {node} does not replicate after {timeout:.0f} s: {detail}")
                time.sleep(0.05)
            remaining = max(deadline - time.monotonic(), 0.1)
            waited = self.sql(
                node, "SELECT MASTER_GTID_WAIT(%s, %s) AS r", (target, remaining), timeout=remaining + 5
            )
            if waited[0]["r"] != 0:
                raise SandboxError(
                    f"node {node} did not reach the primary's position {target} within {timeout:.0f} s"
                )

    # ----- network namespaces -------------------------------------------------------------------------

    def cut(self, node: int, from_control: bool = True, from_peers: bool = True) -> None:
        """Silently drop a node's traffic with the control plane (10.231.0.1), its peers, or both."""
        netns_fabric.cut(self._namespace_of(node), from_control, from_peers)

    def heal(self, node: int) -> None:
        netns_fabric.heal(self._namespace_of(node))

    def _namespace_of(self, node: int) -> str:
        if not self.netns:
            raise SandboxError("cut and heal need a sandbox in network-namespace mode (netns=True)")
        return self.namespace(self._check(node))
