"""Independent verifiers: registration by the registry's staff (logged, proof of possession), the
public list and trust info, and the registry refusing what a verifier may not post: a verdict by
an unregistered or revoked key, for the wrong digest, for a job it was not given, or one that
disagrees with the step results it reported. Nothing refused is logged.

The verifier is the real one (its own key and folder), talking to the registry's views through
httpx's WSGI transport in this process (tests/support/pipeline.py)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from assay.core import dsse, keys, levels, statements
from assay.client import logaudit
from assay.client.http import RegistryHTTPError
from registry import tlog
from registry.models import LogEntry, Release, VerificationStep, Verifier
from registry.verifiers import register_verifier, revoke_verifier
from tests.support import factories as f
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)
from tests.support.pipeline import alice, base_decided, claim, posted, publish, verifier_client  # noqa: F401  (alice: fixture)
from verifier import attestation, identity, pipeline

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]
JSON = "application/json"
S = VerificationStep


def staff_headers() -> dict:
    admin = f.user("root", is_staff=True)
    _, secret = f.token(admin, scopes=("read", "publish", "admin"))
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def other_verifier(tmp_path, name: str = "other"):
    """A second verifier with a key of its own, registered."""
    folder = tmp_path / name
    verifier, token = register_verifier(identity.registration_envelope(name, folder), name=name)
    return verifier, token, identity.signing_key(folder)


@pytest.fixture
def release(alice):  # noqa: F811
    user, signer = alice
    rel = f.release(user, signer, namespace="alice", model="m", data=b"GGUF bytes of a pretend original model")
    return rel


def signed_verdict(rel: Release, signer, *, digest: str | None = None, passed: bool = True, checks: list | None = None) -> dict:
    payload = statements.build_verdict_statement(
        subject_name=rel.file_name, subject_digest=digest or rel.blob_id, verifier_id=keys.key_id(signer.public_key()),
        time_created=None, resource_uri="assay:x", policy_uri=attestation.POLICY_URI,
        release_statement_digest=rel.statement_digest, passed=passed, checks=checks or [], level=levels.Level(levels.ORIGINAL))
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


def finished_checks(rel: Release) -> list[dict]:
    posted(rel, "static", S.PASSED, "ok", {"summary": {"tensor_types": {"F16": 2}}})
    posted(rel, "reproduce", S.SKIPPED, "original")
    posted(rel, "probes", S.PASSED, "ok")
    return [{"name": s.name, "result": s.status, "summary": s.summary, "evidence": s.evidence}
            for s in sorted(rel.steps.exclude(name="attest"), key=lambda s: S.CHECKS.index(s.name))]


# ------------------------------------------------------------------ registration

def test_staff_registers_a_verifier_and_the_registration_is_logged_and_listed(tmp_path):
    headers = staff_headers()
    c, before = Client(), tlog.size()
    envelope = identity.registration_envelope("cpu-1", tmp_path / "v")
    r = c.post("/api/v1/verifiers", json.dumps({"name": "cpu-1", "envelope": envelope}), content_type=JSON, **headers)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["token"].startswith("assay_verifier_") and body["keyid"] == identity.verifier_id(tmp_path / "v")
    entry = LogEntry.objects.get(index=body["registration_log_index"])
    assert entry.kind == "verifier-register" and tlog.size() == before + 1
    assert logaudit.entry_kind(json.loads(bytes(entry.data))) == "verifier-register"
    listed = c.get("/api/v1/verifiers").json()["verifiers"]
    assert [(v["name"], v["keyid"]) for v in listed] == [("cpu-1", body["keyid"])] and "token" not in listed[0]
    trust = c.get("/api/v1/trust").json()
    assert trust["verifier_keys"] == [{"keyid": body["keyid"], "public_key": listed[0]["public_key"], "name": "cpu-1"}]
    # the registry never had the private key: only the verifier's folder holds it
    assert (tmp_path / "v" / "verifier.key").exists() and Verifier.objects.get(name="cpu-1").public_key == listed[0]["public_key"]


@pytest.mark.parametrize("case, status, message", [
    ("not staff", 403, "only the registry's staff"),
    ("publish-only token", 403, "'admin' scope"),
    ("signed by another key", 400, "verifier registration refused"),
    ("names another verifier", 400, "names verifier 'cpu-2'"),
    ("bad name", 400, "is invalid"),
    ("taken name", 409, "already registered"),
])
def test_bad_registrations_are_refused_and_nothing_is_logged(tmp_path, case, status, message):
    c = Client()
    register_verifier(identity.registration_envelope("taken", tmp_path / "t"), name="taken")
    headers, name = staff_headers(), "cpu-1"
    envelope = identity.registration_envelope("cpu-1", tmp_path / "v")
    if case == "not staff":
        _, secret = f.token(f.user("eve"))
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    elif case == "publish-only token":
        _, secret = f.token(f.user("ops", is_staff=True), scopes=("publish",))
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    elif case == "signed by another key":
        envelope = {**envelope, "signatures": identity.registration_envelope("cpu-1", tmp_path / "w")["signatures"]}
    elif case == "names another verifier":
        envelope = identity.registration_envelope("cpu-2", tmp_path / "v")
    elif case == "bad name":
        name = "../etc"
    elif case == "taken name":
        name, envelope = "taken", identity.registration_envelope("taken", tmp_path / "v")
    before = tlog.size()
    r = c.post("/api/v1/verifiers", json.dumps({"name": name, "envelope": envelope}), content_type=JSON, **headers)
    assert r.status_code == status and message in r.json()["error"], r.content
    assert tlog.size() == before


def test_revoked_verifier_is_logged_loses_its_token_and_leaves_the_trust_info(tmp_path):
    verifier, token, _ = other_verifier(tmp_path, "old")
    c = Client()
    r = c.post("/api/v1/verifiers/old/revoke", json.dumps({"reason": "host decommissioned"}), content_type=JSON, **staff_headers())
    assert r.status_code == 200 and r.json()["revoked"]
    entry = LogEntry.objects.get(index=r.json()["revocation_log_index"])
    event = statements.parse_verifier_event(dsse.parse_envelope(json.loads(bytes(entry.data))).payload)
    assert (entry.kind, event.event, event.reason) == ("verifier-revoke", "revoke", "host decommissioned")
    assert c.get("/api/v1/trust").json()["verifier_keys"] == []
    r = c.post("/api/v1/verifier/jobs/1/claim", "{}", content_type=JSON, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 401 and "was revoked" in r.json()["error"]


# ------------------------------------------------------------------ what a verifier may post

def test_verdict_by_a_key_that_is_not_the_verifiers_is_refused_and_not_logged(release, tmp_path):
    client = verifier_client()
    checks = finished_checks(release)
    stranger = keys.generate_private_key()  # signs as if it were a verifier: registered nowhere
    before = tlog.size()
    with pytest.raises(RegistryHTTPError) as refused:
        client.post_verdict(release.pk, signed_verdict(release, stranger, checks=checks), None)
    assert refused.value.status == 400 and "verdict refused" in str(refused.value)
    assert tlog.size() == before and Release.objects.get(pk=release.pk).verdict_envelope is None


def test_verdict_for_the_wrong_digest_is_refused(release):
    client = verifier_client()
    checks = finished_checks(release)
    before = tlog.size()
    with pytest.raises(RegistryHTTPError, match="verdict refused: it is for sha256:0000"):
        client.post_verdict(release.pk, signed_verdict(release, identity.signing_key(), digest="sha256:" + "00" * 32, checks=checks), None)
    assert tlog.size() == before


def test_verdict_that_disagrees_with_the_reported_steps_is_refused(release):
    client = verifier_client()
    checks = finished_checks(release)
    me = identity.signing_key()
    with pytest.raises(RegistryHTTPError, match="which its own check results do not give"):
        client.post_verdict(release.pk, signed_verdict(release, me, checks=checks, passed=False), None)
    edited = [dict(c, summary="something else") if c["name"] == "probes" else c for c in checks]
    with pytest.raises(RegistryHTTPError, match="its probes check differs from the step result"):
        client.post_verdict(release.pk, signed_verdict(release, me, checks=edited), None)
    assert client.post_verdict(release.pk, signed_verdict(release, me, checks=checks), None)["status"] == "verified"


def level_verdict(rel: Release, checks: list, level: levels.Level, signer=None) -> dict:
    signer = signer or identity.signing_key()
    payload = statements.build_verdict_statement(
        subject_name=rel.file_name, subject_digest=rel.blob_id, verifier_id=keys.key_id(signer.public_key()),
        time_created=None, resource_uri="assay:x", policy_uri=attestation.POLICY_URI,
        release_statement_digest=rel.statement_digest, passed=True, checks=checks, level=level)
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


QUANT_RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "9.9.9", "ggml_build": "b1", "ftype": "Q8_0", "imatrix": None,
                "options": {}}


def quant_with_steps(alice, reproduce: str) -> Release:  # noqa: F811
    """A quant of alice/base:q4, its steps reported: static found Q8_0 tensors."""
    from registry.releases import create_release

    user, signer = alice
    base = f.release(user, signer, namespace="alice", model="base", data=b"GGUF base bytes")
    env = f.release_envelope(signer, digest=f.blob(b"GGUF quant bytes", user), namespace="alice", model="quant",
                             quantization="Q8_0", base={"name": base.reference, "digest": base.blob_id}, recipe=QUANT_RECIPE)
    quant = create_release(user, None, env)
    base_decided(base.blob_id)
    verifier_client()
    posted(quant, "static", S.PASSED, "ok", {"summary": {"tensor_types": {"Q8_0": 2}}})
    posted(quant, "reproduce", reproduce, "rebuilt" if reproduce == S.PASSED else "no verifier can rebuild it")
    posted(quant, "probes", S.PASSED, "ok")
    return quant


def quant_checks(quant: Release) -> list[dict]:
    return [{"name": s.name, "result": s.status, "summary": s.summary, "evidence": s.evidence}
            for s in sorted(quant.steps.exclude(name="attest"), key=lambda s: S.CHECKS.index(s.name))]


def quant_provenance(quant: Release, *, recipe: dict = QUANT_RECIPE, base_digest: str | None = None) -> dict:
    me = identity.signing_key()
    return dsse.sign_envelope(statements.build_provenance_statement(
        subject_name=quant.file_name, subject_digest=quant.blob_id, builder_id=keys.key_id(me.public_key()), recipe=recipe,
        resolved_dependencies=[{"uri": "assay:blob", "digest": {"sha256": (base_digest or quant.base_digest).split(":")[1]}}]),
        statements.PAYLOAD_TYPE, me)


def assert_refused_and_nothing_logged(post, rel: Release, message: str) -> None:
    before = tlog.size()
    with pytest.raises(RegistryHTTPError) as refused:
        post()
    assert refused.value.status == 400 and message in str(refused.value), str(refused.value)
    after = Release.objects.get(pk=rel.pk)
    assert tlog.size() == before and after.verdict_envelope is None and after.status not in (Release.VERIFIED, Release.REJECTED)


@pytest.mark.parametrize("level, message", [
    (levels.Level(levels.REPRODUCED, (levels.ChainLink("alice/nothing:q4", 1, "sha256:" + "ab" * 32, levels.ORIGINAL),)),
     "verdict refused: its level 'reproduced' names a build chain (built from alice/nothing:q4@1 (original)), but the release names no base"),
    (levels.Level(levels.CONVERTED), "verdict refused: it is said to be converted, but its signed statement has no conversion recipe"),
])
def test_a_level_the_original_and_its_steps_do_not_support_is_refused_and_not_logged(release, level, message):
    client = verifier_client()
    checks = finished_checks(release)  # no base, no recipe, reproduce skipped
    assert_refused_and_nothing_logged(lambda: client.post_verdict(release.pk, level_verdict(release, checks, level), None),
                                      release, message)
    assert client.post_verdict(release.pk, level_verdict(release, checks, levels.Level(levels.ORIGINAL)), None)["level"] == "original"


def test_a_quant_not_rebuilt_signed_original_is_refused_and_not_logged(alice):  # noqa: F811
    quant = quant_with_steps(alice, S.SKIPPED)
    client, checks = verifier_client(), quant_checks(quant)
    assert_refused_and_nothing_logged(
        lambda: client.post_verdict(quant.pk, level_verdict(quant, checks, levels.Level(levels.ORIGINAL)), None), quant,
        "verdict refused: its level is 'original', but the release names base alice/base:q4")
    unrebuilt = levels.Level(levels.UNREPRODUCED, (), "no verifier can rebuild it")
    assert client.post_verdict(quant.pk, level_verdict(quant, checks, unrebuilt), None)["level"] == "unreproduced"


def test_a_quants_chain_or_provenance_for_another_base_is_refused_and_not_logged(alice):  # noqa: F811
    quant = quant_with_steps(alice, S.PASSED)
    client, checks = verifier_client(), quant_checks(quant)
    other = "sha256:" + "cd" * 32
    elsewhere = levels.Level(levels.REPRODUCED, (levels.ChainLink("bob/other:f16", 3, other, levels.ORIGINAL),))
    honest = levels.Level(levels.REPRODUCED, (levels.ChainLink("alice/base:q4", 1, quant.base_digest, levels.ORIGINAL),))
    assert_refused_and_nothing_logged(
        lambda: client.post_verdict(quant.pk, level_verdict(quant, checks, elsewhere), quant_provenance(quant)), quant,
        f"verdict refused: its chain starts at bob/other:f16@3 ({other}), but the release names base alice/base:q4 ({quant.base_digest})")
    assert_refused_and_nothing_logged(
        lambda: client.post_verdict(quant.pk, level_verdict(quant, checks, honest),
                                    quant_provenance(quant, recipe={**QUANT_RECIPE, "ftype": "Q2_K"}, base_digest=other)), quant,
        "verdict refused: the reproduction provenance does not name the base alice/base:q4")
    assert_refused_and_nothing_logged(
        lambda: client.post_verdict(quant.pk, level_verdict(quant, checks, honest),
                                    quant_provenance(quant, recipe={**QUANT_RECIPE, "ftype": "Q2_K"})), quant,
        "verdict refused: the reproduction provenance rebuilt file type Q2_K, the signed recipe says Q8_0")
    out = client.post_verdict(quant.pk, level_verdict(quant, checks, honest), quant_provenance(quant))
    assert out["status"] == "verified" and out["level"] == "reproduced"


def test_verifier_cannot_post_for_a_job_it_was_not_given(release, tmp_path):
    mine = verifier_client()
    finished_checks(release)  # the test verifier claimed the job and reported its steps
    _, token, other_key = other_verifier(tmp_path)
    other = verifier_client_for(token)
    before = tlog.size()
    with pytest.raises(RegistryHTTPError) as refused:
        other.claim(release.pk, {})
    assert refused.value.status == 409 and "held by verifier 'test-verifier'" in str(refused.value)
    for call in (lambda: other.begin_step(release.pk, "probes"),
                 lambda: other.post_verdict(release.pk, signed_verdict(release, other_key), None),
                 lambda: other.report_error(release.pk, "sabotage")):
        with pytest.raises(RegistryHTTPError, match="was not given to verifier 'other'"):
            call()
    assert tlog.size() == before and Release.objects.get(pk=release.pk).status != Release.ERROR
    # nor read the blobs of a job it does not hold
    r = Client().get(f"/api/v1/blobs/{release.blob_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 403 and "belongs to no job verifier 'other' holds" in r.json()["error"]
    assert mine.post_verdict(release.pk, pipeline_verdict(release), None)["status"] == "verified"


def verifier_client_for(token: str):
    import httpx
    from django.core.handlers.wsgi import WSGIHandler

    from tests.support.pipeline import URL, _InProcessWSGI
    from verifier.registry_api import VerifierClient

    client = VerifierClient(URL, token)
    client.http = httpx.Client(base_url=URL, headers=dict(client.http.headers), transport=_InProcessWSGI(app=WSGIHandler()))
    return client


def pipeline_verdict(rel: Release) -> dict:
    from verifier.job import Job

    _, job = claim(rel.pk)
    results = attestation.own_step_results(job, identity.signing_key())
    verdict, _ = attestation.sign_verdict(job, results, S.CHECKS, levels.Level(levels.ORIGINAL), identity.signing_key())
    assert isinstance(job, Job)
    return verdict


def test_requeued_job_taken_by_another_verifier_runs_the_steps_again(release, tmp_path):
    """A verdict covers only step results its own verifier signed."""
    from registry.queueing import enqueue_verification

    finished_checks(release)
    Release.objects.filter(pk=release.pk).update(status=Release.ERROR)  # e.g. the first verifier's host died
    try:
        enqueue_verification(release.pk)
    except Exception:  # noqa: BLE001 - the broker may be elsewhere; only the database side matters here
        pass
    _, token, _ = other_verifier(tmp_path)
    job = verifier_client_for(token).claim(release.pk, {})
    assert {s["name"]: s["status"] for s in job["steps"]} == {"static": "pending", "reproduce": "pending", "probes": "pending"}


def test_revoked_verifiers_verdict_is_refused(release, tmp_path):
    client = verifier_client()
    checks = finished_checks(release)
    revoke_verifier("test-verifier", "key leaked")
    with pytest.raises(RegistryHTTPError) as refused:
        client.post_verdict(release.pk, signed_verdict(release, identity.signing_key(), checks=checks), None)
    assert refused.value.status == 401 and "was revoked" in str(refused.value)


def test_whole_verification_through_the_api_signs_with_the_verifiers_own_key(alice, tmp_path):  # noqa: F811
    from tests.support.pipeline import stored_file
    from tests.support.tiny_gguf import write_tiny_llama

    user, signer = alice
    release = publish(user, signer, stored_file(write_tiny_llama(tmp_path / "t.gguf"), user), model="m", quantization="F16")
    client = verifier_client()
    status = pipeline.verify_release(client, release.pk, work_dir=pipeline._jobs_dir())
    rel = Release.objects.get(pk=release.pk)
    assert status == rel.status and rel.verifier.name == "test-verifier"
    mine = {identity.verifier_id(): identity.signing_key().public_key()}
    assert dsse.verify_envelope(rel.verdict_envelope, mine).keyid == identity.verifier_id()
    assert all(dsse.verify_envelope(s.envelope, mine) for s in rel.steps.exclude(name="attest"))
    assert rel.status == Release.VERIFIED, rel.status_reason
    html = Client().get(f"/alice/m/releases/{rel.tag}/{rel.version}").content.decode()  # which verifier vouched for it
    assert 'id="verifier"' in html and "test-verifier" in html and identity.verifier_id() in html
    trust_page = Client().get("/trust").content.decode()
    assert "test-verifier" in trust_page and identity.verifier_id() in trust_page


# ------------------------------------------------------------------ the service has no database

def test_the_verifier_service_imports_neither_the_registry_nor_a_database_layer():
    # (kombu imports django.utils.functional by itself when Django is installed: not a database layer)
    code = ("import sys, verifier.tasks, verifier.pipeline, verifier.__main__; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('registry', 'psycopg', 'psycopg2') "
            "or m.startswith(('django.db', 'django.conf', 'django.apps'))); "
            "assert not bad, bad")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(Path(__file__).resolve().parents[2]))
    assert result.returncode == 0, result.stderr


def test_log_auditor_checks_verifier_key_events(tmp_path):
    """Registrations must be signed by the key itself, revocations by the log key."""
    from registry.serverkeys import log_key

    envelope = identity.registration_envelope("cpu-1", tmp_path / "v")
    event = statements.parse_verifier_event(dsse.parse_envelope(envelope).payload)

    class Policy:
        def log_keyid(self):
            return keys.key_id(log_key().public_key())

        def log_public_key(self):
            return log_key().public_key()

    assert logaudit.verify_verifier_event(envelope, Policy()).keyid == event.keyid
    forged = dsse.sign_envelope(dsse.parse_envelope(envelope).payload, statements.PAYLOAD_TYPE, keys.generate_private_key())
    with pytest.raises(Exception, match="signature|trusted"):
        logaudit.verify_verifier_event(forged, Policy())
    revoke = dsse.sign_envelope(statements.build_verifier_event("revoke", keyid=event.keyid, public_key=event.public_key, verifier="cpu-1"),
                                statements.PAYLOAD_TYPE, identity.signing_key(tmp_path / "v"))
    with pytest.raises(Exception, match="signature|trusted"):
        logaudit.verify_verifier_event(revoke, Policy())  # a verifier cannot "revoke" itself in the log's name


# ------------------------------------------------------------------ several verifiers, k of n

from tests.integration.test_tlog_cli import URL as CLI_URL  # noqa: E402
from tests.integration.test_tlog_cli import assay  # noqa: E402,F401  (fixture: the CLI against this registry)


def test_second_verifier_verifies_on_its_own_and_a_client_can_require_both(alice, assay, settings, tmp_path, monkeypatch):  # noqa: F811
    """With ASSAY_VERIFIERS_PER_RELEASE=2 the registry asks a second registered verifier, which
    runs every step itself and signs its own verdict. A client whose policy requires 2 verifiers
    refuses the release until that second verdict is logged, then takes it."""
    from assay.core.levels import ORIGINAL
    from registry.models import VerifierVerdict
    from tests.support.pipeline import run_all, stored_file
    from tests.support.tiny_gguf import write_tiny_llama

    settings.ASSAY_VERIFIERS_PER_RELEASE = 2
    first_dir = tmp_path / "verifier"
    verifier_client()  # the first verifier registers
    second, token, _ = other_verifier(tmp_path, "second")
    user, signer = alice
    path = write_tiny_llama(tmp_path / "t.gguf")
    rel = run_all(publish(user, signer, stored_file(path, user), model="m", quantization="F16"))
    assert rel.status == Release.VERIFIED and rel.level == ORIGINAL
    pending = VerifierVerdict.objects.get(release=rel, verifier=second)
    assert pending.envelope is None  # asked, not answered yet

    assay("trust", "add", CLI_URL, "--yes")  # pins both registered verifiers
    assay("policy", "set", "verifiers", "2", "-r", CLI_URL)
    message = assay("verify", str(path), "--release", "alice/m:q4", "-r", CLI_URL, fails="vouched for by 1 of the pinned verifiers")
    assert "requires 2" in message

    monkeypatch.setenv("ASSAY_VERIFIER_DIR", str(tmp_path / "second"))  # now this process is the second verifier's host
    other = verifier_client_for(token)
    assert pipeline.second_opinion(other, rel.pk, work_dir=tmp_path) == "PASSED"
    row = VerifierVerdict.objects.get(release=rel, verifier=second)
    assert row.passed and row.level == ORIGINAL and LogEntry.objects.get(index=row.log_index).kind == "verdict"
    assert dsse.verify_envelope(row.envelope, {second.keyid: keys.public_key_from_text(second.public_key)})
    with pytest.raises(RegistryHTTPError, match="already gave its verdict"):
        other.post_second_opinion(rel.pk, row.envelope, None, [])

    said = assay("verify", str(path), "--release", "alice/m:q4", "-r", CLI_URL)
    assert "OK:" in said and "2 pinned verifiers passed it" in said
    html = Client().get(f"/alice/m/releases/{rel.tag}/{rel.version}").content.decode()
    assert "test-verifier" in html and "second" in html and "(decided the status)" in html
    monkeypatch.setenv("ASSAY_VERIFIER_DIR", str(first_dir))


def test_a_second_opinion_carries_exactly_its_own_step_results(alice, settings, tmp_path):  # noqa: F811
    """Every step envelope a second opinion carries is stored and served as this release's evidence:
    one per step, each for this release. A foreign "probes failed" next to (or hidden behind) the
    verifier's own results is refused, and nothing is logged or stored."""
    from registry.models import VerifierVerdict
    from registry.verification import evidence_documents
    from verifier import steps as vsteps
    from verifier.job import Job

    settings.ASSAY_VERIFIERS_PER_RELEASE = 2
    user, signer = alice
    rel = f.release(user, signer, namespace="alice", model="m", data=b"GGUF bytes of a pretend original model")
    other_rel = f.release(user, signer, namespace="alice", model="other", data=b"GGUF bytes of another model")
    second, token, key = other_verifier(tmp_path, "second")
    assert verifier_client().post_verdict(rel.pk, signed_verdict(rel, identity.signing_key(), checks=finished_checks(rel)), None)["status"] == "verified"
    other = verifier_client_for(token)
    job = Job.from_api(other.job(rel.pk))
    envs = [attestation.sign_step(job, n, vsteps.StepOutcome(st, "ok", {"mine": True}), key)
            for n, st in (("static", "passed"), ("reproduce", "skipped"), ("probes", "passed"))]
    foreign = dsse.sign_envelope(statements.build_step_result(
        subject_name=other_rel.file_name, subject_digest=other_rel.blob_id, release_statement_digest=other_rel.statement_digest,
        verifier_id=second.keyid, step="probes", result="failed", summary="BACKDOOR found", evidence={"from": "another release"}),
        statements.PAYLOAD_TYPE, key)
    results = {n: statements.parse_step_result(dsse.parse_envelope(e).payload) for n, e in zip(S.CHECKS, envs)}
    verdict, _ = attestation.sign_verdict(job, results, S.CHECKS, levels.Level(levels.ORIGINAL), key)
    before = tlog.size()
    for steps, message in (([foreign] + envs, "exactly one signed result for each of the steps static, reproduce, probes, not 4"),
                           (envs + envs, "not 6"), (envs[:2], "not 2"),
                           ([envs[0], foreign, envs[2]], "more than one signed result for step 'probes'"),
                           ([envs[0], envs[1], foreign], "step result refused: it is for " + other_rel.blob_id)):
        with pytest.raises(RegistryHTTPError, match=re.escape(message)) as refused:
            other.post_second_opinion(rel.pk, verdict, None, steps)
        assert refused.value.status == 400
    row = VerifierVerdict.objects.get(release=rel, verifier=second)
    assert tlog.size() == before and row.envelope is None and not row.steps
    assert other.post_second_opinion(rel.pk, verdict, None, envs)["passed"] is True
    served = [d for d in evidence_documents(Release.objects.get(pk=rel.pk)) if d["verifier"] == "second"]
    assert [(c["name"], c["evidence"]["mine"]) for c in served[0]["checks"]] == [("static", True), ("reproduce", True), ("probes", True)]


def test_second_opinion_from_a_verifier_nobody_asked_is_refused(release, tmp_path):
    finished_checks(release)
    _, token, key = other_verifier(tmp_path, "volunteer")
    before = tlog.size()
    with pytest.raises(RegistryHTTPError, match="was not given to verifier 'volunteer' for a second opinion"):
        verifier_client_for(token).post_second_opinion(release.pk, signed_verdict(release, key), None, [])
    with pytest.raises(RegistryHTTPError) as refused:
        verifier_client_for(token).job(release.pk)
    assert refused.value.status == 409 and tlog.size() == before


# ------------------------------------------------------------------ capability routing

def test_jobs_are_routed_by_build_and_wait_visibly_for_a_verifier_that_can_take_them(alice, tmp_path):  # noqa: F811
    from assay.core import queueconfig
    from registry.routing import route
    from registry.verifiers import record_capabilities

    user, signer = alice
    base = f.release(user, signer, namespace="alice", model="base", data=b"GGUF base bytes")
    recipe = {"tool": "llama.cpp", "llama_cpp_python_version": "9.9.9", "ggml_build": "llama-cpp-python/9.9.9 ggml/9 commit/abc",
              "ftype": "Q8_0", "imatrix": None, "options": {}}
    env = f.release_envelope(signer, digest=f.blob(b"GGUF quant bytes", user), namespace="alice", model="quant",
                             quantization="Q8_0", base={"name": "alice/base:q4", "digest": base.blob_id}, recipe=recipe)
    from registry.releases import create_release

    quant = create_release(user, None, env)
    client = verifier_client()  # registered; it advertises this machine's build
    here = pipeline.capabilities()
    record_capabilities(Verifier.objects.get(name="test-verifier"), here)
    queue, waiting = route(quant)
    assert queue == queueconfig.build_queue(recipe["ggml_build"]) and queue != queueconfig.verify_queue()
    assert waiting == f"waiting for a verifier with llama.cpp build {recipe['ggml_build']} (the build its recipe names)"
    assert route(base) == (None, "")  # an original: any verifier, the shared queue
    # A quant made with an importance matrix is rebuilt (and its matrix recomputed) by that build too.
    with_matrix = {**recipe, "ftype": "Q4_K_M", "imatrix": f.blob(b"an importance matrix", user), "options": {"imatrix_name": "m.imatrix"}}
    imatrix_quant = create_release(user, None, f.release_envelope(
        signer, digest=f.blob(b"GGUF imatrix quant bytes", user), namespace="alice", model="iquant", quantization="Q4_K_M",
        base={"name": "alice/base:q4", "digest": base.blob_id}, recipe=with_matrix))
    assert route(imatrix_quant)[0] == queueconfig.build_queue(recipe["ggml_build"])

    with pytest.raises(RegistryHTTPError) as refused:  # a verifier of another build does not take it...
        client.claim(quant.pk, here)
    assert refused.value.status == 409 and refused.value.body["fits"] is False
    quant.refresh_from_db()
    assert quant.verifier is None and quant.status_reason.startswith("waiting for a verifier with llama.cpp build")
    # ...one of that build does (once the base is decided: test_a_quant_waits_visibly_while_its_base_is_undecided),
    # and the release stops waiting
    base_decided(base.blob_id)
    record_capabilities(Verifier.objects.get(name="test-verifier"), {**here, "ggml_build": recipe["ggml_build"]})
    assert client.claim(quant.pk, {**here, "ggml_build": recipe["ggml_build"]})["digest"] == quant.blob_id
    quant.refresh_from_db()
    assert quant.verifier.name == "test-verifier" and quant.status_reason == ""


def test_a_verifier_too_small_for_the_model_does_not_take_it(release):
    client = verifier_client()
    tiny = {**pipeline.capabilities(), "ram_total_bytes": 64 * 1024**2, "gpus": [], "gpu_offload_supported": False}
    with pytest.raises(RegistryHTTPError, match="needs about 0.5 GB of RAM .or of RAM and GPU VRAM together.; "
                                                "verifier 'test-verifier' has 0.1 GB"):
        client.claim(release.pk, tiny)
    release.refresh_from_db()
    assert release.status_reason == "waiting for a verifier with about 0.5 GB of RAM, or of RAM and GPU VRAM together"
    r = Client().get("/api/v1/verifiers").json()["verifiers"][0]
    assert r["capabilities"]["ram_total_bytes"] == 64 * 1024**2 and r["last_seen"]
    # a GPU whose llama.cpp build cannot offload adds nothing...
    gpu = [{"index": 0, "name": "GPU", "vram_total_bytes": 24 * 1024**3, "vram_free_bytes": 24 * 1024**3}]
    with pytest.raises(RegistryHTTPError) as no_offload:
        client.claim(release.pk, {**tiny, "gpus": gpu})
    assert "verifier 'test-verifier' has 0.1 GB" in str(no_offload.value) and "GB of GPU VRAM" not in str(no_offload.value)
    # ...one that can holds the layers that do not fit in RAM
    assert client.claim(release.pk, {**tiny, "gpus": gpu, "gpu_offload_supported": True})["digest"] == release.blob_id
    release.refresh_from_db()
    assert release.status_reason == ""


def test_verifier_advertises_what_it_can_run(tmp_path):
    client = verifier_client()
    me = client.post_json("/api/v1/verifier/me", {"capabilities": pipeline.capabilities()})
    assert me["name"] == "test-verifier" and me["capabilities"]["ggml_build"] and me["capabilities"]["ram_total_bytes"] > 0
    with pytest.raises(RegistryHTTPError, match="capabilities must be a JSON object"):
        client.post_json("/api/v1/verifier/me", {"capabilities": ["gpu"]})


def test_the_verifier_task_puts_back_a_job_it_cannot_take(release, monkeypatch):
    """The task is retried later (back on its queue for another verifier), not failed."""
    client = verifier_client()
    monkeypatch.setattr(pipeline, "capabilities", lambda: {"ram_total_bytes": 1024**2})
    with pytest.raises(pipeline.DoesNotFit, match="does not fit this verifier"):
        pipeline.verify_release(client, release.pk, work_dir=pipeline._jobs_dir())
    assert Release.objects.get(pk=release.pk).status not in (Release.ERROR, Release.REJECTED)


@pytest.mark.parametrize("base_status, base_is", [
    (Release.UPLOADED, "not yet queued"), (Release.QUEUED, "queued"), (Release.VERIFYING, "being verified"),
    (Release.ERROR, "its verification stopped with an error"), (Release.VERIFIED, None), (Release.REJECTED, None)])
def test_a_quant_waits_visibly_while_its_base_is_undecided(alice, base_status, base_is):  # noqa: F811
    """Verified before its base, a quant would find no verified base and stay unreproduced for good:
    its job is put back (like one no verifier fits) until the base is verified or rejected."""
    from registry.releases import create_release
    from registry.routing import route

    user, signer = alice
    base = f.release(user, signer, namespace="alice", model="base", data=b"GGUF base bytes")
    client = verifier_client()  # registered; it advertises this machine's build, which the recipe names
    recipe = {**QUANT_RECIPE, "ggml_build": pipeline.capabilities()["ggml_build"]}
    quant = create_release(user, None, f.release_envelope(
        signer, digest=f.blob(b"GGUF quant bytes", user), namespace="alice", model="quant", quantization="Q8_0",
        base={"name": base.reference, "digest": base.blob_id}, recipe=recipe))
    Release.objects.filter(pk=base.pk).update(status=base_status)
    waiting = f"waiting for its base {base.reference} to be verified (the base is {base_is}"
    if base_is is None:  # decided: the quant is taken at once
        assert not route(quant)[1].startswith("waiting for its base")
        assert client.claim(quant.pk, {})["digest"] == quant.blob_id
        return
    assert route(quant)[1].startswith(waiting)
    with pytest.raises(RegistryHTTPError) as refused:
        client.claim(quant.pk, {})
    assert refused.value.status == 409 and refused.value.body["fits"] is False and "cannot be taken yet" in str(refused.value)
    with pytest.raises(pipeline.DoesNotFit, match="waiting for its base"):  # the task puts it back for a later try
        pipeline.verify_release(client, quant.pk, work_dir=pipeline._jobs_dir())
    quant.refresh_from_db()
    assert quant.verifier is None and quant.status in (Release.UPLOADED, Release.QUEUED) and quant.status_reason.startswith(waiting)
    Release.objects.filter(pk=base.pk).update(status=Release.VERIFIED)  # the base's verdict came
    assert client.claim(quant.pk, {})["digest"] == quant.blob_id
    quant.refresh_from_db()
    assert quant.verifier is not None and quant.status_reason == ""


# ------------------------------------------------------------------ second opinions: routing, revocation, timeouts

def _verified_with_a_second_asked(alice, settings, tmp_path):  # noqa: F811
    """A release the first verifier verified, with ASSAY_VERIFIERS_PER_RELEASE=2: `second` is asked."""
    from registry.models import VerifierVerdict

    settings.ASSAY_VERIFIERS_PER_RELEASE = 2
    user, signer = alice
    rel = f.release(user, signer, namespace="alice", model="m", data=b"GGUF bytes of a pretend original model")
    client = verifier_client()
    second, token, key = other_verifier(tmp_path, "second")
    assert client.post_verdict(rel.pk, signed_verdict(rel, identity.signing_key(), checks=finished_checks(rel)), None)["status"] == "verified"
    assert VerifierVerdict.objects.filter(release=rel, verifier=second, envelope__isnull=True).exists()
    return Release.objects.get(pk=rel.pk), second, token, key


def _second_opinion_posted(rel: Release, token: str, key) -> None:
    from verifier import steps as vsteps
    from verifier.job import Job

    other = verifier_client_for(token)
    job = Job.from_api(other.job(rel.pk))
    envs = [attestation.sign_step(job, n, vsteps.StepOutcome(st, "ok", {}), key)
            for n, st in (("static", "passed"), ("reproduce", "skipped"), ("probes", "passed"))]
    results = {n: statements.parse_step_result(dsse.parse_envelope(e).payload) for n, e in zip(S.CHECKS, envs)}
    verdict, _ = attestation.sign_verdict(job, results, S.CHECKS, levels.Level(levels.ORIGINAL), key)
    other.post_second_opinion(rel.pk, verdict, None, envs)


def _verifier_row(rel: Release) -> str:
    import re

    html = Client().get(f"/alice/m/releases/{rel.tag}/{rel.version}").content.decode()
    return re.search(r'<tr id="verifier">.*?</tr>', html, re.S).group(0)


def _quant_of_build(alice, build: str) -> Release:  # noqa: F811
    from registry.releases import create_release

    user, signer = alice
    base = f.release(user, signer, namespace="alice", model="base", data=b"GGUF base bytes")
    recipe = {"tool": "llama.cpp", "llama_cpp_python_version": "9.9.9", "ggml_build": build, "ftype": "Q8_0", "imatrix": None, "options": {}}
    env = f.release_envelope(signer, digest=f.blob(b"GGUF quant bytes", user), namespace="alice", model="quant",
                             quantization="Q8_0", base={"name": "alice/base:q4", "digest": base.blob_id}, recipe=recipe)
    return create_release(user, None, env)


def test_second_opinion_goes_only_to_a_verifier_the_job_fits(alice, tmp_path):  # noqa: F811
    """A quant's rebuild needs the build its recipe names: a verifier of another build, or with too
    little memory, is not asked (it would answer 'not judged' and post nothing)."""
    from registry.verification import request_second_opinions
    from registry.verifiers import record_capabilities

    quant = _quant_of_build(alice, "build-X")
    unfit, _, _ = other_verifier(tmp_path, "unfit")
    small, _, _ = other_verifier(tmp_path, "small")
    fit, _, _ = other_verifier(tmp_path, "fit")
    record_capabilities(fit, {"ggml_build": "build-X"})
    record_capabilities(small, {"ggml_build": "build-X", "ram_total_bytes": 1024})
    record_capabilities(unfit, {"ggml_build": "build-Y"})  # seen last: first in line, were it not for routing
    assert request_second_opinions(quant, wanted=3) == ["fit"]


def test_second_opinion_waits_visibly_for_a_verifier_that_can_take_it(alice, settings, tmp_path):  # noqa: F811
    from registry.verification import request_second_opinions, second_opinion_wait
    from registry.verifiers import record_capabilities

    settings.ASSAY_VERIFIERS_PER_RELEASE = 2
    quant = _quant_of_build(alice, "build-X")
    unfit, _, _ = other_verifier(tmp_path, "unfit")
    record_capabilities(unfit, {"ggml_build": "build-Y"})
    Release.objects.filter(pk=quant.pk).update(status=Release.VERIFIED)
    quant = Release.objects.get(pk=quant.pk)
    assert request_second_opinions(quant) == []
    wait = second_opinion_wait(quant)
    assert wait == ("second opinions: 0 of 2 verifiers vouch or are verifying; "
                    "waiting for another verifier with llama.cpp build build-X (the build its recipe names)")
    html = Client().get(f"/alice/quant/releases/{quant.tag}/{quant.version}").content.decode()
    assert wait in html
    status = Client().get(f"/alice/quant/releases/{quant.tag}/{quant.version}/status.json").json()
    assert status["second_opinions"] == wait


def test_revoking_an_asked_verifier_releases_its_request_to_another(alice, settings, tmp_path):  # noqa: F811
    from registry.models import VerifierVerdict
    from registry.verification import request_second_opinions, second_opinion_wait

    rel, second, _, _ = _verified_with_a_second_asked(alice, settings, tmp_path)
    third, _, _ = other_verifier(tmp_path, "third")
    revoke_verifier("second", "key leaked")  # releases its request: the third is asked at once
    assert VerifierVerdict.objects.filter(release=rel, verifier=third, envelope__isnull=True).exists()
    assert request_second_opinions(rel) == [] and second_opinion_wait(rel) == ""
    row = _verifier_row(rel)
    assert "second" in row and "revoked</span> in log index" in row and "before it answered: another verifier is asked" in row


def test_an_unanswered_second_opinion_is_released_after_the_timeout(alice, settings, tmp_path):  # noqa: F811
    from datetime import timedelta

    from django.utils import timezone

    from registry.models import VerifierVerdict
    from registry.verification import refresh_second_opinions, request_second_opinions, second_opinion_wait

    settings.ASSAY_SECOND_OPINION_TIMEOUT_S = 600
    rel, second, _, _ = _verified_with_a_second_asked(alice, settings, tmp_path)
    third, _, _ = other_verifier(tmp_path, "third")
    assert request_second_opinions(rel) == []  # the second's request is fresh: it counts
    VerifierVerdict.objects.filter(release=rel, verifier=second).update(requested=timezone.now() - timedelta(seconds=601))
    assert "another verifier will be asked" in second_opinion_wait(rel)
    assert "no answer within 10 min" in _verifier_row(rel)
    assert refresh_second_opinions() == {"releases": 1, "asked": 1}
    assert VerifierVerdict.objects.filter(release=rel, verifier=third, envelope__isnull=True).exists()
    assert refresh_second_opinions() == {"releases": 0, "asked": 0}
    # No verifier left that was never asked: the one that timed out is asked again.
    VerifierVerdict.objects.filter(release=rel, verifier=third).update(requested=timezone.now() - timedelta(seconds=601))
    VerifierVerdict.objects.filter(release=rel, verifier=second).update(requested=timezone.now() - timedelta(seconds=700))
    assert request_second_opinions(rel) == ["second"]


def test_a_revoked_verifiers_verdict_is_marked_and_no_longer_vouches(alice, settings, tmp_path):  # noqa: F811
    """The web page marks it revoked; the bundle still carries the logged verdict (the client
    learns the revocation from the log's key events and does not count it); another verifier is asked."""
    from registry.bundles import release_bundle
    from registry.models import VerifierVerdict
    from registry.verification import vouching

    rel, second, token, key = _verified_with_a_second_asked(alice, settings, tmp_path)
    _second_opinion_posted(rel, token, key)
    assert [v["verifier"] for v in vouching(rel) if v["vouches"]] == ["test-verifier", "second"]
    third, _, _ = other_verifier(tmp_path, "third")
    revoked = revoke_verifier("second", "key leaked")
    assert [v["verifier"] for v in vouching(rel) if v["vouches"]] == ["test-verifier"]
    row = _verifier_row(rel)
    assert f"revoked</span> in log index {revoked.revocation_log_index} (key leaked): its verdict does not vouch" in row
    assert VerifierVerdict.objects.filter(release=rel, verifier=third, envelope__isnull=True).exists()
    bundle = release_bundle(rel)
    assert [v["verifier"] for v in bundle["verdicts"]] == ["second"]
    events = tlog.key_events(0, tlog.size())  # what a client's catch-up reads: the revocation is listed
    assert revoked.revocation_log_index in [e["index"] for e in events["entries"]]


# ------------------------------------------------------------------ a revoked verifier's decisions are verified again

AGAIN = "verifying again: verifier test-verifier, whose verdict decided it, was revoked: key leaked"


def _decided_by_the_test_verifier(rel: Release, *, passed: bool = True) -> Release:
    checks = finished_checks(rel)
    if not passed:
        posted(rel, "probes", S.FAILED, "the model answers with garbage")
        checks = [dict(c, result="failed", summary="the model answers with garbage") if c["name"] == "probes" else c for c in checks]
    answer = verifier_client().post_verdict(rel.pk, signed_verdict(rel, identity.signing_key(), passed=passed, checks=checks), None)
    assert answer["status"] == ("verified" if passed else "rejected")
    return Release.objects.get(pk=rel.pk)


def _verified_through_the_api_by(rel: Release, token: str, key, *, probes: str = S.PASSED) -> dict:
    """What another verifier does with the job: claims it, runs and signs each step itself (every
    step is pending again: nothing of the revoked verifier's is left to reuse), signs the verdict."""
    from verifier import steps as vsteps
    from verifier.job import Job

    client = verifier_client_for(token)
    job = Job.from_api(client.claim(rel.pk, {}))
    assert [(s["status"], s["envelope"]) for s in job.steps] == [("pending", None)] * len(S.CHECKS)
    for name, status, evidence in (("static", S.PASSED, {"summary": {"tensor_types": {"F16": 2}}}),
                                   ("reproduce", S.SKIPPED, {}), ("probes", probes, {})):
        assert client.begin_step(rel.pk, name)["run"]
        client.finish_step(rel.pk, name, attestation.sign_step(job, name, vsteps.StepOutcome(status, "ok", evidence), key))
    job = Job.from_api(client.claim(rel.pk, {}))
    verdict, _ = attestation.sign_verdict(job, attestation.own_step_results(job, key), S.CHECKS, levels.Level(levels.ORIGINAL), key)
    return client.post_verdict(rel.pk, verdict, None)


@pytest.fixture
def sent(monkeypatch):
    """The verification tasks the registry sends (no broker needed): (release id, queue)."""
    from registry import queueing

    out = []
    monkeypatch.setattr(queueing.app, "send_task", lambda name, args=(), queue=None, **kw: out.append((args[0], queue))
                        if name == queueing.VERIFY_TASK else None)
    return out


def _anonymous_bundle(rel: Release):
    return Client().get(f"/api/v1/releases/{rel.reference}")


@pytest.mark.parametrize("passed", [True, False], ids=["verified", "rejected"])
def test_a_release_decided_by_a_revoked_verifier_is_verified_again_by_another(
        alice, tmp_path, sent, passed, django_capture_on_commit_callbacks):  # noqa: F811
    """Verified (or rejected: an honest release a compromised verifier refused) by a verifier that
    is then revoked: back in the queue with the reason, its old verdict no longer its own (the log
    keeps it), every step pending; another verifier verifies it afresh and its verdict is current."""
    from registry.bundles import release_bundle
    from registry.models import VerifierVerdict
    from registry.releases import release_visible, visible_releases

    user, signer = alice
    rel = _decided_by_the_test_verifier(f.release(user, signer, namespace="alice", model="m", data=b"GGUF bytes of m"), passed=passed)
    old_envelope, old_index = rel.verdict_envelope, rel.verdict_log_index
    assert old_index is not None and (_anonymous_bundle(rel).status_code == 200) == passed
    # A release another verifier decided is left alone.
    second, token, key = other_verifier(tmp_path, "second")
    others = f.release(user, signer, namespace="alice", model="n", data=b"GGUF bytes of n")
    assert _verified_through_the_api_by(others, token, key)["status"] == "verified"
    others_before = Release.objects.filter(pk=others.pk).values().get()

    with django_capture_on_commit_callbacks(execute=True):
        revoke_verifier("test-verifier", "key leaked")
    rel = Release.objects.get(pk=rel.pk)
    assert (rel.status, rel.status_reason, rel.verifier_id) == (Release.QUEUED, AGAIN, None)
    assert (rel.verdict_envelope, rel.verdict_log_index, rel.provenance_envelope, rel.level, rel.level_detail) == (None, None, None, "", None)
    assert [(s.status, s.envelope, s.summary) for s in rel.steps.all()] == [(S.PENDING, None, "")] * len(S.NAMES)
    assert sent == [(rel.pk, None)]  # queued as a new release is: an original goes to the shared queue
    # The log keeps the old verdict, and the page still lists it (marked revoked).
    assert json.loads(bytes(LogEntry.objects.get(index=old_index).data)) == old_envelope
    assert VerifierVerdict.objects.get(release=rel, verifier__name="test-verifier").log_index == old_index
    # Readers do not see it meanwhile; the bundle its publisher reads presents no verdict as current.
    assert _anonymous_bundle(rel).status_code == 404
    assert not visible_releases(None, rel.model.namespace, Release.objects.filter(pk=rel.pk)).exists()
    assert not release_visible(None, None, rel)
    bundle = release_bundle(rel)
    assert (bundle["status"], bundle["status_reason"], bundle["verdict_envelope"], bundle["level"]) == ("queued", AGAIN, None, None)
    assert "verdict" not in bundle["log"]["entries"] and "verdict" not in bundle["sealed"]
    page = Client()
    page.force_login(user)
    assert AGAIN in page.get(f"/alice/m/releases/{rel.tag}/{rel.version}").content.decode()
    assert page.get(f"/alice/m/releases/{rel.tag}/{rel.version}/status.json").json()["status_reason"] == AGAIN
    assert Release.objects.filter(pk=others.pk).values().get() == others_before

    answer = _verified_through_the_api_by(rel, token, key)
    rel = Release.objects.get(pk=rel.pk)
    assert (answer["status"], rel.status, rel.status_reason, rel.verifier_id, rel.level) == ("verified", Release.VERIFIED, "", second.pk, "original")
    assert dsse.verify_envelope(rel.verdict_envelope, {second.keyid: key.public_key()}).keyid == second.keyid
    assert rel.verdict_log_index > old_index
    bundle = _anonymous_bundle(rel).json()
    assert bundle["status"] == "verified" and bundle["verdict_envelope"] == rel.verdict_envelope
    assert bundle["log"]["entries"]["verdict"]["index"] == rel.verdict_log_index


def test_a_release_being_verified_again_survives_an_outage_a_second_revocation_and_requeue(
        release, tmp_path, monkeypatch, sent, django_capture_on_commit_callbacks):
    """The broker down at revocation: the revocation stands and the release stays queued with its
    reason; revoking a verifier that did not decide it changes nothing; `manage.py requeue` queues
    it; a verifier that takes the job keeps the reason; revoked while it holds the job, the release
    is queued again for another (and, none being left, says so besides)."""
    from django.core.management import call_command

    from registry import queueing

    _decided_by_the_test_verifier(release)
    _, token, key = other_verifier(tmp_path, "second")
    third, third_token, _ = other_verifier(tmp_path, "third")

    def down(*a, **kw):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(queueing.app, "send_task", down)
    with django_capture_on_commit_callbacks(execute=True):
        assert revoke_verifier("test-verifier", "key leaked").revoked
    assert Release.objects.filter(pk=release.pk).values_list("status", "status_reason").get() == (Release.QUEUED, AGAIN)
    with django_capture_on_commit_callbacks(execute=True):
        revoke_verifier("second", "decommissioned")
        revoke_verifier("test-verifier", "again")  # already revoked: nothing changes
    assert Release.objects.filter(pk=release.pk).values_list("status", "status_reason").get() == (Release.QUEUED, AGAIN)

    monkeypatch.setattr(queueing.app, "send_task", lambda name, args=(), queue=None, **kw: sent.append((args[0], queue)))
    call_command("requeue")
    assert sent == [(release.pk, None)]
    assert Release.objects.filter(pk=release.pk).values_list("status", "status_reason").get() == (Release.QUEUED, AGAIN)
    verifier_client_for(third_token).claim(release.pk, {})
    assert Release.objects.filter(pk=release.pk).values_list("verifier_id", "status_reason").get() == (third.pk, AGAIN)
    with django_capture_on_commit_callbacks(execute=True):
        revoke_verifier("third", "compromised")
    rel = Release.objects.get(pk=release.pk)
    assert (rel.status, rel.verifier_id) == (Release.QUEUED, None)
    assert rel.status_reason == ("verifying again: verifier third, which held its job, was revoked: compromised\n"
                                 "waiting for a verifier: none is registered with this registry yet")  # both reasons shown
    assert sent[-1] == (release.pk, None)


def test_staff_ask_for_a_rejected_release_to_be_verified_again(alice, tmp_path, sent, django_capture_on_commit_callbacks):  # noqa: F811
    """`manage.py reverify`: a release rejected (e.g. for a chat template its verifier's operator has
    since reviewed) goes back to the queue with who asked and why, every step pending, no verdict
    of its own (the log keeps it); a verifier then decides it afresh. A release still waiting is
    refused, and so is a reference that names none."""
    from django.core.management import CommandError, call_command

    user, signer = alice
    rel = _decided_by_the_test_verifier(f.release(user, signer, namespace="alice", model="m", data=b"GGUF bytes of m"), passed=False)
    old_index = rel.verdict_log_index
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reverify", "alice/m:q4", "--reason", "chat template\nreviewed", "--by", "ops")
    rel = Release.objects.get(pk=rel.pk)
    assert (rel.status, rel.verifier_id, rel.verdict_envelope, rel.level) == (Release.QUEUED, None, None, "")
    assert rel.status_reason == "verifying again: asked by ops, after it was rejected: chat template reviewed"
    assert [(s.status, s.envelope) for s in rel.steps.all()] == [(S.PENDING, None)] * len(S.NAMES)
    assert sent == [(rel.pk, None)]
    assert LogEntry.objects.filter(index=old_index).exists()
    with pytest.raises(CommandError, match="is queued: it is being verified already"):
        call_command("reverify", "alice/m:q4", "--reason", "twice")
    with pytest.raises(CommandError, match="no release alice/m:q4 version 9"):
        call_command("reverify", "alice/m:q4", "--release-version", "9", "--reason", "x")
    with pytest.raises(CommandError, match="reference"):
        call_command("reverify", "not a reference", "--reason", "x")

    _, token, key = other_verifier(tmp_path, "second")
    assert _verified_through_the_api_by(rel, token, key)["status"] == "verified"
    assert Release.objects.filter(pk=rel.pk).values_list("status", "status_reason").get() == (Release.VERIFIED, "")
