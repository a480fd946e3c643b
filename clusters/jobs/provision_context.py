"""What the provisioning jobs share: the cluster, its provider, its secrets, and the typed record of the
servers the job placed, saved in the job's result after each step (so a resumed job and an abort know
exactly which servers exist and what was done to them)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from clusters.adapters.mysql import Credentials
from clusters.credentials import admin_credentials, cluster_settings, replication_credentials
from clusters.domain.addresses import canonical_ip
from clusters.models import Cluster
from clusters.providers.base import ServerSpec
from clusters.providers.registry import get_provider
from controlplane.crypto import decrypt_json, encrypt_json


@dataclass
class PlacedServer:
    """One server a provisioning job placed: its instance, MariaDB server_id, address and role."""

    instance: str
    server_id: int
    host: str
    port: int
    role: str  # primary | replica
    started: bool = False
    accounts: bool = False
    gtid: str = ""  # where a cloned server starts replicating

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ProvisionState:
    """The job's own typed state, kept in `result["provision"]` (the engine saves it with every step, as
    it does clusters.jobs.state.JobState for HA jobs)."""

    servers: list[PlacedServer] = field(default_factory=list)
    root_password_set: bool = False

    @classmethod
    def from_result(cls, result: dict) -> ProvisionState:
        raw = result.get("provision") or {}
        return cls([PlacedServer(**s) for s in raw.get("servers", [])], raw.get("root_password_set", False))

    def to_result(self) -> dict:
        """What the engine writes into the job's result whenever it saves it (as clusters.jobs.state)."""
        return {
            "provision": {
                "servers": [asdict(s) for s in self.servers],
                "root_password_set": self.root_password_set,
            }
        }

    def save(self, result: dict) -> None:
        result.update(self.to_result())

    def by_instance(self, instance: str) -> PlacedServer | None:
        return next((s for s in self.servers if s.instance == instance), None)

    @property
    def primary(self) -> PlacedServer | None:
        return next((s for s in self.servers if s.role == "primary"), None)


# (cluster, kind, requested_by) -> (job, finished job or None): creates a job and runs it to its end in this
# process. Registered by clusters.services.provisioning (the engine is above this module's plans).
SUBJOB_RUNNER: Callable[[Cluster, str, str], tuple[Any, Any]] | None = None


def new_secrets(master_user: dict | None) -> str:
    """The encrypted secrets of a new provisioned cluster: the local root password, and the tenant's
    master user until the accounts exist (then it is forgotten: written once, never returned)."""
    value: dict = {"root": secrets.token_urlsafe(24)}
    if master_user:
        value["master_user"] = {"user": master_user["user"], "password": master_user["password"]}
    return encrypt_json(value)


class ProvisionContext:
    """The context of provision, deprovision, scale, stop/start and rolling-restart jobs."""

    def __init__(self, job, result: dict):
        self.job_id = job.pk
        self.kind = job.kind
        self.params = job.params or {}
        self.result = result
        self.cluster = Cluster.objects.select_related("tenant", "primary", "parameter_group").get(
            pk=job.cluster_id
        )
        self.spec = dict(self.cluster.provision or {})
        self.provider = get_provider(self.spec.get("provider", "local"))
        stored = decrypt_json(self.cluster.provision_secrets_encrypted) or {}
        self.root_password: str = stored.get("root", "")
        self.provider.bind_cluster(str(self.spec.get("key", "")), self.root_password)
        self.master_user: dict | None = stored.get("master_user")
        self.settings = cluster_settings(self.cluster)
        self.admin: Credentials = admin_credentials(self.cluster)
        self.replication: Credentials | None = replication_credentials(self.cluster)
        self.state = ProvisionState.from_result(result)
        if self.kind != "provision":  # only a provision job meets servers whose root has no password yet
            self.state.root_password_set = True
        self.checkpoint = lambda: None

    def save(self) -> None:
        self.state.save(self.result)

    def forget_master_user(self) -> None:
        if self.master_user is None:
            return
        Cluster.objects.filter(pk=self.cluster.pk).update(
            provision_secrets_encrypted=encrypt_json({"root": self.root_password})
        )
        self.master_user = None

    def parameters(self) -> dict[str, str]:
        group = self.cluster.parameter_group
        base = dict(group.parameters) if group else {}
        base.update(self.spec.get("parameters") or {})
        return base

    def server_spec(self, instance: str, server_id: int) -> ServerSpec:
        return ServerSpec(
            instance=instance,
            server_id=server_id,
            memory_mb=int(self.spec.get("memory_mb", 256)),
            semi_sync=bool(self.spec.get("semi_sync")),
            parameters=self.parameters(),
            group=str(self.spec.get("key", "")),
            host=(
                self.params.get("host")
                if self.kind == "add_replica"
                else self.result.get("replacement_host")  # replace_server: chosen by its first step
            ),
        )

    def root(self, server: PlacedServer | str):
        """A root connection through the server's local socket (the password once it is set)."""
        instance = server if isinstance(server, str) else server.instance
        return self.provider.root_connection(
            instance, self.root_password if self.state.root_password_set else ""
        )

    def sql(self, server: PlacedServer | str, *statements: str | tuple[str, tuple]) -> list[dict]:
        """Statements as the server's local root, in one session (through the host's agent for `hosts`)."""
        instance = server if isinstance(server, str) else server.instance
        password = self.root_password if self.state.root_password_set else ""
        return self.provider.execute(instance, password, statements)

    def run_subjob(self, cluster: Cluster, kind: str) -> tuple[Any, Any]:
        """Create a job of `kind` (a switchover of a rolling restart) and run it here, waiting for its end."""
        if SUBJOB_RUNNER is None:
            raise RuntimeError("no job runner registered: import clusters.services.provisioning first")
        return SUBJOB_RUNNER(cluster, kind, f"{self.kind} job {self.job_id}")

    def close(self) -> None:
        pass


def pinned_ip(host: str) -> str:
    """The canonical address a provisioned server's row is pinned to (the one-address-one-server rule of
    registration applies to provisioned servers too). Providers hand out addresses, not names; a name is
    resolved once."""
    ip = canonical_ip(host)
    if ip is None:
        ip = canonical_ip(socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][4][0]) or host
    return ip
