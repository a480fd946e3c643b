"""The orphan sweep: servers a provider runs that dbpilot no longer owns are destroyed.

A provision, add-replica or repair job places a server; if its worker dies and the job then ends failed or
preempted without its cleanup, or the cluster is deleted meanwhile, the server would run on, unregistered.
Beat calls `sweep_orphans` every DBPILOT_ORPHAN_SWEEP_SECONDS: each enabled provider lists its instances
(with their creation times), and those that no Server row and no active job own, older than
DBPILOT_ORPHAN_GRACE_SECONDS, are destroyed (processes and data), each named in a log line and, when its
cluster still exists, an event. The decision is clusters.domain.orphans.
"""

from __future__ import annotations

import logging
import re
import time

from django.conf import settings

from clusters.domain.orphans import InstanceAge, Owners, SweepDecision, highest_first, orphans
from clusters.events import record_event
from clusters.models import ACTIVE_JOB_STATES, Cluster, Job, Server
from clusters.providers.base import Provider, ProviderError
from clusters.providers.registry import enabled_providers, get_provider

log = logging.getLogger(__name__)

INSTANCE_OF_CLUSTER = re.compile(r"^(?P<key>.+)-s\d+$")


def current_owners() -> Owners:
    """Server rows own their instance; an active job owns every instance of its cluster's provisioning key
    (`<key>-...`: a server it created just before recording it), the servers its result records, and its
    scratch servers (`...-j<job id>`, a backup's test restore)."""
    names = set(Server.objects.exclude(instance="").values_list("instance", flat=True))
    prefixes, suffixes = [], []
    for job_id, result, provision in Job.objects.filter(state__in=ACTIVE_JOB_STATES).values_list(
        "id", "result", "cluster__provision"
    ):
        suffixes.append(f"-j{job_id}")
        key = (provision or {}).get("key")
        if key:
            prefixes.append(f"{key}-")
        for server in ((result or {}).get("provision") or {}).get("servers", []):
            if server.get("instance"):
                names.add(server["instance"])
    return Owners(frozenset(names), tuple(prefixes), tuple(suffixes))


def sweep_provider(provider: Provider, grace_seconds: float, now: float | None = None) -> SweepDecision:
    """Destroy `provider`'s orphans; what was destroyed, what is owned, what is too young to tell."""
    # Listed before the owners are read: an instance a job owns at listing time is still seen owned.
    listed = provider.list_instances()
    now = time.time() if now is None else now
    ages = [InstanceAge(i.name, -1.0 if i.created_at is None else now - i.created_at) for i in listed]
    decision = orphans(ages, current_owners(), grace_seconds)
    age_of = {a.name: a.age_seconds for a in ages}
    destroyed = []
    for instance in highest_first(decision.destroy):  # a StatefulSet's pods go from the top down
        try:
            removed = provider.destroy(instance)
        except ProviderError as exc:
            log.warning("orphan sweep: could not destroy %s (%s provider): %s", instance, provider.name, exc)
            continue
        if not removed:
            continue
        destroyed.append(instance)
        message = (
            f"Orphan server {instance} ({provider.name} provider, created {age_of[instance]:.0f} s ago, owned "
            "by no server and no active job) destroyed with its data"
        )
        log.warning("orphan sweep: %s", message)
        match = INSTANCE_OF_CLUSTER.match(instance)
        cluster_id = (
            Cluster.objects.filter(provision__key=match.group("key")).values_list("id", flat=True).first()
            if match
            else None
        )
        if cluster_id is not None:
            record_event(
                cluster_id,
                "orphan_destroyed",
                message,
                severity="warning",
                data={"instance": instance, "provider": provider.name},
            )
    return SweepDecision(destroyed, decision.owned, decision.too_young)


def sweep_orphans() -> list[str]:
    """Beat's periodic sweep over every enabled provider; the instances destroyed."""
    destroyed: list[str] = []
    for name in enabled_providers():
        try:
            provider = get_provider(name)
            destroyed += sweep_provider(provider, settings.DBPILOT_ORPHAN_GRACE_SECONDS).destroy
        except ProviderError as exc:  # one provider unreachable does not stop the others' sweep
            log.warning("orphan sweep: the %s provider: %s", name, exc)
    return destroyed
