"""Re-enqueue verification of releases that are not finished (uploaded, queued, verifying or error).

A release stays `uploaded` when the broker was unreachable as it was created; this queues it.

A worker killed mid-step leaves its step `running` and the release `verifying`; the broker
redelivers the task (acks_late). Use this after losing the broker's state, or to retry errors.
"""
from django.core.management.base import BaseCommand, CommandError

from registry.models import Release
from registry.releases import queue_verification


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--status", nargs="+", default=[Release.QUEUED, Release.VERIFYING, Release.ERROR, Release.UPLOADED])

    def handle(self, *args, status, **options):
        ids = list(Release.objects.filter(status__in=status).values_list("pk", flat=True))
        failed = 0
        for release_id in ids:
            Release.objects.filter(pk=release_id, status=Release.VERIFYING).update(status=Release.QUEUED)
            if queue_verification(release_id) is not None:
                failed += 1
        self.stdout.write(f"re-enqueued {len(ids) - failed} release(s)")
        if failed:
            raise CommandError(f"{failed} release(s) could not be queued: the task queue (CELERY_BROKER_URL) is unreachable; they stay 'uploaded', run requeue again once it is up")
