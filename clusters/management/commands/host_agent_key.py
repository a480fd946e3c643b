"""`python manage.py host_agent_key NAME`: a new key for a database host's agent (the `hosts` provider),
printed once. Restart the host's agent with it (`DBPILOT_AGENT_KEY` or `DBPILOT_AGENT_KEY_FILE`): until
then the host answers nothing dbpilot accepts and is marked down. Use it when a key may have leaked or
the host was rebuilt (docs/security.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from clusters.models import DatabaseHost
from clusters.services.hosts import rotate_agent_key


class Command(BaseCommand):
    help = "Give a database host's agent a new key (printed once); the old key stops working at once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the host's name in the pool (GET /api/v1/platform/hosts/)")

    def handle(self, *args, name: str, **options):
        try:
            key = rotate_agent_key(name)
        except DatabaseHost.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(key)
        self.stderr.write(f"restart the agent of {name} with DBPILOT_AGENT_KEY set to this key\n")
