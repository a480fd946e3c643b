"""Registering an existing cluster, changing its settings, deleting it.

`check_registration` validates everything (names, addresses inside the allowlist, credentials that
work on at least one server) and raises RegistrationError naming what to fix; `register_cluster`
writes the rows in one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from clusters import hotstate
from clusters.adapters.mysql import Credentials
from clusters.adapters.probe import probe_servers
from clusters.credentials import connect_options
from clusters.domain import probe as outcomes
from clusters.domain.addresses import (
    AddressError,
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
from controlplane.netpolicy import NotAllowed, pin_host
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


@dataclass(frozen=True)
class RegistrationRequest:
    name: str
    servers: list[tuple[str, int]]
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
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors["name"] = "required: 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit"
    elif Cluster.objects.filter(tenant=tenant, name=name).exists():
        errors["name"] = f"a cluster named {name!r} already exists in this tenant"
    raw_servers = data.get("servers")
    servers: list[tuple[str, int]] = []
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
            address = format_address(host, port)
            if (host, port) in servers:
                errors[where] = f"{address} is listed twice"
                continue
            try:
                pin_host(host)
            except (NotAllowed, AddressError) as exc:
                errors[where] = str(exc)
                continue
            owner = Server.objects.filter(host=host, port=port).select_related("cluster").first()
            if owner is not None:
                # Another tenant's cluster is not named: only that a server belongs to one cluster.
                named = f" ({owner.cluster.name})" if owner.cluster.tenant_id == tenant.id else ""
                errors[where] = f"{address} is already registered in another cluster{named}; a server belongs to one cluster"
                continue
            servers.append((host, port))
    try:
        credentials = _credentials(data.get("credentials"), "credentials", required=True)
    except RegistrationError as exc:
        errors.update(exc.errors)
        credentials = None
    try:
        replication = _credentials(data.get("replication_credentials"), "replication_credentials", required=False)
    except RegistrationError as exc:
        errors.update(exc.errors)
        replication = None
    settings_in = data.get("settings", {})
    if "failover_mode" in data and isinstance(settings_in, dict):
        settings_in = {**settings_in, "failover_mode": data["failover_mode"]}
    try:
        settings = merge_settings({}, settings_in if settings_in is not None else {})
        check_address_lists(settings)
    except SettingsError as exc:
        errors.update({f"settings.{k}": v for k, v in exc.errors.items()})
        settings = None
    if errors:
        raise RegistrationError(errors)
    semi_sync_given = isinstance(settings_in, dict) and "semi_sync" in settings_in
    return RegistrationRequest(name, servers, credentials, replication, settings, semi_sync_given)


def check_address_lists(settings: ClusterSettings) -> None:
    for key in ("preferred_servers", "ignored_servers"):
        for item in getattr(settings, key):
            try:
                parse_address(item)
            except AddressError as exc:
                raise SettingsError({key: str(exc)}) from None


def check_servers_answer(request: RegistrationRequest) -> dict:
    """Probe every server with the given credentials; at least one must answer. Returns the probes."""
    options = connect_options(request.settings)
    probes = probe_servers([(format_address(h, p), request.credentials, options) for h, p in request.servers])
    if not any(p.outcome == outcomes.OK for p in probes.values()):
        errors = {}
        for index, (host, port) in enumerate(request.servers):
            probe = probes[format_address(host, port)]
            errors[f"servers[{index}]"] = f"{format_address(host, port)}: {probe.error}"
        raise RegistrationError({**errors, "credentials": "no server answered with these credentials"})
    return probes


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
            p.outcome == outcomes.OK and (p.semi_sync_master_enabled or p.semi_sync_slave_enabled) for p in probes.values()
        )
    cluster = Cluster.objects.create(
        tenant=team.tenant,
        name=request.name,
        origin=Cluster.Origin.REGISTERED,
        settings=settings,
        credentials_encrypted=encrypt_json({"user": request.credentials.user, "password": request.credentials.password}),
        replication_credentials_encrypted=encrypt_json(
            {"user": request.replication_credentials.user, "password": request.replication_credentials.password}
        ) if request.replication_credentials else "",
    )
    Server.objects.bulk_create([Server(cluster=cluster, host=h, port=p) for h, p in request.servers])
    grant_cluster(team, cluster)
    record_event(cluster.id, "cluster_registered", f"Cluster {cluster.label} registered by {requested_by}",
                 data={"servers": [format_address(h, p) for h, p in request.servers]})
    if request.settings.failover_mode == "automatic":  # consent given at registration: adopt, then armed
        adopt.start_adopt(cluster, requested_by=requested_by)
    return cluster


@transaction.atomic
def update_settings(cluster: Cluster, changes: dict, *, requested_by: str) -> tuple[Cluster, dict]:
    """Apply validated setting changes; returns the cluster and {setting: [old, new]} of what changed."""
    merged = merge_settings(cluster.settings, changes)
    check_address_lists(merged)
    merged = merged.as_dict()
    old = merge_settings(cluster.settings, {}).as_dict()
    diff = {k: [old[k], merged[k]] for k in merged if old.get(k) != merged[k]}
    if diff:
        cluster.settings = merged
        cluster.save(update_fields=["settings", "updated_at"])
        record_event(cluster.id, "settings_changed", f"Settings changed by {requested_by}: {', '.join(sorted(diff))}",
                     data={"changes": diff})
        adopt.after_settings_change(  # automatic: adopt; manual: disarm
            cluster, diff, requested_by=requested_by)
    return cluster, diff


def delete_cluster(cluster: Cluster) -> None:
    cluster_id = cluster.id
    cluster.delete()
    hotstate.forget(cluster_id)
