"""The `hosts` provider: servers on a pool of database hosts, each run by the host's dbpilot agent.

The control plane decides (placement: clusters.domain.placement, one server of a cluster per host, zones
spread, within capacity, least loaded first, never a host that is down) and records each placed server
(`HostedInstance`); the host's agent does the `local` provider's work there (clusters/agent/). Every call
is one sealed operation on the host's queue (clusters.providers.agent_protocol), answered within a
timeout: an agent that does not answer fails the call with a reason that says so (and the periodic ping,
clusters.services.hosts, marks its host down).

Cloning between hosts: the target's agent listens (a receiver process on the target host's address), the
source's agent streams `mariadb-backup --stream` to it directly, the target prepares the copy. The bytes
never pass through the control plane; progress comes from the source agent's task state.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.db import transaction
from django.db.models import Count, Sum

from clusters.domain.placement import HostLoad, PlacementError, place
from clusters.hosts import DatabaseHost, HostedInstance
from clusters.providers.agent_protocol import (
    AGENT_TASK,
    REPLY_TTL_SECONDS,
    SealError,
    queue_of,
    seal,
    unseal,
)
from clusters.providers.base import (
    CloneResult,
    InstanceInfo,
    Placement,
    Progress,
    Provider,
    ProviderError,
    ServerSpec,
)
from controlplane.crypto import decrypt_json

CALL_SECONDS = 30.0
START_SECONDS = 90.0
CLONE_SECONDS = 6 * 3600.0


def host_key(host: DatabaseHost) -> str:
    key = decrypt_json(host.agent_key_encrypted)
    if not key:
        raise ProviderError(f"host {host.name} has no agent key: register it again (POST /platform/hosts/)")
    return key


def send(host: DatabaseHost, op: str, args: dict[str, Any], timeout: float):
    """Queue one sealed operation for the host's agent; the Celery result to wait on."""
    from controlplane.celery import app  # the platform's app (its broker and result backend)

    request = seal(host_key(host), {"host": host.name, "op": op, "args": args})
    return app.send_task(
        AGENT_TASK, args=[host.name, request], queue=queue_of(host.name), expires=timeout, ignore_result=False
    )


def answer(host: DatabaseHost, reply: Any, op: str) -> Any:
    """The value of an agent's sealed answer, or the ProviderError it reports."""
    if isinstance(reply, dict):  # refused before unsealing: not sealed
        raise ProviderError(f"{op} on host {host.name}: {reply.get('error')}")
    try:
        value = unseal(host_key(host), reply, REPLY_TTL_SECONDS)
    except SealError as exc:
        raise ProviderError(f"{op} on host {host.name}: the answer is not the agent's ({exc})") from None
    if "error" in value:
        raise ProviderError(f"{op} on host {host.name}: {value['error']}", bool(value.get("permanent")))
    return value.get("ok")


def call(
    host: DatabaseHost,
    op: str,
    args: dict[str, Any] | None = None,
    timeout: float = CALL_SECONDS,
    progress: Progress | None = None,
) -> Any:
    """Run an operation on the host's agent and wait for its answer (progress: bytes, for clones)."""
    if host.down:
        raise ProviderError(f"host {host.name} is down (its agent does not answer)", permanent=False)
    result = send(host, op, args or {}, timeout)
    deadline = time.monotonic() + timeout
    try:
        while not result.ready():
            if time.monotonic() > deadline:
                raise CeleryTimeout()
            if progress is not None and result.state == "PROGRESS" and isinstance(result.info, dict):
                progress(int(result.info.get("bytes", 0)))
            time.sleep(0.05 if progress is None else 0.25)
        reply = result.get(timeout=1, disable_sync_subtasks=False, propagate=False)
    except CeleryTimeout:
        result.revoke()
        raise ProviderError(
            f"{op} on host {host.name}: its agent did not answer within {timeout:g} s (is "
            f"`celery -A controlplane worker -Q {queue_of(host.name)}` running there?)",
            permanent=False,
        ) from None
    finally:
        result.forget()
    return answer(host, reply, op)


def pool_loads() -> list[HostLoad]:
    """Every host with what is placed on it (HostedInstance rows), for the placement decision."""
    used = {
        row["host_id"]: row
        for row in HostedInstance.objects.values("host_id").annotate(n=Count("id"), memory=Sum("memory_mb"))
    }
    return [
        HostLoad(
            name=h.name,
            zone=h.zone,
            capacity_instances=h.capacity_instances,
            capacity_memory_mb=h.capacity_memory_mb,
            instances=used.get(h.pk, {}).get("n", 0),
            memory_mb=used.get(h.pk, {}).get("memory") or 0,
            down=h.down,
        )
        for h in DatabaseHost.objects.all()
    ]


def pool_room(count: int, memory_mb: int) -> str:
    """Why the pool cannot take a new cluster of `count` servers (one per host), or "" when it can (the
    request is refused up front; the job places under a lock and may still meet a pool that filled)."""
    try:
        place(pool_loads(), count, memory_mb)
    except PlacementError as exc:
        return f"the host pool has no room for this cluster: {exc}"
    return ""


def spec_args(spec: ServerSpec) -> dict:
    raw = asdict(spec)
    raw["parameters"] = dict(spec.parameters)
    raw.pop("host", None)
    return raw


class HostsProvider(Provider):
    name = "hosts"
    client_host = "%"  # the control plane and the other hosts' replicas connect over the pool's network

    # ----- placement ----------------------------------------------------------------------------------

    def choose_host(self, spec: ServerSpec) -> HostedInstance:
        """The instance's host: where it already is, or a new placement recorded before anything starts
        (under a lock on the pool, so two jobs never both take a host's last room)."""
        existing = HostedInstance.objects.select_related("host").filter(instance=spec.instance).first()
        if existing is not None:
            return existing
        with transaction.atomic():
            list(DatabaseHost.objects.select_for_update().order_by("pk"))  # serialises placements
            siblings = (
                HostedInstance.objects.select_related("host").filter(group=spec.group) if spec.group else []
            )
            used_hosts = [s.host.name for s in siblings]
            used_zones = [s.host.zone for s in siblings]
            try:
                (name,) = place(
                    pool_loads(), 1, spec.memory_mb, used_hosts, used_zones, required_host=spec.host or None
                )
            except PlacementError as exc:
                raise ProviderError(f"placing {spec.instance}: {exc}") from None
            host = DatabaseHost.objects.get(name=name)
            return HostedInstance.objects.create(
                instance=spec.instance, host=host, group=spec.group, memory_mb=spec.memory_mb
            )

    def replacement_host(self, dead_instance: str, cluster_instances: list[str]) -> str | None:
        """The host the replacement of a lost server goes to, by the placement rules: not a host that holds
        a server of the cluster (the dead one's included: it may come back), a zone the cluster lacks
        first, least loaded, up. The clone then places it there (ServerSpec.host)."""
        dead = self.hosted(dead_instance)
        siblings = list(
            HostedInstance.objects.select_related("host").filter(
                instance__in=[*cluster_instances, dead_instance]
            )
        )
        memory_mb = dead.memory_mb if dead is not None else max((s.memory_mb for s in siblings), default=256)
        try:
            (name,) = place(
                pool_loads(),
                1,
                memory_mb,
                [s.host.name for s in siblings],
                [s.host.zone for s in siblings if s.instance != dead_instance],
            )
        except PlacementError as exc:
            raise ProviderError(str(exc)) from None
        return name

    def hosted(self, instance: str) -> HostedInstance | None:
        return HostedInstance.objects.select_related("host").filter(instance=instance).first()

    def _host_of(self, instance: str) -> DatabaseHost:
        hosted = self.hosted(instance)
        if hosted is None:
            raise ProviderError(f"server {instance} is not placed on any host")
        return hosted.host

    def _placed(self, hosted: HostedInstance, raw: dict) -> Placement:
        HostedInstance.objects.filter(pk=hosted.pk).update(port=int(raw["port"]))
        return Placement(hosted.instance, raw["host"], int(raw["port"]))

    # ----- the interface ------------------------------------------------------------------------------

    def create(self, spec: ServerSpec) -> Placement:
        hosted = self.choose_host(spec)
        raw = call(
            hosted.host, "create", {"spec": spec_args(spec), "address": hosted.host.address}, START_SECONDS
        )
        return self._placed(hosted, raw)

    def clone(
        self, source: str, spec: ServerSpec, root_password: str, progress: Progress | None = None
    ) -> CloneResult:
        source_host = self._host_of(source)
        hosted = self.choose_host(spec)
        target = hosted.host
        token = secrets.token_urlsafe(32)
        started = time.monotonic()
        opened = call(
            target,
            "clone_receive",
            {"spec": spec_args(spec), "address": target.address, "token": token},
            START_SECONDS,
        )
        self._placed(hosted, opened["placement"])
        if "gtid" in opened:  # a resumed job: the copy is there, prepared
            return CloneResult(opened["gtid"], 0, 0.0)
        sent = call(
            source_host,
            "clone_send",
            {
                "instance": source,
                "root_password": root_password,
                "target_host": target.address,
                "target_port": opened["stream_port"],
                "token": token,
            },
            CLONE_SECONDS,
            progress,
        )
        finished = call(target, "clone_finish", {"instance": spec.instance, "timeout": 120}, CLONE_SECONDS)
        return CloneResult(finished["gtid"], int(sent["bytes"]), time.monotonic() - started)

    def start(self, instance: str, root_password: str | None, timeout: float = 60) -> None:
        call(
            self._host_of(instance),
            "start",
            {"instance": instance, "root_password": root_password, "timeout": timeout},
            timeout + CALL_SECONDS,
        )

    def stop(self, instance: str, timeout: float = 60) -> None:
        call(
            self._host_of(instance),
            "stop",
            {"instance": instance, "timeout": timeout},
            timeout + CALL_SECONDS,
        )

    def reconfigure(self, spec: ServerSpec) -> bool:
        return bool(call(self._host_of(spec.instance), "reconfigure", {"spec": spec_args(spec)}))

    def destroy(self, instance: str) -> bool:
        """Kill and remove the server on its host, then forget its placement. A host whose agent does not
        answer keeps the placement (its room stays counted) and the call fails: nothing is forgotten that
        may still run."""
        hosted = self.hosted(instance)
        if hosted is None:
            return False
        call(hosted.host, "destroy", {"instance": instance}, START_SECONDS)
        HostedInstance.objects.filter(pk=hosted.pk).delete()
        return True  # its placement existed: there was something to remove

    def running(self, instance: str) -> bool:
        hosted = self.hosted(instance)
        if hosted is None:
            return False
        try:
            return bool(call(hosted.host, "running", {"instance": instance}, 10))
        except ProviderError:
            return False  # a host that does not answer runs nothing dbpilot can use

    def placement(self, instance: str) -> Placement | None:
        hosted = self.hosted(instance)
        if hosted is None or not hosted.port:
            return None
        return Placement(instance, hosted.host.address, hosted.port)

    def instances(self) -> list[str]:
        return list(HostedInstance.objects.values_list("instance", flat=True))

    def list_instances(self) -> list[InstanceInfo]:
        """The placements the control plane recorded (an agent runs only what it was told to place)."""
        return [
            InstanceInfo(name, created.timestamp())
            for name, created in HostedInstance.objects.values_list("instance", "created_at")
        ]

    def root_connection(self, instance: str, password: str | None, timeout: float = 5):
        raise ProviderError(
            f"{instance} runs on a database host: its root socket is reachable only by the host's agent "
            "(use execute())"
        )

    def execute(self, instance: str, password: str | None, statements) -> list[dict]:
        encoded = [s if isinstance(s, str) else [s[0], list(s[1])] for s in statements]
        return call(
            self._host_of(instance),
            "execute",
            {"instance": instance, "password": password, "statements": encoded},
            CALL_SECONDS + 150,  # MASTER_GTID_WAIT of a catching-up replica
        )
