"""Write model_signing.json: signatures made by the reference implementation (PyPI model-signing
1.1.1, `model_signing sign key`) with a fixed ECDSA P-256 key, over a one-file model and a
folder of two files. tests/unit/test_ossf_signature.py checks that assay/core/ossf_signature.py
accepts them and builds the same payloads. Run with the test extra installed:
    .venv/bin/python tests/vectors/make_model_signing_vector.py
(ECDSA signatures are randomized: a rerun writes other signature bytes, equally valid.)"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = Path(__file__).resolve().parent
SCALAR = int.from_bytes(bytes(range(1, 33)), "big")  # a fixed P-256 private key
ONE_FILE = b"GGUF" + bytes(range(60))
FOLDER = {"m-00001-of-00002.gguf": b"GGUF part one", "m-00002-of-00002.gguf": b"GGUF part two"}


def _sign(key: Path, model: Path, signature: Path) -> dict:
    cli = Path(sys.executable).with_name("model_signing")
    subprocess.run([str(cli), "sign", "key", "--private_key", str(key), "--signature", str(signature), str(model)], check=True)
    return json.loads(signature.read_text())


def main() -> None:
    private = ec.derive_private_key(SCALAR, ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "key.pem").write_bytes(pem)
        (tmp / "one.gguf").write_bytes(ONE_FILE)
        folder = tmp / "split-model"
        folder.mkdir()
        for name, data in FOLDER.items():
            (folder / name).write_bytes(data)
        data = {
            "reference": "model-signing 1.1.1, `model_signing sign key`",
            "private_scalar_hex": f"{SCALAR:064x}",
            "public_key_pem": private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            "one_file": {"name": "one.gguf", "content_hex": ONE_FILE.hex(), "signature": _sign(tmp / "key.pem", tmp / "one.gguf", tmp / "one.sig")},
            "folder": {"name": "split-model", "files_hex": {n: d.hex() for n, d in FOLDER.items()},
                       "signature": _sign(tmp / "key.pem", folder, tmp / "folder.sig")},
        }
    (HERE / "model_signing.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print("wrote", HERE / "model_signing.json")


if __name__ == "__main__":
    main()
