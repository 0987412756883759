"""Log every namespace role the database has and the transparency log does not say yet."""
from django.core.management.base import BaseCommand

from registry.roles import sync_roles


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        changes = sync_roles()
        for ns, member, role in changes:
            self.stdout.write(f"logged: {member} is {role} of {ns}")
        self.stdout.write(f"{len(changes)} role event(s) logged" if changes else "the log already has every role")
