"""The typed job state (clusters.jobs.state.JobState): what a step set goes to the result, what a
previous attempt saved comes back."""

import pytest

from clusters.jobs.state import JobState

pytestmark = pytest.mark.unit


def test_only_what_a_step_set_appears_in_the_result():
    state = JobState()
    assert state.to_result() == {}
    state.old_primary = "10.0.0.1:3306"
    state.unreachable = []  # set, though empty: the result says so
    state.gtid["old_primary_final"] = "0-1-10"  # a collection a step filled
    assert state.to_result() == {
        "old_primary": "10.0.0.1:3306",
        "unreachable": [],
        "gtid": {"old_primary_final": "0-1-10"},
    }


def test_a_resumed_job_reads_what_the_previous_attempt_did():
    saved = {
        "old_primary": "a:1",
        "new_primary": "b:1",
        "writes_rejected": True,
        "promoted": False,
        "targets": ["c:1"],
        "timings_ms": {"elect_candidate": 3.0},
        "checks": [],
    }
    state = JobState.from_result(saved)
    assert (state.old_primary, state.new_primary, state.writes_rejected, state.promoted) == (
        "a:1",
        "b:1",
        True,
        False,
    )
    assert state.targets == ["c:1"] and state.writes_opened is None
    # The engine's own keys stay in the result; the state gives back exactly what it read.
    assert state.to_result() == {k: v for k, v in saved.items() if k not in ("timings_ms", "checks")}
