"""Registering an existing cluster, changing its settings, deleting it.

`register` is the one call behind `POST /api/v1/clusters/`: it picks the team, refuses a caller whose
recent registrations failed too often (429, like logins), validates the payload without touching the
network (names, addresses resolved once and pinned, inside the allowlist, not dbpilot's own services,
and **not owned by any other cluster**, compared by canonical address), checks the quota, and only then
dials the pinned addresses with the caller's credentials; the rows are written in one transaction.

A server another tenant registered is refused with exactly the answer of a server that does not answer,
so neither its existence nor a password can be tested through dbpilot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction

from clusters import hotstate
from clusters.adapters.mysql import UNREACHABLE_MESSAGE, Credentials
from clusters.adapters.probe import probe_servers
from clusters.credentials import connect_options
from clusters.domain import probe as outcomes
from clusters.domain.addresses import (
    AddressError,
    canonical_ip,
    format_address,
    parse_address,
    validate_host,
    validate_port,
)
from clusters.domain.settings import ClusterSettings, SettingsError, merge_settings
from clusters.events import record_event
from clusters.models import Cluster, Server
from clusters.services import adopt
from controlplane.crypto import encrypt_json
from controlplane.netpolicy import NotAllowed, is_own_service, pin_host
from tenants.access import Actor, creation_team
from tenants.models import Team, Tenant
from tenants.quotas import check_quota
from tenants.services import grant_cluster
from tenants.validation import NAME_PATTERN

MAX_SERVERS_PER_CLUSTER = 32


class RegistrationError(ValueError):
    """Invalid registration; `errors` maps a field to a message that says what to fix."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RegistrationForbidden(PermissionError):
    """The caller may not register clusters (no admin role in a team, or a cluster-restricted token)."""


class RegistrationThrottled(RuntimeError):
    """Too many failed registrations by this caller recently; `retry_after` seconds to wait."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed cluster registrations; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class RegistrationRequest:
    name: str
    servers: list[tuple[str, int, str]]  # (host as written, port, pinned canonical address)
    credentials: Credentials
    replication_credentials: Credentials | None
    settings: ClusterSettings
    semi_sync_given: bool = False


def _credentials(raw, field: str, required: bool) -> Credentials | None:
    if raw is None:
        if required:
            raise RegistrationError({field: 'required: {"user": ..., "password": ...}'})
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("user"), str) or not raw.get("user"):
        raise RegistrationError({field: 'must be {"user": "...", "password": "..."} with a non-empty user'})
    password = raw.get("password", "")
    if not isinstance(password, str):
        raise RegistrationError({field: "password must be a string"})
    return Credentials(raw["user"], password)


def parse_request(tenant, data: dict) -> RegistrationRequest:
    """Validate the shape of a registration payload (no network)."""
    if not isinstance(data, dict):
        raise RegistrationError({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        errors["name"] = (
            "required: 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit"
        )
    elif Cluster.objects.filter(tenant=tenant, name=name).exists():
        errors["name"] = f"a cluster named {name!r} already exists in this tenant"
    raw_servers = data.get("servers")
    servers: list[tuple[str, int, str]] = []
    foreign: list[int] = []
    written: dict[int, str] = {}  # index -> the address as normalised for messages
    if not isinstance(raw_servers, list) or not raw_servers:
        errors["servers"] = 'required: a non-empty list of {"host": ..., "port": ...}'
    elif len(raw_servers) > MAX_SERVERS_PER_CLUSTER:
        errors["servers"] = f"at most {MAX_SERVERS_PER_CLUSTER} servers per cluster"
    else:
        for index, raw in enumerate(raw_servers):
            where = f"servers[{index}]"
            if isinstance(raw, str):
                try:
                    parsed = parse_address(raw)
                except AddressError as exc:
                    errors[where] = str(exc)
                    continue
                host, port = parsed.host, parsed.port
            elif isinstance(raw, dict):
                try:
                    host = validate_host(raw.get("host"))
                    port = validate_port(raw.get("port", 3306))
                except AddressError as exc:
                    errors[where] = str(exc)
                    continue
            else:
                errors[where] = 'must be {"host": ..., "port": ...}'
                continue
            address = written[index] = format_address(host, port)
            try:
                ip = pin_host(host)
            except (NotAllowed, AddressError) as exc:
                errors[where] = str(exc)
                continue
            if any((ip, port) == (seen_ip, seen_port) for _, seen_port, seen_ip in servers):
                errors[where] = f"{address} is listed twice (the same address as another entry)"
                continue
            if is_own_service(ip, port):
                errors[where] = f"{address} is not available: it is one of dbpilot's own services"
                continue
            owner = Server.objects.filter(ip=ip, port=port).select_related("cluster").first()
            if owner is not None:
                if owner.cluster.tenant_id == tenant.id:
                    errors[where] = (
                        f"{address} is already registered in another cluster ({owner.cluster.name}); "
                        "a server belongs to one cluster"
                    )
                else:
                    foreign.append(index)
                continue
            servers.append((host, port, ip))
    try:
        credentials = _credentials(data.get("credentials"), "credentials", required=True)
    except RegistrationError as exc:
        errors.update(exc.errors)
        credentials = None
    try:
        replication = _credentials(
            data.get("replication_credentials"), "replication_credentials", required=False
        )
    except RegistrationError as exc:
        errors.update(exc.errors)
        replication = None
    settings_in = data.get("settings", {})
    if "failover_mode" in data and isinstance(settings_in, dict):
        settings_in = {**settings_in, "failover_mode": data["failover_mode"]}
    try:
        settings = merge_settings({}, settings_in if settings_in is not None else {})
        check_address_lists(settings, servers if not errors and not foreign else None)
        check_settings_references(settings)
    except SettingsError as exc:
        errors.update({f"settings.{k}": v for k, v in exc.errors.items()})
        settings = None
    if errors:
        raise RegistrationError(errors)
    if foreign:
        # Another tenant's server: the answer of servers that do not answer, for every listed server, and
        # nothing is dialled.
        raise RegistrationError(
            {
                **{
                    f"servers[{i}]": f"{address}: {UNREACHABLE_MESSAGE}"
                    for i, address in sorted(written.items())
                },
                "credentials": "no server answered with these credentials",
            }
        )
    semi_sync_given = isinstance(settings_in, dict) and "semi_sync" in settings_in
    return RegistrationRequest(name, servers, credentials, replication, settings, semi_sync_given)


def check_address_lists(settings: ClusterSettings, servers: list[tuple[str, int, str]] | None = None) -> None:
    """preferred_servers and ignored_servers: host:port of servers of the cluster."""
    known = {(h, p) for h, p, _ in servers or ()} | {(ip, p) for _, p, ip in servers or ()}
    for key in ("preferred_servers", "ignored_servers"):
        for item in getattr(settings, key):
            try:
                address = parse_address(item)
            except AddressError as exc:
                raise SettingsError({key: str(exc)}) from None
            ip = canonical_ip(address.host)
            if (
                servers is not None
                and (address.host, address.port) not in known
                and (ip, address.port) not in known
            ):
                raise SettingsError({key: f"{item} is not a server of this cluster"})


def check_settings_references(settings: ClusterSettings) -> None:
    """Hooks named in the settings exist in the hooks directory now; tls_ca is PEM content, not a path."""
    from clusters.hooks import HookError, resolve_hook

    for key in ("pre_failover", "post_failover", "fence"):
        name = getattr(settings, key, "")
        if name:
            try:
                resolve_hook(name)
            except HookError:
                raise SettingsError(
                    {
                        key: f"no executable hook named {name!r} in the hooks directory "
                        "(letters, digits, . _ -; ask the platform operator to install it)"
                    }
                ) from None
    ca = settings.tls_ca
    if ca and not (
        ca.lstrip().startswith("-----BEGIN CERTIFICATE-----") and "-----END CERTIFICATE-----" in ca
    ):
        raise SettingsError(
            {"tls_ca": "must be the CA certificate itself, in PEM (-----BEGIN CERTIFICATE----- ...)"}
        )


def check_servers_answer(request: RegistrationRequest) -> dict:
    """Probe every server at its pinned address with the given credentials; at least one must answer.
    Returns the probes by the address as written."""
    options = connect_options(request.settings)
    probes = probe_servers(
        [(format_address(ip, p), request.credentials, options) for _, p, ip in request.servers]
    )
    by_written = {format_address(h, p): probes[format_address(ip, p)] for h, p, ip in request.servers}
    if not any(p.outcome == outcomes.OK for p in by_written.values()):
        errors = {}
        for index, (host, port, _) in enumerate(request.servers):
            errors[f"servers[{index}]"] = (
                f"{format_address(host, port)}: {by_written[format_address(host, port)].error}"
            )
        raise RegistrationError({**errors, "credentials": "no server answered with these credentials"})
    return by_written


# --- failed registrations, per caller (a password cannot be guessed through dbpilot) ---------------------


def _caller_key(actor: Actor) -> str:
    if actor.token is not None:
        who = f"token:{actor.token.key}"
    else:
        who = f"user:{getattr(actor.user, 'pk', '')}:{getattr(actor.user, 'username', '')}"
    return f"dbpilot:registration-failures:{who}"


def registration_retry_after(actor: Actor) -> int | None:
    """Seconds before this caller may try again, or None."""
    limit = int(django_settings.DBPILOT_REGISTRATION_MAX_FAILURES)
    window = int(django_settings.DBPILOT_REGISTRATION_WINDOW_SECONDS)
    now = time.time()
    key = _caller_key(actor)
    client = hotstate.client()
    client.zremrangebyscore(key, 0, now - window)
    times = [score for _, score in client.zrange(key, 0, -1, withscores=True)]
    if len(times) < limit:
        return None
    return max(1, int(times[len(times) - limit] + window - now) + 1)


def _record_failure(actor: Actor) -> None:
    key = _caller_key(actor)
    now = time.time()
    client = hotstate.client()
    client.zadd(key, {f"{now}:{id(key)}": now})
    client.expire(key, int(django_settings.DBPILOT_REGISTRATION_WINDOW_SECONDS) + 1)


def register(actor: Actor, data: dict, *, team_id: int | None = None) -> Cluster:
    """Register a cluster for `actor` (see the module docstring). Raises RegistrationForbidden,
    RegistrationThrottled, RegistrationError (400, naming the fields) or QuotaExceeded."""
    team = creation_team(actor, team_id)
    if team is None:
        raise RegistrationForbidden(
            "Registering a cluster needs the admin role in a team (or an admin-scoped token)."
        )
    wait = registration_retry_after(actor)
    if wait is not None:
        raise RegistrationThrottled(wait)
    try:
        parsed = parse_request(team.tenant, data)
    except RegistrationError as exc:
        if any(k.startswith("servers[") for k in exc.errors):
            _record_failure(actor)  # addresses refused count like failed logins
        raise
    check_quota(team.tenant, add_clusters=1, add_servers=len(parsed.servers))
    try:
        probes = check_servers_answer(parsed)
    except RegistrationError:
        _record_failure(actor)
        raise
    try:
        return register_cluster(team, parsed, probes, requested_by=actor.label())
    except IntegrityError:  # registered by someone else meanwhile: the database keeps one owner per address
        raise RegistrationError(
            {
                **{
                    f"servers[{i}]": f"{format_address(h, p)}: {UNREACHABLE_MESSAGE}"
                    for i, (h, p, _) in enumerate(parsed.servers)
                },
                "credentials": "no server answered with these credentials",
            }
        ) from None


@transaction.atomic
def register_cluster(team: Team, request: RegistrationRequest, probes: dict, *, requested_by: str) -> Cluster:
    # The quota again, with the tenant's row locked: two registrations at once must not both fit into
    # the last free place (the caller's early check only saves probing servers for nothing).
    tenant = Tenant.objects.select_for_update().get(pk=team.tenant_id)
    check_quota(tenant, add_clusters=1, add_servers=len(request.servers))
    settings = request.settings.as_dict()
    # Semi-sync: as found at registration (the primary's master side, or any replica's slave side).
    if not request.semi_sync_given:
        settings["semi_sync"] = any(
            p.outcome == outcomes.OK and (p.semi_sync_master_enabled or p.semi_sync_slave_enabled)
            for p in probes.values()
        )
    cluster = Cluster.objects.create(
        tenant=team.tenant,
        name=request.name,
        origin=Cluster.Origin.REGISTERED,
        settings=settings,
        credentials_encrypted=encrypt_json(
            {"user": request.credentials.user, "password": request.credentials.password}
        ),
        replication_credentials_encrypted=encrypt_json(
            {
                "user": request.replication_credentials.user,
                "password": request.replication_credentials.password,
            }
        )
        if request.replication_credentials
        else "",
    )
    Server.objects.bulk_create(
        [Server(cluster=cluster, host=h, port=p, ip=ip) for h, p, ip in request.servers]
    )
    grant_cluster(team, cluster)
    record_event(
        cluster.id,
        "cluster_registered",
        f"Cluster {cluster.label} registered by {requested_by}",
        data={"servers": [format_address(h, p) for h, p, _ in request.servers]},
    )
    if request.settings.failover_mode == "automatic":  # consent given at registration: adopt, then armed
        adopt.start_adopt(cluster, requested_by=requested_by)
    return cluster


@transaction.atomic
def update_settings(cluster: Cluster, changes: dict, *, requested_by: str) -> tuple[Cluster, dict]:
    """Apply validated setting changes; returns the cluster and {setting: [old, new]} of what changed."""
    merged = merge_settings(cluster.settings, changes)
    check_address_lists(merged, [(s.host, s.port, s.ip) for s in cluster.servers.all()])
    check_settings_references(merged)
    merged = merged.as_dict()
    old = merge_settings(cluster.settings, {}).as_dict()
    diff = {k: [old[k], merged[k]] for k in merged if old.get(k) != merged[k]}
    if diff:
        cluster.settings = merged
        cluster.save(update_fields=["settings", "updated_at"])
        record_event(
            cluster.id,
            "settings_changed",
            f"Settings changed by {requested_by}: {', '.join(sorted(diff))}",
            data={"changes": diff},
        )
        adopt.after_settings_change(  # automatic: adopt; manual: disarm
            cluster, diff, requested_by=requested_by
        )
    return cluster, diff


def change_cluster(cluster: Cluster, changes: dict, *, requested_by: str) -> Cluster:
    """PATCH of a cluster: setting changes (`failover_mode` automatic starts the adopt job). Raises
    SettingsError (naming `settings.<key>`) or clusters.jobs.engine.ActiveJobExists."""
    update_settings(cluster, changes, requested_by=requested_by)
    return cluster


@transaction.atomic
def set_server_maintenance(cluster: Cluster, server_id: int, on: bool, *, requested_by: str) -> Server:
    """Put a server of the cluster in maintenance or take it out (an event when it changes). Raises
    Server.DoesNotExist for a server of another cluster."""
    server = Server.objects.select_for_update().get(cluster=cluster, pk=server_id)
    if server.maintenance != on:
        server.maintenance = on
        server.save(update_fields=["maintenance"])
        record_event(
            cluster.id,
            "maintenance",
            f"{server.address} maintenance {'on' if on else 'off'} by {requested_by}",
            data={"server_id": server.id, "on": on},
        )
    return server


def delete_cluster(cluster: Cluster) -> None:
    cluster_id = cluster.id
    cluster.delete()
    hotstate.forget(cluster_id)
