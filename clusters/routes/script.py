"""The script driver: an operator-installed script (a VIP mover, a Puppet or Ansible run...) told about
the switch, through the hooks runner (clusters.hooks) and its one contract:

    argv: EVENT PHASE CLUSTER OLD_PRIMARY NEW_PRIMARY     (also in DBPILOT_EVENT, DBPILOT_PHASE, ...)

EVENT is the job's kind (`switchover` or `failover`); PHASE `pre` when the primary is leaving (the new one
may not be known yet: NEW_PRIMARY empty) and `post` once the new primary takes writes. The script runs by
name from DBPILOT_HOOKS_DIR, without a shell, with a scrubbed environment and the hooks timeout; its
output goes into the route result (and so into the job step). The contract has no event outside HA jobs,
so a script route is not run by other syncs (registration, replica health, a manual sync): the result
says so. docs/routing.md has the VIP example.
"""

from __future__ import annotations

from clusters.hooks import run_hook
from clusters.routes.base import PRIMARY_LEAVING, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute
from clusters.routes.registry import register_driver

HA_EVENTS = ("switchover", "failover")
OUTPUT_IN_DETAIL = 400


@register_driver("script")
class ScriptDriver(RouteDriver):
    """`script`: the hook name."""

    route: BoundRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        name = self.route.settings["script"]
        event = self.route.job_kinds.get(plan.job_id) if plan.job_id is not None else None
        if event not in HA_EVENTS:
            return RouteResult(
                self.name,
                True,
                f"script {name} not run: scripts run during switchover and failover "
                "jobs only (the hooks contract has no other event)",
                extra={"skipped": True},
            )
        phase = "pre" if plan.phase == PRIMARY_LEAVING else "post"
        result = run_hook(
            name,
            event=event,
            phase=phase,
            cluster=plan.cluster,
            old_primary=plan.old_primary or "",
            new_primary=plan.primary or "",
        )
        extra = {
            "output": result.output,
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "argv": [event, phase, plan.cluster, plan.old_primary or "", plan.primary or ""],
        }
        if result.ok:
            return RouteResult(self.name, True, result.summary(), duration_ms=result.duration_ms, extra=extra)
        tail = result.output.strip()[-OUTPUT_IN_DETAIL:]
        # The operator's own script: its outcome and output are shown as they are.
        raise RouteError(
            f"script {result.summary()}" + (f"; output: {tail}" if tail else ""),
            permanent=bool(result.error),
            public=True,
        )
