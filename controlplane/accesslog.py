"""Access logs never keep a secret: query-string values that look like tokens, keys or passwords are
replaced by `***` before the web server writes its access line.

A token put in a URL (`?token=dbp_...`) is refused by the API, but the web server logs the request line
before anyone looks at it. daphne writes that line through `daphne.access.AccessLogGenerator`; dbpilot's
ASGI module wraps it once at import (`install`), so the documented `daphne controlplane.asgi:application`
keeps its access log, scrubbed.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

SENSITIVE_NAME = re.compile(r"(?i)token|key|secret|passw|auth|session|signature|credential|csrf")
BEARER_LIKE = re.compile(r"dbp_[A-Za-z0-9]+_[A-Za-z0-9_-]+|dbp_[A-Za-z0-9_-]{16,}")


def scrub_uri(uri: str) -> str:
    """The URI with secret-looking query values (and anything shaped like a dbpilot token) masked."""
    path, sep, query = uri.partition("?")
    path = BEARER_LIKE.sub("dbp_***", path)
    if not sep:
        return path
    pairs = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        decoded = unquote_plus(value)
        if (
            (eq and SENSITIVE_NAME.search(unquote_plus(name)))
            or BEARER_LIKE.search(decoded)
            or BEARER_LIKE.search(name)
        ):
            value = "***"
            name = BEARER_LIKE.sub("dbp_***", name)
        pairs.append(f"{name}{eq}{value}")
    return f"{path}?{'&'.join(pairs)}"


def install() -> bool:
    """Wrap daphne's access log writer (when daphne is installed); idempotent. True when installed."""
    try:
        from daphne import access
    except ImportError:
        return False
    original = access.AccessLogGenerator.__call__
    if getattr(original, "_dbpilot_scrubbed", False):
        return True

    def scrubbed(self, protocol, action, details):
        if isinstance(details, dict) and isinstance(details.get("path"), str):
            details = {**details, "path": scrub_uri(details["path"])}
        return original(self, protocol, action, details)

    scrubbed._dbpilot_scrubbed = True
    access.AccessLogGenerator.__call__ = scrubbed
    return True
