"""Finding hysteresis: which findings of a tick open, and which resolve, without flooding events.

Findings are identified by key (`CODE|host:port`, see clusters.domain.findings.finding_key). A finding

- opens once seen in `open_after` consecutive ticks: 1 for critical findings and the primary's
  availability (FAST_OPEN_CODES), 2 otherwise, so a replica's stopped SQL thread opens on the second tick
  that sees it. An intermittent condition (seen in `intermittent_presences` of the last
  `intermittent_window` ticks, never twice in a row) opens too, once;
- resolves once absent `resolve_after` consecutive ticks (2); a flapping finding (opened
  `flap_max_opens` times within `flap_window_ticks`) stays open until `flapping_resolve_after`
  consecutive quiet ticks (10);
- emits nothing while it stays as it is. Its message or details may change (a lag in seconds): that is
  not an event.

Absence only counts for a server that was observed: while a server is unreachable its SQL-thread or lag
findings are neither confirmed nor resolved (pass its address in `unobserved`).

The tracker's state is a JSON-serializable dict (`to_state`/`from_state`) so callers can keep it in Redis
between ticks. Time is counted in ticks (calls to `update`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from clusters.domain.constants import CRITICAL, FAST_OPEN_CODES
from clusters.domain.findings import FindingData

STATE_VERSION = 1


@dataclass(frozen=True)
class HysteresisPolicy:
    open_after_fast: int = 1
    open_after: int = 2
    resolve_after: int = 2
    intermittent_window: int = 10
    intermittent_presences: int = 5
    flap_window_ticks: int = 30
    flap_max_opens: int = 3
    flapping_resolve_after: int = 10


class TrackerUpdate(NamedTuple):
    """Keys that opened and keys that resolved in this tick (unpacks as `opened, resolved`)."""

    opened: list[str]
    resolved: list[str]


def _new_entry() -> dict[str, Any]:
    return {
        "severity": "",
        "open": False,
        "flapping": False,
        "streak": 0,
        "absent": 0,
        "seen": [],
        "opens": [],
        "opened_at": None,
    }


class FindingTracker:
    """Decides, tick by tick, which findings open and resolve. Pure: the caller stores `to_state()`."""

    def __init__(self, state: Mapping[str, Any] | None = None, policy: HysteresisPolicy | None = None):
        self.policy = policy or HysteresisPolicy()
        self._tick = 0
        self._keys: dict[str, dict[str, Any]] = {}
        # A missing, foreign or damaged state starts afresh: the worst case is one extra tick before opening.
        if isinstance(state, Mapping) and state.get("version") == STATE_VERSION:
            try:
                tick, keys = int(state["tick"]), copy.deepcopy(dict(state["keys"]))
            except (KeyError, TypeError, ValueError):
                return
            if all(isinstance(e, dict) and _new_entry().keys() <= e.keys() for e in keys.values()):
                self._tick, self._keys = tick, keys

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any] | None, policy: HysteresisPolicy | None = None
    ) -> FindingTracker:
        return cls(state, policy)

    @classmethod
    def resuming(
        cls, open_findings: Mapping[str, str], policy: HysteresisPolicy | None = None
    ) -> FindingTracker:
        """A tracker whose state was lost (Redis restarted) that knows the findings recorded as open
        (key -> severity): they resolve by the usual rule once absent, and are not opened a second time."""
        tracker = cls(None, policy)
        for key, severity in open_findings.items():
            tracker._keys[key] = {**_new_entry(), "severity": severity, "open": True}
        return tracker

    def to_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "tick": self._tick, "keys": copy.deepcopy(self._keys)}

    @property
    def open_keys(self) -> list[str]:
        return sorted(k for k, e in self._keys.items() if e["open"])

    def is_open(self, key: str) -> bool:
        entry = self._keys.get(key)
        return bool(entry and entry["open"])

    def is_flapping(self, key: str) -> bool:
        entry = self._keys.get(key)
        return bool(entry and entry["flapping"])

    def open_after(self, key: str, severity: str) -> int:
        code = key.partition("|")[0]
        fast = code in FAST_OPEN_CODES or severity == CRITICAL
        return self.policy.open_after_fast if fast else self.policy.open_after

    def update(
        self,
        current: Mapping[str, str] | Iterable[FindingData],
        now: float | None = None,
        *,
        unobserved: Iterable[str] = (),
    ) -> TrackerUpdate:
        """Feed one tick's findings (key -> severity, or FindingData); return what opened and resolved."""
        present = dict(current) if isinstance(current, Mapping) else {f.key: f.severity for f in current}
        frozen_servers = set(unobserved)
        policy = self.policy
        self._tick += 1
        tick = self._tick
        opened: list[str] = []
        resolved: list[str] = []
        for key, severity in present.items():
            entry = self._keys.setdefault(key, _new_entry())
            entry["severity"] = severity
            entry["streak"] += 1
            entry["absent"] = 0
            entry["seen"].append(tick)
        for key in sorted(self._keys):
            entry = self._keys[key]
            entry["seen"] = [t for t in entry["seen"] if t > tick - policy.intermittent_window]
            entry["opens"] = [t for t in entry["opens"] if t > tick - policy.flap_window_ticks]
            if key in present:
                if not entry["open"] and (
                    entry["streak"] >= self.open_after(key, entry["severity"])
                    or len(entry["seen"]) >= policy.intermittent_presences
                ):
                    entry.update(open=True, opened_at=now)
                    entry["opens"].append(tick)
                    opened.append(key)
                if entry["open"] and len(entry["opens"]) >= policy.flap_max_opens:
                    entry["flapping"] = True  # sticky until it resolves after a long quiet spell
                continue
            if key.partition("|")[2] in frozen_servers:
                continue  # the server was not observed: absence is no evidence
            entry["streak"] = 0
            entry["absent"] += 1
            if entry["open"]:
                quiet = policy.flapping_resolve_after if entry["flapping"] else policy.resolve_after
                if entry["absent"] >= quiet:
                    entry.update(open=False, flapping=False, opened_at=None)
                    resolved.append(key)
            elif not entry["seen"] and not entry["opens"]:
                del self._keys[key]  # nothing left to remember
        return TrackerUpdate(opened, resolved)
