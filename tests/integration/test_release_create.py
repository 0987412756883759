"""Server-side checks of a signed release statement (the client has its own, separately)."""
from __future__ import annotations

import io

import pytest

from assay.core import dsse, keys, ossf_signature, statements
from assay.core.digest import digest_bytes
from registry.accounts import create_organization, create_user, set_member
from registry.blobstore import get_blob_store
from registry.errors import RegistryError
from registry.models import Blob, LogEntry, Release
from registry.publisher_keys import register_key, revoke_key
from registry.releases import create_release

pytestmark = pytest.mark.django_db

DATA = b"GGUF-ish bytes for a release"


@pytest.fixture(autouse=True)
def dirs(settings, tmp_path):
    settings.ASSAY_BLOB_DIR = tmp_path / "blobs"
    settings.ASSAY_KEY_DIR = tmp_path / "keys"
    from registry import serverkeys

    serverkeys.log_key.cache_clear()


def blob(data: bytes = DATA, by=None) -> str:
    """Store bytes as uploaded by `by` (only an uploader may use an unreleased blob)."""
    store = get_blob_store()
    upload = store.new_upload()
    store.append(upload, 0, io.BytesIO(data), len(data))
    digest = digest_bytes(data)
    Blob.record_upload(digest, store.finalize(upload, digest), by)
    return digest


def registered_key(user, algorithm: str = keys.ED25519):
    sk = keys.generate_private_key(algorithm)
    signer = keys.Signer(sk)
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner=user.username)
    register_key(user, dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer))
    return signer


def envelope(signer, *, digest, ns="acme", model="m", tag="q4", version=1, name="m.gguf", base=None, recipe=None, card=None):
    payload = statements.build_release_statement(
        subject_name=name, subject_digest=digest, namespace=ns, model=model, tag=tag, version=version,
        quantization="Q4_1", base=base, recipe=recipe, model_card_digest=card,
    )
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


@pytest.fixture
def publisher():
    owner = create_user("owner", "pw-owner-123")
    org = create_organization(owner, "acme")
    user = create_user("pub", "pw-pub-1234")
    set_member(org, user, "publisher")
    return user


def test_valid_release_is_created_logged_and_queued_for_verification(publisher):
    signer = registered_key(publisher)
    release = create_release(publisher, None, envelope(signer, digest=blob(by=publisher)))
    assert release.status == Release.UPLOADED and release.version == 1
    assert sorted(release.steps.values_list("name", flat=True)) == ["attest", "probes", "reproduce", "static"]
    entry = LogEntry.objects.get(index=release.release_log_index)
    assert entry.kind == "release"


def expect_refused(status: int, match: str, *args):
    with pytest.raises(RegistryError) as exc:
        create_release(*args)
    assert exc.value.status == status
    assert match in exc.value.message
    assert not Release.objects.exists()  # nothing half-created


def test_statement_signed_by_an_unregistered_key(publisher):
    signer = keys.Signer(keys.generate_private_key())
    expect_refused(403, "is not registered", publisher, None, envelope(signer, digest=blob()))


def test_statement_signed_by_a_revoked_key(publisher):
    signer = registered_key(publisher)
    revoke_key(publisher, signer.keyid, "compromised")
    expect_refused(403, "was revoked", publisher, None, envelope(signer, digest=blob()))
    assert LogEntry.objects.filter(kind="key-revoke").count() == 1


def test_key_of_another_account(publisher):
    other = create_user("other", "pw-other-123")
    signer = registered_key(other)
    expect_refused(403, "belongs to another account", publisher, None, envelope(signer, digest=blob()))


def test_publisher_outside_the_namespace(publisher):
    outsider = create_user("outsider", "pw-outsider-1")
    signer = registered_key(outsider)
    expect_refused(403, "may not publish in namespace 'acme'", outsider, None, envelope(signer, digest=blob()))


def test_reader_may_not_publish(publisher):
    reader = create_user("reader", "pw-reader-12")
    set_member(publisher.memberships.first().organization, reader, "reader")
    signer = registered_key(reader)
    expect_refused(403, "may not publish", reader, None, envelope(signer, digest=blob()))


def test_private_namespace_is_invisible_to_outsiders():
    owner = create_user("boss", "pw-boss-1234")
    create_organization(owner, "secret", private=True)
    outsider = create_user("nosy", "pw-nosy-1234")
    signer = registered_key(outsider)
    expect_refused(404, "not found", outsider, None, envelope(signer, ns="secret", digest=blob()))


def test_subject_that_was_never_uploaded(publisher):
    signer = registered_key(publisher)
    expect_refused(400, "was not uploaded", publisher, None, envelope(signer, digest=digest_bytes(b"never uploaded")))


def test_tampered_envelope(publisher):
    signer = registered_key(publisher)
    env = envelope(signer, digest=blob())
    other = envelope(signer, digest=blob(b"other bytes"), version=2)
    env["payload"] = other["payload"]
    expect_refused(403, "does not verify", publisher, None, env)


def test_version_must_increase(publisher):
    signer = registered_key(publisher)
    digest = blob(by=publisher)
    create_release(publisher, None, envelope(signer, digest=digest, version=2))
    with pytest.raises(RegistryError) as exc:
        create_release(publisher, None, envelope(signer, digest=digest, version=2))
    assert exc.value.status == 409 and "already at version 2" in exc.value.message


def test_model_card_must_match_its_signed_digest(publisher):
    signer = registered_key(publisher)
    env = envelope(signer, digest=blob(by=publisher), card=digest_bytes(b"# The card"))
    expect_refused(400, "model card does not match", publisher, None, env, "# Another card")


def test_base_must_be_a_release_here(publisher):
    signer = registered_key(publisher)
    recipe = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "x", "ftype": "Q4_K_M", "imatrix": None, "options": {}}
    env = envelope(signer, digest=blob(by=publisher), base={"name": "acme/base:f16", "digest": digest_bytes(b"no such base")}, recipe=recipe)
    expect_refused(400, "is not a release in this registry", publisher, None, env)


def test_key_registration_needs_proof_of_possession(publisher):
    sk, other = keys.generate_private_key(), keys.Signer(keys.generate_private_key())
    pk_text = keys.public_key_to_text(sk.public_key())
    payload = statements.build_key_event("register", keyid=keys.key_id(sk.public_key()), public_key=pk_text, owner=publisher.username)
    with pytest.raises(RegistryError) as exc:
        register_key(publisher, dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, other))
    assert exc.value.status == 400 and "refused" in exc.value.message


# -- an OpenSSF model_signing signature sent with the release ----------------------------------------

def test_an_ecdsa_p256_key_registers_and_its_model_signing_signature_is_kept(publisher):
    signer = registered_key(publisher, keys.ECDSA_P256)
    digest = blob(by=publisher)
    signature = ossf_signature.sign(signer, "m.gguf", [("m.gguf", digest)])
    release = create_release(publisher, None, envelope(signer, digest=digest), "", signature)
    assert release.publisher_key.keyid == signer.keyid and len(release.publisher_key.public_key) == 124
    assert Release.objects.get(pk=release.pk).model_signing == signature


def test_a_model_signing_signature_over_other_bytes_is_refused(publisher):
    signer = registered_key(publisher, keys.ECDSA_P256)
    digest = blob(by=publisher)
    other = ossf_signature.sign(signer, "m.gguf", [("m.gguf", digest_bytes(b"other bytes"))])
    expect_refused(400, "model_signing signature: the model_signing signature does not cover the release's files",
                   publisher, None, envelope(signer, digest=digest), "", other)


def test_a_model_signing_signature_by_another_key_is_refused(publisher):
    signer = registered_key(publisher, keys.ECDSA_P256)
    stranger = keys.Signer(keys.generate_private_key(keys.ECDSA_P256))
    digest = blob(by=publisher)
    foreign = ossf_signature.sign(stranger, "m.gguf", [("m.gguf", digest)])
    expect_refused(400, "was made with key", publisher, None, envelope(signer, digest=digest), "", foreign)


def test_a_model_signing_signature_needs_an_ecdsa_publisher_key(publisher):
    signer = registered_key(publisher)  # Ed25519
    ec_signer = keys.Signer(keys.generate_private_key(keys.ECDSA_P256))
    digest = blob(by=publisher)
    expect_refused(400, "need an ECDSA P-256 key", publisher, None, envelope(signer, digest=digest), "",
                   ossf_signature.sign(ec_signer, "m.gguf", [("m.gguf", digest)]))
    expect_refused(400, "not a model_signing signature", publisher, None, envelope(signer, digest=digest), "", {"mediaType": "x"})
