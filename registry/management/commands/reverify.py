"""Verify a decided release (verified, rejected or error) afresh, e.g. after a verifier's operator
reviewed the chat template that rejected it (`python -m verifier template review`):

    python manage.py reverify NAMESPACE/MODEL:TAG [--release-version N] --reason "template reviewed"

The release goes back to `queued` with every step pending and no verdict of its own (the log
keeps the old one); its status says who asked and why until a verifier decides it again.
"""
from django.core.management.base import BaseCommand, CommandError

from assay.core.errors import AssayError
from assay.core.names import parse_reference
from registry.errors import RegistryError
from registry.models import Release
from registry.verification import reverify


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("reference", help="NAMESPACE/MODEL:TAG")
        parser.add_argument("--release-version", dest="version", type=int, help="the version (default: the newest)")
        parser.add_argument("--reason", required=True, help="why, shown with the release while it is verified again")
        parser.add_argument("--by", default="staff", help="who asks (shown with the reason)")

    def handle(self, *args, reference, version, reason, by, **options):
        try:
            ns, model, tag = parse_reference(reference)
        except AssayError as exc:
            raise CommandError(str(exc)) from None
        releases = Release.objects.filter(model__namespace__name=ns, model__name=model, tag=tag)
        release = (releases.filter(version=version) if version is not None else releases.order_by("-version")).first()
        if release is None:
            raise CommandError(f"no release {reference}" + (f" version {version}" if version is not None else ""))
        was = release.status
        try:
            reverify(release.pk, by, reason)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{reference} v{release.version} was {was}; queued to be verified again")
