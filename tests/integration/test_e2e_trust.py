"""What "verified" means, end to end on a real stack of its own (gunicorn, a Celery worker,
PostgreSQL, a real witness process started with `assay witness serve`, the real SmolLM2 and the
CLI as a user runs it). Scenarios of issue 11, in order (later ones build on earlier state):

1. a quantized file published without a base is verified at level `unreproduced` and refused by
   the default policy, with a message naming the level and the command that allows it;
2. an organization with two publishers: a client takes both publishers' releases, no prompts;
4. a client that requires a witness takes cosigned checkpoints;
5. a revocation found by `assay log verify` is saved even when a later entry fails (admin's key
   is revoked from here on);
3. a member removed from the organization signs nothing new there: the registry (dishonestly)
   accepts a release of the removed member, the client refuses it from the logged removal;
6. a registry that rewrites its log to drop a revocation is refused by a client that requires a
   witness (the witness saw the revocation and will not cosign the rewritten log), while a fresh
   client without that requirement is fooled, as documented.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from assay.core import checkpoint as cp
from assay.core import keys
from tests.support.stack import BIN, Stack, free_port

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp")

ORIGIN = "trust.test/log"
ADMIN_REF, BOB_REF = "demo/trust:q4_1", "demo/trust-bob:q4_1"


@pytest.fixture(scope="module")
def world(tmp_path_factory, smollm2):
    """The stack, its witness and the homes of the two publishers; torn down by PID."""
    root = tmp_path_factory.mktemp("trust")
    witness_dir, port = root / "witness", free_port()
    stack = Stack(extra_env={"ASSAY_LOG_ORIGIN": ORIGIN, "ASSAY_WITNESSES": f"http://127.0.0.1:{port}",
                             "ASSAY_WITNESS_REFRESH_S": "2"})
    key_dir = Path(stack.env["ASSAY_KEY_DIR"])
    log_key = keys.generate_private_key()
    keys.save_private_key(key_dir / "log.key", log_key, None)  # so the witness knows the log before it starts
    run = lambda *a: subprocess.run([str(BIN / "assay"), *a], capture_output=True, text=True, check=True)  # noqa: E731
    vkey = re.search(r"vkey\s+(\S+)", run("witness", "init", str(witness_dir), "--name", "witness.test/w1").stdout).group(1)
    run("witness", "add-log", str(witness_dir), cp.verifier_key_string(ORIGIN, log_key.public_key()))
    witness = subprocess.Popen([str(BIN / "assay"), "witness", "serve", str(witness_dir), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=open(root / "witness.log", "w"), start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/info")
        stack.start()
        admin = stack.client_home(root / "admin", accept_unreproduced=False)
        bob_token = stack.manage("shell", "-c", (
            "from registry.accounts import create_user, set_member; from registry.models import Organization; "
            "from registry.tokens import create_token; bob = create_user('bob', 'pw-bob-12345678'); "
            "set_member(Organization.objects.get(name='demo'), bob, 'publisher'); "
            "print(create_token(bob, 'cli', ['read', 'publish'])[1])")).strip().splitlines()[-1]
        bob = root / "bob"
        bob.mkdir()
        for args in (("login", stack.url, "--token", bob_token), ("trust", "add", stack.url, "--yes"), ("keygen",), ("keys", "register")):
            stack.assay(bob, *args)
        stack.assay(admin, "publish", str(smollm2), ADMIN_REF)
        stack.assay(bob, "publish", str(smollm2), BOB_REF)
        for ref in (ADMIN_REF, BOB_REF):
            status = stack.wait_status(ref, timeout=900)
            assert status["status"] == "verified", (status, stack.logs())
        yield {"stack": stack, "root": root, "admin": admin, "bob": bob, "witness_vkey": vkey, "smollm2": smollm2}
    finally:
        stack.stop()
        witness.send_signal(signal.SIGTERM)
        witness.wait(timeout=30)


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def home(world, name: str, *, allow_unreproduced: bool = True, witnesses: int = 0) -> Path:
    """A fresh reader's client home (no key): logged in as admin, trusting the stack."""
    stack, path = world["stack"], world["root"] / name
    path.mkdir()
    stack.assay(path, "login", stack.url, "--token", stack.token)
    stack.assay(path, "trust", "add", stack.url, "--yes")
    if allow_unreproduced:
        stack.assay(path, "policy", "allow", "demo", "unreproduced")
    if witnesses:
        stack.assay(path, "policy", "witness", "add", world["witness_vkey"])
        stack.assay(path, "policy", "set", "witnesses", str(witnesses))
    return path


def refused(result, *needles: str) -> str:
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


def shell(world, code: str) -> str:
    return world["stack"].manage("shell", "-c", code)


# ---------------------------------------------------------------- 1. levels and the default policy

def test_quant_without_a_base_is_unreproduced_and_refused_by_default(world):
    stack = world["stack"]
    status = stack.assay(world["admin"], "status", ADMIN_REF).stdout
    assert "verified at level unreproduced" in status and "a quantized file published without a base" in status
    reader = home(world, "default-policy", allow_unreproduced=False)
    target = reader / "models"
    result = stack.assay(reader, "pull", ADMIN_REF, "-o", str(target) + "/", check=False)
    refused(result, "'unreproduced'", "assay policy allow demo unreproduced")
    assert not target.exists() or not any(target.iterdir())  # nothing landed
    stack.assay(reader, "policy", "allow", "demo", "unreproduced")
    out = stack.assay(reader, "pull", ADMIN_REF, "-o", str(target) + "/").stdout
    assert "level: unreproduced (quantized file with no build evidence" in out
    assert "chain: no build chain: a quantized file published without a base" in out
    assert "unreproduced" in stack.assay(reader, "policy", "show").stdout


# ---------------------------------------------------------------- 2. two publishers, 3. removal

def test_organization_with_two_publishers_works_without_prompts(world):
    stack, reader = world["stack"], home(world, "org-reader")
    stack.assay(reader, "pull", ADMIN_REF, "-o", str(reader / "a") + "/")
    out = json.loads(stack.assay(reader, "pull", BOB_REF, "-o", str(reader / "b") + "/", "--json").stdout)
    assert out["level"] == "unreproduced" and out["reference"] == BOB_REF


# ---------------------------------------------------------------- 4. witnesses

def test_client_requiring_a_witness_takes_cosigned_checkpoints(world):
    stack, reader = world["stack"], home(world, "witnessed", witnesses=1)
    out = json.loads(stack.assay(reader, "pull", ADMIN_REF, "-o", str(reader / "m") + "/", "--json").stdout)
    assert out["witnesses"] == ["witness.test/w1"]
    cosigned = httpx.get(f"{stack.url}/api/v1/log/checkpoint?cosigned=1").text
    assert "\u2014 witness.test/w1 " in cosigned


# ---------------------------------------------------------------- 5. revocation survives a failed replay

def test_revocation_is_saved_even_when_a_later_entry_fails(world):
    stack, reader = world["stack"], home(world, "replayer")
    stack.assay(reader, "log", "verify")
    keyid = stack.assay(world["admin"], "keys", "list").stdout.split()[0]  # admin's only key
    stack.assay(world["admin"], "keys", "revoke", keyid, "--reason", "laptop stolen")
    # A later entry that does not verify: a "verdict" signed by a key that is not the verifier's.
    shell(world, "from assay.core import dsse, keys, statements; from registry import tlog; "
                 "p = statements.build_verdict_statement(subject_name='x.gguf', subject_digest='sha256:' + '00' * 32, "
                 "verifier_id='v', time_created=None, resource_uri='x', policy_uri='x', release_statement_digest='sha256:' + '11' * 32, "
                 "passed=True, checks=[]); tlog.append('verdict', dsse.sign_envelope(p, statements.PAYLOAD_TYPE, keys.generate_private_key()))")
    result = stack.assay(reader, "log", "verify", check=False)
    refused(result, "(verdict) does not verify")
    state = json.loads(next((reader / "config").rglob("state.json")).read_text())
    assert state["revoked_keys"][keyid]["reason"] == "laptop stolen"  # saved before the failing entry
    shell(world, f"from registry.models import PublisherKey; PublisherKey.objects.filter(keyid='{keyid}')"
                 ".update(revoked_at=None, revoke_reason='', revocation_log_index=None)")  # and now hidden in bundles
    result = stack.assay(reader, "pull", ADMIN_REF, "-o", str(reader / "m") + "/", check=False)
    refused(result, f"publisher key {keyid} was revoked", "laptop stolen")


# ---------------------------------------------------------------- 3. (after 5) a removed member

def test_removed_member_signs_nothing_new(world):
    stack, reader = world["stack"], home(world, "removal-reader")
    stack.assay(reader, "pull", BOB_REF, "-o", str(reader / "v1") + "/")
    # The registry removes bob (a logged role event), then its database says he is a member again
    # without logging it: it accepts and verifies bob's next release.
    shell(world, "from registry.accounts import remove_member; from registry.models import Organization, Membership; "
                 "from django.contrib.auth import get_user_model; org = Organization.objects.get(name='demo'); "
                 "bob = get_user_model().objects.get(username='bob'); remove_member(org, bob); "
                 "Membership.objects.create(organization=org, user=bob, role='publisher')")
    stack.assay(world["bob"], "publish", str(world["smollm2"]), BOB_REF)
    status = stack.wait_status(BOB_REF, timeout=900)
    assert status["status"] == "verified" and status["version"] == 2, (status, stack.logs())
    result = stack.assay(reader, "pull", BOB_REF, "-o", str(reader / "v2") + "/", check=False)
    refused(result, "may not sign releases in namespace 'demo'", "bob was removed from it in log entry")
    assert stack.assay(reader, "pull", ADMIN_REF, "-o", str(reader / "a") + "/", check=False).returncode == 3  # revoked in 5


# ---------------------------------------------------------------- 6. a rewritten log and a witness

def test_log_rewritten_without_the_revocation_is_refused_by_a_witnessing_client(world):
    stack = world["stack"]
    witnessed = home(world, "fork-witnessed", witnesses=1)
    stack.assay(witnessed, "policy", "set", "witness-max-age", "5")
    fooled = home(world, "fork-fresh")
    # The operator rebuilds the log from the entries before the revocation (a fork of what the
    # witness cosigned), keeps the old cosigned checkpoints, and hides the revocation.
    shell(world, "import json; from registry import tlog; from registry.models import LogEntry, LogNode, LogState, "
                 "CosignedCheckpoint, PublisherKey; "
                 "cut = LogEntry.objects.filter(kind='key-revoke').order_by('index').first().index; "
                 "kept = [(e.kind, json.loads(bytes(e.data))) for e in tlog.entries(0, cut)]; "
                 "LogEntry.objects.all().delete(); LogNode.objects.all().delete(); LogState.objects.update(size=0); "
                 "CosignedCheckpoint.objects.filter(size__gt=cut).delete(); tlog.append_many(kept); "
                 "PublisherKey.objects.update(revoked_at=None, revoke_reason='', revocation_log_index=None)")
    time.sleep(6)  # past the witnessing client's max age: only a new cosignature could count
    result = stack.assay(witnessed, "pull", ADMIN_REF, "-o", str(witnessed / "m") + "/", check=False)
    refused(result, "cosigned by 0 of the witnesses this client trusts within the last 5 s")
    assert not (witnessed / "m").exists() or not any((witnessed / "m").iterdir())
    state = httpx.get(f"{stack.url}/api/v1/log/checkpoint").text
    assert "witness.test/w1" not in state
    # A fresh client that requires no witness has no way to know (README: what verified means).
    assert stack.assay(fooled, "pull", ADMIN_REF, "-o", str(fooled / "m") + "/").returncode == 0
