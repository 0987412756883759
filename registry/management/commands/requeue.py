"""Re-enqueue verification of releases that are not finished (queued, verifying or error).

A worker killed mid-step leaves its step `running` and the release `verifying`; the broker
redelivers the task (acks_late). Use this after losing the broker's state, or to retry errors.
"""
from django.core.management.base import BaseCommand

from registry.models import Release
from verifier.pipeline import enqueue_verification


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--status", nargs="+", default=[Release.QUEUED, Release.VERIFYING, Release.ERROR, Release.UPLOADED])

    def handle(self, *args, status, **options):
        ids = list(Release.objects.filter(status__in=status).values_list("pk", flat=True))
        for release_id in ids:
            Release.objects.filter(pk=release_id, status=Release.VERIFYING).update(status=Release.QUEUED)
            enqueue_verification(release_id)
        self.stdout.write(f"re-enqueued {len(ids)} release(s)")
