"""The local provider against real mariadbd servers: replication, read-only, accounts, errors, namespaces."""

import os
import pwd
import re
import secrets
import signal
import socket
import time
from pathlib import Path

import pymysql
import pytest

from clusters.providers import LocalSandbox, SandboxError, sandbox_registry
from clusters.providers.mariadb_config import datadir_template

pytestmark = pytest.mark.integration

ADMIN_PRIVILEGES = {
    "PROCESS",
    "RELOAD",
    "BINLOG MONITOR",
    "SLAVE MONITOR",
    "REPLICATION SLAVE ADMIN",
    "REPLICATION MASTER ADMIN",
    "READ_ONLY ADMIN",
    "BINLOG ADMIN",
    "CONNECTION ADMIN",
    "BINLOG REPLAY",
}


def global_privileges(sandbox, user: str) -> set[str]:
    creds = sandbox.accounts.role(user)
    rows = sandbox.sql(1, "SHOW GRANTS FOR %s@%s", (creds.user, sandbox.client_host))
    for row in rows:
        grant = next(iter(row.values()))
        match = re.match(r"GRANT (.+) ON \*\.\* TO ", grant)
        if match:
            return {p.strip() for p in match.group(1).split(",")}
    return set()


def wait_for_row(sandbox, node: int, query: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = sandbox.sql(node, query)
        if rows:
            return rows
        time.sleep(0.05)
    return []


def test_fresh_cluster_has_no_gtids_from_setup(sandbox_cluster):
    for node in sandbox_cluster.nodes:
        row = sandbox_cluster.sql(
            node, "SELECT @@gtid_binlog_pos AS pos, @@gtid_binlog_state AS state, @@gtid_slave_pos AS slave"
        )[0]
        assert row == {"pos": "", "state": "", "slave": ""}, f"node {node}"


def test_row_written_by_the_app_user_on_the_primary_appears_on_both_replicas(sandbox_cluster):
    sandbox_cluster.sql(
        1, "CREATE TABLE replicated (id INT PRIMARY KEY, note VARCHAR(20))", user="app", database="app"
    )
    sandbox_cluster.sql(1, "INSERT INTO replicated VALUES (1, 'hello')", user="app", database="app")
    sandbox_cluster.wait_replicating(timeout=10)
    for node in (2, 3):
        assert sandbox_cluster.sql(node, "SELECT id, note FROM app.replicated") == [
            {"id": 1, "note": "hello"}
        ]


def test_every_configuration_is_read_only_and_only_the_primary_is_writable_at_run_time(sandbox_cluster):
    for node in sandbox_cluster.nodes:
        config = sandbox_cluster.process(node).config.config_path.read_text()
        assert "\nread_only=ON\n" in config
        assert sandbox_cluster.sql(node, "SELECT @@read_only AS ro")[0]["ro"] == (0 if node == 1 else 1)


def test_servers_are_configured_for_gtid_replication(sandbox_cluster):
    for node in sandbox_cluster.nodes:
        variables = sandbox_cluster.sql(
            node,
            "SELECT @@server_id AS server_id, @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, "
            "@@gtid_strict_mode AS strict, @@binlog_format AS format, @@report_host AS report_host, "
            "@@report_port AS report_port, @@port AS port, @@bind_address AS bind, @@slave_net_timeout AS net_timeout, "
            "@@performance_schema AS pfs, @@innodb_buffer_pool_size AS pool, @@max_connections AS max_conn, "
            "@@secure_file_priv AS files, @@tmpdir AS tmpdir",
        )[0]
        node_dir = str(sandbox_cluster.node_dir(node))
        assert variables == {
            "server_id": node,
            "log_bin": 1,
            "log_slave_updates": 1,
            "strict": 1,
            "format": "ROW",
            "report_host": "127.0.0.1",
            "report_port": sandbox_cluster.port(node),
            "port": sandbox_cluster.port(node),
            "bind": "127.0.0.1",
            "net_timeout": 4,
            "pfs": 0,
            "pool": 32 * 1024 * 1024,
            "max_conn": 400,
            "files": f"{node_dir}/files/",
            "tmpdir": f"{node_dir}/tmp",
        }
    for node in (2, 3):
        (status,) = sandbox_cluster.sql(node, "SHOW ALL SLAVES STATUS")
        assert status["Using_Gtid"] == "Slave_Pos"
        assert status["Connect_Retry"] == 1
        assert float(status["Slave_heartbeat_period"]) == 1.0
        assert (status["Master_Host"], status["Master_Port"]) == ("127.0.0.1", sandbox_cluster.port(1))


def test_servers_run_as_the_unprivileged_mysql_user(sandbox_cluster):
    for node in sandbox_cluster.nodes:
        uid = os.stat(f"/proc/{sandbox_cluster.process(node).pid}").st_uid
        assert pwd.getpwuid(uid).pw_name == (
            "mysql" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        )


def test_accounts_hold_exactly_the_documented_privileges(sandbox_cluster):
    assert global_privileges(sandbox_cluster, "admin") == ADMIN_PRIVILEGES
    assert global_privileges(sandbox_cluster, "replication") == {"REPLICATION SLAVE"}
    assert global_privileges(sandbox_cluster, "app") == {"USAGE"}
    app_grants = " ".join(
        next(iter(r.values())) for r in sandbox_cluster.sql(1, "SHOW GRANTS FOR 'app'@'127.0.0.1'")
    )
    assert "GRANT ALL PRIVILEGES ON `app`.* TO `app`@`127.0.0.1`" in app_grants
    assert "READ_ONLY ADMIN" not in app_grants and "SUPER" not in app_grants
    users = {
        (r["user"], r["host"]) for r in sandbox_cluster.sql(1, "SELECT user, host FROM mysql.global_priv")
    }
    assert users == {
        ("root", "localhost"),
        ("mariadb.sys", "localhost"),
        ("dbpilot", "127.0.0.1"),
        ("repl", "127.0.0.1"),
        ("app", "127.0.0.1"),
    }


def test_admin_privileges_cover_what_dbpilot_does_on_a_replica(sandbox_cluster):
    """Every kind of statement dbpilot's jobs send, as the admin user; the replica ends as it started."""
    repl = sandbox_cluster.accounts.replication
    victim = sandbox_cluster.connect(2, "root")
    victim_id = victim.thread_id()
    with sandbox_cluster.connect(2, "admin") as admin, admin.cursor() as cursor:
        for statement, args in [
            ("SET SESSION sql_log_bin=0", None),
            ("SET SESSION lock_wait_timeout=5", None),
            ("SHOW ALL SLAVES STATUS", None),
            ("SHOW BINARY LOGS", None),
            ("SHOW MASTER STATUS", None),
            ("SELECT * FROM information_schema.innodb_trx", None),
            ("SELECT id FROM information_schema.processlist WHERE id = %s", (victim_id,)),
            ("SET GLOBAL read_only=1", None),
            ("SET GLOBAL max_connections=400", None),
            ("SET GLOBAL rpl_semi_sync_master_wait_point='AFTER_SYNC'", None),
            ("SET GLOBAL rpl_semi_sync_slave_enabled=OFF", None),
            ("FLUSH TABLES WITH READ LOCK", None),
            ("UNLOCK TABLES", None),
            ("KILL %s", (victim_id,)),
            ("STOP SLAVE", None),
            ("RESET SLAVE ALL", None),
            ("SET GLOBAL gtid_slave_pos=@@gtid_slave_pos", None),
            (
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
                ("127.0.0.1", sandbox_cluster.port(1), repl.user, repl.password),
            ),
            ("START SLAVE", None),
        ]:
            cursor.execute(statement, args)
    assert _connection_is_dead(victim)
    victim.close()
    sandbox_cluster.wait_replicating(timeout=10, primary=1)


def _connection_is_dead(connection: pymysql.Connection) -> bool:
    try:
        connection.ping(reconnect=False)
    except pymysql.MySQLError:
        return True
    return False


def test_app_user_cannot_write_on_a_read_only_replica(sandbox_cluster):
    sandbox_cluster.sql(
        1, "CREATE TABLE IF NOT EXISTS guarded (id INT PRIMARY KEY)", user="app", database="app"
    )
    sandbox_cluster.wait_replicating(timeout=10)
    with pytest.raises(pymysql.err.OperationalError) as refused:
        sandbox_cluster.sql(2, "INSERT INTO guarded VALUES (1)", user="app", database="app")
    assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only
    assert sandbox_cluster.sql(2, "SELECT @@gtid_binlog_state AS s")[0]["s"].count("-2-") == 0


def test_restarted_primary_comes_back_read_only_and_frozen_server_answers_after_sigcont(sandbox_factory):
    sandbox = sandbox_factory(nodes=2)
    sandbox.kill(1, signal.SIGKILL)
    assert not sandbox.running(1)
    sandbox.start(1)
    assert sandbox.sql(1, "SELECT @@read_only AS ro")[0]["ro"] == 1

    sandbox.kill(2, signal.SIGSTOP)
    with pytest.raises(pymysql.err.OperationalError):
        sandbox.sql(2, "SELECT 1", user="admin", timeout=1)
    sandbox.kill(2, signal.SIGCONT)
    assert sandbox.sql(2, "SELECT 1 AS one", user="admin") == [{"one": 1}]

    sandbox.stop(2)
    assert not sandbox.running(2)
    sandbox.start(2)
    sandbox.sql(1, "SET GLOBAL read_only=0")
    sandbox.wait_replicating(timeout=15, primary=1)


def servers_started_from(directory) -> list[int]:
    marker = f"--defaults-file={directory}/".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def listen_on_port_with_free_neighbour() -> tuple[socket.socket, int]:
    """A listening socket on port P where P-1 is free, so a 2-node sandbox at P-1 fails on its node 2 only."""
    while True:
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        if port < 65000 and sandbox_registry.port_is_free("127.0.0.1", port - 1):
            return squatter, port
        squatter.close()


def test_taken_port_is_a_clear_error_and_nothing_is_left_behind(monkeypatch):
    squatter, taken = listen_on_port_with_free_neighbour()
    with squatter:
        checked = LocalSandbox(f"t-{secrets.token_hex(4)}", 2, base_port=taken, temporary=True)
        with pytest.raises(SandboxError, match=f"port {taken} on 127.0.0.1 is already in use"):
            checked.up()
        assert not checked.dir.exists()

        # Taken between the check and the start: node 1 starts, node 2 cannot bind, and both must go.
        monkeypatch.setattr(sandbox_registry, "port_is_free", lambda host, port: True)
        raced = LocalSandbox(f"t-{secrets.token_hex(4)}", 2, base_port=taken - 1, temporary=True)
        with pytest.raises(SandboxError, match=f"port {taken} on 127.0.0.1 is already in use") as failed:
            raced.up()
    assert "--base-port" in str(failed.value)
    assert not raced.dir.exists()
    assert servers_started_from(raced.dir) == []


def test_missing_server_binary_is_a_clear_error(tmp_path):
    with pytest.raises(SandboxError, match="install the mariadb-server package"):
        datadir_template(tmp_path, None, mariadbd=str(tmp_path / "mariadbd"))


# ----- network namespaces ------------------------------------------------------------------------------


def tcp_connect_outcome(host: str, port: int, timeout: float = 1.0) -> str:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    return "connected"


@pytest.mark.netns
def test_netns_node_cut_from_the_control_plane_keeps_replicating(sandbox_netns_cluster):
    cluster = sandbox_netns_cluster
    host, port = cluster.host(3), cluster.port(3)
    assert host.startswith("10.231.") and tcp_connect_outcome(host, port) == "connected"
    cluster.sql(1, "CREATE TABLE cut_test (id INT PRIMARY KEY)", user="app", database="app")
    cluster.wait_replicating(timeout=10)

    cluster.cut(3, from_control=True, from_peers=False)
    try:
        assert tcp_connect_outcome(host, port) == "timeout"  # silence, not refused
        cluster.sql(1, "INSERT INTO cut_test VALUES (1)", user="app", database="app")
        # Checked through the unix socket: the node still hears its primary.
        assert wait_for_row(cluster, 3, "SELECT id FROM app.cut_test WHERE id = 1") == [{"id": 1}]
    finally:
        cluster.heal(3)
    assert tcp_connect_outcome(host, port) == "connected"


@pytest.mark.netns
def test_netns_node_cut_off_entirely_misses_writes_until_healed(sandbox_netns_cluster):
    cluster = sandbox_netns_cluster
    cluster.sql(1, "CREATE TABLE IF NOT EXISTS isolated (id INT PRIMARY KEY)", user="app", database="app")
    cluster.wait_replicating(timeout=10)

    cluster.cut(3)
    try:
        assert tcp_connect_outcome(cluster.host(3), cluster.port(3)) == "timeout"
        cluster.sql(1, "INSERT INTO isolated VALUES (7)", user="app", database="app")
        assert wait_for_row(cluster, 2, "SELECT id FROM app.isolated") == [{"id": 7}]
        assert wait_for_row(cluster, 3, "SELECT id FROM app.isolated", timeout=1.5) == []
    finally:
        cluster.heal(3)
    cluster.wait_replicating(timeout=30, primary=1)
    assert cluster.sql(3, "SELECT id FROM app.isolated") == [{"id": 7}]
    assert tcp_connect_outcome(cluster.host(3), cluster.port(3)) == "connected"
