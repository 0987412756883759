"""A second, faster check digest: the publisher declares each file's BLAKE3 next to its SHA-256,
the verifier checks it against the bytes and repeats it in its verdict, and a client checks a
download by BLAKE3 only when the statement and every verdict that counted vouch for it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.client import bundle_verify, pull
from assay.client.http import RegistryClient
from assay.core import statements as st
from assay.core.canonical import canonical_json
from assay.core.digest import algorithm_of, digest_bytes, digest_file, file_digests, new_hash
from assay.core.errors import DigestError, FormatError, VerificationError
from tests.support.bundles import World
from tests.unit.test_cli_errors import FakeServer
from tests.vectors.make_vectors import BLAKE3_PARTS, fixed_blake3_release_payload, fixed_blake3_verdict_payload

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "statements.json").read_text())
ABC_BLAKE3 = "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"  # the BLAKE3 paper's test value


def blake3_of(data: bytes) -> str:
    h = new_hash("blake3")
    h.update(data)
    return "blake3:" + h.hexdigest()


def test_the_digests_of_a_file(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert digest_file(tmp_path / "abc", algorithm="blake3") == ABC_BLAKE3
    assert file_digests(tmp_path / "abc") == (digest_bytes(b"abc"), ABC_BLAKE3)
    assert algorithm_of(ABC_BLAKE3) == "blake3" and algorithm_of(digest_bytes(b"")) == "sha256"
    for bad in ("blake3:" + "0" * 63, "md5:" + "0" * 64, "BLAKE3:" + "0" * 64, None):
        with pytest.raises(DigestError):
            algorithm_of(bad)


def test_statements_with_blake3_match_the_fixed_vectors():
    release = fixed_blake3_release_payload()
    assert release.decode() == VECTORS["blake3_release_payload"]
    parsed = st.parse_release_statement(release)
    assert parsed.declares_blake3 and parsed.blake3 == {d: b for _, d, b in BLAKE3_PARTS}
    verdict = st.parse_verdict_statement(VECTORS["blake3_verdict_payload"].encode())
    assert verdict.subject_blake3 == BLAKE3_PARTS[0][2]
    keyid = json.loads(VECTORS["blake3_verdict_payload"])["predicate"]["verifier"]["id"]
    assert fixed_blake3_verdict_payload(release, keyid).decode() == VECTORS["blake3_verdict_payload"]
    old = st.parse_release_statement(VECTORS["release_payload"].encode())  # a statement without: SHA-256 only
    assert old.blake3 == {} and not old.declares_blake3
    assert st.parse_verdict_statement(VECTORS["verdict_payload"].encode()).subject_blake3 is None


def test_blake3_is_declared_for_every_file_or_for_none():
    doc = json.loads(VECTORS["blake3_release_payload"])
    del doc["subject"][1]["digest"]["blake3"]
    with pytest.raises(FormatError, match="for every file or for none"):
        st.parse_release_statement(canonical_json(doc))
    doc = json.loads(VECTORS["blake3_release_payload"])
    doc["subject"][0]["digest"]["blake3"] = "ab" * 31
    with pytest.raises(FormatError, match="blake3"):
        st.parse_release_statement(canonical_json(doc))
    with pytest.raises(FormatError, match="every file or for none"):
        st.build_release_statement(
            subject_name=BLAKE3_PARTS[0][0], subject_digest=BLAKE3_PARTS[0][1], namespace="demo", model="m", tag="t", version=1,
            quantization="Q4_1", base=None, recipe=None, model_card_digest=None,
            parts=[(n, d) for n, d, _ in BLAKE3_PARTS], blake3={BLAKE3_PARTS[0][1]: BLAKE3_PARTS[0][2]})


@pytest.mark.parametrize("verdict_blake3, checked_by", [
    ("declared", "blake3"),      # the verifier checked the declared digest and repeats it
    (None, "sha256"),            # a verifier that did not check it (or predates it)
    ("blake3:" + "ee" * 32, "sha256"),  # one that found another: the statement's is not vouched for
])
def test_a_client_checks_by_blake3_only_when_the_verdict_repeats_it(tmp_path, verdict_blake3, checked_by):
    data = b"GGUF" + bytes(4000)
    world = World()
    bundle = world.release(data, blake3=blake3_of(data), verdict_blake3=verdict_blake3)
    verified = bundle_verify.verify_bundle(bundle, "demo/m:q4", world.policy(tmp_path / "policy"), world)
    assert algorithm_of(verified.check_digest()) == checked_by
    assert verified.check_digest() == (blake3_of(data) if checked_by == "blake3" else digest_bytes(data))


def test_every_verifier_that_counts_must_repeat_it():
    release = st.parse_release_statement(fixed_blake3_release_payload())
    keyid = "sha256:" + "00" * 32
    echoed = st.parse_verdict_statement(fixed_blake3_verdict_payload(fixed_blake3_release_payload(), keyid))
    silent = st.parse_verdict_statement(VECTORS["verdict_payload"].encode())
    assert bundle_verify.check_digests(release, [echoed]) == release.blake3
    assert bundle_verify.check_digests(release, [echoed, silent]) == {}
    assert bundle_verify.check_digests(release, []) == {}


@pytest.fixture
def blob_server():
    s = FakeServer()
    yield s
    s.httpd.shutdown()


def test_a_pull_checked_by_blake3_refuses_other_bytes(tmp_path, monkeypatch, blob_server):
    """The registry serves other bytes under the digest: the BLAKE3 check refuses them, and
    nothing lands at the final path; the signed bytes are then taken."""
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    data = b"GGUF" + bytes(range(256)) * 64
    world = World()
    bundle = world.release(data, blake3=blake3_of(data))
    policy = world.policy(tmp_path / "policy")
    checked = bundle_verify.verify_bundle
    monkeypatch.setattr(pull.bundle_verify, "verify_bundle", lambda b, r, p, _registry: checked(b, r, p, world))  # the log's answers
    route = f"/api/v1/blobs/{digest_bytes(data)}"
    blob_server.routes[route] = (200, "application/octet-stream", data[:-1] + b"X")
    with RegistryClient(blob_server.url) as client:
        with pytest.raises(VerificationError, match=r"hash to blake3:[0-9a-f]{64}, but the signed statements name " + blake3_of(data)):
            pull._pull_verified(client, bundle, "demo/m:q4", policy, tmp_path / "out", None, None, force=False, model_signing=False)
        assert not (tmp_path / "out" / "m.gguf").exists()
        blob_server.routes[route] = (200, "application/octet-stream", data)
        target, verified = pull._pull_verified(client, bundle, "demo/m:q4", policy, tmp_path / "out", None, None,
                                               force=False, model_signing=False)
    assert target.read_bytes() == data and verified.check_digest() == blake3_of(data)
    assert pull._already_there(target, verified)
    target.write_bytes(data[:-1] + b"Y")
    assert not pull._already_there(target, verified)
