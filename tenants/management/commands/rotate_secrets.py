"""`manage.py rotate_secrets [--dry-run]`: re-encrypt every secret at rest under the first Fernet key.

Rotation: put a new key first in DBPILOT_FERNET_KEYS (keep the old ones after it), restart dbpilot's
processes, run this command, then drop the old keys. Which columns are encrypted is discovered by
controlplane.crypto.encrypted_fields (every `*_encrypted` field, plus registered ones).
"""

from django.core.management.base import BaseCommand, CommandError

from controlplane.crypto import encrypted_fields, encrypted_under_first_key, rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the first key of DBPILOT_FERNET_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")

    def handle(self, *args, **opts):
        dry_run = opts["dry_run"]
        failures = []
        for model, field in encrypted_fields():
            rotated = current = 0
            manager = model._base_manager
            rows = (
                manager.exclude(**{f"{field}__isnull": True}).exclude(**{field: ""}).values_list("pk", field)
            )
            for pk, value in rows.iterator(chunk_size=500):
                if encrypted_under_first_key(value):
                    current += 1
                    continue
                try:
                    new_value = rotate(value)
                except ValueError as exc:
                    failures.append(f"{model._meta.label}.{field} pk={pk}: {exc}")
                    continue
                if not dry_run:
                    # Only if nobody changed the value meanwhile; a concurrent writer used the new key anyway.
                    manager.filter(pk=pk, **{field: value}).update(**{field: new_value})
                rotated += 1
            verb = "to re-encrypt" if dry_run else "re-encrypted"
            self.stdout.write(
                f"{model._meta.label}.{field}: {rotated} {verb}, {current} already under the first key"
            )
        if failures:
            raise CommandError("could not decrypt with any key:\n" + "\n".join(failures))
