"""`python manage.py local_servers list|start|stop`: the local provider's servers on this host.

`start` starts every server whose desired state is running (after a host reboot: the provider records
it when a job starts or stops a server). `stop` shuts every running server down cleanly and keeps its
desired state (the demo's Ctrl-C: the next `start` brings the same servers back). Servers come back read-only, as always; dbpilot's monitoring and
jobs take it from there. docs/provisioning.md says how to run it at boot.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clusters.providers.local_provider import LocalProvider


class Command(BaseCommand):
    help = "List the local provider's servers, or start those that should be running (after a reboot)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "start", "stop"])

    def handle(self, *args, action: str, **options):
        provider = LocalProvider(settings.DBPILOT_LOCAL_SERVERS_ROOT, settings.DBPILOT_LOCAL_PORTS)
        if action == "list":
            for instance in provider.instances():
                placement = provider.placement(instance)
                self.stdout.write(
                    json.dumps(
                        {
                            "instance": instance,
                            "address": placement.address,
                            "desired": provider.desired(instance),
                            "running": provider.running(instance),
                        }
                    )
                )
            return
        if action == "stop":
            stopped = [i for i in provider.instances() if provider.running(i)]
            for instance in stopped:
                provider.shutdown(instance)
            self.stdout.write(json.dumps({"stopped": stopped}))
            return
        try:
            started = provider.start_desired()
        except Exception as exc:  # noqa: BLE001 - one line for the operator
            raise CommandError(f"starting the local servers failed: {exc}") from None
        self.stdout.write(json.dumps({"started": started}))
