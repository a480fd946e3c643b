"""The pool of database hosts: registration (an agent key, shown once) and whether each host's agent
answers. Beat runs `check_hosts` every few seconds: every agent gets a sealed ping at once; an agent that
has not answered for `DBPILOT_AGENT_DOWN_SECONDS` marks its host down (the API and the portal show it,
placement skips it); its next answer brings the host back up. The servers on a host that went down are
monitoring's business: their cluster fails over as any other."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clusters.events import record_event
from clusters.models import Cluster, DatabaseHost, HostedInstance
from clusters.providers import hosts_provider
from clusters.providers.agent_protocol import new_key
from clusters.providers.base import ProviderError
from controlplane.crypto import encrypt_json

log = logging.getLogger(__name__)
PING_SECONDS = 3.0


def register_host(
    name: str, address: str, zone: str, instances: int, memory_mb: int
) -> tuple[DatabaseHost, str]:
    """A new host of the pool and its agent's key (returned once: the operator gives it to the agent)."""
    key = new_key()
    with transaction.atomic():
        host = DatabaseHost.objects.create(
            name=name,
            address=address,
            zone=zone,
            capacity_instances=instances,
            capacity_memory_mb=memory_mb,
            agent_key_encrypted=encrypt_json(key),
        )
    return host, key


def rotate_agent_key(name: str) -> str:
    """A new key for the host's agent (the old one stops working at once: operations sealed with it are
    refused by an agent holding the new one, and answers sealed with it are refused here); shown once."""
    key = new_key()
    if not DatabaseHost.objects.filter(name=name).update(agent_key_encrypted=encrypt_json(key)):
        raise DatabaseHost.DoesNotExist(f"no host named {name!r} in the pool")
    return key


def _tell_clusters(host: DatabaseHost, message: str) -> None:
    """An event on every cluster with a server on the host (their own monitoring says what it means)."""
    groups = set(HostedInstance.objects.filter(host=host).values_list("group", flat=True))
    for cluster_id in Cluster.objects.filter(provision__key__in=list(groups)).values_list("pk", flat=True):
        record_event(
            cluster_id,
            "host_down" if "down" in message else "host_up",
            message,
            severity="warning" if "down" in message else "info",
            data={"host": host.name},
        )


def check_hosts(wait: float = PING_SECONDS) -> dict[str, bool]:
    """Ping every agent (all at once), record who answered, mark down the hosts whose agent has been
    silent too long and up the ones that answer again. {host name: answered}."""
    hosts = list(DatabaseHost.objects.all())
    pending = {}
    for host in hosts:
        try:
            pending[host.name] = hosts_provider.send(host, "ping", {}, wait)
        except ProviderError as exc:  # no key: never answers
            log.warning("cannot ping host %s: %s", host.name, exc)
    deadline = time.monotonic() + wait
    answered: dict[str, bool] = {}
    while pending and time.monotonic() < deadline:
        for name, result in list(pending.items()):
            if result.ready():
                host = next(h for h in hosts if h.name == name)
                try:
                    hosts_provider.answer(host, result.get(timeout=1, propagate=False), "ping")
                    answered[name] = True
                except ProviderError as exc:
                    log.warning("host %s answered its ping wrongly: %s", name, exc)
                result.forget()
                del pending[name]
        time.sleep(0.05)
    for result in pending.values():
        result.revoke()
        result.forget()
    now = timezone.now()
    silent_for = timedelta(seconds=settings.DBPILOT_AGENT_DOWN_SECONDS)
    for host in hosts:
        if answered.get(host.name):
            DatabaseHost.objects.filter(pk=host.pk).update(last_seen_at=now, down=False)
            if host.down:
                log.warning("host %s is up again: its agent answers", host.name)
                _tell_clusters(host, f"Database host {host.name} is up again: its agent answers")
            continue
        answered[host.name] = False
        seen = host.last_seen_at or host.created_at
        if not host.down and now - seen >= silent_for:
            DatabaseHost.objects.filter(pk=host.pk).update(down=True)
            log.warning("host %s is down: its agent has not answered for %s", host.name, now - seen)
            _tell_clusters(
                host,
                f"Database host {host.name} is down: its agent has not answered for "
                f"{int((now - seen).total_seconds())} s; nothing new is placed there",
            )
    return answered
