"""A tick cut short by a Redis outage does not leave its clusters' single-flight locks to expire (15 s)
once Redis answers again: they are released in the background. A private redis-server, paused with
CLIENT PAUSE so that commands time out, as they do while a master fails over."""

from __future__ import annotations

import shutil
import signal
import sys
import time

import pytest
import redis

from clusters import hotstate
from tests.chaos.conftest import free_port
from tests.services_plugin import ManagedProcess, wait_for, worker_environment


@pytest.fixture
def private_redis(settings):
    port = free_port()
    server = ManagedProcess(
        "chaos-tick-locks-redis",
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        {},
    )
    admin = redis.Redis(port=port, socket_timeout=5)
    wait_for(lambda: _answers(admin), 10, message="redis-server")
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    hotstate.client.cache_clear()
    hotstate._release_script.cache_clear()
    yield admin
    server.stop()
    hotstate.client.cache_clear()
    hotstate._release_script.cache_clear()


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


def test_locks_a_redis_outage_kept_are_released_when_it_answers_again(private_redis):
    held = hotstate.take_tick_locks([101, 102], 15)
    assert set(held) == {101, 102}
    private_redis.client_pause(3500)  # every client's commands wait: the release times out (2 s)
    paused_at = time.monotonic()
    hotstate.release_tick_locks(list(held.items()), 15)  # times out, does not raise: deferred
    # Released well before their 15 s TTL would have freed them.
    wait_for(
        lambda: not private_redis.exists(hotstate.tick_lock_key(101), hotstate.tick_lock_key(102)),
        10,
        message="the locks to be released in the background",
    )
    print(f"locks released {time.monotonic() - paused_at:.1f}s after the outage began (their TTL: 15 s)")

    # Only the holder's token releases: a lock another tick took meanwhile is left alone.
    other = hotstate.take_tick_locks([101], 15)
    hotstate.release_tick_locks([(101, held[101])], 15)
    assert private_redis.get(hotstate.tick_lock_key(101)).decode() == other[101]


_HOLDER = """
import sys, time, django
django.setup()
from clusters import hotstate
held = hotstate.take_tick_locks([201, 202], float(sys.argv[1]))
print("held", sorted(held), flush=True)
time.sleep(60)
"""


def test_a_tick_lock_is_a_lease_renewed_while_held_and_lapsing_when_its_worker_dies(private_redis, settings):
    """A tick holds its lock for as long as it runs (renewed every second), and the locks of a worker
    killed mid-tick lapse within DBPILOT_TICK_LOCK_SECONDS, not after a fixed long TTL."""
    lease = 2.0
    held = hotstate.take_tick_locks([301], lease)
    time.sleep(lease * 2)  # twice the lease: only the renewals keep it
    assert private_redis.get(hotstate.tick_lock_key(301)).decode() == held[301]
    hotstate.release_tick_locks(list(held.items()))
    assert not private_redis.exists(hotstate.tick_lock_key(301))

    env = worker_environment()
    env["REDIS_URL"] = settings.REDIS_URL
    holder = ManagedProcess("chaos-tick-lease-holder", [sys.executable, "-c", _HOLDER, str(lease)], env)
    try:
        wait_for(lambda: "held [201, 202]" in holder.log_text(), 30, message="the holder to take the locks")
        time.sleep(lease * 1.5)
        assert private_redis.exists(hotstate.tick_lock_key(201), hotstate.tick_lock_key(202)) == 2
        holder.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(
            lambda: not private_redis.exists(hotstate.tick_lock_key(201), hotstate.tick_lock_key(202)),
            lease + 2,
            interval=0.05,
            message="the dead holder's locks to lapse",
        )
        lapsed = time.monotonic() - killed_at
        print(f"a killed holder's tick locks lapsed {lapsed:.2f}s after the kill (lease {lease}s)")
        assert lapsed <= lease + 0.5
        assert set(hotstate.take_tick_locks([201, 202], lease)) == {201, 202}  # free for another worker
    finally:
        holder.stop()


def test_a_hung_tick_stops_being_renewed_after_the_longest_a_tick_can_last(private_redis, monkeypatch):
    monkeypatch.setattr(hotstate, "TICK_LEASE_MAX_HOLD_SECONDS", 2.0)
    hotstate.take_tick_locks([401], 2.0)  # never released, as by a tick that hangs
    wait_for(
        lambda: not private_redis.exists(hotstate.tick_lock_key(401)),
        8,
        message="the hung tick's lock to lapse (max hold 2 s + lease 2 s)",
    )
