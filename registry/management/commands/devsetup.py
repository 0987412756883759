"""Create the development admin account and the `demo` organization; print an API token."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from registry.accounts import create_organization, create_user
from registry.models import Organization
from registry.roles import sync_roles
from registry.serverkeys import log_key
from registry.tokens import create_token


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default=os.environ.get("ASSAY_ADMIN_USER", "admin"))

    def handle(self, *args, url, username, **options):
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
