"""The rejoin's verdict on samples of the rejoined server's replication (clusters.domain.rejoin_verify)."""

import pytest

from clusters.domain import rejoin_verify as rv

pytestmark = pytest.mark.unit


def sample(
    position="0-2-10", primary="0-2-10", io="Yes", sql="Yes", lag=0.0, io_error="", sql_error=""
) -> rv.ReplicaSample:
    return rv.ReplicaSample(io, sql, io_error, sql_error, lag, position, primary)


def judge(samples, **options):
    return rv.judge(samples, max_lag_seconds=30, **options)


def test_three_good_samples_in_a_row_are_needed():
    good = sample()
    assert judge([good]).state == rv.WAIT
    assert judge([good, good]).state == rv.WAIT
    verdict = judge([good, good, good])
    assert verdict.state == rv.OK and verdict.good_in_a_row == 3


def test_a_stopped_sql_thread_after_a_good_sample_fails_with_its_error():
    error = "Could not execute Write_rows_v1 event on table app.t; Duplicate entry '7' for key 'PRIMARY'"
    verdict = judge([sample(), sample(sql="No", sql_error=error)])
    assert verdict.state == rv.FAILED
    assert "SQL thread stopped" in verdict.reason and "Duplicate entry" in verdict.reason


def test_a_stopped_io_thread_fails_but_a_connecting_one_only_resets_the_streak():
    assert judge([sample(io="No", io_error="error 1236")]).state == rv.FAILED
    connecting = judge([sample(), sample(io="Connecting"), sample(), sample()])
    assert connecting.state == rv.WAIT and connecting.good_in_a_row == 2
    assert judge([sample(), sample(io="Connecting"), sample(), sample(), sample()]).state == rv.OK


def test_a_replica_behind_counts_while_its_position_advances():
    behind = [
        sample("0-2-10", primary="0-2-50", lag=1),
        sample("0-2-20", primary="0-2-60", lag=1),
        sample("0-2-30", primary="0-2-70", lag=1),
    ]
    # The first has no earlier sample to compare with: it is not good yet.
    assert judge(behind).state == rv.WAIT and judge(behind).good_in_a_row == 2
    assert judge([*behind, sample("0-2-40", primary="0-2-80", lag=1)]).state == rv.OK


def test_a_stuck_position_unknown_lag_or_too_much_lag_is_not_good():
    stuck = [sample("0-2-10", primary="0-2-50")] * 4
    assert judge(stuck).state == rv.WAIT
    verdict = judge(stuck, out_of_time=True)
    assert verdict.state == rv.FAILED and "neither advancing" in verdict.reason
    assert judge([sample(lag=None)] * 3).state == rv.WAIT
    assert "lag 31s over 30s" in judge([sample(lag=31)] * 3, out_of_time=True).reason


def test_out_of_time_without_samples_fails_and_from_status_reads_the_row():
    assert judge([], out_of_time=True).state == rv.FAILED
    row = {
        "Slave_IO_Running": "Yes",
        "Slave_SQL_Running": "No",
        "Last_SQL_Error": "boom",
        "Seconds_Behind_Master": None,
    }
    read = rv.ReplicaSample.from_status(row, "0-2-5", "0-2-6")
    assert (read.io_running, read.sql_running, read.sql_error, read.lag_seconds) == (
        "Yes",
        "No",
        "boom",
        None,
    )
    assert rv.broken(read) == "SQL thread stopped: boom"
    assert rv.broken(rv.ReplicaSample.from_status(None, "", "")) is not None
