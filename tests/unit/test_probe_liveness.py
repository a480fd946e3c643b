"""A replica channel's heartbeat age, measured between probes of one process (clusters.adapters.probe)."""

import pytest

from clusters.adapters import probe

pytestmark = pytest.mark.unit


def test_age_is_unknown_at_first_sight_zero_on_a_change_and_grows_while_nothing_arrives(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(probe.time, "monotonic", lambda: clock[0])
    liveness = probe._Liveness()
    assert liveness.age("r1:3306", "", (1, "0-1-5")) is None
    clock[0] += 1.0
    assert liveness.age("r1:3306", "", (2, "0-1-5")) == 0.0  # a heartbeat arrived since the last probe
    clock[0] += 1.0
    assert liveness.age("r1:3306", "", (2, "0-1-5")) == pytest.approx(1.0)
    clock[0] += 1.5
    assert liveness.age("r1:3306", "", (2, "0-1-5")) == pytest.approx(2.5)  # stale for the detector soon


def test_a_change_seen_after_a_long_gap_says_nothing_about_when_it_happened(monkeypatch):
    """Another process probed meanwhile, or the address now belongs to a new server: not 'just received'."""
    clock = [100.0]
    monkeypatch.setattr(probe.time, "monotonic", lambda: clock[0])
    liveness = probe._Liveness()
    liveness.age("r1:3306", "", (1, "0-1-5"))
    clock[0] += probe.LIVENESS_GAP_SECONDS + 1
    assert liveness.age("r1:3306", "", (7, "0-1-9")) is None
    clock[0] += 0.5
    assert liveness.age("r1:3306", "", (7, "0-1-9")) == pytest.approx(0.5)
