"""Placement for the `hosts` provider: which database host each new server of a cluster goes to.

Rules (issue 15): one server of a cluster per host; spread over zones (a zone the cluster does not use
yet first); within each host's capacity (instances and memory); least loaded first; a host that is down
takes nothing. Pure Python: the provider feeds it the pool and the cluster's current hosts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HostLoad:
    """A database host of the pool, with what it already runs."""

    name: str
    zone: str
    capacity_instances: int
    capacity_memory_mb: int
    instances: int = 0
    memory_mb: int = 0
    down: bool = False

    def fits(self, memory_mb: int) -> bool:
        return (
            not self.down
            and self.instances + 1 <= self.capacity_instances
            and self.memory_mb + memory_mb <= self.capacity_memory_mb
        )

    @property
    def load(self) -> float:
        """The larger of the two fractions in use: the scarcer resource decides."""
        return max(
            self.instances / max(self.capacity_instances, 1), self.memory_mb / max(self.capacity_memory_mb, 1)
        )


class PlacementError(ValueError):
    """No host can take a server; the message says which rule left none."""


def place(
    pool: Sequence[HostLoad],
    count: int,
    memory_mb: int,
    used_hosts: Sequence[str] = (),
    used_zones: Sequence[str] = (),
    required_host: str | None = None,
) -> list[str]:
    """The hosts for `count` new servers of one cluster, in order. `used_hosts`/`used_zones`: where the
    cluster's existing servers are. `required_host`: the user named the host (it must obey the rules)."""
    taken = set(used_hosts)
    zones = Counter(used_zones)
    hosts = {h.name: h for h in pool}
    if required_host is not None:
        host = hosts.get(required_host)
        if host is None:
            raise PlacementError(f"no host named {required_host!r} in the pool")
        if host.down:
            raise PlacementError(f"host {required_host} is down")
        if required_host in taken:
            raise PlacementError(f"host {required_host} already runs a server of this cluster: one per host")
        if not host.fits(memory_mb):
            raise PlacementError(f"host {required_host} has no room for another {memory_mb} MB server")
        if count != 1:
            raise PlacementError("a named host takes exactly one server")
        return [required_host]
    chosen: list[str] = []
    for _ in range(count):
        candidates = [h for h in pool if h.name not in taken and h.fits(memory_mb)]
        if not candidates:
            free = [h for h in pool if not h.down and h.name not in taken]
            why = (
                "every host is down or already runs a server of this cluster"
                if not free
                else f"no host has room for another {memory_mb} MB server"
            )
            raise PlacementError(f"cannot place server {len(chosen) + 1} of {count}: {why}")
        best = min(candidates, key=lambda h: (zones[h.zone], h.load, h.name))
        chosen.append(best.name)
        taken.add(best.name)
        zones[best.zone] += 1
    return chosen
