"""The provider interface: where the database servers of a provisioned cluster run.

A provider creates a server from a `ServerSpec`, starts, stops and restarts it (with a new configuration),
clones a new server from a running one (`mariadb-backup --backup --stream`), and destroys it. Every call
is idempotent and resumable, like the steps of a job: `create` of an instance that exists returns its
placement, `start` of a running server and `destroy` of a missing one do nothing. A provider error says
what went wrong and whether trying again can help (`permanent`), in the manner of the route drivers.

`local` (clusters.providers.local_provider) is the embedded provider; `hosts`
(clusters.providers.hosts_provider) does the same work on a pool of database hosts through their agents;
`kubernetes` (clusters.providers.kubernetes_provider) runs them as the pods of a StatefulSet (not verified
against a live cluster; it cannot clone). Servers are destroyed newest first (`-s<n>` descending): a
StatefulSet's pods go from the highest ordinal down. `list_instances` feeds the orphan sweep
(clusters.services.orphans).

Replacing a dead server (the repair job): `provider.clone(source, ServerSpec(instance, server_id,
group=<cluster key>, ...), root_password, progress)` places the new replica (hosts: the least loaded up
host that holds no server of the cluster, zones spread) and creates it as a copy of `source`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


class ProviderError(RuntimeError):
    """A provider could not do what was asked; the message says why and what to do about it."""

    def __init__(self, message: str, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class ServerSpec:
    """What one server must be: its provider-wide instance name, MariaDB server_id, size and settings.

    `parameters` are allowlisted my.cnf settings (clusters.domain.parameters), already validated.
    """

    instance: str
    server_id: int
    memory_mb: int = 256
    semi_sync: bool = True
    parameters: Mapping[str, str] = field(default_factory=dict)
    binlog_expire_seconds: int = 7 * 24 * 3600
    # The cluster it belongs to (its provisioning key): placement puts one server of a group per host.
    group: str = ""
    # A host the user named (`POST .../servers/ {"host": NAME}`); None: the provider places it.
    host: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a server runs: the address dbpilot, its peers and the tenant connect to."""

    instance: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def as_dict(self) -> dict:
        return {"instance": self.instance, "host": self.host, "port": self.port}


@dataclass(frozen=True)
class CloneResult:
    """A clone: the GTID position the copy holds (where it starts replicating), bytes and seconds."""

    gtid: str
    bytes_copied: int
    seconds: float

    @property
    def mb_per_second(self) -> float:
        return round(self.bytes_copied / 1e6 / self.seconds, 1) if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class InstanceInfo:
    """One instance a provider holds and when it was created (epoch seconds; None: it cannot say)."""

    name: str
    created_at: float | None


Progress = Callable[[int], None]  # bytes copied so far
Statement = str | tuple[str, tuple | list]  # SQL, or SQL with its %s arguments


class Provider(ABC):
    """One way of running servers. Subclasses register themselves in clusters.providers.registry."""

    name: str = ""
    # Where dbpilot's admin and its replicas connect from, as a MariaDB account host: loopback for local
    # servers; any address for servers on database hosts (the pool's network, docs/security.md).
    client_host: str = "127.0.0.1"

    @abstractmethod
    def create(self, spec: ServerSpec) -> Placement:
        """Place a new, empty server (address, configuration, data directory), not started."""

    @abstractmethod
    def clone(
        self, source: str, spec: ServerSpec, root_password: str, progress: Progress | None = None
    ) -> CloneResult:
        """Place a server whose data is a consistent copy of the running instance `source`, not started."""

    @abstractmethod
    def start(self, instance: str, root_password: str | None, timeout: float = 60) -> None:
        """Start the server and wait until it answers (root_password None: a fresh one, no password yet)."""

    @abstractmethod
    def stop(self, instance: str, timeout: float = 60) -> None:
        """A clean shutdown; the data stays."""

    @abstractmethod
    def reconfigure(self, spec: ServerSpec) -> bool:
        """Write the configuration for `spec`; True when it changed (a restart applies it)."""

    def restart(self, spec: ServerSpec, root_password: str, timeout: float = 60) -> None:
        """Stop, write the new configuration, start again."""
        self.stop(spec.instance, timeout)
        self.reconfigure(spec)
        self.start(spec.instance, root_password, timeout)

    def replacement_host(self, dead_instance: str, cluster_instances: list[str]) -> str | None:
        """Where the replacement of a lost server goes (the placement rules of a provider with a pool of
        hosts: not the dead one's host, apart from `cluster_instances`); None when the provider places
        servers by itself (local: one host). ProviderError when no host fits."""
        return None

    def wipe(self, instance: str) -> None:
        """Kill the server and delete its data, keeping its place (address, server_id, configuration), so
        that `clone` into the same instance rebuilds it (the repair issue's rebuild). Providers that cannot
        say so: a rebuild is then refused with this message."""
        raise ProviderError(f"the {self.name or 'current'} provider cannot rebuild a server in place")

    @abstractmethod
    def destroy(self, instance: str) -> bool:
        """Kill the server and remove its data; True when there was something to remove."""

    @abstractmethod
    def running(self, instance: str) -> bool:
        """Whether the server process runs."""

    @abstractmethod
    def placement(self, instance: str) -> Placement | None:
        """Where the instance is, or None when it does not exist."""

    def list_instances(self) -> list[InstanceInfo]:
        """Every instance this provider holds, with its creation time: what the orphan sweep
        (clusters.services.orphans) compares with the servers dbpilot owns."""
        raise ProviderError(f"the {self.name or 'current'} provider cannot list its instances")

    def bind_cluster(self, group: str, root_password: str) -> None:
        """The cluster a job works on (its provisioning key and root password): for providers that keep
        the cluster's credentials themselves (kubernetes: its Secret). Others need nothing."""
        return None

    def roles_changed(self, primary: str | None, instances: Sequence[str]) -> list[str]:
        """The primary of a cluster whose servers are `instances` is now `primary` (None: unknown): for
        providers whose own objects follow the role (kubernetes: the pods' `dbpilot.io/role` label, which
        the writer Service selects). What was changed, for the job's step detail; [] when nothing."""
        return []

    @abstractmethod
    def root_connection(self, instance: str, password: str | None, timeout: float = 5):
        """A PyMySQL connection as the server's local root (through its socket: works while cut off)."""

    def execute(self, instance: str, password: str | None, statements: Sequence[Statement]) -> list[dict]:
        """Run statements as the server's local root, in one session; the rows of the last one. Providers
        whose servers are on another machine (hosts) run them there, through the host's agent."""
        rows: list[dict] = []
        with self.root_connection(instance, password) as conn, conn.cursor() as cursor:
            for statement in statements:
                text, args = (statement, None) if isinstance(statement, str) else statement
                cursor.execute(text, args)
                rows = list(cursor.fetchall())
        return rows


class BackupStream:
    """A running physical backup of one server: iterate for the xbstream bytes; after the last chunk,
    `gtid` is the position the backup holds. `close()` stops it early (the process is killed)."""

    gtid: str = ""

    def __iter__(self):
        raise NotImplementedError

    def close(self) -> None:
        pass


class BackupCapable:
    """What a provider offers backups (clusters.backups): a streamed physical backup of a running server,
    and a new server placed from such a stream. Providers that cannot say so with ProviderError."""

    def backup_stream(self, instance: str, root_password: str) -> BackupStream:
        raise ProviderError(f"the {getattr(self, 'name', '?')} provider cannot take physical backups")

    def restore_stream(self, spec: ServerSpec, chunks, progress: Progress | None = None) -> CloneResult:
        raise ProviderError(f"the {getattr(self, 'name', '?')} provider cannot restore physical backups")
