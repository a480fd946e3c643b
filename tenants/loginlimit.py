"""Portal login rate limiting: too many failed logins from one client address, or for one account,
within a window refuse further attempts (429) until the oldest failures age out.

Failures are rows in the control-plane database (LoginFailure), so every web process shares the count
and it survives restarts. Limits: `DBPILOT_LOGIN_MAX_FAILURES` (10) per `DBPILOT_LOGIN_WINDOW_SECONDS` (300).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tenants.models import LoginFailure


def max_failures() -> int:
    return int(getattr(settings, "DBPILOT_LOGIN_MAX_FAILURES", 10))


def window() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "DBPILOT_LOGIN_WINDOW_SECONDS", 300)))


def account_digest(email: str) -> str:
    """The account as stored: an HMAC of the normalised email (never what was typed)."""
    normalised = (email or "").strip().lower()
    return hmac.new(
        settings.DBPILOT_TOKEN_PEPPER.encode(), f"login:{normalised}".encode(), hashlib.sha256
    ).hexdigest()


def _seconds_until_below_limit(times: list, now) -> int | None:
    """Given failure times (oldest first) inside the window, how long until fewer than the limit remain."""
    limit = max_failures()
    if len(times) < limit:
        return None
    # Once the (len - limit + 1) oldest failures have aged out, one more attempt is allowed.
    frees_at = times[len(times) - limit] + window()
    return max(1, math.ceil((frees_at - now).total_seconds()))


def retry_after(email: str, client_address: str | None) -> int | None:
    """Seconds the caller must wait before trying again, or None when a login attempt is allowed."""
    now = timezone.now()
    recent = LoginFailure.objects.filter(created_at__gt=now - window())
    waits = [
        _seconds_until_below_limit(
            list(
                recent.filter(account_digest=account_digest(email))
                .order_by("created_at")
                .values_list("created_at", flat=True)
            ),
            now,
        )
    ]
    if client_address:
        waits.append(
            _seconds_until_below_limit(
                list(
                    recent.filter(client_address=client_address)
                    .order_by("created_at")
                    .values_list("created_at", flat=True)
                ),
                now,
            )
        )
    waits = [w for w in waits if w is not None]
    return max(waits) if waits else None


def record_failure(email: str, client_address: str | None) -> None:
    now = timezone.now()
    LoginFailure.objects.filter(created_at__lte=now - window()).delete()
    LoginFailure.objects.create(
        account_digest=account_digest(email), client_address=client_address or None, created_at=now
    )


def clear_account_failures(email: str) -> None:
    """A successful login forgives the account's failures (not the address's)."""
    LoginFailure.objects.filter(Q(account_digest=account_digest(email))).delete()
