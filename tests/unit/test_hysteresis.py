"""Finding hysteresis: open after N ticks, resolve after quiet ticks, no flood from flapping conditions."""

import json

import pytest

from clusters.domain.findings import FindingData
from clusters.domain.hysteresis import FindingTracker, HysteresisPolicy

pytestmark = pytest.mark.unit
SQL = "REPLICA_SQL_STOPPED|127.0.0.1:3302"
DOWN = "PRIMARY_DOWN|127.0.0.1:3301"
SUSPECT = "PRIMARY_SUSPECT|127.0.0.1:3301"


def run(pattern, key=SQL, severity="error", ticks=None, tracker=None):
    """Feed `pattern` (1 present, 0 absent) repeatedly; return the list of (event, tick)."""
    tracker = tracker or FindingTracker()
    events = []
    for tick in range(ticks or len(pattern)):
        current = {key: severity} if pattern[tick % len(pattern)] else {}
        opened, resolved = tracker.update(current, float(tick))
        events += [("opened", tick)] * len(opened) + [("resolved", tick)] * len(resolved)
    return events


def test_replica_finding_opens_on_the_second_tick_and_resolves_after_two_quiet_ticks():
    assert run([1, 1, 1, 0, 0, 0]) == [("opened", 1), ("resolved", 4)]


def test_a_single_tick_blip_opens_nothing():
    assert run([0, 1, 0, 0, 0]) == []


def test_critical_and_primary_findings_open_on_the_first_tick():
    assert run([1, 0, 0], key=DOWN, severity="critical") == [("opened", 0), ("resolved", 2)]
    assert run([1], key=SUSPECT, severity="warning") == [("opened", 0)]


def test_nothing_is_emitted_while_a_finding_stays_open():
    assert run([1] * 50) == [("opened", 1)]


def test_a_condition_flapping_every_tick_opens_once_and_does_not_flood():
    events = run([1, 0], ticks=200)
    assert events == [("opened", 8)]  # seen in 5 of the last 10 ticks
    assert run([1, 0], key=DOWN, severity="critical", ticks=200) == [("opened", 0)]


def test_a_slower_flap_stays_open_after_three_cycles():
    events = run([1, 1, 0, 0], ticks=200)
    assert len(events) == 5
    assert events[-1] == ("opened", 8)


def test_a_flapping_finding_needs_a_long_quiet_spell_to_resolve():
    tracker = FindingTracker()
    run([1, 1, 0, 0], ticks=10, tracker=tracker)  # ends present
    assert tracker.is_open(SQL) and tracker.is_flapping(SQL)
    quiet = [tracker.update({}) for _ in range(10)]
    assert [r.resolved for r in quiet[:9]] == [[]] * 9
    assert quiet[9].resolved == [SQL]
    assert not tracker.is_flapping(SQL)


def test_message_changes_of_an_open_finding_are_not_events():
    tracker = FindingTracker()
    for lag in (31, 40, 55, 80):
        finding = FindingData("REPLICA_LAGGING", "warning", f"lagging {lag}s", "127.0.0.1:3302", {"lag": lag})
        update = tracker.update([finding])
    assert tracker.open_keys == ["REPLICA_LAGGING|127.0.0.1:3302"]
    assert update.opened == [] and update.resolved == []


def test_findings_of_an_unobserved_server_neither_resolve_nor_open():
    tracker = FindingTracker()
    tracker.update({SQL: "error"})
    tracker.update({SQL: "error"})
    assert tracker.is_open(SQL)
    for _ in range(5):  # the replica is unreachable: its SQL thread cannot be seen
        assert tracker.update({}, unobserved=["127.0.0.1:3302"]) == ([], [])
    assert tracker.is_open(SQL)
    assert tracker.update({}) == ([], [])
    assert tracker.update({}) == ([], [SQL])


def test_cluster_wide_findings_have_an_empty_server():
    assert run([1, 1], key="NO_REPLICA|", severity="warning") == [("opened", 1)]


def test_state_survives_a_json_round_trip():
    tracker = FindingTracker()
    tracker.update({SQL: "error"})
    restored = FindingTracker.from_state(json.loads(json.dumps(tracker.to_state())))
    assert restored.update({SQL: "error"}, 2.0).opened == [SQL]
    assert restored.to_state()["keys"][SQL]["opened_at"] == 2.0


@pytest.mark.parametrize(
    "state",
    [
        None,
        {},
        {"version": 99, "tick": 3, "keys": {}},
        {"keys": "junk"},
        {"version": 1, "tick": "x", "keys": {}},
        {"version": 1, "tick": 3, "keys": {DOWN: {"open": True}}},
        {"version": 1, "tick": 3, "keys": [1]},
    ],
)
def test_a_missing_or_foreign_state_starts_afresh(state):
    tracker = FindingTracker.from_state(state)
    assert tracker.update({DOWN: "critical"}).opened == [DOWN]


def test_forgotten_keys_do_not_grow_the_state():
    tracker = FindingTracker()
    for i in range(100):
        tracker.update({f"REPLICA_LAGGING|127.0.0.1:{4000 + i}": "warning"})
    assert len(tracker.to_state()["keys"]) <= 11


def test_policy_is_configurable():
    tracker = FindingTracker(policy=HysteresisPolicy(open_after=3, resolve_after=1))
    assert run([1, 1, 1, 0], tracker=tracker) == [("opened", 2), ("resolved", 3)]


def test_a_tracker_resuming_from_recorded_findings_resolves_them_and_never_opens_them_again():
    tracker = FindingTracker.resuming({SQL: "error"})
    assert tracker.is_open(SQL)
    assert run([1, 1, 0, 0], tracker=tracker) == [("resolved", 3)]
