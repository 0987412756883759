"""Test data for the registry, built through the same service functions the views use.

Use inside pytest-django's `db` fixture (transactions never commit there, so the Celery
enqueue that `create_release` schedules with on_commit never fires; that is intended) and
with the `registry_dirs` fixture below, which points the blob and key folders at tmp_path.
"""
from __future__ import annotations

import io
import itertools

import pytest

from assay.core import dsse, keys, statements
from assay.core.digest import digest_bytes
from registry.accounts import create_organization, create_user, set_member
from registry.blobstore import get_blob_store
from registry.models import Blob, Release, VerificationStep
from registry.publisher_keys import register_key
from registry.releases import create_release
from registry.tokens import create_token

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@pytest.fixture
def registry_dirs(settings, tmp_path, monkeypatch):
    """Blob store and registry keys under tmp_path, a verifier folder of its own beside them
    (ASSAY_VERIFIER_DIR); a fast password hasher."""
    from registry import serverkeys

    settings.ASSAY_BLOB_DIR = tmp_path / "blobs"
    settings.ASSAY_KEY_DIR = tmp_path / "keys"
    monkeypatch.setenv("ASSAY_VERIFIER_DIR", str(tmp_path / "verifier"))
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    serverkeys.log_key.cache_clear()
    yield tmp_path
    serverkeys.log_key.cache_clear()


def user(username: str, password: str | None = PASSWORD, **kw):
    return create_user(username, password, **kw)


def organization(owner, name: str, *, private: bool = False, members: dict | None = None, display_name: str = ""):
    """An organization owned by `owner`; `members` maps users to roles (owner, publisher, reader)."""
    org = create_organization(owner, name, display_name, private)
    for member, role in (members or {}).items():
        set_member(org, member, role)
    return org


def token(owner, scopes=("read", "publish", "admin"), namespaces=None, expires_in_days: int | None = 90, name: str = "test"):
    """(ApiToken row, secret)."""
    return create_token(owner, name, list(scopes), list(namespaces or []), expires_in_days)


def publisher_key(owner, name: str = "") -> keys.Signer:
    """A fresh Ed25519 key registered (with proof of possession) to `owner`; returns its Signer."""
    signer = keys.Signer(keys.generate_private_key())
    payload = statements.build_key_event(
        "register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner=owner.username,
    )
    register_key(owner, dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer), name)
    return signer


def blob(data: bytes | None = None, uploaded_by=None) -> str:
    """Store bytes in the blob store (through an upload, like the API does) and create the Blob row."""
    if data is None:
        data = b"GGUF test bytes %d" % next(_counter)
    store = get_blob_store()
    upload_id = store.new_upload()
    store.append(upload_id, 0, io.BytesIO(data), len(data))
    digest = digest_bytes(data)
    size = store.finalize(upload_id, digest)
    Blob.record_upload(digest, size, uploaded_by)
    return digest


def release_envelope(signer, *, digest: str, namespace: str, model: str, tag: str = "q4", version: int = 1,
                     file_name: str = "model.gguf", quantization: str = "Q4_1", base: dict | None = None,
                     recipe: dict | None = None, model_card: str = "", blake3: str | None = None) -> dict:
    payload = statements.build_release_statement(
        subject_name=file_name, subject_digest=digest, namespace=namespace, model=model, tag=tag, version=version,
        quantization=quantization, base=base, recipe=recipe,
        model_card_digest=digest_bytes(model_card.encode()) if model_card else None,
        blake3={digest: blake3} if blake3 else None,
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


def release(publisher, signer, *, namespace: str, model: str, tag: str = "q4", version: int = 1, data: bytes | None = None,
            model_card: str = "", status: str | None = None, status_reason: str = "", steps: dict | None = None,
            token=None) -> Release:
    """A release created through registry.releases.create_release, then (for tests) given a status.

    `steps` maps a step name to (status, summary)."""
    digest = blob(data, uploaded_by=publisher)
    env = release_envelope(signer, digest=digest, namespace=namespace, model=model, tag=tag, version=version, model_card=model_card)
    rel = create_release(publisher, token, env, model_card)
    if status is not None:
        rel.status = status
        rel.status_reason = status_reason
        rel.save(update_fields=["status", "status_reason"])
    for name, (step_status, summary) in (steps or {}).items():
        VerificationStep.objects.filter(release=rel, name=name).update(status=step_status, summary=summary)
    return rel
