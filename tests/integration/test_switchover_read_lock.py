"""The old primary's global read lock during a switchover (issue 13, item 11): held until the new primary
is writable, so a user with READ ONLY ADMIN (who writes straight through read_only) cannot commit on the
old primary meanwhile; no errant transaction afterwards; an abort after promotion still gives the old
primary its writes back. Real 3-node semi-sync clusters."""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from clusters.jobs import ha_freeze, ha_promote
from clusters.jobs.steps import StepFailed
from tests.integration.switchover_helpers import (
    address,
    assert_one_writable_primary,
    register_sandbox,
    step,
    switchover,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.jobs]

ADMIN_APP_USER = "roadmin"
ADMIN_APP_PASSWORD = "roadmin-secret-1"


def binlog_state(sandbox, node: int) -> dict[tuple[int, int], int]:
    """gtid_binlog_state as {(domain, server_id): last seq_no}."""
    text = sandbox.sql(node, "SELECT @@gtid_binlog_state AS s")[0]["s"]
    state = {}
    for gtid in filter(None, text.split(",")):
        domain, server, seq = (int(x) for x in gtid.strip().split("-"))
        state[(domain, server)] = seq
    return state


def errant_on(sandbox, node: int, primary: int) -> dict:
    """The GTIDs `node` binlogged that `primary` does not have."""
    theirs = binlog_state(sandbox, primary)
    return {key: seq for key, seq in binlog_state(sandbox, node).items() if seq > theirs.get(key, 0)}


class ReadOnlyAdminWriter:
    """An application that (wrongly) holds READ ONLY ADMIN and keeps inserting on one server: it
    reconnects whenever dbpilot kills its session, and stops once told to."""

    def __init__(self, sandbox, node: int):
        self.host, self.port = sandbox.host(node), sandbox.port(node)
        self.stop_requested = threading.Event()
        self.acknowledged: list[int] = []
        self.attempts = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = None
        value = 0
        while not self.stop_requested.is_set():
            try:
                if conn is None:
                    conn = pymysql.connect(
                        host=self.host,
                        port=self.port,
                        user=ADMIN_APP_USER,
                        password=ADMIN_APP_PASSWORD,
                        autocommit=True,
                        connect_timeout=2,
                        read_timeout=30,
                    )
                value += 1
                self.attempts += 1
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO app.roa (v) VALUES (%s)", (value,))
                self.acknowledged.append(value)
            except pymysql.MySQLError:
                conn = None
                time.sleep(0.002)
        if conn is not None:
            conn.close()

    def start(self) -> ReadOnlyAdminWriter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_requested.set()
        self.thread.join(40)


def cluster_with_a_read_only_admin_user(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    sandbox.sql(1, "CREATE TABLE app.roa (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    sandbox.sql(1, f"CREATE USER '{ADMIN_APP_USER}'@'%' IDENTIFIED BY '{ADMIN_APP_PASSWORD}'")
    sandbox.sql(1, f"GRANT SELECT, INSERT ON app.* TO '{ADMIN_APP_USER}'@'%'")
    sandbox.sql(1, f"GRANT READ ONLY ADMIN ON *.* TO '{ADMIN_APP_USER}'@'%'")
    sandbox.wait_replicating()
    cluster, _ = register_sandbox(sandbox)
    return sandbox, cluster


def test_a_read_only_admin_user_cannot_commit_on_the_old_primary_until_the_new_one_is_writable(
    sandbox_factory, clean_redis, monkeypatch
):
    sandbox, cluster = cluster_with_a_read_only_admin_user(sandbox_factory)
    writer = ReadOnlyAdminWriter(sandbox, 1).start()
    seen: dict = {}
    release = ha_freeze.release_demoted

    def release_once_looked_at(ctx, demoted, new_primary, *args, **kwargs):
        # The new primary is writable; the old one still holds the lock. The writer stops trying now:
        # after the release the old primary is a replica, where such a user's writes are errant anyway.
        writer.stop_requested.set()
        time.sleep(0.05)  # its insert in flight, if any, is blocked behind the lock (and killed)
        seen["new_read_only"] = sandbox.sql(2, "SELECT @@read_only AS r")[0]["r"]
        seen["old_position"] = sandbox.sql(1, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
        seen["final"] = ctx.state.gtid["old_primary_final"]
        seen["blocked"] = sandbox.sql(
            1,
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE user=%s AND info LIKE 'INSERT%%'",
            (ADMIN_APP_USER,),
        )[0]["n"]
        return release(ctx, demoted, new_primary, *args, **kwargs)

    monkeypatch.setattr(ha_freeze, "release_demoted", release_once_looked_at)
    try:
        deadline = time.monotonic() + 20
        while len(writer.acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        job = switchover(cluster, address(sandbox, 2))
    finally:
        writer.stop()
    assert job.state == "succeeded", job.steps
    assert len(writer.acknowledged) >= 20 and writer.attempts > len(writer.acknowledged)
    # While the new primary was already writable, nothing had committed on the old one since the freeze,
    # though the user was trying (its insert waited behind the lock).
    assert seen["new_read_only"] == 0
    assert seen["old_position"] == seen["final"], seen
    assert seen["blocked"] >= 1, seen
    released = step(job, "release_old_primary")
    assert "read lock released" in released["detail"] and "slave_pos" in released["detail"]
    assert_one_writable_primary(sandbox, 2)  # the old primary replicates by gtid_slave_pos, both threads
    sandbox.wait_replicating(primary=2)
    for node in (1, 3):
        assert errant_on(sandbox, node, 2) == {}, node
    rows = {r["v"] for r in sandbox.sql(2, "SELECT v FROM app.roa")}
    assert set(writer.acknowledged) <= rows  # every acknowledged insert reached the new primary
    # The killed insert never committed later: the old primary holds exactly the new primary's rows.
    assert sandbox.sql(1, "SELECT COUNT(*) AS n FROM app.roa")[0]["n"] == len(rows)


def test_an_abort_after_promotion_gives_the_locked_old_primary_its_writes_back(
    sandbox_factory, clean_redis, monkeypatch
):
    sandbox, cluster = cluster_with_a_read_only_admin_user(sandbox_factory)
    sandbox.sql(1, "INSERT INTO app.roa (v) VALUES (1)")
    sandbox.wait_replicating()

    def open_writes_fails(*args, **kwargs):
        raise StepFailed("test: opening writes failed")

    monkeypatch.setattr(ha_promote, "open_writes", open_writes_fails)
    job = switchover(cluster, address(sandbox, 2))
    assert job.state == "failed", job.steps
    assert step(job, "promote_candidate")["state"] == "ok"
    assert step(job, "repoint_replicas")["state"] == "ok"
    assert "writes restored on " + address(sandbox, 1) in job.result["abort"]
    assert_one_writable_primary(sandbox, 1)
    sandbox.sql(1, "INSERT INTO app.roa (v) VALUES (2)")
    sandbox.wait_replicating(primary=1)
    for node in (2, 3):
        assert errant_on(sandbox, node, 1) == {}, node
