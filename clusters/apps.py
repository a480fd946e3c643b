from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clusters.alerts import signals  # noqa: F401 - connects the alert dispatcher to new events
        from clusters.routes import notify
        from clusters.services import routing

        # The routes jobs tell are the cluster's stored routes: installed here, so clusters.routes never
        # imports the services above it.
        notify.install_stored_routes(routing.routes_for_job)
        # rejoin_method reseed hands a server to a rebuild job: the starter is installed here, so every
        # process that runs rejoin jobs (a worker, not only the web app) has it.
        from clusters.services import repair  # noqa: F401
