"""The `assay` console script end to end against a live registry and Celery worker: run, inspect,
pull targets and concurrent pulls, key revocation and passphrase-encrypted keys.

One SmolLM2 release (verified by the worker) and one truncated GGUF (rejected by it) are
published once for the module and reused."""
from __future__ import annotations

import filecmp
import json
import re
import shutil
import stat
import subprocess

import httpx
import pytest

from assay.core import keys
from assay.client.http import RegistryClient
from assay.core.digest import digest_file
from tests.support.factories import release_envelope
from tests.support.stack import BIN
from tests.support.tiny_gguf import truncated_copy, write_tiny_llama

pytestmark = pytest.mark.slow

GOOD = "demo/smollm2-cli:q4_1"
BAD = "demo/cut-cli:v1"


def _fresh_home(stack, path, *, key: bool = False):
    path.mkdir(parents=True)
    stack.assay(path, "login", stack.url, "--token", stack.token)
    stack.assay(path, "trust", "add", stack.url, "--yes")
    stack.assay(path, "policy", "allow", "demo", "unreproduced")  # GOOD is a quant without a base
    if key:
        stack.assay(path, "keygen")
        stack.assay(path, "keys", "register")
    return path


def _one_line_error(result, prefix: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(prefix) and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def home(stack, tmp_path_factory):
    """The module's publisher, which also runs and inspects its releases (its own key is the one
    this home trusts on first use for namespace demo)."""
    return _fresh_home(stack, tmp_path_factory.mktemp("cli") / "home", key=True)


@pytest.fixture(scope="module")
def published(stack, home, smollm2):
    stack.assay(home, "publish", str(smollm2), GOOD)
    status = stack.wait_status(GOOD)
    assert status["status"] == "verified", (status, stack.logs())
    return status


@pytest.fixture(scope="module")
def rejected(stack, home, tmp_path_factory):
    """A truncated GGUF published past the CLI's local checks (as a hostile publisher could); the
    worker rejects it."""
    folder = tmp_path_factory.mktemp("cut")
    good = write_tiny_llama(folder / "tiny.gguf")
    bad = truncated_copy(good, folder / "tiny-cut.gguf", good.stat().st_size - 7)
    signer = keys.Signer(keys.load_private_key(home / "config" / "keys" / "default.key"))
    digest = digest_file(bad)
    ns, rest = BAD.split("/")
    model, tag = rest.split(":")
    with RegistryClient(stack.url, stack.token) as client:
        client.upload_blob(bad, digest)
        client.create_release(release_envelope(signer, digest=digest, namespace=ns, model=model, tag=tag, file_name=bad.name))
    status = stack.wait_status(BAD)
    assert status["status"] == "rejected", status
    return status


# -- assay run -----------------------------------------------------------------------------------
def test_run_a_verified_release(stack, home, published):
    result = stack.assay(home, "run", GOOD, "Name a colour.", "--max-tokens", "8")
    lines = result.stdout.strip().splitlines()
    assert len(lines) >= 2 and "".join(lines[:-1]).strip(), result.stdout  # the model's text
    assert re.search(rf"{re.escape(GOOD)} v1; \d+\.\d tokens/s; threads \d+, gpu layers \d+$", lines[-1]), lines[-1]
    assert "Traceback" not in result.stderr


def test_run_a_rejected_release(stack, home, rejected):
    result = stack.assay(home, "run", BAD, "hello", "--max-tokens", "8", check=False)
    assert result.returncode == 3, result
    err = _one_line_error(result, "verification failed: ")
    assert "not verified" in err and "rejected" in err
    assert not (home / "cache" / "models" / "verified" / "demo" / "cut-cli").exists()


# -- assay inspect ---------------------------------------------------------------------------------
def test_waiting_for_a_release_gives_one_exit_code_per_outcome(stack, home, published, rejected):
    """As for pull: verified 0, rejected 3 (a failed verification), error or pending 1."""
    ok = stack.assay(home, "status", GOOD, "--wait")
    assert ok.returncode == 0 and "verified at level" in ok.stdout
    assert "... static passed" in ok.stderr and "... attest passed" in ok.stderr  # each step, as it changes
    bad = stack.assay(home, "status", BAD, "--wait", check=False)
    assert bad.returncode == 3 and f"{BAD} was rejected" in bad.stderr
    assert stack.assay(home, "pull", BAD, "-o", str(home / "nothing") + "/", check=False).returncode == 3


def test_run_reuses_a_file_already_pulled(stack, published, smollm2, tmp_path):
    """`assay run` after `assay pull` copies the verified file it already has (hashed again on the
    way), instead of downloading it a second time; a copy edited since is not used."""
    home = _fresh_home(stack, tmp_path / "home")
    stack.assay(home, "pull", GOOD, "-o", str(tmp_path / "models") + "/")
    checked = json.loads(stack.assay(home, "verify", str(tmp_path / "models" / smollm2.name), "--release", GOOD, "--json").stdout)
    assert checked["digest"] == json.loads(stack.assay(home, "status", GOOD, "--json").stdout)["digest"]
    assert checked["checked_by"] == "blake3"  # `assay publish` declared it, the verifier checked and repeated it
    blob_gets = lambda: (stack.root / "logs" / "web.log").read_text().count("GET /api/v1/blobs/")  # noqa: E731
    before = blob_gets()
    stack.assay(home, "run", GOOD, "Hello", "--max-tokens", "2")
    assert blob_gets() == before
    other = _fresh_home(stack, tmp_path / "other")  # a second home shares nothing: it downloads
    pulled = tmp_path / "models" / smollm2.name
    stack.assay(other, "pull", GOOD, "-o", str(tmp_path / "again") + "/")
    assert blob_gets() == before + 1
    with open(pulled, "r+b") as f:  # the first home's copy is edited: its next run does not take it
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    shutil.rmtree(home / "cache" / "models" / "verified", ignore_errors=True)  # run's own copy: gone
    stack.assay(home, "run", GOOD, "Hello", "--max-tokens", "2")
    assert blob_gets() == before + 2


def test_whoami_list_search_and_logout(stack, published, tmp_path):
    home = _fresh_home(stack, tmp_path / "home")
    assert stack.assay(home, "whoami").stdout.startswith(f"admin on {stack.url}")
    listed = stack.assay(home, "list").stdout
    assert f"{GOOD} " in listed and " unreproduced " in listed  # the level, never plain "verified"
    found = json.loads(stack.assay(home, "search", "smollm2-cli", "--json").stdout)["models"]
    assert [m["name"] for m in found] == ["demo/smollm2-cli"]
    assert "no model matches 'no-such-model'" in stack.assay(home, "search", "no-such-model").stdout
    status = json.loads(stack.assay(home, "status", GOOD, "--json").stdout)
    assert status["status"] == "verified" and status["level"]["name"] == "unreproduced"
    inspected = json.loads(stack.assay(home, "inspect", GOOD, "--json").stdout)
    assert [s["name"] for s in inspected["statements"]] == ["release", "verdict"] and all(s["signature_ok"] for s in inspected["statements"])
    assert inspected["statements"][1]["statement"]["predicate"]["assayLevel"]["name"] == "unreproduced"
    assert isinstance(json.loads(stack.assay(home, "keys", "list", "--json").stdout)["keys"], list)
    assert json.loads(stack.assay(home, "whoami", "--json").stdout)["username"] == "admin"
    assert f"logged out of {stack.url}" in stack.assay(home, "logout").stdout
    after = stack.assay(home, "whoami", check=False)
    assert after.returncode == 1 and "Traceback" not in after.stderr
    assert f"no saved login for {stack.url}" in stack.assay(home, "logout", "-r", stack.url).stdout


def test_inspect_verifies_each_statement(stack, home, published):
    result = stack.assay(home, "inspect", GOOD)
    out = result.stdout
    for name in ("release", "verdict"):  # an original has no provenance (nothing was reproduced)
        assert f"== {name} statement (signed by sha256:" in out, out
    assert out.count("signature: verified (publisher key sha256:") == 1
    assert out.count("signature: verified (pinned verifier key sha256:") == 1
    assert out.count("log:       included at index ") == 2
    assert "NOT VERIFIED" not in out
    assert "predicateType https://slsa.dev/verification_summary/v1" in out and "SmolLM2-135M-Instruct.Q4_1.gguf" in out
    assert "result        PASSED at level unreproduced" in out and len(out.splitlines()) < 60  # a summary by default
    full = stack.assay(home, "inspect", GOOD, "--full").stdout
    assert '"predicateType"' in full and len(full.splitlines()) > len(out.splitlines())  # every field with --full


def test_inspect_flags_statements_that_do_not_verify(stack, published, tmp_path):
    home = _fresh_home(stack, tmp_path / "home")
    policy_path = next((home / "config" / "registries").glob("*/policy.json"))
    policy = json.loads(policy_path.read_text())
    other = keys.generate_private_key().public_key()
    policy["verifier_keys"] = {keys.key_id(other): keys.public_key_to_text(other)}  # pin a key that signed nothing
    policy_path.write_text(json.dumps(policy))
    result = stack.assay(home, "inspect", GOOD, check=False)
    assert result.returncode == 3, result
    assert "signature: verified (publisher key" in result.stdout  # the publisher's signature still checks out
    assert result.stdout.count("signature: NOT VERIFIED: envelope is not signed by a trusted key") == 1
    err = _one_line_error(result, "verification failed: ")
    assert f"the verdict statement(s) of {GOOD} did not verify" in err


def test_inspect_without_trust_says_nothing_was_checked(stack, published, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    stack.assay(home, "login", stack.url, "--token", stack.token)
    result = stack.assay(home, "inspect", GOOD, check=False)
    assert result.returncode == 3
    assert "signature: not checked" in result.stdout and "predicateType urn:assay:release:v1" in result.stdout
    assert "not trusted" in _one_line_error(result, "verification failed: signatures not checked: ")


def test_inspect_a_rejected_release_shows_its_signed_statements(stack, home, rejected):
    out = stack.assay(home, "inspect", BAD).stdout
    assert "== release statement" in out and "signature: verified (publisher key" in out


# -- assay pull: targets and concurrency ---------------------------------------------------------------
def test_pull_to_a_path_under_a_regular_file(stack, published, tmp_path):
    home = _fresh_home(stack, tmp_path / "home")
    regular = tmp_path / "notes.txt"
    regular.write_text("not a folder")
    for target in (f"{regular}/models/", f"{regular}/model.gguf"):
        result = stack.assay(home, "pull", GOOD, "-o", target, check=False)
        assert result.returncode == 1, result
        assert "is not a folder" in _one_line_error(result, "error: cannot write ")
    assert regular.read_text() == "not a folder"
    assert not (home / "cache" / "partial").exists() or not any((home / "cache" / "partial").iterdir())


def test_pull_never_replaces_a_different_file_without_force(stack, published, smollm2, tmp_path):
    home = _fresh_home(stack, tmp_path / "home")
    target = tmp_path / "models" / smollm2.name
    target.parent.mkdir()
    target.write_bytes(b"my own notes, not the model")
    result = stack.assay(home, "pull", GOOD, "-o", str(target.parent) + "/", check=False)
    message = _one_line_error(result, "error: ")
    assert result.returncode == 1 and f"{target} already exists" in message and "--force" in message
    assert target.read_bytes() == b"my own notes, not the model"
    stack.assay(home, "pull", GOOD, "-o", str(target.parent) + "/", "--force")
    assert target.read_bytes() == smollm2.read_bytes()
    stack.assay(home, "pull", GOOD, "-o", str(target.parent) + "/")  # the same file again: nothing to replace


def test_concurrent_pulls_of_one_digest(stack, published, smollm2, tmp_path):
    home = _fresh_home(stack, tmp_path / "home")
    env = stack.cli_env(home)
    procs = [subprocess.Popen([str(BIN / "assay"), "pull", GOOD, "-o", str(tmp_path / f"out{i}") + "/"], env=env, cwd=home,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "Traceback" not in err
    for i in range(2):
        assert filecmp.cmp(tmp_path / f"out{i}" / smollm2.name, smollm2, shallow=False)
    assert not any((home / "cache" / "partial").iterdir())  # no partial or lock file is left behind


# -- keys: revocation and passphrases --------------------------------------------------------------
def _key_id(keygen_output: str) -> str:
    return re.search(r"key id (sha256:[0-9a-f]{64})", keygen_output).group(1)


def test_publish_with_a_revoked_key_is_refused(stack, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    stack.assay(home, "login", stack.url, "--token", stack.token)
    keyid = _key_id(stack.assay(home, "keygen").stdout)
    stack.assay(home, "keys", "register")
    assert f"{keyid}  active" in stack.assay(home, "keys", "list").stdout
    out = stack.assay(home, "keys", "revoke", keyid, "--reason", "laptop [stolen]").stdout
    assert out.startswith(f"revoked {keyid} at ")
    assert f"{keyid}  revoked " in stack.assay(home, "keys", "list").stdout
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    result = stack.assay(home, "publish", str(model), "demo/revoked-cli:v1", check=False)
    assert result.returncode == 1, result
    err = _one_line_error(result, "error: registry answered 403: release refused: ")
    assert f"key {keyid} was revoked on " in err


def test_passphrase_encrypted_key(stack, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    stack.assay(home, "login", stack.url, "--token", stack.token)
    secret = {"ASSAY_KEY_PASSPHRASE": "correct horse battery staple"}
    keyid = _key_id(stack.assay(home, "keygen", "--passphrase", env=secret).stdout)
    key_file = home / "config" / "keys" / "default.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert keys.is_encrypted_key_file(key_file)

    result = stack.assay(home, "keys", "register", check=False)  # no passphrase, no terminal to ask on
    assert result.returncode == 1
    assert "is encrypted" in _one_line_error(result, "error: ")
    result = stack.assay(home, "keys", "register", check=False, env={"ASSAY_KEY_PASSPHRASE": "wrong"})
    assert "wrong passphrase" in _one_line_error(result, "error: ")

    assert f"registered {keyid}" in stack.assay(home, "keys", "register", env=secret).stdout
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    out = stack.assay(home, "publish", str(model), "demo/encrypted-cli:v1", env=secret).stdout
    assert out.startswith("published demo/encrypted-cli:v1 version 1 (sha256:")


# -- trust add for scripts -----------------------------------------------------------------------
def test_trust_add_with_key_files_pins_them_without_asking(stack, published, tmp_path):
    """Keys compared out of band and given as files: no prompt; a file the registry does not
    serve is refused; a verifier key alone still asks for the log key (no stdin: aborted)."""
    info = httpx.get(f"{stack.url}/api/v1/trust").json()
    vfile, lfile, other = tmp_path / "verifier.pem", tmp_path / "log.pem", tmp_path / "other.pem"
    keys.save_public_key(vfile, keys.public_key_from_text(info["verifier_keys"][0]["public_key"]))
    keys.save_public_key(lfile, keys.public_key_from_text(info["log"]["public_key"]))
    keys.save_public_key(other, keys.generate_private_key().public_key())
    home = tmp_path / "home"
    home.mkdir()
    stack.assay(home, "login", stack.url, "--token", stack.token)
    asks = stack.assay(home, "trust", "add", stack.url, "--verifier-key", str(vfile), check=False)
    assert asks.returncode == 1 and "aborted" in asks.stdout + asks.stderr
    refused = stack.assay(home, "trust", "add", stack.url, "--verifier-key", str(other), "--log-key", str(lfile), check=False)
    assert refused.returncode == 3 and "does not serve the verifier key" in refused.stderr
    stack.assay(home, "trust", "add", stack.url, "--verifier-key", str(vfile), "--log-key", str(lfile))
    stack.assay(home, "policy", "allow", "demo", "unreproduced")
    pulled = stack.assay(home, "pull", GOOD, "-o", str(tmp_path / "models") + "/")
    assert pulled.returncode == 0


def test_account_and_key_commands_answer_in_json(stack, tmp_path):
    """--json on login, keygen, keys register/revoke and logout: one JSON document each, on stdout."""
    home = tmp_path / "json-home"
    home.mkdir()

    def run(*args):
        return json.loads(stack.assay(home, *args, "--json").stdout)

    assert run("login", stack.url, "--token", stack.token)["registry"] == stack.url
    trusted = run("trust", "add", stack.url, "--yes")
    assert trusted["registry"] == stack.url and trusted["log_key"].startswith("sha256:")
    assert run("trust", "show")["registry"] == stack.url
    assert run("log", "verify")["ok"] is True
    made = run("keygen")
    assert made["keyid"].startswith("sha256:") and made["public_key"].endswith(".pub")
    registered = run("keys", "register")
    assert registered["keyid"] == made["keyid"]
    assert run("keys", "revoke", made["keyid"], "--reason", "test")["keyid"] == made["keyid"]
    assert run("logout") == {"registry": stack.url, "logged_out": True}
