"""Plans and step records as plain data: what a job does, in order, and how far it got.

A plan is an ordered tuple of `StepSpec`s; each step is a function of the job's context that checks the
servers' actual state before acting, so running it again (a redelivered task, a resumed job) is harmless.
A step returns a short detail (or `Done` with extra fields for its record), `Skipped`, or `SoftFailure`
(the step failed, the plan goes on: a stale route, a failing post hook); it raises `StepRefused` when a
precondition found during the job refuses it, and `StepFailed` when the job must stop (the plan's `abort`
then leaves the cluster safe and says what it did).

Step records are the job's `steps` JSON: `{"name", "state", "started_at", "finished_at", "detail"}`, plus
`output` for steps that ran a script. No Django here: the engine persists records, plans stay testable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
RUNNING = "running"
OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
FINISHED_STATES = (OK, FAILED, SKIPPED)

# Job states (clusters.models.Job.State), repeated here so plans need no model import.
JOB_PENDING = "pending"
JOB_RUNNING = "running"
JOB_SUCCEEDED = "succeeded"
JOB_FAILED = "failed"
JOB_REFUSED = "refused"


class StepFailed(Exception):
    """The step could not do its work: the job stops here and the plan's abort runs."""

    def __init__(self, detail: str, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class StepRefused(Exception):
    """A precondition found during the job refuses it (nothing was changed): the job ends `refused`."""

    def __init__(self, detail: str, checks: Sequence[dict] = (), extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.checks = list(checks)
        self.extra = extra or {}


@dataclass(frozen=True)
class Done:
    """The step succeeded; `extra` goes into its record (e.g. a hook's captured `output`)."""

    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """Nothing to do (not configured, already done, or not applicable)."""

    detail: str


@dataclass(frozen=True)
class SoftFailure:
    """The step failed but the plan goes on; `fails_job` makes the job end `failed` nevertheless."""

    detail: str
    fails_job: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


StepOutcome = str | Done | Skipped | SoftFailure | None
StepFunction = Callable[[Any], StepOutcome]


@dataclass(frozen=True)
class StepSpec:
    """One step of a plan. `resume_from` names an earlier step a resumed job restarts from when this step
    is the first unfinished one (e.g. the catch-up wait needs the write freeze, held by a session that
    died with the worker, to be taken again first). A `quiet` step's record is saved with the next
    step's, not on its own: the steps of a write freeze run back to back without any bookkeeping.
    `saved_in_background` (a quiet step): its outcome is published when it finishes and saved by the
    engine's recorder thread shortly after (with the steps that followed by then), never waited for; a
    worker that dies before that save lands makes the next one run the step again."""

    name: str
    run: StepFunction
    resume_from: str | None = None
    quiet: bool = False
    saved_in_background: bool = False


@dataclass(frozen=True)
class Plan:
    """A job kind's steps, how to build the context they share, and how to leave things safe on failure.

    `context(job, result)` returns what the steps receive; `result` is the job's result dict, which steps
    fill in (the engine persists it) and which carries what a resumed job needs; it must have `close()`.
    When it has a `checkpoint` attribute, the engine sets it to a function that saves the result at once.
    `abort(context, failed_step, reason)` runs after a failed or refused step, or when the engine gives up
    on a job; it returns what it did (or None when there was nothing to undo).
    """

    kind: str
    steps: tuple[StepSpec, ...]
    context: Callable[[Any], Any]
    abort: Callable[[Any, str, str], str | None] | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"plan {self.kind}: step names must be unique")
        for spec in self.steps:
            if spec.resume_from is not None and spec.resume_from not in names[: names.index(spec.name)]:
                raise ValueError(
                    f"plan {self.kind}: {spec.name} resumes from {spec.resume_from}, not an earlier step"
                )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def index(self, name: str) -> int:
        return self.names.index(name)


def initial_records(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"name": spec.name, "state": PENDING, "started_at": None, "finished_at": None, "detail": ""}
        for spec in plan.steps
    ]


def align_records(plan: Plan, records: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The job's records in plan order, adding pending records for steps the stored list lacks."""
    by_name = {r.get("name"): dict(r) for r in (records or [])}
    fresh = initial_records(plan)
    return [by_name.get(r["name"], r) for r in fresh]


def resume_index(plan: Plan, records: Sequence[dict[str, Any]]) -> int | None:
    """Where a (re)started job continues: the first step not finished, or the earlier step it names in
    `resume_from` (a first run starts at step 0, which cannot have one). None when every step finished."""
    states = {r["name"]: r["state"] for r in records}
    for index, spec in enumerate(plan.steps):
        if states.get(spec.name, PENDING) not in FINISHED_STATES:
            return plan.index(spec.resume_from) if spec.resume_from is not None else index
    return None


def mark(
    records: list[dict[str, Any]], name: str, state: str, at: str, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Set a step's state; `at` (ISO time) becomes started_at when it starts, finished_at when it ends."""
    record = next(r for r in records if r["name"] == name)
    record["state"] = state
    if state == RUNNING:
        record["started_at"] = at
        record["finished_at"] = None
    elif state in FINISHED_STATES:
        record["finished_at"] = at
    if detail is not None:
        record["detail"] = detail
    record.update(extra)
    return record


def first_unfinished(records: Sequence[dict[str, Any]]) -> str | None:
    return next((r["name"] for r in records if r["state"] not in FINISHED_STATES), None)
