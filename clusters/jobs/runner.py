"""Where a job starts: on the `ha` queue, or at once in the process that decided it.

A failover confirmed by a monitoring tick must start at once, never behind other work:

- `queue` (the default): the job goes to the `ha` queue, which its own worker consumes. Measured with
  bench/failover.py (docs/benchmarks.md), this is the faster way here: about 10 ms from the tick's
  decision to the job's claim, then ~125 ms to open writes, against ~6 ms and ~170 ms in a thread of the
  ticks worker, where the job competes for the interpreter with the ticks of other clusters.
- `thread`: a thread of the worker process whose tick confirmed the failure claims and runs the job at
  once (no broker round trip; does not depend on the `ha` worker's free capacity).
- `inline`: run to the end in the caller (tests and scripts that drive ticks in-process).

Whatever the runner, the job is a database row under a lease: if the process running it dies, the reaper
(clusters.jobs.engine.reap_jobs) hands it to the `ha` queue and it resumes there. HA jobs never wait for
`long` queue jobs (backups, rebuilds): they run on their own queue or thread, and a failover ends any
long job of its cluster (clusters.jobs.engine.preempt_long_jobs).

Jobs a person asks for through the API (manual failover, adopt) always use the `ha` queue (or `inline`
when that is configured): the web process does not run jobs. The runner is
`settings.DBPILOT_FAILOVER_RUNNER` or the environment variable of the same name.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import connections, transaction

from clusters.jobs import engine

log = logging.getLogger(__name__)

THREAD = "thread"
QUEUE = "queue"
INLINE = "inline"
RUNNERS = (THREAD, QUEUE, INLINE)
DEFAULT_RUNNER = QUEUE


def runner_name() -> str:
    name = getattr(settings, "DBPILOT_FAILOVER_RUNNER", None) or os.environ.get("DBPILOT_FAILOVER_RUNNER", "")
    return name if name in RUNNERS else DEFAULT_RUNNER


def _run(job_id: int) -> None:
    try:
        engine.run_job(job_id)
    except Exception:  # noqa: BLE001 - the lease expires and the reaper resumes the job
        log.exception("job %s: the runner failed", job_id)


def _run_in_thread(job_id: int) -> None:
    try:
        _run(job_id)
    finally:
        connections.close_all()  # this thread's own connections


def start_job(job_id: int, *, from_request: bool = False) -> None:
    """Start the job once the surrounding transaction (if any) commits. `from_request`: asked by a person
    through the API, so never in this (web) process unless the runner is `inline`."""
    name = runner_name()
    if name == INLINE:
        transaction.on_commit(lambda: _run(job_id))
    elif name == QUEUE or from_request:
        engine.enqueue_job(job_id)
    else:
        # Not a daemon: a worker's warm shutdown lets a running failover finish.
        transaction.on_commit(
            lambda: threading.Thread(target=_run_in_thread, args=(job_id,), name=f"ha-job-{job_id}").start()
        )
