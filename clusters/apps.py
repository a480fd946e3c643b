from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from clusters.alerts import signals  # noqa: F401 - connects the alert dispatcher to new events
