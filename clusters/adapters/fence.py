"""Make a server read-only even while commits hang on a semi-sync acknowledgement, without ever releasing
one of them with an OK to its client.

Why this is delicate (MariaDB 10.11, AFTER_SYNC, measured: tests/integration/test_ha_fence_semi_sync.py).
A primary whose replicas are gone (a stalled primary that resumed after the failover) keeps its commits
waiting for an acknowledgement forever (`semi_sync_on_timeout: wait`); they hold the commit lock that
`SET GLOBAL read_only=1` needs, so fencing it means ending them. What each way of ending them does:

- `KILL CONNECTION` of the waiting session: its client sees a lost connection (outcome unknown): fine.
- `KILL QUERY` of it, or `SET GLOBAL rpl_semi_sync_master_enabled=0`: its client gets **OK** although no
  replica has the transaction. Never used.
- Binlog group commit: only a group's *leader* waits for the acknowledgement, on behalf of its followers,
  and the next groups queue behind it (their sessions show `Commit`). Killing a leader releases its whole
  group: every follower that was not killed itself gets **OK**, unacknowledged. So killing "the writing
  sessions" in the order the processlist lists them, or while new commits keep arriving (a client that
  reconnects at once and commits again joins the group of a session about to be killed), acknowledges
  writes that only this server holds. That is how a stalled primary lost acknowledged rows after a
  failover (issue 13).

The safe order used here:
1. `SET GLOBAL read_only=1` is sent on a second connection and left pending: from then on a new write
   statement waits behind it ("Waiting for backup lock") and can no longer enter the commit pipeline;
2. every writing client session except the ones waiting for the acknowledgement is killed: followers and
   queued leaders, which releases nobody;
3. the sessions waiting for the acknowledgement are killed last: each releases only sessions already
   killed, whose clients see a lost connection;
4. the pending `read_only=1` then gets its lock; the statements that waited behind it fail with 1290.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from clusters.adapters.executor import ServerSession
from clusters.adapters.mysql import ConnectOptions, Credentials, ServerError

FIRST_TRY_LOCK_WAIT_SECONDS = 1  # read_only=1 on a server with no stuck commit takes milliseconds
HOLD_LOCK_WAIT_SECONDS = 3  # how long the pending read_only=1 may wait for the killed commits to end
PENDING_WAIT_SECONDS = 1.0  # how long to wait to see the pending read_only=1 queued on the global lock


def _options(options: ConnectOptions, read_timeout: float) -> ConnectOptions:
    return ConnectOptions(
        connect_timeout=options.connect_timeout,
        read_timeout=read_timeout,
        tls=options.tls,
        tls_ca=options.tls_ca,
    )


def make_read_only(
    address: str,
    credentials: Credentials,
    options: ConnectOptions,
    *,
    guard: Callable[[], bool] | None = None,
) -> str:
    """read_only=1 (super_read_only on MySQL). When write transactions or commits waiting for a semi-sync
    acknowledgement hold it up, end them in the safe order above (no client ever gets an OK for a commit
    that waited) and return what was done; raises ServerError when the server could not be made read-only.
    `guard`: a job's lease check, asked before every statement (past the lease nothing is sent)."""
    session = ServerSession(
        address,
        credentials,
        _options(options, FIRST_TRY_LOCK_WAIT_SECONDS + 2.0),
        lock_wait_timeout=FIRST_TRY_LOCK_WAIT_SECONDS,
    )
    if guard is not None:
        session.guard = guard  # type: ignore[attr-defined]
    try:
        try:
            session.set_read_only(True)
            return "read_only=1"
        except ServerError as first:
            if not session.is_open:
                raise  # not a lock wait: the server did not answer
            return _read_only_ending_commits(session, address, credentials, options, first, guard)
    finally:
        session.close()


def _read_only_ending_commits(
    session: ServerSession,
    address: str,
    credentials: Credentials,
    options: ConnectOptions,
    first: ServerError,
    guard: Callable[[], bool] | None,
) -> str:
    holder = ServerSession(
        address,
        credentials,
        _options(options, HOLD_LOCK_WAIT_SECONDS + 2.0),
        lock_wait_timeout=HOLD_LOCK_WAIT_SECONDS,
    )
    if guard is not None:
        holder.guard = guard  # type: ignore[attr-defined]
    try:
        holder_id = holder.open().connection_id()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fence") as pool:
            pending = pool.submit(holder.set_read_only, True)
            queued = _wait_until_queued(session, holder_id, pending)
            if pending.done():
                pending.result()  # it got the lock by itself (raises when it failed)
                return "read_only=1 (on the second try)"
            if not queued:
                # Without the pending lock new commits could join a group about to be released: kill
                # nobody (a later try does it again), the caller keeps writes closed elsewhere.
                pending.result()
                return "read_only=1 (on the second try)"
            writers = [
                s
                for s in session.client_sessions(credentials.user)
                if (s.writing or s.in_write_transaction) and not s.waiting_for_global_lock
            ]
            # Followers and queued leaders first (releases nobody), the acknowledgement waiters last.
            killed = session.kill([s.id for s in writers if not s.waiting_for_semi_sync_ack])
            waiters = session.kill([s.id for s in writers if s.waiting_for_semi_sync_ack])
            try:
                pending.result()
            except ServerError as exc:
                raise ServerError(
                    exc.outcome, f"{exc} (after killing {len(killed) + len(waiters)} writing session(s))"
                ) from exc
    finally:
        holder.close()
    if not killed and not waiters:
        return "read_only=1 (on the second try)"
    return (
        f"read_only=1 after killing {len(killed) + len(waiters)} writing session(s) that held it up"
        + (
            f", {len(waiters)} of them waiting for a semi-sync acknowledgement (killed last)"
            if waiters
            else ""
        )
        + f" (first try: {first})"
    )


def _wait_until_queued(session: ServerSession, holder_id: int, pending) -> bool:
    """True once the pending read_only=1 waits on the global lock (new writes then queue behind it)."""
    deadline = time.monotonic() + PENDING_WAIT_SECONDS
    while not pending.done():
        state = (session.session_state(holder_id) or "").lower()
        if "lock" in state:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return False
