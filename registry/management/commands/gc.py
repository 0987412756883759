"""Abort uploads not finished within ASSAY_UPLOAD_TTL_S and delete blobs no release uses that are
older than ASSAY_BLOB_TTL_S (also run every hour by the worker's periodic tasks)."""
from django.core.management.base import BaseCommand

from registry.quotas import collect_garbage


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only say what would be deleted.")

    def handle(self, *args, dry_run, **options):
        done = collect_garbage(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for upload_id in done.uploads:
            self.stdout.write(f"{verb} upload {upload_id}")
        for digest in done.blobs:
            self.stdout.write(f"{verb} blob {digest}")
        self.stdout.write(f"{verb} {len(done.uploads)} upload(s) and {len(done.blobs)} blob(s), {done.bytes_freed} bytes")
