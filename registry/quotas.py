"""Storage quotas and garbage collection.

Quotas (0 = unlimited):
- a user's storage is every distinct blob they uploaded plus their uploads in progress
  (ASSAY_USER_QUOTA_BYTES); an upload chunk that would pass it is refused (413) and not kept;
- an organization's storage is every distinct blob its releases use, as their file or as an
  input (importance matrix, calibration text, upstream checkpoint files, further split parts)
  (ASSAY_ORG_QUOTA_BYTES); a release that would pass it is refused (413) before anything is created.

Garbage collection (`manage.py gc`, and the periodic task verifier.tasks.collect_garbage):
uploads not finished within ASSAY_UPLOAD_TTL_S are aborted, and blobs that no release uses (as
its file or as a base) and that are older than ASSAY_BLOB_TTL_S are deleted. A blob a release
takes while it is being collected is kept (the release's foreign key protects its row).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import ProtectedError, Sum
from django.utils import timezone

from .blobstore import UploadError, get_blob_store
from .errors import RegistryError
from .models import Blob, Namespace, Release, ReleaseInput, Upload

log = logging.getLogger(__name__)


def _upload_bytes(uploads) -> int:
    store, total = get_blob_store(), 0
    for upload in uploads:
        try:
            total += store.upload_offset(upload.id)
        except UploadError:
            pass
    return total


def user_usage(user, *, excluding_upload: str | None = None) -> int:
    blobs = Blob.objects.filter(uploaders=user).distinct().aggregate(n=Sum("size"))["n"] or 0
    return blobs + _upload_bytes(Upload.objects.filter(user=user).exclude(pk=excluding_upload))


def _namespace_digests(namespace: Namespace) -> set[str]:
    files = Release.objects.filter(model__namespace=namespace).values_list("blob_id", flat=True)
    inputs = ReleaseInput.objects.filter(release__model__namespace=namespace).values_list("blob_id", flat=True)
    return set(files) | set(inputs)


def namespace_usage(namespace: Namespace) -> int:
    return Blob.objects.filter(digest__in=_namespace_digests(namespace)).aggregate(n=Sum("size"))["n"] or 0


def user_room(user, upload_id: str) -> int | None:
    """Bytes this user's upload may still hold (None: no quota)."""
    quota = settings.ASSAY_USER_QUOTA_BYTES
    if not quota:
        return None
    return max(0, quota - user_usage(user, excluding_upload=upload_id))


def check_release_fits(namespace: Namespace, blobs: list[Blob]) -> None:
    """Refuse (413) a release whose file and inputs would take an organization past its quota."""
    quota = settings.ASSAY_ORG_QUOTA_BYTES
    if not quota or namespace.organization_id is None:
        return
    counted = _namespace_digests(namespace)
    new = {b.digest: b.size for b in blobs if b.digest not in counted}  # bytes already there are counted once
    if not new:
        return
    used = namespace_usage(namespace)
    adding = sum(new.values())
    if used + adding > quota:
        raise RegistryError(413, f"release refused: organization {namespace.name} would use {used + adding} bytes of its "
                                 f"{quota}-byte storage quota ({used} used, this release adds {adding}); delete releases or "
                                 "ask an operator for more")


@dataclass
class Collected:
    uploads: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def collect_garbage(*, dry_run: bool = False) -> Collected:
    now, store, done = timezone.now(), get_blob_store(), Collected()
    for upload in Upload.objects.filter(created__lt=now - timedelta(seconds=settings.ASSAY_UPLOAD_TTL_S)):
        done.uploads.append(upload.id)
        done.bytes_freed += _upload_bytes([upload])
        if not dry_run:
            store.abort(upload.id)
            upload.delete()
    in_use = set(Release.objects.values_list("blob_id", flat=True)) | set(
        Release.objects.exclude(base_digest="").values_list("base_digest", flat=True)) | set(
        ReleaseInput.objects.values_list("blob_id", flat=True))
    for blob in Blob.objects.filter(created__lt=now - timedelta(seconds=settings.ASSAY_BLOB_TTL_S)).exclude(digest__in=in_use):
        digest, size = blob.digest, blob.size  # delete() clears the instance's key
        if dry_run:
            done.blobs.append(digest)
            done.bytes_freed += size
            continue
        try:
            with transaction.atomic():
                Blob.objects.select_for_update().filter(pk=digest).first()
                if Release.objects.filter(base_digest=digest).exists():
                    continue  # became a base meanwhile
                blob.delete()  # ProtectedError if a release took it meanwhile
        except ProtectedError:
            continue
        store.delete(digest)
        done.blobs.append(digest)
        done.bytes_freed += size
    if done.uploads or done.blobs:
        log.info("garbage collection%s: %d upload(s), %d blob(s), %d bytes", " (dry run)" if dry_run else "",
                 len(done.uploads), len(done.blobs), done.bytes_freed)
    return done
