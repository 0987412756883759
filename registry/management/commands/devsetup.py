"""Create the development admin account and the `demo` organization; print an API token."""
import os
import secrets

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry.accounts import create_organization, create_user
from registry.models import LogEntry, Organization
from registry.roles import sync_roles
from registry.serverkeys import log_key
from registry.tokens import create_token


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default=os.environ.get("ASSAY_ADMIN_USER", "admin"))

    def handle(self, *args, url, username, **options):
        key_file = Path(settings.ASSAY_KEY_DIR) / "log.key"
        entries = LogEntry.objects.count()
        if entries and not key_file.exists():
            # a new key would sign checkpoints of a log it never signed: clients that pinned the old
            # key refuse them, and the verifier registered there has its key in another folder
            raise CommandError(
                f"the database holds a transparency log of {entries} entries, but {key_file} does not exist: the database "
                f"belongs to another checkout or key folder. Give this one a database of its own (e.g. "
                f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/assay2 make up, after createdb -h 127.0.0.1 -U postgres assay2), "
                f"or start again from nothing (dropdb -h 127.0.0.1 -U postgres assay)")
        log_key()  # create the registry's log key on first start
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        password_note = "(unchanged)"
        if user is None:
            password = os.environ.get("ASSAY_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            user = create_user(username, password, is_staff=True)
            password_note = password
        if not Organization.objects.filter(name="demo").exists():
            create_organization(user, "demo", "Demo models")
        sync_roles()  # a database from before roles were logged
        _, token = create_token(user, "dev", ["read", "publish", "admin"], expires_in_days=30)
        self.stdout.write(
            f"\nAssay dev setup\n  web:      {url}/  (user {username}, password {password_note})\n"
            f"  API token: {token}\n  CLI:      assay login {url} --token {token}\n"
            f"            assay trust add {url} --yes\n"
        )
