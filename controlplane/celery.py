"""The Celery application; configuration lives in controlplane.settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

# Read here as settings.py reads it (the beat schedule is built before Django is set up).
ARCHIVE_SECONDS = float(os.environ.get("DBPILOT_BINLOG_ARCHIVE_SECONDS", "5"))

app = Celery("controlplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
if os.environ.get("DBPILOT_AGENT_HOST"):
    # A dbpilot agent (queue host.<name>) runs only the agents' operations: none of the control plane's tasks.
    app.autodiscover_tasks(["clusters.agent"])
else:
    app.autodiscover_tasks(["workers", "clusters.agent"])
app.conf.beat_schedule = {
    # One beat entry fans the ticks out; each cluster's own tick_seconds is honoured by the dispatcher.
    "dispatch-ticks": {"task": "workers.tasks.dispatch_ticks", "schedule": 1.0, "options": {"expires": 1.0}},
    "reap-jobs": {"task": "workers.tasks.reap_jobs", "schedule": 2.0, "options": {"expires": 2.0}},
    # HAProxy forgets runtime changes when it restarts: notice it and re-apply the routes.
    "check-proxies": {"task": "workers.tasks.check_proxies", "schedule": 5.0, "options": {"expires": 5.0}},
    # Each database host's agent answers a ping, or its host is marked down (nothing new placed there).
    # dbpilot's own accounts on provisioned servers: a tenant's master user may change them (repaired).
    "check-accounts": {
        "task": "workers.tasks.check_accounts",
        "schedule": float(os.environ.get("DBPILOT_ACCOUNT_CHECK_SECONDS", "5")),
        "options": {"expires": 5.0},
    },
    # Servers a provider runs that no Server row and no active job own (docs/provisioning.md).
    "sweep-orphans": {
        "task": "workers.tasks.sweep_orphans",
        "schedule": float(os.environ.get("DBPILOT_ORPHAN_SWEEP_SECONDS", "60")),
        "options": {"expires": 60.0},
    },
    "check-hosts": {"task": "workers.tasks.check_hosts", "schedule": 5.0, "options": {"expires": 5.0}},
    # Backups (docs/backups.md): binlogs flushed and copied (the archive's RPO), the schedule and retention.
    "archive-binlogs": {
        "task": "workers.tasks.archive_binlogs",
        "schedule": ARCHIVE_SECONDS,
        "options": {"expires": ARCHIVE_SECONDS},
    },
    "backup-schedule": {
        "task": "workers.tasks.backup_schedule",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}
