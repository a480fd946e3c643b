"""Audit entries for API requests: who, tenant, action, target, parameters without secrets, result."""
from __future__ import annotations

from tenants.access import actor_from_request

SECRET_KEY_PARTS = ("password", "secret", "token", "api_key", "key", "credential")


def scrub(value):
    """Drop every value whose key looks like a secret, at any depth."""
    if isinstance(value, dict):
        return {
            k: ("***" if any(part in str(k).lower() for part in SECRET_KEY_PARTS) else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def audit_request(request, view, response) -> None:
    from tenants.services import audit

    actor = actor_from_request(request)
    if not actor.is_authenticated:
        return
    tenant = None
    target = ""
    obj = getattr(view, "audit_target", None)
    if obj is not None:
        tenant = getattr(obj, "tenant", None) or getattr(getattr(obj, "cluster", None), "tenant", None)
        target = f"{obj.__class__.__name__.lower()}:{obj.pk}"
    elif view.kwargs.get(view.lookup_field or "pk"):
        target = f"{getattr(view, 'basename', '?')}:{view.kwargs.get(view.lookup_field or 'pk')}"
    try:
        data = scrub(dict(request.data)) if hasattr(request.data, "keys") else {}
    except Exception:  # unparsable body: nothing to record
        data = {}
    audit(
        actor=actor,
        action=f"{getattr(view, 'basename', view.__class__.__name__)}.{getattr(view, 'action', request.method.lower())}",
        tenant=tenant,
        target=target,
        parameters=data,
        result=str(response.status_code),
        client_address=request.META.get("REMOTE_ADDR"),
    )
