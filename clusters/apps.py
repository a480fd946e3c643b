from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clusters.routes import notify
        from clusters.services import routing

        # The routes jobs tell are the cluster's stored routes: installed here, so clusters.routes never
        # imports the services above it.
        notify.install_stored_routes(routing.routes_for_job)
