"""Team API token format and hashing: `dbp_<key>_<secret>`, the secret stored only as a peppered HMAC."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.conf import settings

TOKEN_PATTERN = re.compile(r"\Adbp_([a-z0-9]{12})_([A-Za-z0-9_-]{32,64})\Z")


def secret_hmac(secret: str) -> str:
    return hmac.new(settings.DBPILOT_TOKEN_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def new_token() -> tuple[str, str, str]:
    """Return (key, secret, bearer value)."""
    key = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key, secret, f"dbp_{key}_{secret}"


def parse(bearer: str) -> tuple[str, str] | None:
    match = TOKEN_PATTERN.fullmatch(bearer.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_hmac: str) -> bool:
    return hmac.compare_digest(secret_hmac(secret), stored_hmac)
