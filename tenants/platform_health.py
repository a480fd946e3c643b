"""dbpilot's own health: is its Redis answering, is its database, and the platform findings about it.

While Redis (broker, locks, hot state) is unreachable no tick and no job can start, so dbpilot takes no
automatic action; it says so with the `REDIS_UNREACHABLE` platform finding, opened by whichever process
notices first (every beat checks each second, and `GET /api/v1/platform/health/` checks when asked) and
resolved once Redis answers again.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from controlplane import redisconf
from tenants.models import PlatformFinding

log = logging.getLogger(__name__)

REDIS_UNREACHABLE = "REDIS_UNREACHABLE"
REDIS_MESSAGE = (
    "dbpilot's Redis does not answer ({detail}): no tick or job can start, so dbpilot takes no "
    "automatic action until it is back."
)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redisconf.client(redisconf.parse(url), socket_timeout=1, socket_connect_timeout=1)


def ping_redis() -> tuple[bool, str]:
    try:
        _client(settings.REDIS_URL).ping()
    except redis.RedisError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return True, "answers"


def open_finding(code: str, message: str, severity: str = "critical") -> bool:
    """Open `code` unless it is open already; True when this call opened it."""
    if PlatformFinding.objects.filter(code=code, resolved_at__isnull=True).exists():
        return False
    try:
        with transaction.atomic():
            PlatformFinding.objects.create(
                code=code, severity=severity, message=message[:500], opened_at=timezone.now()
            )
    except IntegrityError:  # another process opened it meanwhile
        return False
    log.warning("platform finding %s opened: %s", code, message)
    return True


def resolve_finding(code: str) -> bool:
    resolved = PlatformFinding.objects.filter(code=code, resolved_at__isnull=True).update(
        resolved_at=timezone.now()
    )
    if resolved:
        log.warning("platform finding %s resolved", code)
    return bool(resolved)


def record_redis(ok: bool, detail: str = "") -> bool:
    """Open or resolve REDIS_UNREACHABLE. False when the database is down too (only logged then)."""
    try:
        if ok:
            resolve_finding(REDIS_UNREACHABLE)
        else:
            open_finding(REDIS_UNREACHABLE, REDIS_MESSAGE.format(detail=detail))
    except DatabaseError as exc:
        log.warning("could not record Redis %s in the database: %s", "recovery" if ok else "outage", exc)
        return False
    return True


def open_findings() -> list[PlatformFinding]:
    return list(PlatformFinding.objects.filter(resolved_at__isnull=True).order_by("opened_at"))


def health() -> dict:
    """What GET /api/v1/platform/health/ answers (the database answered: the request got this far)."""
    redis_ok, redis_detail = ping_redis()
    record_redis(redis_ok, redis_detail)
    connection.ensure_connection()
    target = redisconf.parse(settings.REDIS_URL)
    findings = open_findings()
    return {
        "ok": redis_ok and not findings,
        "automatic_actions": "allowed" if redis_ok else "stopped",
        "redis": {
            "ok": redis_ok,
            "detail": redis_detail,
            "url": redisconf.describe(target),
            "sentinel": target.is_sentinel,
        },
        "database": {"ok": True, "vendor": connection.vendor},
        "findings": [
            {"code": f.code, "severity": f.severity, "message": f.message, "opened_at": f.opened_at}
            for f in findings
        ],
    }
