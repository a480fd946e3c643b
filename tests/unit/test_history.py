"""Per-server history: packing, rates from counters, minute downsampling, lag from GTID checkpoints."""

import pytest

from clusters.domain.history import (
    SERIES,
    MinuteAggregate,
    PrimaryCheckpoints,
    RateMemory,
    Sample,
    gtid_sequence,
    make_sample,
    pack_entry,
    parse_series,
    series_points,
    unpack_entry,
)

pytestmark = pytest.mark.unit


def test_an_entry_round_trips_with_unknowns_kept_unknown():
    samples = [
        Sample(
            1,
            lag=2.5,
            io_running=True,
            sql_running=False,
            semi_sync=True,
            connections=17,
            reads_per_s=10.0,
            writes_per_s=3.25,
            gtid_per_s=3.0,
        ),
        Sample(2, reachable=False),
    ]
    raw = pack_entry(1_700_000_000.7, samples)
    assert len(raw) == 8 + 23 * 2
    t, back = unpack_entry(raw)
    assert t == 1_700_000_000.7
    assert back[0] == samples[0]
    assert back[1] == Sample(2, reachable=False)
    assert back[1].io_running is None and back[1].lag is None and back[1].connections is None


def test_gtid_sequence_per_domain_for_mariadb_and_mysql():
    assert gtid_sequence("0-1-100,1-2-7") == {"0": 100, "1": 7}
    assert gtid_sequence("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9") == {
        "3E11FA47-71CA-11E1-9E33-C80AA9429562": 9
    }
    assert gtid_sequence("") == {} and gtid_sequence(None) == {}


def test_a_counter_read_every_ten_seconds_gives_a_steady_rate_carried_between_readings():
    memory = RateMemory()
    assert memory.rate("1:w", 1000, 0.0) is None  # first reading: no rate yet
    assert memory.rate("1:w", 1000, 1.0) is None  # unchanged, nothing to carry yet
    assert memory.rate("1:w", 3000, 10.0) == pytest.approx(200.0)
    assert memory.rate("1:w", 3000, 11.0) == pytest.approx(200.0)  # carried until the next reading
    assert memory.rate("1:w", 3500, 20.0) == pytest.approx(50.0)
    assert memory.rate("1:w", 3500, 60.0) == 0.0  # stale after 30 s
    assert memory.rate("1:w", 10, 61.0) is None  # went back: restarted, start again


def test_make_sample_reads_threads_and_rates():
    memory = RateMemory()
    args = dict(
        reachable=True,
        lag=None,
        replication={"io_running": "Yes", "sql_running": "No"},
        semi_sync=None,
        connections=5,
        reads_total=None,
        writes_total=None,
    )
    make_sample(7, gtid_position="0-1-10", now=0.0, memory=memory, **args)
    s = make_sample(7, gtid_position="0-1-30", now=2.0, memory=memory, **args)
    assert s.io_running is True and s.sql_running is False and s.gtid_per_s == pytest.approx(10.0)
    assert s.value("sql_running") == 0.0 and s.value("reads_per_s") is None


def test_a_minute_folds_into_worst_lag_any_stop_and_mean_rates():
    minute = MinuteAggregate()
    assert (
        minute.add(60.0, [Sample(1, lag=1.0, io_running=True, sql_running=True, writes_per_s=10.0)]) is None
    )
    assert (
        minute.add(61.0, [Sample(1, lag=5.0, io_running=True, sql_running=False, writes_per_s=30.0)]) is None
    )
    restored = MinuteAggregate(minute.to_state())  # it lives in the hot state between ticks
    done = restored.add(120.0, [Sample(1, lag=0.0, io_running=True, sql_running=True)])
    t, (s,) = unpack_entry(done)
    assert t == 60 and s.lag == 5.0 and s.sql_running is False and s.io_running is True
    assert s.writes_per_s == pytest.approx(20.0)


def test_checkpoints_turn_a_stuck_replica_position_into_growing_seconds():
    points = PrimaryCheckpoints()
    for second in range(100):
        points.add(float(second), 1000 + second * 10)
    assert len(points.to_state()) <= PrimaryCheckpoints.MAX
    assert points.lag(1000 + 99 * 10, 99.0) == 0.0
    stuck = 1000 + 80 * 10  # has what the primary had at second 80
    assert 18.0 <= points.lag(stuck, 99.0) <= 19.0
    assert points.lag(stuck, 120.0) > points.lag(stuck, 99.0)
    points.add(200.0, 5)  # a new primary with a lower sequence: start again
    assert points.to_state() == [[200.0, 5]]


def test_series_points_and_parse_series():
    entries = [(10, [Sample(1, lag=1.0)]), (11, [Sample(1, lag=2.0)])]
    assert series_points(entries, ["lag"]) == {1: {"t": [10, 11], "lag": [1.0, 2.0]}}
    assert parse_series(None) == list(SERIES)
    assert parse_series("lag, connections,lag") == ["lag", "connections"]
    with pytest.raises(ValueError, match="Unknown series bogus"):
        parse_series("lag,bogus")
