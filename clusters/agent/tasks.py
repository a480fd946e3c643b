"""The agent's one Celery task: unseal a request with this host's key, run the named operation, and
answer sealed. Registered in every process of the platform (the control plane sends it by name to the
queue host.<name>); only an agent, with DBPILOT_AGENT_HOST and its key, can run it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import shared_task

from clusters.agent.operations import OPERATIONS, AgentContext
from clusters.providers.agent_protocol import AGENT_TASK, REQUEST_TTL_SECONDS, SealError, seal, unseal
from clusters.providers.base import ProviderError
from clusters.providers.errors import SandboxError

log = logging.getLogger(__name__)


def agent_key() -> str:
    path = os.environ.get("DBPILOT_AGENT_KEY_FILE")
    key = Path(path).read_text().strip() if path else os.environ.get("DBPILOT_AGENT_KEY", "")
    if not key:
        raise ProviderError("DBPILOT_AGENT_KEY (or DBPILOT_AGENT_KEY_FILE) is not set on this agent")
    return key


@shared_task(name=AGENT_TASK, bind=True, ignore_result=False, acks_late=False)
def run_operation(self, host: str, sealed: str) -> str | dict:
    """`sealed` = {"host", "op", "args"} sealed with this host's key; the answer is sealed with it too.
    Not acknowledged late: an operation is not run again after the agent died (its caller timed out and
    decides; every operation is idempotent anyway)."""
    own = os.environ.get("DBPILOT_AGENT_HOST", "")
    if not own or host != own:
        log.error("refused an operation for host %r: this agent is %r", host, own or "(not an agent)")
        return {"error": f"sent to the wrong agent ({own or 'not an agent'})", "unsealed": True}
    key = agent_key()
    try:
        request = unseal(key, sealed, REQUEST_TTL_SECONDS)
    except SealError as exc:
        log.error("refused an operation: %s", exc)
        return {"error": f"refused by {own}: {exc}", "unsealed": True}
    if request.get("host") != own:
        return seal(key, {"error": f"the request names host {request.get('host')!r}, this is {own}"})
    name = request.get("op")
    function = OPERATIONS.get(name)
    if function is None:
        return seal(key, {"error": f"unknown agent operation {name!r}", "permanent": True})

    def report(progress: dict) -> None:
        if self.request.id:
            self.update_state(state="PROGRESS", meta=progress)

    agent = AgentContext.from_environment(report)
    try:
        return seal(key, {"ok": function(agent, request.get("args") or {})})
    except ProviderError as exc:
        return seal(key, {"error": str(exc), "permanent": exc.permanent})
    except SandboxError as exc:
        return seal(key, {"error": str(exc), "permanent": False})
    except Exception as exc:  # noqa: BLE001 - the control plane gets the reason, not a lost answer
        log.exception("agent operation %s failed", name)
        return seal(key, {"error": f"{type(exc).__name__}: {exc}", "permanent": False})
