"""Every job kind and its plan, listed here: the one place the engine finds a plan by its kind.

A new kind (provision, backup...) adds its `<kind>_steps.py` beside these, with a `PLAN`, and one line
below (docs/jobs.md, "Where a new job kind goes").
"""

from __future__ import annotations

from clusters.jobs import (
    adopt_steps,
    backup_steps,
    failover_steps,
    provision_plans,
    rebuild_steps,
    rejoin_steps,
    replace_steps,
    restore_steps,
    switchover_steps,
)
from clusters.jobs.steps import Plan

PLANS: dict[str, Plan] = {
    plan.kind: plan
    for plan in (
        switchover_steps.PLAN,
        failover_steps.PLAN,
        rejoin_steps.PLAN,
        adopt_steps.PLAN,
        rebuild_steps.PLAN,  # repair: rebuild a server in place (also rejoin_method reseed)
        replace_steps.PLAN,  # repair: a lost server replaced after replace_after_seconds
        *provision_plans.PLANS,  # provision, deprovision, stop/start, scale, parameters, rolling restart
        *backup_steps.PLANS,  # backup, verify_backup
        restore_steps.RESTORE,
    )
}


def plan_for(kind: str) -> Plan:
    """The plan of a job kind; LookupError for a kind nobody registered."""
    try:
        return PLANS[kind]
    except KeyError:
        raise LookupError(f"no plan for jobs of kind {kind!r}") from None
