from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        from clusters import senders
        from workers import tasks

        # Looked up at each call, so a test may replace a task's delay/apply_async.
        senders.register_sender(
            senders.RUN_HA_JOB, lambda job_id: tasks.run_ha_job.apply_async(args=[job_id], retry=False)
        )
        senders.register_sender(
            senders.RUN_LONG_JOB, lambda job_id: tasks.run_long_job.apply_async(args=[job_id], retry=False)
        )
        senders.register_sender(
            senders.SYNC_CLUSTER_ROUTES,
            lambda cluster_id, trigger: tasks.sync_cluster_routes.delay(cluster_id, trigger),
        )
        senders.register_sender(
            senders.DISPATCH_ALERTS, lambda event_id: tasks.dispatch_alerts.delay(event_id)
        )
        senders.register_sender(
            senders.DELIVER_ALERT,
            lambda delivery_id, countdown: tasks.deliver_alert.apply_async(
                args=[delivery_id], countdown=countdown
            ),
        )
        senders.register_sender(
            senders.SEND_ALERT_DIGEST,
            lambda sub_id, countdown: tasks.send_alert_digest.apply_async(args=[sub_id], countdown=countdown),
        )
