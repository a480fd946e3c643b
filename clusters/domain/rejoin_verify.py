"""Is a rejoined server really replicating? One good look is not enough: a SQL thread can stop on the
first event it applies (a duplicate key, a missing row) right after a sample showed it running. The rejoin
takes several samples over a short window and succeeds only on `required` consecutive good ones; a sample
showing a stopped thread fails it at once, with the thread's error as the reason.

A sample is good when both threads run with no error, the lag is known and within the bound, and the
server's GTID position either includes the primary's (read just before) or advanced since the previous
sample (so a busy primary does not keep a healthy replica from ever looking good)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clusters.domain.repoint_plan import position_contains

REQUIRED_GOOD_SAMPLES = 3
SAMPLE_INTERVAL_SECONDS = 0.5  # 3 samples span about 1 s

OK = "ok"
WAIT = "wait"
FAILED = "failed"


@dataclass(frozen=True)
class ReplicaSample:
    """One look at the rejoined server (its SHOW SLAVE STATUS and applied position) and the primary's
    position read just before."""

    io_running: str  # Slave_IO_Running: Yes, Connecting, No
    sql_running: str  # Slave_SQL_Running: Yes, No
    io_error: str = ""
    sql_error: str = ""
    lag_seconds: float | None = None  # Seconds_Behind_Master (None: unknown)
    position: str = ""  # what the server has applied (gtid_binlog_pos / gtid_executed)
    primary_position: str = ""

    @classmethod
    def from_status(cls, status: dict | None, position: str, primary_position: str) -> ReplicaSample:
        if not status:
            return cls("No", "No", "no replication configured", "", None, position, primary_position)
        lag = status.get("Seconds_Behind_Master", status.get("Seconds_Behind_Source"))
        return cls(
            io_running=str(status.get("Slave_IO_Running") or status.get("Replica_IO_Running") or "No"),
            sql_running=str(status.get("Slave_SQL_Running") or status.get("Replica_SQL_Running") or "No"),
            io_error=str(status.get("Last_IO_Error") or ""),
            sql_error=str(status.get("Last_SQL_Error") or ""),
            lag_seconds=None if lag in (None, "") else float(lag),
            position=position,
            primary_position=primary_position,
        )

    def describe(self) -> str:
        lag = "unknown" if self.lag_seconds is None else f"{self.lag_seconds:g}s"
        return f"IO {self.io_running}, SQL {self.sql_running}, lag {lag}, at {self.position or '(empty)'}"


@dataclass(frozen=True)
class Verdict:
    state: str  # OK, WAIT (take another sample), FAILED
    reason: str
    good_in_a_row: int = 0


def broken(sample: ReplicaSample) -> str | None:
    """Why a sample shows a broken replica (a thread stopped), or None."""
    if sample.sql_running != "Yes":
        return f"SQL thread stopped{': ' + sample.sql_error if sample.sql_error else ''}"
    if sample.io_running == "No":
        return f"IO thread stopped{': ' + sample.io_error if sample.io_error else ''}"
    return None


def not_good(
    sample: ReplicaSample, previous: ReplicaSample | None, max_lag_seconds: float, flavour: str
) -> str | None:
    """Why a running replica's sample does not count as good yet, or None when it does."""
    if sample.io_running != "Yes":
        return f"IO thread {sample.io_running}{': ' + sample.io_error if sample.io_error else ''}"
    if sample.io_error or sample.sql_error:
        return f"error reported: {sample.io_error or sample.sql_error}"
    if sample.lag_seconds is None:
        return "lag unknown"
    if sample.lag_seconds > max_lag_seconds:
        return f"lag {sample.lag_seconds:g}s over {max_lag_seconds:g}s"
    if position_contains(flavour, sample.position, sample.primary_position):
        return None
    advanced = (
        previous is not None
        and position_contains(flavour, sample.position, previous.position)
        and not position_contains(flavour, previous.position, sample.position)
    )
    if not advanced:
        return f"position {sample.position or '(empty)'} neither advancing nor at the primary's {sample.primary_position}"
    return None


def judge(
    samples: Sequence[ReplicaSample],
    *,
    max_lag_seconds: float,
    required: int = REQUIRED_GOOD_SAMPLES,
    flavour: str = "mariadb",
    out_of_time: bool = False,
) -> Verdict:
    """OK once the last `required` samples are good; FAILED at the first sample with a stopped thread, or
    when `out_of_time` and the streak is short; else WAIT for another sample."""
    if not samples:
        return Verdict(FAILED if out_of_time else WAIT, "no sample taken")
    streak = 0
    why = ""
    previous = None
    for sample in samples:
        stopped = broken(sample)
        if stopped:
            return Verdict(FAILED, f"{stopped} ({sample.describe()})", 0)
        why = not_good(sample, previous, max_lag_seconds, flavour) or ""
        streak = 0 if why else streak + 1
        previous = sample
    last = samples[-1]
    if streak >= required:
        return Verdict(OK, f"{streak} good samples in a row; last: {last.describe()}", streak)
    if out_of_time:
        return Verdict(
            FAILED,
            f"only {streak} good sample(s) in a row out of {required} needed; last: "
            f"{why or 'good'} ({last.describe()})",
            streak,
        )
    return Verdict(WAIT, why or f"{streak} of {required} good samples", streak)
