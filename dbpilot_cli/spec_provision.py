"""Provision blocks of a spec: a cluster dbpilot provisions, described by its `provision` block instead of
its servers. Parsed here, planned against the cluster object's `provision` (the replica count scales, the
parameter group is applied, what is fixed at provisioning is reported), and exported back. Pure."""

from __future__ import annotations

from dbpilot_cli.spec_values import (
    Change,
    Spec,
    SpecError,
    address_of,
    env_name,
    pairs,
    parse_credentials,
    show_value,
)

PROVISION_KEYS = ("provider", "replicas", "semi_sync", "size", "parameter_group", "parameters", "master_user")
MAX_REPLICAS = 8
# Fixed when the cluster is provisioned: a spec that changes them is told so, never silently ignored.
FIXED_AT_PROVISION = ("provider", "semi_sync", "memory_mb", "parameters")


def parse_provision(block) -> dict:
    """A provision block, checked for what the spec itself can tell (the API checks the rest: the
    parameters' allowlist, the group's existence, the quota) and filled with the API's defaults."""
    if not isinstance(block, dict):
        raise SpecError("provision: a mapping (provider, replicas, size, parameter_group, master_user, ...)")
    unknown = sorted(set(block) - set(PROVISION_KEYS))
    if unknown:
        raise SpecError(f"provision: unknown keys {', '.join(unknown)}; use {', '.join(PROVISION_KEYS)}")
    replicas = block.get("replicas", 2)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise SpecError(f"provision.replicas: a whole number from 0 to {MAX_REPLICAS}")
    semi_sync = block.get("semi_sync")  # unsaid: the API's default (on with replicas), never compared
    if semi_sync is not None and not isinstance(semi_sync, bool):
        raise SpecError("provision.semi_sync: true or false")
    size = block.get("size") or {}
    if not isinstance(size, dict) or set(size) - {"memory_mb"}:
        raise SpecError("provision.size: {memory_mb: N}")
    if "parameter_group" in block and "parameters" in block:
        raise SpecError("provision: give parameter_group or parameters, not both")
    parameters = block.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SpecError("provision.parameters: a mapping of my.cnf setting names to values")
    group = block.get("parameter_group")
    if group is not None and not isinstance(group, str):
        raise SpecError("provision.parameter_group: a group's name")
    master_user = parse_credentials(block.get("master_user"), "provision.master_user")
    provision: dict = {
        "provider": str(block.get("provider", "local")),
        "replicas": replicas,
        "size": {"memory_mb": size.get("memory_mb", 256)},
        # str(): the API stores every parameter as text (500 and "500" are one value)
        "parameters": {str(k): str(v) for k, v in parameters.items()},
    }
    if semi_sync is not None:
        provision["semi_sync"] = semi_sync
    if "parameter_group" in block:
        provision["parameter_group"] = group
    if master_user:
        provision["master_user"] = master_user
    return provision


def provision_creation(spec: Spec) -> Change:
    block = dict(spec.provision or {})
    if not block.get("parameters"):
        block.pop("parameters", None)
    if block.get("parameter_group") is None:
        block.pop("parameter_group", None)
    settings = dict(spec.settings)
    if spec.failover_mode:
        settings["failover_mode"] = spec.failover_mode
    if spec.paused is not None:
        settings["paused"] = spec.paused
    body = {"name": spec.name, "provision": block, **({"settings": settings} if settings else {})}
    detail = (
        f"provision 1 primary + {block['replicas']} replica(s) with {block['provider']}, "
        f"{block['size']['memory_mb']} MB each"
        + (f", parameter group {block['parameter_group']}" if block.get("parameter_group") else "")
        + (", parameters " + pairs(block["parameters"]) if block.get("parameters") else "")
    )
    if settings:
        detail += ", settings " + pairs(settings)
    return Change("create", "cluster", spec.name, detail, body)


def provision_changes(spec: Spec, cluster: dict) -> list[Change]:
    """A provisioned cluster against the spec's provision block: the replica count (scale), the parameter
    group (applied); what is fixed at provisioning is reported when it differs."""
    wanted = spec.provision or {}
    have = cluster.get("provision")
    if cluster.get("origin") != "provisioned" or have is None:
        return [
            Change(
                "unsupported",
                "provision",
                spec.name,
                "is a registered cluster: a provision block is for clusters dbpilot provisions "
                "(write `servers` and `credentials` instead)",
            )
        ]
    changes: list[Change] = []
    current = {
        "provider": have.get("provider"),
        "semi_sync": have.get("semi_sync"),
        "memory_mb": (have.get("size") or {}).get("memory_mb"),
        "parameters": {k: str(v) for k, v in (have.get("parameters") or {}).items()},
    }
    asked = {
        "provider": wanted["provider"],
        "semi_sync": wanted.get("semi_sync", current["semi_sync"]),
        "memory_mb": wanted["size"]["memory_mb"],
        "parameters": wanted["parameters"],
    }
    for key in FIXED_AT_PROVISION:
        if current[key] != asked[key]:
            changes.append(
                Change(
                    "unsupported",
                    "provision",
                    key,
                    f"{show_value(current[key])} -> {show_value(asked[key])}: fixed when the cluster was provisioned "
                    "(provision a new cluster to change it)",
                )
            )
    group, new_group = have.get("parameter_group"), wanted.get("parameter_group")
    if "parameter_group" not in wanted and group is not None:
        if spec.prune:
            changes.append(
                Change(
                    "update",
                    "parameter_group",
                    spec.name,
                    f"{group} -> (none) (prune: true)",
                    {"parameter_group": None},
                )
            )
        else:
            changes.append(
                Change("keep", "parameter_group", group, "not in the spec (prune: true would detach it)")
            )
    elif "parameter_group" in wanted and group != new_group:
        changes.append(
            Change(
                "update",
                "parameter_group",
                spec.name,
                f"{show_value(group)} -> {show_value(new_group)} (changed settings go live or by a rolling restart)",
                {"parameter_group": new_group},
            )
        )
    servers = cluster.get("servers") or []
    job = cluster.get("job") or {}
    if not servers:
        changes.append(
            Change(
                "keep",
                "replicas",
                spec.name,
                f"no servers yet (job #{job.get('id')} {job.get('kind')} {job.get('state')}): "
                "the count is compared once the cluster has its servers",
            )
        )
        return changes
    replicas = [s for s in servers if address_of(s) != cluster.get("primary")]
    count = len(servers) - 1
    if wanted["replicas"] > count:
        more = wanted["replicas"] - count
        changes.append(
            Change(
                "update",
                "replicas",
                spec.name,
                f"{count} -> {wanted['replicas']} (add {more})",
                {"add": more},
            )
        )
    elif wanted["replicas"] < count:
        # The newest replicas go first: the oldest have served longest and are what clones are made from.
        going = sorted(replicas, key=lambda s: s["id"], reverse=True)[: count - wanted["replicas"]]
        changes.append(
            Change(
                "update",
                "replicas",
                spec.name,
                f"{count} -> {wanted['replicas']} (remove {', '.join(address_of(s) for s in going)} "
                "with their data)",
                {"remove": [s["id"] for s in going]},
            )
        )
    return changes


def export_provision(cluster: dict) -> dict:
    """A provisioned cluster's provision block: its replica count as it is now; the master user as
    references (the API never returns it; it is used only when the cluster is created again)."""
    have = cluster["provision"]
    block: dict = {
        "provider": have.get("provider"),
        "replicas": max(0, len(cluster.get("servers") or []) - 1),
        "semi_sync": have.get("semi_sync"),
        "size": {"memory_mb": (have.get("size") or {}).get("memory_mb")},
    }
    if have.get("parameter_group"):
        block["parameter_group"] = have["parameter_group"]
    elif have.get("parameters"):
        block["parameters"] = dict(sorted(have["parameters"].items()))
    block["master_user"] = {
        "user": f"env:{env_name(cluster['name'], 'master_user')}",
        "password": f"env:{env_name(cluster['name'], 'master_password')}",
    }
    return block
