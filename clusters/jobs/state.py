"""The typed state of an HA job: what its steps decided and did, saved in the job's `result` after every
step (and at every checkpoint), so the next step, a resumed attempt and the abort all read the same record.

Its fields keep the `result` keys the API and the portal always showed; a key appears in the result once a
step set it (as before), never as a default. `JobState.from_result(job.result)` is how a resumed job
learns what the previous attempt did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class JobState:
    # Which fields a step (or the saved result) set: only those go back to the result.
    _assigned: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    # Who: the primary the job found, the one it chose, and (rejoin, adopt) the primary it works under.
    old_primary: str | None = None
    new_primary: str | None = None
    primary: str | None = None
    automatic: bool | None = None  # failover: started by a tick rather than a person
    # What the early steps decided.
    confirmation: dict[str, Any] | None = None  # failover: the replicas' fresh confirmation
    election: dict[str, Any] | None = None  # the decision table of the job's one election
    election_checks: list[dict[str, Any]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # failover: the servers repointed at the new primary
    not_repointed: dict[str, str] = field(default_factory=dict)  # server -> why it was left out
    unreachable: list[str] = field(default_factory=list)  # not reachable when the candidate was elected
    io_stopped: list[str] = field(
        default_factory=list
    )  # failover: IO threads stopped (the abort restarts them)
    sources: dict[str, str] = field(default_factory=dict)  # failover: each replica's source before the job
    old_primary_was_fenced: bool | None = None
    fence_started_at: float | None = (
        None  # failover: the fence hook was started (saved first): it may have run
    )
    replicas: list[str] = field(default_factory=list)  # adopt: the replicas it prepares
    changes: dict[str, str] = field(default_factory=dict)  # adopt: what it changes on each replica
    server_gtid_binlog_pos: str | None = None  # rejoin: the returning server's own position
    # rejoin: the methods in force, the one chosen, those tried, the flashback plan, artifacts, rebuild job
    rejoin: dict[str, Any] = field(default_factory=dict)
    # The write freeze and the promotion.
    routes_ok: bool | None = None
    routes_told_leaving: bool | None = None
    routes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # phase -> each route's outcome
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    old_primary_max_connections: int | None = None
    lowered_max_connections: int | None = None
    writes_rejected: bool | None = None
    freeze_started_at: float | None = None
    gtid: dict[str, str] = field(
        default_factory=dict
    )  # GTID marks: old_primary_final, new_primary_at_promotion...
    promotion_started: bool | None = None  # failover: saved right before the promotion's first statement
    promoted: bool | None = None
    repoint_prepared: list[str] = field(default_factory=list)
    repointed: dict[str, str] = field(default_factory=dict)
    writes_opened: bool | None = None
    writes_opened_at: float | None = None
    write_freeze_ms: float | None = None
    epoch: int | None = None
    rpo: dict[str, Any] | None = None
    # failover: the cluster's GTID history errant transactions were judged against ("" when unknown), the
    # job's looks at the old primary, and what was done when it answered again before writes opened
    gtid_history: str | None = None
    old_primary_looks: list[dict[str, Any]] = field(default_factory=list)
    old_primary_fenced_at_open: str | None = None
    abort_decision: dict[str, Any] | None = None  # failover: what the abort saw (phase, writable servers)

    def __post_init__(self) -> None:
        self._assigned.clear()  # the defaults are not "set"

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name != "_assigned" and "_assigned" in self.__dict__:
            self._assigned.add(name)

    @classmethod
    def from_result(cls, result: dict[str, Any] | None) -> JobState:
        """What a previous attempt saved (the keys it did not know are left to the result)."""
        state = cls()
        for f in _FIELDS:
            if result and f.name in result:
                setattr(state, f.name, result[f.name])
        return state

    def to_result(self) -> dict[str, Any]:
        """The keys a step set (or a collection it filled), as the job's result shows them."""
        out: dict[str, Any] = {}
        for f in _FIELDS:
            value = getattr(self, f.name)
            if f.name in self._assigned or (isinstance(value, dict | list) and value):
                out[f.name] = value
        return out


_FIELDS = tuple(f for f in fields(JobState) if f.name != "_assigned")
