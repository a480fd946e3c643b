"""Which provider instances are orphans: servers a job placed and nobody owns any more.

A provision, add-replica or repair job places a server, and its worker may die before the job registers
the server or removes it (a failed or preempted job whose cleanup never ran, a cluster deleted meanwhile).
The periodic sweep (clusters.services.orphans) asks each provider for its instances and destroys those
that this module calls orphans: owned by no Server row and by no active job, and older than a grace
period, so a server a running job has just created (before its job recorded it) is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SERVER_NUMBER = re.compile(r"-s(\d+)$")


@dataclass(frozen=True)
class InstanceAge:
    """One instance a provider holds, with the seconds since it was created."""

    name: str
    age_seconds: float


@dataclass(frozen=True)
class Owners:
    """What owns instances: exact names (Server rows, jobs' recorded servers), name prefixes (the
    provisioning key of a cluster with an active job: `<key>-`) and name suffixes (`-j<id>` of an active
    job's scratch server)."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def own(self, name: str) -> bool:
        return (
            name in self.names
            or any(name.startswith(p) for p in self.prefixes)
            or any(name.endswith(s) for s in self.suffixes)
        )


@dataclass(frozen=True)
class SweepDecision:
    destroy: list[str] = field(default_factory=list)
    owned: list[str] = field(default_factory=list)
    too_young: list[str] = field(default_factory=list)


def orphans(instances: Iterable[InstanceAge], owners: Owners, grace_seconds: float) -> SweepDecision:
    """Split the provider's instances: owned ones stay, unowned ones younger than the grace stay (a job
    may be about to record them), the rest are orphans to destroy. An unknown age (negative: the provider
    could not say) is never old enough."""
    destroy, owned, young = [], [], []
    for instance in sorted(instances, key=lambda i: i.name):
        if owners.own(instance.name):
            owned.append(instance.name)
        elif instance.age_seconds < 0 or instance.age_seconds < grace_seconds:
            young.append(instance.name)
        else:
            destroy.append(instance.name)
    return SweepDecision(destroy, owned, young)


def instance_number(name: str) -> int:
    """n of a provisioned server's instance `<key>-s<n>` (0 for any other name)."""
    match = SERVER_NUMBER.search(name)
    return int(match.group(1)) if match else 0


def highest_first(names: Iterable[str]) -> list[str]:
    """The order servers are destroyed in: the highest `-s<n>` of a cluster first (a StatefulSet's pods
    go from its highest ordinal down; for other providers the order does not matter)."""
    return sorted(names, key=lambda n: (SERVER_NUMBER.sub("", n), -instance_number(n), n))
