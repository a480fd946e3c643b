"""Celery beat with a lease: several `celery -A controlplane beat` run, one sends the schedule.

celery-redbeat keeps the schedule (each entry's last run) and the lease in Redis: a lock key whose TTL
(`DBPILOT_BEAT_LEASE_SECONDS`) Redis itself counts down, so no host's clock matters. The holder renews
it every tick (at most a second apart); the others stand by and try to take it each second, so one takes
over within the lease plus a second of the active one dying. Each entry's last run is stored before its
task is sent, so the new holder never re-sends what the old one sent.

Redbeat alone exits when it loses the lease or Redis; this scheduler stands by instead and tries again
each tick, so every beat survives a Redis restart or Sentinel failover (where the lease key itself may be
lost: whoever takes it first sends, the other finds itself not the owner and stands by). Every beat also
reports Redis outages as the REDIS_UNREACHABLE platform finding.
"""

from __future__ import annotations

import logging

from celery.signals import beat_init
from redbeat.schedulers import (
    LUA_EXTEND_TO_SCRIPT,
    RedBeatScheduler,
    acquire_distributed_beat_lock,
    get_redis,
)
from redis.exceptions import LockError, RedisError

from controlplane import redisconf

log = logging.getLogger("celery.beat")

# Redbeat takes the lease in a beat_init handler that blocks until it has it (and leaves the beat without
# a lease if Redis fails meanwhile); here every beat takes it in its tick instead, without blocking.
beat_init.disconnect(acquire_distributed_beat_lock)


def redbeat_config() -> dict:
    """celery-redbeat's settings, from dbpilot's (it reads only un-namespaced keys)."""
    from django.conf import settings

    target = redisconf.parse(settings.REDIS_URL)
    return {
        "redbeat_redis_url": redisconf.redbeat_url(target),
        "redbeat_redis_options": redisconf.redbeat_options(target)
        or {"socket_timeout": 2, "socket_connect_timeout": 2},
        "redbeat_key_prefix": "dbpilot:beat",
        "redbeat_lock_timeout": settings.DBPILOT_BEAT_LEASE_SECONDS,
    }


class LeasedScheduler(RedBeatScheduler):
    _redis_ok: bool | None = None

    def __init__(self, app, **kwargs):
        app.conf.update(redbeat_config())
        super().__init__(app, **kwargs)

    def setup_schedule(self):
        """Install the schedule only once holding the lease: a standby rewriting the entries while the
        active beat records a run could set an entry's last run back, and that entry would run twice."""

    def _report_redis(self, ok: bool, detail: str = "") -> None:
        if ok == self._redis_ok:
            return
        from tenants.platform_health import record_redis

        if record_redis(ok, detail):  # else (the database is down too) try again next tick
            self._redis_ok = ok

    def _take_lease(self) -> bool:
        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        if not lock.acquire(blocking=False):
            return False
        self.lock = lock
        log.info("beat: took the lease %s; this beat is active", self.lock_key)
        # (Re)install the entries, keeping each one's last run from Redis; after a Sentinel failover that
        # lost the last writes, this also puts back entries the new master never received.
        super().setup_schedule()
        return True

    def _hold_lease(self) -> bool:
        try:
            if self.lock is not None:
                self.lock.extend(int(self.lock_timeout))
                held = True
            else:
                held = self._take_lease()
        except LockError as exc:  # expired, or lost with Redis's data: stand by
            log.warning("beat: lost the lease (%s); standing by", exc)
            self.lock = None
            held = False
        except RedisError as exc:
            if self.lock is not None:
                log.warning("beat: Redis does not answer (%s); standing by", exc)
            self.lock = None
            self._report_redis(False, f"{type(exc).__name__}: {exc}"[:200])
            return False
        self._report_redis(True)
        return held

    def tick(self, min=min, **kwargs):
        if not self._hold_lease():
            return self.max_interval
        try:
            return super().tick(min=min, **kwargs)
        except (LockError, RedisError) as exc:
            log.warning("beat: tick failed (%s); standing by", exc)
            self.lock = None
            return self.max_interval

    def close(self):
        try:
            super().close()
        except RedisError as exc:  # the lease then simply expires
            log.warning("beat: could not release the lease (%s)", exc)
