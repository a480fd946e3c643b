from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        from clusters import senders
        from workers import tasks

        # Looked up at each call, so a test may replace a task's delay/apply_async.
        senders.register_sender(senders.RUN_HA_JOB,
                                lambda job_id: tasks.run_ha_job.apply_async(args=[job_id], retry=False))
        senders.register_sender(senders.SYNC_CLUSTER_ROUTES,
                                lambda cluster_id, trigger: tasks.sync_cluster_routes.delay(cluster_id, trigger))
