"""in-toto statements (release, verdict, provenance, key events, namespace roles) and names."""
import hashlib
import json
from pathlib import Path

import pytest

from assay.core import dsse, keys, statements as st
from assay.core.canonical import canonical_json
from assay.core.errors import FormatError
from assay.core.names import NAME_RE, format_reference, parse_reference, validate_name, validate_tag

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "statements.json").read_text())
SIGNER = keys.Signer(keys.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
D1, D2 = "sha256:" + "1f" * 32, "sha256:" + "2e" * 32
RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "b1", "ftype": "Q4_1", "imatrix": None, "options": {}}


def release_kwargs(**over):
    kw = dict(subject_name="m.gguf", subject_digest=D1, namespace="demo", model="m", tag="q4_1", version=1,
              quantization="Q4_1", base={"name": "demo/m:f16", "digest": D2}, recipe=dict(RECIPE),
              model_card_digest=None, created="2025-01-31T12:00:00Z")
    kw.update(over)
    return kw


# ---------------------------------------------------------------- fixed vectors

def test_fixed_release_vector():
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
    from make_vectors import fixed_release_payload, fixed_verdict_payload

    payload = fixed_release_payload()
    assert payload.decode() == VECTORS["release_payload"]
    assert st.statement_digest(payload) == VECTORS["release_statement_digest"]
    assert fixed_verdict_payload(payload, SIGNER.keyid).decode() == VECTORS["verdict_payload"]
    rel = st.parse_release_statement(dsse.verify_envelope(VECTORS["release_envelope"], {SIGNER.keyid: SIGNER.public_key}).payload)
    assert (rel.reference, rel.version, rel.subject_digest, rel.base.name) == ("demo/smollm2-135m:q4_1", 3, D1, "demo/smollm2-135m:f16")
    verdict = st.parse_verdict_statement(dsse.verify_envelope(VECTORS["verdict_envelope"], {SIGNER.keyid: SIGNER.public_key}).payload)
    assert verdict.passed and verdict.release_statement_digest == VECTORS["release_statement_digest"]
    assert [c["name"] for c in verdict.checks] == ["static", "reproduce", "probes"]
    event = st.parse_key_event_envelope_unverified(VECTORS["key_register_envelope"])
    assert (event.event, event.keyid, event.owner) == ("register", SIGNER.keyid, "alice")


def test_fixed_level_role_and_key_index_vectors():
    """The formats issue 11 added, each built again and compared byte for byte, then parsed."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
    from make_vectors import fixed_key_index_payload, fixed_leveled_verdict_payload, fixed_release_payload, fixed_role_payload

    from assay.core import keyindex

    leveled = fixed_leveled_verdict_payload(fixed_release_payload(), SIGNER.keyid)
    assert leveled.decode() == VECTORS["leveled_verdict_payload"]
    doc = json.loads(leveled)["predicate"]
    assert doc["verifiedLevels"] == ["ASSAY_REPRODUCED"]
    assert doc["assayLevel"] == {"name": "reproduced", "reason": "", "chain": [
        {"reference": "demo/smollm2-135m:f16", "version": 1, "digest": "sha256:" + "2e" * 32, "level": "original"}]}
    verdict = st.parse_verdict_statement(leveled)
    assert verdict.level.name == "reproduced" and verdict.level.origin == "original"
    old = st.parse_verdict_statement(VECTORS["verdict_payload"].encode())  # signed before levels existed
    assert old.level is None and old.level_or_unreproduced.name == "unreproduced"

    assert fixed_role_payload().decode() == VECTORS["role_payload"]
    role = json.loads(VECTORS["role_payload"])
    assert role["predicateType"] == "urn:assay:namespace-role:v1"
    assert role["subject"] == [{"name": "demo:alice", "digest": {"sha256": hashlib.sha256(b"demo:alice").hexdigest()}}]
    event = st.parse_role_event(dsse.verify_envelope(VECTORS["role_envelope"], {SIGNER.keyid: SIGNER.public_key}).payload)
    assert (event.namespace, event.member, event.role) == ("demo", "alice", "publisher")

    assert fixed_key_index_payload().decode() == VECTORS["key_index_payload"]
    index = keyindex.verify(VECTORS["key_index_envelope"], SIGNER.public_key)
    assert (index.start, index.end, index.entries) == (5, 8, (5, 7))
    assert json.loads(VECTORS["key_index_payload"])["_type"] == "urn:assay:key-event-index:v1"


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d["predicate"]["assayLevel"].update(name="verified"), "unknown verification level"),
    (lambda d: d["predicate"].update(verifiedLevels=["ASSAY_ORIGINAL"]), "verifiedLevels"),
    (lambda d: d["predicate"]["assayLevel"].update(chain=[]), "must name the base"),
    (lambda d: d["predicate"]["assayLevel"]["chain"][0].update(version=0), "positive integer"),
])
def test_bad_levels_in_a_verdict_are_refused(edit, problem):
    doc = json.loads(VECTORS["leveled_verdict_payload"])
    edit(doc)
    with pytest.raises(FormatError, match=problem):
        st.parse_verdict_statement(canonical_json(doc))


def test_in_toto_statement_v1_shape():
    """Fields per https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md."""
    doc = json.loads(VECTORS["release_payload"])
    assert set(doc) == {"_type", "subject", "predicateType", "predicate"}
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["subject"] == [{"name": "smollm2-135m-q4_1.gguf", "digest": {"sha256": "1f" * 32}}]
    assert doc["predicateType"] == "urn:assay:release:v1"
    assert VECTORS["release_envelope"]["payloadType"] == "application/vnd.in-toto+json"
    vsa = json.loads(VECTORS["verdict_payload"])
    assert vsa["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert {"verifier", "timeVerified", "resourceUri", "policy", "inputAttestations", "verificationResult", "verifiedLevels"} <= set(vsa["predicate"])


# ---------------------------------------------------------------- round trips

def test_release_round_trip_original_and_now():
    p = st.build_release_statement(**release_kwargs(base=None, recipe=None, created=None, model_card_digest=D2))
    rel = st.parse_release_statement(p)
    assert rel.base is None and rel.recipe is None and rel.model_card_digest == D2 and rel.created.endswith("Z")


def test_release_time_normalized_to_utc():
    from datetime import datetime, timedelta, timezone
    when = datetime(2025, 1, 31, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert st.parse_release_statement(st.build_release_statement(**release_kwargs(created=when))).created == "2025-01-31T12:00:00Z"
    with pytest.raises(FormatError, match="time zone"):
        st.build_release_statement(**release_kwargs(created=datetime(2025, 1, 1)))


def test_verdict_and_provenance_round_trip():
    v = st.parse_verdict_statement(st.build_verdict_statement(
        subject_name="m.gguf", subject_digest=D1, verifier_id=SIGNER.keyid, time_created="2025-01-01T00:00:00+00:00",
        resource_uri="assay:demo/m:q4_1@1", policy_uri="urn:p", release_statement_digest=D2, passed=False,
        checks=[{"name": "static", "result": "failed", "summary": None, "evidence": None}], policy_digest=D1))
    assert (v.passed, v.result, v.policy_digest, v.check("static")["summary"]) == (False, "FAILED", D1, "")
    p = st.parse_provenance_statement(st.build_provenance_statement(
        subject_name="m.gguf", subject_digest=D1, builder_id=SIGNER.keyid, recipe=RECIPE,
        resolved_dependencies=[{"uri": "assay:blob", "digest": {"sha256": "2e" * 32}}, {"uri": "pkg:pypi/llama-cpp-python@0.3.36", "digest": {"gitCommit": "abcdef12"}}],
        started_on="2025-01-01T00:00:00Z", finished_on="2025-01-01T00:01:00.5+00:00"))
    assert p.build_type == "urn:assay:gguf-quantize:v1" and p.external_parameters == RECIPE
    assert (p.started_on, p.finished_on) == ("2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z")


def test_key_events():
    pk = keys.public_key_to_text(SIGNER.public_key)
    reg = st.parse_key_event(st.build_key_event("register", keyid=SIGNER.keyid, public_key=pk, owner="alice"))
    assert reg.reason is None
    rev = st.parse_key_event(st.build_key_event("revoke", keyid=SIGNER.keyid, public_key=pk, owner="alice", reason="lost laptop"))
    assert (rev.event, rev.reason) == ("revoke", "lost laptop")
    other = keys.public_key_to_text(keys.generate_private_key().public_key())
    with pytest.raises(FormatError, match="predicate.keyid"):
        st.build_key_event("register", keyid=SIGNER.keyid, public_key=other, owner="alice")
    with pytest.raises(FormatError, match="predicate.event"):
        st.build_key_event("rotate", keyid=SIGNER.keyid, public_key=pk, owner="alice")
    with pytest.raises(FormatError):
        st.build_key_event("register", keyid=SIGNER.keyid, public_key=pk, owner="alice", reason="x")
    with pytest.raises(FormatError, match="predicate.owner"):
        st.build_key_event("register", keyid=SIGNER.keyid, public_key=pk, owner="Alice Smith")
    env = dsse.sign_envelope(st.build_key_event("register", keyid=SIGNER.keyid, public_key=pk, owner="a"), "text/plain", SIGNER)
    with pytest.raises(FormatError, match="payloadType"):
        st.parse_key_event_envelope_unverified(env)


# ---------------------------------------------------------------- negative: release

def _mutated(payload: str, fn) -> bytes:
    doc = json.loads(payload)
    fn(doc)
    return canonical_json(doc)


def _set(path, value):
    def fn(doc):
        *head, last = path
        for k in head:
            doc = doc[k]
        if value is DELETE:
            del doc[last]
        else:
            doc[last] = value
    return fn


DELETE = object()
R = VECTORS["release_payload"]


@pytest.mark.parametrize("path, value, field", [
    (["_type"], "https://in-toto.io/Statement/v0.1", "_type"),
    (["_type"], DELETE, "missing"),
    (["extra"], 1, "unexpected"),
    (["predicateType"], "https://slsa.dev/provenance/v1", "predicateType"),
    (["subject"], [], "subject"),
    (["subject"], "x", "subject"),
    (["subject", 0, "digest"], {"sha512": "ab" * 64}, "sha256"),
    (["subject", 0, "digest", "sha256"], "AB" * 32, "subject[0].digest.sha256"),
    (["subject", 0, "digest", "sha256"], "ab" * 31, "subject[0].digest.sha256"),
    (["subject", 0, "name"], "../../etc/passwd", "subject[0].name"),
    (["subject", 0, "name"], "", "subject[0].name"),
    (["subject", 0, "extra"], 1, "unexpected"),
    (["predicate"], [], "predicate"),
    (["predicate", "namespace"], "Demo", "predicate.namespace"),
    (["predicate", "namespace"], DELETE, "namespace"),
    (["predicate", "model"], "a/b", "predicate.model"),
    (["predicate", "tag"], ".hidden", "predicate.tag"),
    (["predicate", "tag"], 5, "predicate.tag"),
    (["predicate", "version"], 0, "predicate.version"),
    (["predicate", "version"], "1", "predicate.version"),
    (["predicate", "version"], True, "predicate.version"),
    (["predicate", "version"], 1.5, "predicate.version"),
    (["predicate", "format"], "safetensors", "predicate.format"),
    (["predicate", "quantization"], "Q4 1", "predicate.quantization"),
    (["predicate", "base"], {"name": "demo/m:f16"}, "predicate.base"),
    (["predicate", "base", "name"], "not a ref", "predicate.base.name"),
    (["predicate", "base", "digest"], "sha256:xyz", "predicate.base.digest"),
    (["predicate", "base"], None, "both base and recipe"),
    (["predicate", "recipe"], None, "both base and recipe"),
    (["predicate", "recipe", "tool"], DELETE, "predicate.recipe"),
    (["predicate", "recipe", "extra"], 1, "unexpected"),
    (["predicate", "recipe", "options"], [], "predicate.recipe.options"),
    (["predicate", "recipe", "imatrix"], "nope", "predicate.recipe.imatrix"),
    (["predicate", "recipe", "ftype"], -1, "predicate.recipe.ftype"),
    (["predicate", "model_card_digest"], "sha256:" + "0" * 63, "predicate.model_card_digest"),
    (["predicate", "created"], "2025-01-31 12:00:00", "predicate.created"),
    (["predicate", "created"], "2025-02-30T12:00:00Z", "predicate.created"),
    (["predicate", "created"], "2025-01-31T12:00:00+01:00", "predicate.created"),
    (["predicate", "surprise"], 1, "unexpected"),
])
def test_release_validator_rejects(path, value, field):
    with pytest.raises(FormatError) as exc:
        st.parse_release_statement(_mutated(R, _set(path, value)))
    assert field in str(exc.value) and str(exc.value).startswith("invalid statement")


def test_release_rejects_two_subjects_and_non_canonical_and_garbage():
    doc = json.loads(R)
    doc["subject"].append(doc["subject"][0])
    with pytest.raises(FormatError, match="must be the parts of one split GGUF"):
        st.parse_release_statement(canonical_json(doc))
    with pytest.raises(FormatError, match="canonical"):
        st.parse_release_statement(json.dumps(json.loads(R), indent=1).encode())
    for junk in (b"", b"null", b"[]", b"\xff", R.encode() + b" ", R.encode().replace(b'"version":3', b'"version":3,"version":4')):
        with pytest.raises(FormatError):
            st.parse_release_statement(junk)


def test_builder_validates_its_input():
    with pytest.raises(FormatError, match="predicate.version"):
        st.build_release_statement(**release_kwargs(version=0))
    with pytest.raises(FormatError, match="subject.digest"):
        st.build_release_statement(**release_kwargs(subject_digest="abc"))
    with pytest.raises(FormatError, match="subject.name"):
        st.build_release_statement(**release_kwargs(subject_name="a/b.gguf"))


# ---------------------------------------------------------------- negative: verdict, provenance, key event

V = VECTORS["verdict_payload"]


@pytest.mark.parametrize("path, value, field", [
    (["predicateType"], "urn:assay:release:v1", "predicateType"),
    (["predicate", "verificationResult"], "passed", "predicate.verificationResult"),
    (["predicate", "verificationResult"], DELETE, "verificationResult"),
    (["predicate", "verifier"], {"id": 1}, "predicate.verifier.id"),
    (["predicate", "timeVerified"], "yesterday", "predicate.timeVerified"),
    (["predicate", "inputAttestations"], [], "predicate.inputAttestations"),
    (["predicate", "inputAttestations", 0, "uri"], "urn:other", "predicate.inputAttestations"),
    (["predicate", "inputAttestations", 0, "digest"], {"sha256": "zz"}, "inputAttestations[0].digest.sha256"),
    (["predicate", "policy"], {}, "predicate.policy"),
    (["predicate", "verifiedLevels"], "SLSA_BUILD_LEVEL_3", "predicate.verifiedLevels"),
    (["predicate", "checks"], {}, "predicate.checks"),
    (["predicate", "checks", 0, "result"], "ok", "predicate.checks[0].result"),
    (["predicate", "checks", 0, "evidenceDigest"], "sha256:short", "predicate.checks[0].evidenceDigest"),
    (["predicate", "checks", 0, "summary"], DELETE, "predicate.checks[0]"),
    (["predicate", "checks", 1, "name"], "static", "repeats"),
    (["predicate", "checks", 1, "name"], "Bad Name", "predicate.checks[1].name"),
])
def test_verdict_validator_rejects(path, value, field):
    with pytest.raises(FormatError) as exc:
        st.parse_verdict_statement(_mutated(V, _set(path, value)))
    assert field in str(exc.value)


def _provenance() -> str:
    return st.build_provenance_statement(subject_name="m.gguf", subject_digest=D1, builder_id="b", recipe=RECIPE,
                                         resolved_dependencies=[{"uri": "assay:blob", "digest": {"sha256": "2e" * 32}}]).decode()


@pytest.mark.parametrize("path, value, field", [
    (["predicate", "buildDefinition", "buildType"], "https://example/other", "buildType"),
    (["predicate", "buildDefinition", "externalParameters"], [], "externalParameters"),
    (["predicate", "buildDefinition", "resolvedDependencies"], [{}], "resolvedDependencies[0]"),
    (["predicate", "buildDefinition", "resolvedDependencies"], [{"uri": "x", "digest": {"sha256": "no"}}], "resolvedDependencies[0].digest"),
    (["predicate", "runDetails", "builder"], {}, "predicate.runDetails.builder"),
    (["predicate", "runDetails", "metadata"], {"startedOn": "now"}, "startedOn"),
    (["predicate", "runDetails"], DELETE, "runDetails"),
])
def test_provenance_validator_rejects(path, value, field):
    with pytest.raises(FormatError) as exc:
        st.parse_provenance_statement(_mutated(_provenance(), _set(path, value)))
    assert field in str(exc.value)


K = dsse.parse_envelope(VECTORS["key_register_envelope"]).payload.decode()


@pytest.mark.parametrize("path, value, field", [
    (["predicate", "keyid"], "sha256:" + "0" * 64, "predicate.keyid"),
    (["predicate", "public_key"], "AAAA", "predicate.public_key"),
    (["predicate", "reason"], "x", "unexpected"),
    (["predicate", "time"], DELETE, "missing"),
    (["subject", 0, "name"], "other", "subject"),
])
def test_key_event_validator_rejects(path, value, field):
    with pytest.raises(FormatError) as exc:
        st.parse_key_event(_mutated(K, _set(path, value)))
    assert field in str(exc.value)


# ---------------------------------------------------------------- names

def test_names():
    assert parse_reference("demo/smollm2-135m:Q4_K_M") == ("demo", "smollm2-135m", "Q4_K_M")
    assert format_reference("a", "b.c", "_x") == "a/b.c:_x"
    assert validate_name("a" * 64) and validate_tag("T" * 128)
    assert NAME_RE.search("abc") and not NAME_RE.search("abc\n")


@pytest.mark.parametrize("ref", [
    "demo/model", "demo:tag", "Demo/m:t", "demo/m:", "/m:t", "demo/m/x:t", "demo/-m:t", "demo/m-:t", "demo/m:.t",
    "demo/m:-t", "demo/m:t/..", "../m:t", "demo/m:t\n", "a" * 65 + "/m:t", "demo/m:" + "t" * 129, "", None, 5, "demo/m:t t",
])
def test_bad_references(ref):
    with pytest.raises(FormatError):
        parse_reference(ref)


def test_fixed_verifier_event_and_step_result_vectors():
    """The formats of independent verifiers, built again and compared byte for byte, then parsed."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
    from make_vectors import fixed_release_payload, fixed_step_result_payload, fixed_verifier_event_payload

    from assay.core import keys

    payload = fixed_verifier_event_payload(SIGNER.keyid, keys.public_key_to_text(SIGNER.public_key))
    assert payload.decode() == VECTORS["verifier_event_payload"]
    event = st.parse_verifier_event(payload)
    assert (event.event, event.keyid, event.verifier, event.reason) == ("register", SIGNER.keyid, "cpu-1", None)
    assert json.loads(payload)["predicateType"] == "urn:assay:verifier-key:v1"
    step = fixed_step_result_payload(fixed_release_payload(), SIGNER.keyid)
    assert step.decode() == VECTORS["step_result_payload"]
    result = st.parse_step_result(step)
    assert (result.step, result.result, result.verifier_id) == ("static", "passed", SIGNER.keyid)
    assert result.release_statement_digest == VECTORS["release_statement_digest"]


@pytest.mark.parametrize("edit, problem", [
    (lambda p: p.update(event="rename"), "must be 'register' or 'revoke'"),
    (lambda p: p.update(verifier="../x"), "predicate.verifier"),
    (lambda p: p.update(keyid="sha256:" + "00" * 32), "but the public key's id is"),
    (lambda p: p.update(extra=1), "unexpected field"),
])
def test_verifier_event_validator_rejects(edit, problem):
    from assay.core.canonical import canonical_json

    doc = json.loads(VECTORS["verifier_event_payload"])
    edit(doc["predicate"])
    with pytest.raises(FormatError, match=problem):
        st.parse_verifier_event(canonical_json(doc))


@pytest.mark.parametrize("edit, problem", [
    (lambda p: p.update(result="maybe"), "must be one of"),
    (lambda p: p.update(evidence=[]), "must be an object"),
    (lambda p: p["verifier"].update(id="me"), "predicate.verifier.id"),
    (lambda p: p.pop("releaseStatement"), "predicate.releaseStatement is missing"),
])
def test_step_result_validator_rejects(edit, problem):
    from assay.core.canonical import canonical_json

    doc = json.loads(VECTORS["step_result_payload"])
    edit(doc["predicate"])
    with pytest.raises(FormatError, match=problem):
        st.parse_step_result(canonical_json(doc))


def test_verdicts_sign_evidence_by_digest_and_old_inline_evidence_still_reads():
    new = st.parse_verdict_statement(VECTORS["verdict_payload"].encode())
    assert all(set(c) == {"name", "result", "summary", "evidenceDigest"} for c in new.checks)
    static = next(c for c in new.checks if c["name"] == "static")
    assert static["evidenceDigest"] == st.evidence_digest({"tensors": 30})
    old = st.parse_verdict_statement(VECTORS["verdict_payload_inline_evidence"].encode())
    assert next(c for c in old.checks if c["name"] == "static")["evidence"] == {"tensors": 30}
    doc = json.loads(VECTORS["verdict_payload"])
    doc["predicate"]["checks"][0]["evidence"] = {}
    with pytest.raises(FormatError, match="exactly one of evidence and evidenceDigest"):
        st.parse_verdict_statement(canonical_json(doc))


def test_matching_evidence_refuses_a_document_the_verdict_does_not_name():
    from assay.core.errors import VerificationError
    from assay.core.evidence import matching_evidence

    verdict = st.parse_verdict_statement(VECTORS["verdict_payload"].encode())
    served = {"verifiers": [{"keyid": verdict.verifier_id, "checks": [
        {"name": "static", "evidence": {"tensors": 30}}, {"name": "probes", "evidence": {"top1": 0.5, "kl": 0.012}}]}]}
    with pytest.raises(VerificationError, match="the registry's evidence for the probes check hashes to"):
        matching_evidence(verdict, served)
    served["verifiers"][0]["checks"][1]["evidence"] = {"top1": 0.97, "kl": 0.012}
    assert matching_evidence(verdict, served) == {"static": {"tensors": 30}, "probes": {"top1": 0.97, "kl": 0.012}}


def _split_statement(names, digests=None):
    digests = digests or ["sha256:" + f"{i:x}" * 64 for i in range(1, len(names) + 1)]
    parts = list(zip(names, digests))
    return st.build_release_statement(**release_kwargs(subject_name=names[0], subject_digest=digests[0], parts=parts))


def test_a_split_release_names_every_part_in_order():
    names = ["m-Q8_0-00001-of-00003.gguf", "m-Q8_0-00002-of-00003.gguf", "m-Q8_0-00003-of-00003.gguf"]
    stmt = st.parse_release_statement(_split_statement(names))
    assert stmt.is_split and [n for n, _ in stmt.parts] == names
    assert (stmt.subject_name, stmt.subject_digest) == stmt.parts[0]
    assert not st.parse_release_statement(R.encode()).is_split


@pytest.mark.parametrize("names,problem", [
    (["m-00001-of-00003.gguf", "m-00002-of-00003.gguf"], "names 2 parts of a split of 3"),
    (["m-00001-of-00002.gguf", "n-00002-of-00002.gguf"], r"subject\[1\] must be 'm-00002-of-00002.gguf'"),
    (["m-00002-of-00002.gguf", "m-00001-of-00002.gguf"], r"subject\[0\] must be 'm-00001-of-00002.gguf'"),
    (["a.gguf", "b.gguf"], "must be the parts of one split GGUF"),
])
def test_bad_split_sets_are_refused(names, problem):
    with pytest.raises(FormatError, match=problem):
        _split_statement(names)


def test_a_split_names_different_bytes_for_each_part():
    names = ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]
    with pytest.raises(FormatError, match="same bytes twice"):
        _split_statement(names, ["sha256:" + "a" * 64] * 2)
