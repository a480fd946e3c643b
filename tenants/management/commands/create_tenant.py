"""`manage.py create_tenant NAME --team TEAM --user EMAIL [--password P] --token-scope SCOPE`.

Prints the new team token alone on its last line (scripts, the demo and CI read it from there).
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from tenants.audit import audit
from tenants.models import TokenScope
from tenants.services import create_tenant
from tenants.validation import validate_name


class Command(BaseCommand):
    help = "Create a tenant, a team and a tenant-admin user, and print a new team API token on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--team", required=True)
        parser.add_argument("--user", required=True, help="the user's email address")
        parser.add_argument("--password", default=None)
        parser.add_argument("--token-scope", required=True, choices=[s.value for s in TokenScope])

    def handle(self, *args, **opts):
        try:
            validate_name(opts["name"], "tenant name")
            validate_name(opts["team"], "team name")
            validate_email(opts["user"])
            created = create_tenant(
                opts["name"], opts["team"], opts["user"], opts["password"], opts["token_scope"]
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        audit(
            actor="system:create_tenant",
            action="tenant.create_tenant",
            tenant=created.tenant,
            target=f"team:{created.team.pk}",
            parameters={
                "team": created.team.name,
                "user": created.user.username,
                "token_scope": opts["token_scope"],
            },
            result="ok",
        )
        self.stdout.write(f"tenant: {created.tenant.name} (id {created.tenant.id})")
        self.stdout.write(f"team: {created.team.name} (id {created.team.id})")
        self.stdout.write(f"user: {created.user.username} (tenant admin)")
        if created.password:
            self.stdout.write(f"password: {created.password}")
        self.stdout.write(created.token)
