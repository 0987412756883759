"""Property-based fuzzing (Hypothesis, bounded in examples) of everything that parses untrusted
input on the client or the server: the GGUF parser, DSSE envelopes, in-toto statements of every
kind, signed notes and checkpoints, the key-event index, verification levels, trust policy files
and whole release bundles. The property: a clear AssayError (FormatError / VerificationError)
or a parsed result; never another exception, and bounded memory.
ASSAY_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/unit/test_fuzz.py runs a long pass."""
from __future__ import annotations

import base64
import copy
import json
import os
import tempfile
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.client import bundle_verify
from assay.core import checkpoint, dsse, keyindex, levels, statements
from assay.core.canonical import canonical_json
from assay.core.errors import AssayError
from assay.core.ggufparse import parse_gguf
from assay.client.trustpolicy import TrustPolicy
from tests.support.bundles import World
from tests.support.tiny_gguf import write_tiny_llama

EXAMPLES = int(os.environ.get("ASSAY_FUZZ_EXAMPLES", "150"))  # raise it for a long run; the suite keeps it short
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)
TINY = None


def tiny_gguf() -> bytes:
    global TINY
    if TINY is None:
        with tempfile.TemporaryDirectory() as d:
            TINY = write_tiny_llama(Path(d) / "tiny.gguf").read_bytes()
    return TINY


def mutated(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, value in edits:
        b[pos % len(b)] = value
    return bytes(b[:cut] if cut is not None else b)


EDITS = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), max_size=12)


@FUZZ
@given(edits=EDITS, cut=st.none() | st.integers(0, 4096), header_only=st.booleans())
def test_gguf_parser_on_mutated_files(edits, cut, header_only):
    data = tiny_gguf()
    if header_only:  # mutate where the counts, lengths and offsets are
        data = mutated(data[:2048], edits, cut) + data[2048:]
    else:
        data = mutated(data, edits, cut)
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(data)
        f.flush()
        tracemalloc.start()
        try:
            parse_gguf(f.name)
        except AssayError:
            pass
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert peak < 64 * 2**20  # a hostile count or length never allocates without limit


@FUZZ
@given(data=st.binary(max_size=2048))
def test_gguf_parser_on_random_bytes(data):
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(b"GGUF" + data)
        f.flush()
        try:
            parse_gguf(f.name)
        except AssayError:
            pass


PARSERS = [
    statements.parse_statement, statements.parse_release_statement, statements.parse_verdict_statement,
    statements.parse_provenance_statement, statements.parse_key_event, statements.parse_role_event, keyindex.parse,
]


@FUZZ
@given(value=JSON)
def test_envelope_and_statement_parsers_on_any_json(value):
    try:
        dsse.parse_envelope(value)
    except AssayError:
        pass
    payload = json.dumps(value).encode()
    for parse in PARSERS:
        try:
            parse(payload)
        except AssayError:
            pass


def _valid_payloads() -> list[bytes]:
    world = World()
    bundle = world.release(b"fuzz", base={"name": "demo/m:f16", "digest": "sha256:" + "b" * 64})
    out = [base64.b64decode(bundle[f"{n}_envelope"]["payload"]) for n in ("release", "verdict", "provenance", "key_registration")]
    out.append(keyindex.build("o", 0, 4, bytes(32), [1, 3]))
    return out


PAYLOADS = _valid_payloads()


def _edit(doc, path: list, value):
    """doc with the value at a path of keys/indices replaced (the path is cut where it stops fitting)."""
    node = doc
    for key in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[key % len(node)]]
        elif isinstance(node, list) and node:
            node = node[key % len(node)]
        else:
            return doc
    if isinstance(node, dict) and node:
        node[sorted(node)[path[-1] % len(node)]] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = value
    return doc


@FUZZ
@given(which=st.integers(0, len(PAYLOADS) - 1), path=st.lists(st.integers(0, 20), min_size=1, max_size=5), value=JSON)
def test_statement_parsers_on_mutated_valid_statements(which, path, value):
    doc = _edit(json.loads(PAYLOADS[which]), path, value)
    try:
        payload = canonical_json(doc)
    except AssayError:
        return
    for parse in PARSERS:
        try:
            parse(payload)
        except AssayError:
            pass


@FUZZ
@given(text=st.text(max_size=400), vkey=st.text(max_size=120))
def test_signed_notes_and_checkpoints_on_any_text(text, vkey):
    for call in (lambda: checkpoint.parse_note(text), lambda: checkpoint.parse_checkpoint_body(text),
                 lambda: checkpoint.parse_verifier_key(vkey), lambda: checkpoint.verify_checkpoint(text, vkey)):
        try:
            call()
        except AssayError:
            pass


@FUZZ
@given(value=JSON)
def test_levels_on_any_json(value):
    try:
        levels.Level.from_dict(value)
    except AssayError:
        pass


@FUZZ
@given(path=st.lists(st.integers(0, 20), min_size=1, max_size=4), value=JSON)
def test_trust_policy_files_on_mutations(path, value):
    with tempfile.TemporaryDirectory() as d:
        policy = World().policy(Path(d)).policy
        try:
            TrustPolicy(Path(d), _edit(copy.deepcopy(policy), path, value))
        except AssayError:
            pass


WORLD = World()
BUNDLE = WORLD.release(b"fuzz bundle")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.integers(0, 30), min_size=1, max_size=5), value=JSON)
def test_bundle_verification_on_mutated_bundles(path, value):
    bundle = _edit(copy.deepcopy(BUNDLE), path, value)
    with tempfile.TemporaryDirectory() as d:
        try:
            bundle_verify.verify_bundle(bundle, "demo/m:q4", WORLD.policy(Path(d)), WORLD)
        except AssayError:
            pass
