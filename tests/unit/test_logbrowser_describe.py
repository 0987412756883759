"""The log browser's one-line description of a logged envelope (registry/logbrowser.describe)."""
from __future__ import annotations

import json

from assay.core import dsse, keys, statements
from registry.logbrowser import describe

SIGNER = keys.Signer(keys.generate_private_key())


def _logged(payload: bytes) -> bytes:
    return json.dumps(dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, SIGNER)).encode()


def test_a_release_names_its_reference_and_file():
    payload = statements.build_release_statement(subject_name="m.gguf", subject_digest="sha256:" + "ab" * 32, namespace="acme",
                                                 model="m", tag="q4", version=1, quantization="Q4_1",
                                                 base=None, recipe=None, model_card_digest=None)
    what, signers = describe(_logged(payload))
    assert what == "urn:assay:release:v1: acme/m:q4 m.gguf" and signers == (SIGNER.keyid,)


def test_a_sealed_entry_shows_only_its_kind_and_commitment():
    payload = statements.build_sealed_entry(kind="release", commitment="sha256:" + "cd" * 32)
    what, _ = describe(_logged(payload))
    assert what.startswith("sealed release of a private namespace, commitment sha256:cdcdcdcd") and "acme" not in what


def test_junk_is_described_not_raised():
    assert describe(b"not json") == ("not a JSON envelope", ())
    assert describe(json.dumps({"payloadType": "x", "payload": "!!"}).encode())[0] == "payload of type x"
