"""OpenSSF model signing interop (PyPI model-signing, its real `model_signing` CLI):

- a publisher with an ECDSA P-256 key publishes; `assay pull --model-signing` writes a signature
  and the publisher's public key that `model_signing verify key` accepts (and refuses once a byte
  of the model changes);
- a split model signed beforehand with `model_signing sign key` (the publisher's own key file) is
  published with that very signature, pulled into a folder and verified there by model_signing;
- a signature by another key is refused before any upload; an Ed25519 release has no signature
  to write, and `pull --model-signing` says so before downloading anything."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("model_signing")

from assay.toolchain.gguf_split import split_file  # noqa: E402
from tests.support.tiny_gguf import write_tiny_llama  # noqa: E402

pytestmark = pytest.mark.slow

MODEL_SIGNING = str(Path(sys.executable).with_name("model_signing"))


def _model_signing(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MODEL_SIGNING, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def publisher(stack, tmp_path_factory):
    """A new user whose publisher key is ECDSA P-256 (`assay keygen --algorithm ecdsa-p256`)."""
    home = tmp_path_factory.mktemp("ms-publisher")
    for args in [("login", stack.url, "--token", stack.token), ("trust", "add", stack.url, "--yes"),
                 ("keygen", "--algorithm", "ecdsa-p256"), ("keys", "register")]:
        stack.assay(home, *args)
    return home


def _key_file(home: Path) -> Path:
    return home / "config" / "keys" / "default.key"


def test_pull_writes_a_signature_that_model_signing_verifies(stack, publisher, tmp_path):
    model = write_tiny_llama(tmp_path / "tiny-ms.gguf", extra_kv={"general.name": "model-signing one file"})
    ref = "demo/tiny-ms:f16"
    stack.assay(publisher, "publish", str(model), ref)
    status = stack.wait_status(ref)
    assert status["status"] == "verified", (status, stack.logs())
    user = stack.client_home(tmp_path / "user")
    out = tmp_path / "got"
    r = stack.assay(user, "pull", ref, "-o", str(out) + "/", "--model-signing")
    pulled, signature, public_key = out / model.name, out / f"{model.name}.sig", out / f"{model.name}.publisher.pem"
    assert pulled.read_bytes() == model.read_bytes()
    assert f"saved {signature}" in r.stdout and "model_signing verify key" in r.stdout, r.stdout
    ok = _model_signing("verify", "key", "--public_key", str(public_key), "--signature", str(signature), str(pulled))
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok
    page = httpx.get(f"{stack.url}/demo/tiny-ms/releases/f16/1").text
    assert "signed by the publisher&#x27;s key" in page or "signed by the publisher's key" in page
    # The key written is the publisher's, the one `assay keygen` wrote beside its private key.
    assert public_key.read_bytes() == _key_file(publisher).with_suffix(".pub").read_bytes()
    # A pull again finds the same files and leaves them; --json names them.
    again = json.loads(stack.assay(user, "pull", ref, "-o", str(out) + "/", "--model-signing", "--json").stdout)
    assert again["model_signing"] == {"signature": str(signature), "public_key": str(public_key)}
    # model_signing itself refuses the model once a byte changes.
    data = bytearray(pulled.read_bytes())
    data[-1] ^= 1
    pulled.write_bytes(bytes(data))
    bad = _model_signing("verify", "key", "--public_key", str(public_key), "--signature", str(signature), str(pulled))
    assert bad.returncode != 0, bad


def test_a_split_model_signed_with_model_signing_is_published_with_that_signature(stack, publisher, tmp_path):
    base = write_tiny_llama(tmp_path / "base.gguf", extra_kv={"general.name": "model-signing split"})
    folder = tmp_path / "tiny-ms-split"
    folder.mkdir()
    parts = split_file(base, folder / "tiny-ms-split.gguf", max_tensors=4)
    assert len(parts) >= 2
    signature = tmp_path / "tiny-ms-split.sig"
    signed = _model_signing("sign", "key", "--private_key", str(_key_file(publisher)), "--signature", str(signature), str(folder))
    assert signed.returncode == 0, signed
    ref = "demo/tiny-ms-split:f16"
    stack.assay(publisher, "publish", str(parts[0]), ref, "--model-signing-sig", str(signature))
    status = stack.wait_status(ref)
    assert status["status"] == "verified", (status, stack.logs())
    bundle = json.loads(stack.assay(publisher, "inspect", ref, "--json").stdout)  # the CLI sees the same release
    assert bundle["reference"] == ref
    user = stack.client_home(tmp_path / "user")
    out = tmp_path / "models"
    stack.assay(user, "pull", ref, "-o", str(out) + "/", "--model-signing")
    written = out / f"{parts[0].name}.sig"
    assert json.loads(written.read_text()) == json.loads(signature.read_text())  # the publisher's own signature, unchanged
    ok = _model_signing("verify", "key", "--public_key", str(out / f"{parts[0].name}.publisher.pem"), "--signature", str(written),
                        "--ignore_unsigned_files", str(out))
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok


def test_a_signature_by_another_key_is_refused_before_any_upload(stack, publisher, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    model = write_tiny_llama(tmp_path / "tiny-ms-foreign.gguf", extra_kv={"general.name": "model-signing foreign"})
    foreign_key = tmp_path / "foreign.pem"
    foreign_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signature = tmp_path / "foreign.sig"
    assert _model_signing("sign", "key", "--private_key", str(foreign_key), "--signature", str(signature), str(model)).returncode == 0
    r = stack.assay(publisher, "publish", str(model), "demo/tiny-ms-foreign:f16", "--model-signing-sig", str(signature), check=False)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r
    assert "was made with key" in r.stderr and "assay keygen --import" in r.stderr, r.stderr
    listed = stack.assay(publisher, "list", "demo", "--json", check=False)
    assert "tiny-ms-foreign" not in listed.stdout
    # Imported as the publisher's key, the same private key signs the release and the signature is accepted.
    key2 = tmp_path / "imported.key"
    stack.assay(publisher, "keygen", "--import", str(foreign_key), "--out", str(key2))
    stack.assay(publisher, "keys", "register", "--key", str(key2))
    stack.assay(publisher, "publish", str(model), "demo/tiny-ms-foreign:f16", "--model-signing-sig", str(signature), "--key", str(key2))


def test_pull_model_signing_of_an_ed25519_release_says_why_before_downloading(stack, tmp_path):
    home = stack.client_home(tmp_path / "ed")
    model = write_tiny_llama(tmp_path / "tiny-ed.gguf", extra_kv={"general.name": "model-signing ed25519"})
    ref = "demo/tiny-ms-ed:f16"
    stack.assay(home, "publish", str(model), ref, "--wait")
    out = tmp_path / "got"
    r = stack.assay(home, "pull", ref, "-o", str(out) + "/", "--model-signing", check=False)
    assert r.returncode == 1 and "carries no OpenSSF model_signing signature" in r.stderr, r
    assert not out.exists() or not any(out.iterdir())
