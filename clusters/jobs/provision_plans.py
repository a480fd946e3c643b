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

PROVISION = Plan(
    kind="provision",
    steps=(
        StepSpec("place_servers", p.place_servers),
        StepSpec("start_servers", p.start_servers),
        StepSpec("create_accounts", p.create_accounts),
        StepSpec("wire_replication", p.wire_replication),
        StepSpec("semi_sync_on", p.semi_sync_on),
        StepSpec("register_servers", p.register_servers),
        StepSpec("first_healthy_tick", p.first_healthy_tick),
    ),
    context=ProvisionContext,
    abort=p.abort_provision,
)

DEPROVISION = Plan(
    kind="deprovision",
    steps=(
        StepSpec("disarm", p.disarm),
        StepSpec("destroy_servers", p.destroy_servers),
        StepSpec("forget_servers", p.forget_servers),
    ),
    context=ProvisionContext,
)

STOP = Plan(
    kind="stop_cluster",
    steps=(StepSpec("disarm", p.disarm), StepSpec("stop_servers", p.stop_all)),
    context=ProvisionContext,
)

START = Plan(
    kind="start_cluster",
    steps=(StepSpec("start_servers", p.start_all), StepSpec("healthy_tick", p.start_healthy)),
    context=ProvisionContext,
)

ADD_REPLICA = Plan(
    kind="add_replica",
    steps=(
        StepSpec("place_replica", sc.place_replica),
        StepSpec("clone", sc.clone),
        StepSpec("start_replica", sc.start_replica),
        StepSpec("replicate", sc.replicate),
        StepSpec("semi_sync", sc.semi_sync),
        StepSpec("register_server", sc.register_server),
    ),
    context=ProvisionContext,
    abort=sc.abort_add_replica,
)

REMOVE_REPLICA = Plan(
    kind="remove_replica",
    steps=(StepSpec("forget_server", sc.forget_server), StepSpec("destroy_server", sc.destroy_server)),
    context=ProvisionContext,
)

APPLY_PARAMETERS = Plan(
    kind="apply_parameters",
    steps=(
        StepSpec("write_configuration", r.write_configuration),
        StepSpec("apply_live", r.apply_live),
        StepSpec("restart_replicas", r.restart_replicas),
        StepSpec("switchover", r.switchover),
        StepSpec("restart_old_primary", r.restart_old_primary),
    ),
    context=ProvisionContext,
)

ROLLING_RESTART = Plan(
    kind="rolling_restart",
    steps=(
        StepSpec("write_configuration", r.write_configuration),
        StepSpec("restart_replicas", r.restart_replicas),
        StepSpec("switchover", r.switchover),
        StepSpec("restart_old_primary", r.restart_old_primary),
    ),
    context=ProvisionContext,
)

PLANS = (PROVISION, DEPROVISION, STOP, START, ADD_REPLICA, REMOVE_REPLICA, APPLY_PARAMETERS, ROLLING_RESTART)
