"""Import from replication-manager: its TOML configuration (a `[Default]` section, one section per cluster,
`include`d files or directories) turned into dbpilot cluster specs and a report.

The mapping uses replication-manager's documented key names. Every key that has no dbpilot equivalent is
listed in the report, never dropped silently. Imported clusters always start with `failover_mode: manual`
(two managers acting on one cluster is the worst outcome); the report names those that asked for
automatic failover, which `--arm` switches on once replication-manager is stopped.

Pure except `read_config`, which reads the files.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dbpilot_cli.spec import SpecError, address_of

DEFAULT_SECTION = "Default"

# replication-manager key -> dbpilot setting, and how the value converts.
SETTINGS = {
    "failover-limit": ("failover_limit", int),
    "failover-time-limit": ("failover_min_interval_seconds", int),
    "failcount": ("failcount", int),
    "failover-falsepositive-ping-counter": ("failcount", int),  # failcount's current name
    "failover-max-slave-delay": ("max_replica_delay_seconds", int),
    "switchover-wait-kill": ("switchover_wait_kill_ms", int),
    "switchover-wait-trx": ("switchover_wait_trx_seconds", int),
    "failover-at-sync": ("candidate_requires_semi_sync", bool),
    "autorejoin": ("autorejoin", bool),
    "failover-readonly-state": ("replicas_read_only", bool),
}
ADDRESS_LISTS = {
    "db-servers-prefered-master": "preferred_servers",
    "db-servers-ignored-hosts": "ignored_servers",
}
HOOKS = {"failover-pre-script": "pre_failover", "failover-post-script": "post_failover"}
HAPROXY_KEYS = {
    "haproxy",
    "haproxy-mode",
    "haproxy-servers",
    "haproxy-api-port",
    "haproxy-api-read-backend",
    "haproxy-api-write-backend",
}
PROXYSQL_KEYS = {
    "proxysql",
    "proxysql-servers",
    "proxysql-admin-port",
    "proxysql-user",
    "proxysql-password",
    "proxysql-writer-hostgroup",
    "proxysql-reader-hostgroup",
}
CORE_KEYS = {
    "db-servers-hosts",
    "db-servers-credential",
    "replication-credential",
    "failover-mode",
    "include",
}
MAPPED = set(SETTINGS) | set(ADDRESS_LISTS) | set(HOOKS) | HAPROXY_KEYS | PROXYSQL_KEYS | CORE_KEYS
SECRET_KEY = re.compile(r"credential|password|secret|key|token|pass$")
MASK = "(secret from the replication-manager configuration)"


@dataclass
class ImportedCluster:
    name: str
    spec: dict  # a dbpilot spec, secrets as values (what `apply` sends)
    asked_automatic: bool
    unmapped: list[str] = field(default_factory=list)  # "key = value (from [section])"
    notes: list[str] = field(default_factory=list)

    def printable_spec(self) -> dict:
        """The spec with every secret masked (what --dry-run prints)."""
        spec = {k: v for k, v in self.spec.items()}
        for key in ("credentials", "replication_credentials"):
            if spec.get(key):
                spec[key] = {"user": spec[key]["user"], "password": MASK}
        spec["routes"] = [
            {k: (MASK if k in ("admin_password", "password", "api_key") else v) for k, v in r.items()}
            for r in spec.get("routes") or []
        ]
        if not spec["routes"]:
            del spec["routes"]
        return spec


@dataclass
class ImportReport:
    clusters: list[ImportedCluster]
    unmapped_default: list[str]
    files: list[str]

    @property
    def asked_automatic(self) -> list[str]:
        return [c.name for c in self.clusters if c.asked_automatic]


# --- reading (I/O) ---------------------------------------------------------------------------------------


def read_config(path: str | Path) -> tuple[dict[str, dict], list[str]]:
    """The configuration's sections after following `include` (a file or a directory of *.toml, relative to
    the including file), and the files read. A later file's keys override an earlier one's."""
    sections: dict[str, dict] = {}
    files: list[str] = []

    def read(file: Path, depth: int) -> None:
        if depth > 8:
            raise SpecError(f"{file}: includes nest too deeply (a loop?)")
        try:
            data = tomllib.loads(file.read_text())
        except OSError as exc:
            raise SpecError(f"cannot read {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{file}: not valid TOML: {exc}") from None
        files.append(str(file))
        top_level = {k: v for k, v in data.items() if not isinstance(v, dict)}
        if top_level:  # keys before any section header belong to [Default]
            sections.setdefault(DEFAULT_SECTION, {}).update(top_level)
        for name, values in data.items():
            if isinstance(values, dict):
                sections.setdefault(name, {}).update(values)
        include = (data.get(DEFAULT_SECTION) or {}).get("include") or top_level.get("include")
        if include:
            target = Path(include) if Path(include).is_absolute() else file.parent / include
            if target.is_dir():
                for child in sorted(target.glob("*.toml")):
                    read(child, depth + 1)
            elif target.exists():
                read(target, depth + 1)
            else:
                raise SpecError(f"{file}: include {include!r}: no such file or directory")

    read(Path(path), 0)
    return sections, files


# --- mapping (pure) --------------------------------------------------------------------------------------


def _split_list(value) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _credential(value: str, key: str) -> dict:
    text = str(value)
    if ":" not in text:
        raise SpecError(f"{key}: replication-manager writes it user:password")
    user, password = text.split(":", 1)
    return {"user": user, "password": password}


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "on", "yes")


def _hook_name(path: str) -> str:
    return Path(str(path)).name


def map_cluster(
    name: str, values: dict, origin: dict[str, str], hooks_available: set[str] | None
) -> ImportedCluster:
    """One cluster's merged keys ([Default] then its own section) -> an ImportedCluster.
    `origin[key]` says which section a key came from; `hooks_available` (None: not checked) are the scripts
    in dbpilot's hooks directory."""
    unmapped: list[str] = []
    notes: list[str] = []

    def skip(key: str, why: str = "") -> None:
        shown = "(secret, not shown)" if SECRET_KEY.search(key) else repr(values[key])
        unmapped.append(f"{key} = {shown} (from [{origin[key]}]){': ' + why if why else ''}")

    if "db-servers-hosts" not in values:
        raise SpecError(f"[{name}]: db-servers-hosts is missing")
    if "db-servers-credential" not in values:
        raise SpecError(f"[{name}]: db-servers-credential is missing")
    servers = [address_of(a) for a in _split_list(values["db-servers-hosts"])]
    spec: dict = {
        "name": name,
        "servers": servers,
        "credentials": _credential(values["db-servers-credential"], "db-servers-credential"),
    }
    if "replication-credential" in values:
        spec["replication_credentials"] = _credential(
            values["replication-credential"], "replication-credential"
        )
    mode = str(values.get("failover-mode", "manual")).strip().lower()
    asked_automatic = mode in ("automatic", "auto")
    if mode not in ("manual", "automatic", "auto"):
        notes.append(f"failover-mode {mode!r} is not one dbpilot knows: registered manual")
    settings: dict = {}
    for key, (setting, convert) in SETTINGS.items():
        if key in values:
            try:
                settings[setting] = _bool(values[key]) if convert is bool else convert(values[key])
            except (TypeError, ValueError):
                skip(key, "not a number")
    for key, setting in ADDRESS_LISTS.items():
        if key in values:
            listed = [address_of(a) for a in _split_list(values[key])]
            settings[setting] = listed
    for key, setting in HOOKS.items():
        if key in values and str(values[key]).strip():
            hook = _hook_name(values[key])
            if hooks_available is not None and hook not in hooks_available:
                skip(
                    key,
                    f"no script {hook!r} in dbpilot's hooks directory (install it there, then set {setting})",
                )
            else:
                settings[setting] = hook
                notes.append(
                    f"{key} -> {setting}: {hook!r} (dbpilot runs hooks with its own arguments: docs/hooks.md)"
                )
    routes: list[dict] = []
    if _bool(values.get("haproxy", False)):
        haproxy_mode = str(values.get("haproxy-mode", "runtimeapi"))
        if haproxy_mode != "runtimeapi":
            notes.append(
                f"haproxy-mode {haproxy_mode!r}: dbpilot drives HAProxy through its runtime API; the route "
                "assumes the runtime API listens on haproxy-api-port"
            )
        port = int(values.get("haproxy-api-port", 1999))
        hosts = _split_list(values.get("haproxy-servers", "127.0.0.1"))
        for number, host in enumerate(hosts, 1):
            routes.append(
                {
                    "name": "haproxy" if len(hosts) == 1 else f"haproxy-{number}",
                    "kind": "haproxy",
                    "runtime_api": f"tcp://{host}:{port}",
                    "write_backend": str(values.get("haproxy-api-write-backend", "service_write")),
                    "read_backend": str(values.get("haproxy-api-read-backend", "service_read")),
                }
            )
    elif "haproxy" in values:
        notes.append("haproxy = false: no HAProxy route")
    if _bool(values.get("proxysql", False)):
        hosts = _split_list(values.get("proxysql-servers", "127.0.0.1"))
        for number, host in enumerate(hosts, 1):
            routes.append(
                {
                    "name": "proxysql" if len(hosts) == 1 else f"proxysql-{number}",
                    "kind": "proxysql",
                    "admin_address": f"{host}:{int(values.get('proxysql-admin-port', 6032))}",
                    "admin_user": str(values.get("proxysql-user", "admin")),
                    "admin_password": str(values.get("proxysql-password", "admin")),
                    "writer_hostgroup": int(values.get("proxysql-writer-hostgroup", 0)),
                    "reader_hostgroup": int(values.get("proxysql-reader-hostgroup", 1)),
                }
            )
    elif "proxysql" in values:
        notes.append("proxysql = false: no ProxySQL route")
    for key in sorted(values):
        if key not in MAPPED:
            skip(key)
    # The ProxySQL/HAProxy keys of a proxy that is switched off are not mapped either: list them.
    if not _bool(values.get("haproxy", False)):
        for key in sorted(HAPROXY_KEYS - {"haproxy"}):
            if key in values:
                skip(key, "haproxy is off")
    if not _bool(values.get("proxysql", False)):
        for key in sorted(PROXYSQL_KEYS - {"proxysql"}):
            if key in values:
                skip(key, "proxysql is off")
    if settings:
        spec["settings"] = settings
    if routes:
        spec["routes"] = routes
    return ImportedCluster(
        name=name, spec=spec, asked_automatic=asked_automatic, unmapped=unmapped, notes=notes
    )


def import_config(
    sections: dict[str, dict], files: list[str], hooks_available: set[str] | None = None
) -> ImportReport:
    """Every cluster section with [Default] underneath it."""
    default = sections.get(DEFAULT_SECTION, {})
    clusters = []
    for name, own in sections.items():
        if name == DEFAULT_SECTION:
            continue
        values = {**default, **own}
        origin = {**{k: DEFAULT_SECTION for k in default}, **{k: name for k in own}}
        clusters.append(map_cluster(name, values, origin, hooks_available))
    if not clusters:
        raise SpecError("no cluster section found (replication-manager writes one [section] per cluster)")
    # [Default] keys no cluster can use (e.g. http-port) are reported once, not once per cluster.
    suffix = f"(from [{DEFAULT_SECTION}])"
    unmapped_default = sorted(
        {line.removesuffix(" " + suffix) for c in clusters for line in c.unmapped if line.endswith(suffix)}
    )
    for c in clusters:
        c.unmapped = [line for line in c.unmapped if not line.endswith(suffix)]
    return ImportReport(clusters=clusters, unmapped_default=unmapped_default, files=files)


def report_lines(report: ImportReport) -> list[str]:
    lines = [f"read {', '.join(report.files)}"]
    for c in report.clusters:
        lines.append(
            f"cluster {c.name}: {len(c.spec['servers'])} servers, {len(c.spec.get('settings') or {})} settings, "
            f"{len(c.spec.get('routes') or [])} routes; registered with failover_mode manual"
            + (
                " (replication-manager had failover-mode automatic: run with --arm once it is stopped)"
                if c.asked_automatic
                else ""
            )
        )
        for note in c.notes:
            lines.append(f"  note: {note}")
        for line in c.unmapped:
            lines.append(f"  not mapped: {line}")
    for line in report.unmapped_default:
        lines.append(f"not mapped ([Default]): {line}")
    if report.asked_automatic:
        lines.append(f"asked for automatic failover: {', '.join(report.asked_automatic)}")
    return lines
