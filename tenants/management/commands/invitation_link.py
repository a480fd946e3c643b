"""Print a new one-time secret for an open invitation (for operators without a mail server).

    python manage.py invitation_link EMAIL [--team ID]

The previous secret stops working; the person accepts with POST /api/v1/invitations/accept/.
"""

from django.core.management.base import BaseCommand, CommandError

from tenants.models import Invitation
from tenants.services import reissue_invitation


class Command(BaseCommand):
    help = "Print a new one-time secret for an open invitation to EMAIL (the old one stops working)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--team", type=int, help="the team's id, when the address is invited to several")

    def handle(self, *args, email, team=None, **options):
        invitations = Invitation.objects.filter(email=email.strip().lower(), status=Invitation.Status.INVITED)
        if team is not None:
            invitations = invitations.filter(team_id=team)
        found = list(invitations.select_related("team")[:2])
        if not found:
            raise CommandError(f"no open invitation for {email}" + (f" to team {team}" if team else ""))
        if len(found) > 1:
            raise CommandError(f"{email} is invited to several teams: name one with --team")
        invitation = found[0]
        secret = reissue_invitation(invitation)
        self.stdout.write(
            f"Invitation {invitation.pk}: {invitation.email} to team {invitation.team.name} "
            f"as {invitation.role}."
        )
        self.stdout.write(
            'Accept with POST /api/v1/invitations/accept/ {"secret": "...", "password": "..."}; secret:'
        )
        self.stdout.write(secret)
