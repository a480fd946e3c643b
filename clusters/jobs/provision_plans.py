"""The plans of the provisioning jobs (long jobs: they never block an HA job), listed in
clusters/jobs/registry.py through `PLANS`.

provision, deprovision, stop_cluster, start_cluster: clusters/jobs/provision_steps.py;
add_replica, remove_replica: clusters/jobs/scale_steps.py; apply_parameters, rolling_restart:
clusters/jobs/rolling_steps.py.
"""

from __future__ import annotations

from clusters.jobs import provision_steps as p
from clusters.jobs import rolling_steps as r
from clusters.jobs import scale_steps as sc
from clusters.jobs.provision_context import ProvisionContext
from clusters.jobs.steps import Plan, StepSpec


def _plan(kind: str, *steps, abort=None) -> Plan:
    """A provisioning plan: every one shares the ProvisionContext; `steps` are (name, function) pairs."""
    return Plan(
        kind=kind,
        steps=tuple(StepSpec(name, run) for name, run in steps),
        context=ProvisionContext,
        abort=abort,
    )


PROVISION = _plan(
    "provision",
    ("place_servers", p.place_servers),
    ("start_servers", p.start_servers),
    ("create_accounts", p.create_accounts),
    ("wire_replication", p.wire_replication),
    ("semi_sync_on", p.semi_sync_on),
    ("register_servers", p.register_servers),
    ("first_healthy_tick", p.first_healthy_tick),
    abort=p.abort_provision,
)

DEPROVISION = _plan(
    "deprovision",
    ("disarm", p.disarm),
    ("destroy_servers", p.destroy_servers),
    ("forget_servers", p.forget_servers),
)

STOP = _plan("stop_cluster", ("disarm", p.disarm), ("stop_servers", p.stop_all))

START = _plan("start_cluster", ("start_servers", p.start_all), ("healthy_tick", p.start_healthy))

ADD_REPLICA = _plan(
    "add_replica",
    ("place_replica", sc.place_replica),
    ("clone", sc.clone),
    ("start_replica", sc.start_replica),
    ("replicate", sc.replicate),
    ("semi_sync", sc.semi_sync),
    ("register_server", sc.register_server),
    abort=sc.abort_add_replica,
)

REMOVE_REPLICA = _plan(
    "remove_replica", ("forget_server", sc.forget_server), ("destroy_server", sc.destroy_server)
)

# The rolling restart's steps; a parameter change also applies the dynamic settings live, before them.
_ROLLING = (
    ("restart_replicas", r.restart_replicas),
    ("switchover", r.switchover),
    ("restart_old_primary", r.restart_old_primary),
)

APPLY_PARAMETERS = _plan(
    "apply_parameters",
    ("write_configuration", r.write_configuration),
    ("apply_live", r.apply_live),
    *_ROLLING,
)

ROLLING_RESTART = _plan("rolling_restart", ("write_configuration", r.write_configuration), *_ROLLING)

PLANS = (PROVISION, DEPROVISION, STOP, START, ADD_REPLICA, REMOVE_REPLICA, APPLY_PARAMETERS, ROLLING_RESTART)
