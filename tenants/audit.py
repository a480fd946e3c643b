"""The audit log: who (user or token), tenant, action, target, parameters without secrets, result, time,
client address. Written for every mutating API request (by the API base classes in
controlplane/api/viewsets.py), every login, and every job (`audit_job`, called by the job services).

Entries are append-only (tenants.models.AuditEntry refuses changes) and never hold a secret: parameters
go through `scrub`, which blanks values under secret-looking keys and bearer tokens or URL passwords
anywhere in a string.
"""

from __future__ import annotations

import json
import logging
import re

from tenants.access import Actor, actor_from_request
from tenants.models import AuditEntry, Tenant

log = logging.getLogger(__name__)

REDACTED = "***"
# Keys that name a secret (their value is never recorded): any key containing password, secret,
# credential, api key, private; or ending in token, key, auth (`token`, `health_key`, not `token_scope`).
_SECRET_KEY = re.compile(
    r"(password|passwd|secret|credential|api_?key|private)|(^|[_-])(token|key|auth|authorization)s?$",
    re.IGNORECASE,
)
# Secrets that can hide in any string: team bearer tokens, and passwords in URLs (scheme://user:pass@host).
_BEARER = re.compile(r"dbp_[a-z0-9]{12}_[A-Za-z0-9_-]+")
# Anchored on the literal "://" with bounded repetitions, so long input stays cheap (no backtracking blow-up).
_URL_PASSWORD = re.compile(r"://(?P<user>[^/\s:@]{0,256}):[^@\s/]{0,1024}@")
MAX_PARAMETERS_CHARS = 8000


def is_secret_key(key) -> bool:
    return bool(_SECRET_KEY.search(str(key)))


def _scrub_string(value: str) -> str:
    value = _BEARER.sub("dbp_" + REDACTED, value)
    return _URL_PASSWORD.sub(lambda m: f"://{m.group('user')}:{REDACTED}@", value)


def scrub(value):
    """A copy of `value` without secrets, at any depth."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _scrub_string(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _scrub_string(str(value))


def _bounded(parameters: dict) -> dict:
    """Keep entries small: an oversized body is recorded by its keys only."""
    if len(json.dumps(parameters, default=str)) <= MAX_PARAMETERS_CHARS:
        return parameters
    return {"truncated": True, "keys": [str(k)[:100] for k in list(parameters)[:50]]}


def _actor_tenant(actor: Actor) -> Tenant | None:
    """The tenant an action belongs to when its target does not say: the token's, or the user's only one."""
    if actor.token is not None:
        return actor.token.team.tenant
    tenant_ids = actor.tenant_ids() if actor.is_authenticated else set()
    if len(tenant_ids) == 1:
        return Tenant.objects.filter(id__in=tenant_ids).first()
    return None


def tenant_of(obj) -> Tenant | None:
    """The tenant an object belongs to (itself, its .tenant, its team's or its cluster's)."""
    if obj is None:
        return None
    if isinstance(obj, Tenant):
        return obj
    for path in ("tenant", "team.tenant", "cluster.tenant"):
        current = obj
        for part in path.split("."):
            current = getattr(current, part, None)
            if current is None:
                break
        if isinstance(current, Tenant):
            return current
    return None


def _storable(value):
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def audit(
    *,
    actor,
    action: str,
    tenant=None,
    target: str = "",
    parameters=None,
    result: str = "",
    client_address: str | None = None,
) -> AuditEntry:
    """Append one audit entry. `actor` is an Actor or a label (e.g. "system:monitoring"); parameters are
    scrubbed here as well, so a careless caller still records no secret."""
    user = getattr(actor, "user", None)
    label = actor.label() if hasattr(actor, "label") else str(actor)
    # A refused request may carry a NUL character, which PostgreSQL cannot store in text or JSON: record
    # it escaped, so the audit row (and the 400 it accompanies) is written on every database.
    target, result, parameters = _storable(target), _storable(result), _storable(parameters)
    if tenant is None and isinstance(actor, Actor):
        tenant = _actor_tenant(actor)
    return AuditEntry.objects.create(
        tenant=tenant,
        actor_user=user if getattr(user, "pk", None) else None,
        actor=label[:200],
        action=action[:100],
        target=target[:200],
        parameters=_bounded(scrub(parameters or {})),
        result=str(result)[:200],
        client_address=client_address or None,
    )


def _request_parameters(request) -> dict:
    try:
        data = request.data
    except Exception:  # an unparsable body: the response says why; nothing to record
        return {}
    if hasattr(data, "dict"):  # a QueryDict (form or multipart body)
        data = data.dict()
    if isinstance(data, dict):
        return dict(data)
    if isinstance(data, list):
        return {"items": data}
    return {}


def target_label(obj) -> str:
    """`<kind>:<id>`: the model's `audit_kind` when it has one (ApiToken: "token"), else its model name."""
    return f"{getattr(obj, 'audit_kind', obj._meta.model_name)}:{obj.pk}"


def audit_request(request, view, response) -> AuditEntry | None:
    """Audit one mutating API request (any outcome) by an authenticated caller.

    The view may set `audit_target` (the object acted on) and `audit_action`; otherwise the action is
    `<basename>.<action>` and the target comes from the URL.
    """
    actor = actor_from_request(request)
    if not actor.is_authenticated:
        return None  # refused before anyone was identified: nothing to attribute
    obj = getattr(view, "audit_target", None)
    snapshot = getattr(view, "audit_target_snapshot", None)
    target = ""
    parameters = _request_parameters(request)
    if snapshot is not None:
        target = snapshot[0]
        if snapshot[1] and getattr(obj, "pk", None) is None:  # deleted by the request: keep its name
            parameters = {**parameters, "target_name": snapshot[1]}
    elif obj is not None:
        target = target_label(obj)
    else:
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None) or "pk"
        if view.kwargs.get(lookup) is not None:
            target = (
                f"{getattr(view, 'basename', None) or view.__class__.__name__.lower()}:{view.kwargs[lookup]}"
            )
    basename = getattr(view, "basename", None) or view.__class__.__name__
    action = (
        getattr(view, "audit_action", None)
        or f"{basename}.{getattr(view, 'action', None) or request.method.lower()}"
    )
    try:
        return audit(
            actor=actor,
            action=action,
            tenant=tenant_of(obj),
            target=target,
            parameters=parameters,
            result=str(response.status_code),
            client_address=request.META.get("REMOTE_ADDR"),
        )
    except Exception:  # the action itself already happened; never turn its answer into a 500
        log.exception("could not write the audit entry for %s %s", request.method, request.path)
        return None


def audit_job(
    job, actor_label: str, *, action: str | None = None, client_address: str | None = None
) -> AuditEntry:
    """Audit a job: call it when a job is created (or refused) and when it ends.

    `actor_label` names who started it: the requesting actor's label for a requested job
    (`actor.label()`), or e.g. "system:monitoring" for a failover dbpilot started by itself.
    The entry's result is the job's state; its parameters are the job's params, scrubbed.
    """
    cluster = job.cluster
    return audit(
        actor=actor_label,
        action=action or f"job.{job.kind}",
        tenant=cluster.tenant,
        target=f"job:{job.pk}",
        parameters={"cluster": cluster.pk, "cluster_name": cluster.name, "params": job.params or {}},
        result=job.state,
        client_address=client_address,
    )
