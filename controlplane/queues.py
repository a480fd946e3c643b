"""Celery queues: ticks, HA jobs and long jobs never share capacity.

A worker started with no -Q consumes every queue declared here; the demo and docker-compose run one
worker per queue so a long backup never delays a failover.
"""

from kombu import Queue

TICKS = "ticks"
HA = "ha"
LONG = "long"
DEFAULT = "default"
ALL_QUEUES = (TICKS, HA, LONG, DEFAULT)

CELERY_TASK_DEFAULT_QUEUE = DEFAULT
CELERY_TASK_QUEUES = tuple(Queue(name) for name in ALL_QUEUES)
CELERY_TASK_ROUTES = {
    "workers.tasks.dispatch_ticks": {"queue": TICKS},
    "workers.tasks.monitor_shard": {"queue": TICKS},
    "workers.tasks.run_ha_job": {"queue": HA},
    "workers.tasks.reap_jobs": {"queue": HA},
    "workers.tasks.run_long_job": {"queue": LONG},  # provision, deprovision, scale, rolling restart
    # The local provider's servers are on the long workers' host: their orphans are swept from there.
    "workers.tasks.sweep_orphans": {"queue": LONG},
}
