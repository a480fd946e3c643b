"""What the control plane and a host's dbpilot agent exchange (clusters/agent/ is the agent's side,
clusters/providers/hosts_provider.py the control plane's).

One Celery task, `AGENT_TASK`, on the host's own queue `host.<name>`, carries `(host name, sealed request)`;
the request `{"host", "op", "args"}` and the answer `{"ok": value}` or `{"error", "permanent"}` are sealed
with the host's own key (Fernet: encrypted and authenticated). So the secrets an operation needs (a root
password, the statements that create accounts) travel encrypted for that host only: another host reading
the broker sees ciphertext, cannot forge an operation for a host it does not hold the key of, and cannot
forge an answer the control plane would accept. Requests older than `REQUEST_TTL_SECONDS` are refused.
No Django here: the agent imports this module.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

AGENT_TASK = "clusters.agent.tasks.run_operation"
REQUEST_TTL_SECONDS = 15 * 60
REPLY_TTL_SECONDS = 6 * 3600  # a clone may run for hours; its answer is read when it ends


class SealError(ValueError):
    """A sealed message that this key did not seal, was altered, or is too old."""


def queue_of(host: str) -> str:
    return f"host.{host}"


def new_key() -> str:
    return Fernet.generate_key().decode()


def seal(key: str, value: Any) -> str:
    return Fernet(key.encode()).encrypt(json.dumps(value).encode()).decode()


def unseal(key: str, token: str, ttl: int) -> Any:
    try:
        return json.loads(Fernet(key.encode()).decrypt(token.encode(), ttl=ttl))
    except (InvalidToken, ValueError, TypeError):
        raise SealError("not sealed with this host's key, altered, or expired") from None
