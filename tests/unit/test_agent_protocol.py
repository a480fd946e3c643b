"""The agent's side without a worker: sealed requests only from the host's key, for this host, not too
old; unknown operations refused; the registry is open to new operations; answers sealed."""

from __future__ import annotations

import time

import pytest

from clusters.agent import operations, tasks
from clusters.providers.agent_protocol import SealError, new_key, seal, unseal

pytestmark = pytest.mark.unit


@pytest.fixture
def agent_env(monkeypatch, tmp_path):
    key = new_key()
    monkeypatch.setenv("DBPILOT_AGENT_HOST", "db1")
    monkeypatch.setenv("DBPILOT_AGENT_KEY", key)
    monkeypatch.setenv("DBPILOT_DATA_ROOT", str(tmp_path))
    return key


def run(host: str, sealed: str):
    return tasks.run_operation.run(host, sealed)


def test_a_request_sealed_with_the_hosts_key_runs_its_operation_and_the_answer_is_sealed(agent_env):
    reply = run("db1", seal(agent_env, {"host": "db1", "op": "ping", "args": {}}))
    value = unseal(agent_env, reply, 60)
    assert value["ok"]["host"] == "db1" and value["ok"]["instances"] == 0


def test_another_key_a_wrong_host_or_an_unknown_operation_is_refused(agent_env):
    other = new_key()
    forged = run("db1", seal(other, {"host": "db1", "op": "destroy", "args": {"instance": "x"}}))
    assert forged == {"error": forged["error"], "unsealed": True} and "refused" in forged["error"]
    misrouted = run("db2", seal(agent_env, {"host": "db2", "op": "ping", "args": {}}))
    assert "wrong agent" in misrouted["error"]
    named_other = unseal(agent_env, run("db1", seal(agent_env, {"host": "db2", "op": "ping"})), 60)
    assert "names host 'db2'" in named_other["error"]
    unknown = unseal(agent_env, run("db1", seal(agent_env, {"host": "db1", "op": "rm -rf"})), 60)
    assert unknown == {"error": "unknown agent operation 'rm -rf'", "permanent": True}


def test_an_old_request_is_refused(agent_env, monkeypatch):
    sealed = seal(agent_env, {"host": "db1", "op": "ping", "args": {}})
    later = time.time() + tasks.REQUEST_TTL_SECONDS + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert "expired" in run("db1", sealed)["error"]


def test_operations_register_by_name_and_errors_come_back_with_their_reason(agent_env):
    @operations.operation("test_boom")
    def boom(agent, args):
        raise operations.ProviderError(f"no room on {agent.host}", permanent=True)

    try:
        value = unseal(agent_env, run("db1", seal(agent_env, {"host": "db1", "op": "test_boom"})), 60)
        assert value == {"error": "no room on db1", "permanent": True}
    finally:
        operations.OPERATIONS.pop("test_boom")
    with pytest.raises(SealError):
        unseal(new_key(), seal(agent_env, {}), 60)
