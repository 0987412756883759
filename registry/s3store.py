"""Blob storage in S3-compatible object storage (SeaweedFS, MinIO, AWS S3): the scale option of
registry/blobstore.py, chosen with ASSAY_STORAGE=s3.

Layout in the bucket: blobs at `sha256/<64 hex>`; an upload in progress is an S3 multipart upload
to `uploads/<id>` (its UploadId kept in `uploads/<id>.meta`), plus `uploads/<id>.tail`, the bytes
of a chunk too small to be a part yet (S3 parts are at least 5 MiB, except the last). Every
chunk is appended at the offset the upload has reached, as with the local folder. Finalizing
completes the multipart upload, hashes the object by reading it back, and only when the digest
matches copies it to its content address; a mismatch is deleted. A finalize that the store fails
part way (after completing, say) keeps the upload, and the next try takes up from there. Downloads are pre-signed
GET URLs: the bytes go from the object store to the client, never through Django.
"""
from __future__ import annotations

import functools
import hashlib
import json
import tempfile
import uuid
from typing import BinaryIO, Iterator

from assay.core.digest import format_digest, parse_digest
from assay.core.errors import DigestError

from .uploads import CHUNK, UPLOAD_ID_RE, ChunkTooLong, StorageFailure, UploadError

MIN_PART = 5 * 1024**2  # S3's smallest part (but the last)
PART = 16 * 1024**2
PRESIGNED_TTL_S = 3600  # an upload part's URL: the uploader asks for each part just before sending it
DOWNLOAD_TTL_S = 600  # a download's URL is followed at once (each resume asks the registry again), so
# access the registry has since withdrawn (a member removed, a token revoked) ends within minutes,
# while a storage clock a few minutes off still accepts it


def _store_errors(method):
    """The object store unreachable or failing (botocore's connection and service errors, after
    its own retries) becomes a StorageFailure, which the API answers with 503 and the reason,
    instead of an unexplained 500. An upload resumes from the offset the store then holds."""

    @functools.wraps(method)
    def inner(*args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(*args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageFailure(f"the registry's object storage failed ({_describe(exc)}); try again later", full=False) from exc

    return inner


def _describe(exc: Exception) -> str:
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    return f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ") if error else str(exc)


class S3BlobStore:
    direct_part_size = PART  # clients may send parts of this size straight to the store
    def __init__(self, *, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 public_endpoint: str | None = None):
        import boto3
        from botocore.config import Config

        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
        kw = dict(aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region, config=config)
        self.s3 = boto3.client("s3", endpoint_url=endpoint, **kw)
        # Pre-signed URLs name the address clients reach the store at (it may differ from ours).
        self.presigner = boto3.client("s3", endpoint_url=public_endpoint or endpoint, **kw)
        self.bucket = bucket

    # -- blobs ---------------------------------------------------------------------------------
    @staticmethod
    def _key(digest: str) -> str:
        return "sha256/" + parse_digest(digest)  # validated before it names an object

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    @_store_errors
    def exists(self, digest: str) -> bool:
        return self._head(self._key(digest)) is not None

    @_store_errors
    def size(self, digest: str) -> int:
        head = self._head(self._key(digest))
        if head is None:
            raise FileNotFoundError(digest)
        return int(head["ContentLength"])

    def open(self, digest: str) -> BinaryIO:
        return self.s3.get_object(Bucket=self.bucket, Key=self._key(digest))["Body"]

    def iter_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        body = self.s3.get_object(Bucket=self.bucket, Key=self._key(digest), Range=f"bytes={start}-{end}")["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    @_store_errors
    def delete(self, digest: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self._key(digest))

    def _signer(self, internal: bool):
        """Pre-signed URLs name the public endpoint, or with `internal` the store's address as the
        registry reaches it (for a verifier on the registry's own network, where the public name
        may not resolve to the store: in docker-compose, `localhost` is the verifier's container)."""
        return self.s3 if internal else self.presigner

    @_store_errors
    def direct_url(self, digest: str, *, internal: bool = False) -> str:
        """A pre-signed GET URL for the blob (Range requests work on it), valid for DOWNLOAD_TTL_S."""
        params = {"Bucket": self.bucket, "Key": self._key(digest)}
        return self._signer(internal).generate_presigned_url("get_object", Params=params, ExpiresIn=DOWNLOAD_TTL_S)

    # -- uploads -------------------------------------------------------------------------------
    @staticmethod
    def _upload_key(upload_id: str) -> str:
        if not UPLOAD_ID_RE.match(upload_id or ""):
            raise UploadError(f"invalid upload id {upload_id!r}")
        return f"uploads/{upload_id}"

    def _meta(self, upload_id: str) -> dict:
        from botocore.exceptions import ClientError

        try:
            return json.loads(self.s3.get_object(Bucket=self.bucket, Key=self._upload_key(upload_id) + ".meta")["Body"].read())
        except ClientError:
            raise UploadError(f"upload {upload_id} does not exist") from None

    def _parts(self, key: str, multipart_id: str) -> list[dict]:
        parts, marker = [], 0
        while True:
            page = self.s3.list_parts(Bucket=self.bucket, Key=key, UploadId=multipart_id, PartNumberMarker=marker)
            parts += [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p["Size"]} for p in page.get("Parts", [])]
            if not page.get("IsTruncated"):
                return parts
            marker = page["NextPartNumberMarker"]

    def _tail(self, key: str) -> bytes:
        head = self._head(key + ".tail")
        return b"" if head is None else self.s3.get_object(Bucket=self.bucket, Key=key + ".tail")["Body"].read()

    @_store_errors
    def new_upload(self) -> str:
        upload_id = uuid.uuid4().hex
        key = self._upload_key(upload_id)
        multipart = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        self.s3.put_object(Bucket=self.bucket, Key=key + ".meta", Body=json.dumps({"multipart": multipart}).encode())
        return upload_id

    @_store_errors
    def upload_offset(self, upload_id: str) -> int:
        key, meta = self._upload_key(upload_id), self._meta(upload_id)
        completed = self._head(key)
        if completed is not None:  # a finalize completed it, then failed: its next try hashes the object
            return int(completed["ContentLength"])
        tail = self._head(key + ".tail")
        return sum(p["Size"] for p in self._parts(key, meta["multipart"])) + (int(tail["ContentLength"]) if tail else 0)

    def _refuse_if_completed(self, key: str) -> None:
        if self._head(key) is not None:
            raise UploadError("this upload is complete (an earlier finalize stopped after completing it): finalize it again")

    @_store_errors
    def append(self, upload_id: str, offset: int, stream: BinaryIO, length: int | None, limit: int | None = None) -> int:
        """As LocalBlobStore.append: the chunk must start at the bytes already received; a body
        read to EOF past `limit` is refused (ChunkTooLong) with none of it kept. The chunk is
        spooled first (in memory up to a part, then on disk), then cut into parts."""
        key, meta = self._upload_key(upload_id), self._meta(upload_id)
        self._refuse_if_completed(key)
        parts = self._parts(key, meta["multipart"])
        tail = self._tail(key)
        current = sum(p["Size"] for p in parts) + len(tail)
        if offset != current:
            raise UploadError(f"chunk starts at byte {offset} but the upload has {current} bytes; resume from {current}")
        received, remaining = 0, length
        with tempfile.SpooledTemporaryFile(max_size=PART) as spool:
            spool.write(tail)
            while remaining is None or remaining > 0:
                block = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not block:
                    break
                received += len(block)
                if remaining is None and limit is not None and received > limit:
                    raise ChunkTooLong(f"the body is longer than {limit} bytes; none of it was kept")
                spool.write(block)
                if remaining is not None:
                    remaining -= len(block)
            total, number = spool.tell(), len(parts) + 1
            spool.seek(0)
            while total - spool.tell() >= MIN_PART:
                size = min(PART, total - spool.tell())
                if 0 < total - spool.tell() - size < MIN_PART:
                    size = total - spool.tell()  # no part may be left under the minimum
                self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=meta["multipart"], PartNumber=number, Body=spool.read(size))
                number += 1
            rest = spool.read()
        if rest:
            self.s3.put_object(Bucket=self.bucket, Key=key + ".tail", Body=rest)
        elif tail:
            self.s3.delete_object(Bucket=self.bucket, Key=key + ".tail")
        new_offset = current + received
        if remaining:
            raise UploadError(f"chunk ended early: {remaining} bytes missing; resume from {new_offset}")
        return new_offset

    # -- direct uploads: the client sends each part straight to the object store -------------
    @_store_errors
    def direct_part_url(self, upload_id: str, offset: int, size: int, *, final: bool, internal: bool = False) -> str:
        """A pre-signed URL for the part starting at `offset` (parts of PART bytes; only the final
        one may be smaller). The bytes go from the client to the store, not through Django."""
        key, meta = self._upload_key(upload_id), self._meta(upload_id)
        self._refuse_if_completed(key)
        parts = self._parts(key, meta["multipart"])
        current = sum(p["Size"] for p in parts)
        if self._head(key + ".tail") is not None:
            raise UploadError("this upload was started through the registry (a partial part is pending); continue it the same way")
        if offset != current:
            raise UploadError(f"part starts at byte {offset} but the upload has {current} bytes; resume from {current}")
        if any(p["Size"] != PART for p in parts):
            raise UploadError("the upload's last part was smaller than a part: it is complete, finalize it")
        if not (0 < size <= PART) or (size != PART and not final):
            raise UploadError(f"a part is {PART} bytes (only the final part may be smaller), not {size}")
        params = {"Bucket": self.bucket, "Key": key, "UploadId": meta["multipart"], "PartNumber": len(parts) + 1, "ContentLength": size}
        return self._signer(internal).generate_presigned_url("upload_part", Params=params, ExpiresIn=PRESIGNED_TTL_S)

    @_store_errors
    def finalize(self, upload_id: str, expected_digest: str) -> int:
        """Complete the upload, hash what the store holds, and give it its content address only
        if it matches. Returns the size. A store failure on the way (a 503 to the client) keeps
        the upload: the same finalize again takes up where this one stopped, the multipart
        upload completed or not; only a digest mismatch discards it."""
        parse_digest(expected_digest)
        key, meta = self._upload_key(upload_id), self._meta(upload_id)
        if self._head(key) is None:  # not completed by an earlier try
            self._complete(key, meta["multipart"])
        h, size = hashlib.sha256(), 0
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        for block in body.iter_chunks(CHUNK):
            h.update(block)
            size += len(block)
        actual = format_digest(h.hexdigest())
        if actual != expected_digest:
            self._delete_upload(key)
            raise DigestError(f"digest mismatch: the upload's bytes hash to {actual}, not {expected_digest}; upload discarded")
        self.s3.copy({"Bucket": self.bucket, "Key": key}, self.bucket, self._key(actual))  # multipart copy past 5 GB
        self._delete_upload(key)
        return size

    def _complete(self, key: str, multipart_id: str) -> None:
        """The pending tail becomes the last part (and is deleted at once, so a retry does not send
        it twice), then the multipart upload is completed into the object at `key`."""
        parts = self._parts(key, multipart_id)
        tail = self._tail(key)
        if tail:
            self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=multipart_id, PartNumber=len(parts) + 1, Body=tail)
            self.s3.delete_object(Bucket=self.bucket, Key=key + ".tail")
            parts = self._parts(key, multipart_id)
        if not parts:  # an empty blob
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=multipart_id)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"")
        else:
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=multipart_id, MultipartUpload={
                "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})

    def _delete_upload(self, key: str) -> None:
        for suffix in ("", ".tail", ".meta"):
            self.s3.delete_object(Bucket=self.bucket, Key=key + suffix)

    def abort(self, upload_id: str) -> None:
        key = self._upload_key(upload_id)
        try:
            meta = self._meta(upload_id)
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=meta["multipart"])
        except (UploadError, Exception):  # noqa: BLE001 - aborting what is already gone is fine
            pass
        self._delete_upload(key)


@_store_errors
def ensure_bucket(store: S3BlobStore) -> None:
    """Make the store's bucket if it does not exist yet."""
    from botocore.exceptions import ClientError

    try:
        store.s3.head_bucket(Bucket=store.bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise  # e.g. 403: the credentials may not read it; creating it would hide that
        store.s3.create_bucket(Bucket=store.bucket)

