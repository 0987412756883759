"""The formats' typed models (assay/core/typed.py): unknown fields and loose types are refused in
every format, at every depth, with an error naming the field's path."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from pydantic import Field

from assay.client import bundle_verify
from assay.client.trustpolicy import TrustPolicy
from assay.core import levels, statements as st
from assay.core.canonical import canonical_json
from assay.core.conversion import ConversionRecipe
from assay.core.errors import FormatError, VerificationError
from assay.core.recipe import Recipe
from assay.core.typed import FieldError, Strict, field_path, load
from tests.support.bundles import World
from tests.unit.test_trustpolicy import make as make_policy

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "statements.json").read_text())
D = "sha256:" + "ab" * 32


class _Inner(Strict):
    n: int = Field(ge=1)


class _Outer(Strict):
    items: list[_Inner]
    flag: bool = False


def test_field_paths_and_problems():
    assert field_path(("predicate", "checks", 0, "name")) == "predicate.checks[0].name"
    assert field_path((0, "x"), "root") == "root[0].x"
    cases = [
        ({"items": [{"n": 1}, {"n": 0}]}, "doc: items[1].n must be at least 1"),
        ({"items": [{"n": "1"}]}, "doc: items[0].n must be an integer, not a string"),
        ({"items": [{"n": True}]}, "doc: items[0].n must be an integer, not a boolean"),
        ({"items": [{"n": 1, "m": 2}]}, "doc: items[0].m is an unexpected field"),
        ({}, "doc: items is missing"),
        ({"items": {}}, "doc: items must be a list, not an object"),
        ({"items": [], "flag": "yes"}, "doc: flag must be true or false, not a string"),
        ([], "doc: the document must be an object, not a list"),
    ]
    for data, message in cases:
        with pytest.raises(FormatError) as exc:
            load(_Outer, data, what="doc:")
        assert str(exc.value) == message
    assert load(_Outer, {"items": [{"n": 2}]}, what="doc:").items[0].n == 2


def test_a_rule_across_fields_names_its_field():
    class _Pair(Strict):
        a: int
        b: int

        def model_post_init(self, _context) -> None:
            if self.a > self.b:
                raise FieldError("b", "must not be smaller than a")

    with pytest.raises(FormatError, match=r"^pair: x\.b must not be smaller than a$"):
        load(_Pair, {"a": 2, "b": 1}, what="pair:", root="x")


def _statement(name: str) -> dict:
    return json.loads(VECTORS[name])


def _edit(doc: dict, path: tuple, key: str, value) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for part in path:
        target = target[part]
    target[key] = value
    return doc


STATEMENTS = [
    ("release_payload", st.parse_release_statement, (), "subject[0].extra"),
    ("release_payload", st.parse_release_statement, ("predicate",), "predicate.extra"),
    ("release_payload", st.parse_release_statement, ("predicate", "base"), "predicate.base.extra"),
    ("release_payload", st.parse_release_statement, ("predicate", "recipe", "options"), "predicate.recipe.options.extra"),
    ("verdict_payload", st.parse_verdict_statement, ("predicate", "checks", 0), "predicate.checks[0].extra"),
    ("verdict_payload", st.parse_verdict_statement, ("predicate", "policy"), "predicate.policy.extra"),
    ("verdict_payload", st.parse_verdict_statement, ("predicate", "inputAttestations", 0), "predicate.inputAttestations[0].extra"),
    ("leveled_verdict_payload", st.parse_verdict_statement, ("predicate", "assayLevel"), "predicate.assayLevel.extra"),
    ("leveled_verdict_payload", st.parse_verdict_statement, ("predicate", "assayLevel", "chain", 0), "predicate.assayLevel.chain[0].extra"),
    ("role_payload", st.parse_role_event, ("predicate",), "predicate.extra"),
    ("step_result_payload", st.parse_step_result, ("predicate", "releaseStatement"), "predicate.releaseStatement.extra"),
    ("verifier_event_payload", st.parse_verifier_event, ("predicate",), "predicate.extra"),
]


@pytest.mark.parametrize("vector, parse, path, named", STATEMENTS)
def test_every_statement_refuses_an_unknown_field_by_its_path(vector, parse, path, named):
    doc = _statement(vector)
    parse(canonical_json(doc))  # the vector itself is valid
    target = ("subject", 0) if path == () else path
    with pytest.raises(FormatError, match=re.escape(f"invalid statement: {named} is an unexpected field")):
        parse(canonical_json(_edit(doc, target, "extra", 1)))


@pytest.mark.parametrize("vector, parse, path, key, value, named", [
    ("release_payload", st.parse_release_statement, ("predicate",), "version", "3", "predicate.version must be an integer, not a string"),
    ("release_payload", st.parse_release_statement, ("predicate",), "version", True, "predicate.version must be an integer, not a boolean"),
    ("release_payload", st.parse_release_statement, ("predicate",), "base", [], "predicate.base must be an object, not a list"),
    ("verdict_payload", st.parse_verdict_statement, ("predicate",), "verificationResult", "passed", "predicate.verificationResult must be one of"),
    ("verdict_payload", st.parse_verdict_statement, ("predicate", "checks", 0), "evidenceDigest", None, "predicate.checks[0].evidenceDigest"),
    ("role_payload", st.parse_role_event, ("predicate",), "role", "admin", "predicate.role must be one of"),
])
def test_statements_have_strict_types(vector, parse, path, key, value, named):
    with pytest.raises(FormatError, match=re.escape(named)):
        parse(canonical_json(_edit(_statement(vector), path, key, value)))


def test_a_provenance_statement_refuses_unknown_fields_in_its_slsa_parts():
    payload = st.build_provenance_statement(subject_name="m.gguf", subject_digest=D, builder_id="b", recipe={"ftype": "Q8_0"},
                                            resolved_dependencies=[{"name": "base.gguf", "digest": {"sha256": "cd" * 32}}],
                                            started_on="2026-11-27T00:00:00Z")
    doc = json.loads(payload)
    assert st.parse_provenance_statement(payload).started_on == "2026-11-27T00:00:00Z"
    for path, named in [(("predicate", "runDetails", "builder"), "predicate.runDetails.builder.extra"),
                        (("predicate", "runDetails", "metadata"), "predicate.runDetails.metadata.extra"),
                        (("predicate", "buildDefinition", "resolvedDependencies", 0), r"resolvedDependencies\[0\].extra")]:
        with pytest.raises(FormatError, match=f"{named} is an unexpected field"):
            st.parse_provenance_statement(canonical_json(_edit(doc, path, "extra", 1)))


def test_a_level_is_a_typed_model():
    level = levels.Level.from_dict({"name": "reproduced", "reason": "", "chain": [
        {"reference": "demo/m:f16", "version": 1, "digest": D, "level": "original"}]})
    assert level.origin == "original"
    with pytest.raises(FormatError, match=r"level.chain\[0\].version must be an integer, not a string"):
        levels.Level.from_dict({"name": "reproduced", "reason": "", "chain": [
            {"reference": "demo/m:f16", "version": "1", "digest": D, "level": "original"}]})


def test_recipes_refuse_unknown_fields_at_every_depth():
    recipe = Recipe(ftype="Q4_K_M", ggml_build="b1", llama_cpp_python_version="0.3.36", imatrix=D, imatrix_name="m.gguf",
                    imatrix_source={"calibration": D, "calibration_name": "c.txt", "ctx": 512, "chunks": 4})
    doc = recipe.to_dict()
    assert Recipe.from_json(doc) == recipe
    with pytest.raises(FormatError, match="recipe field options.imatrix_source.extra is an unexpected field"):
        Recipe.from_json(_edit(doc, ("options", "imatrix_source"), "extra", 1))
    with pytest.raises(FormatError, match="recipe field options.split must be"):
        Recipe.from_json(_edit(doc, ("options",), "split", {"max_tensors": 3, "max_size": "2G"}))
    conversion = {"tool": "convert_hf_to_gguf.py", "llama_cpp_python_version": "0.3.36", "ggml_build": "b1", "ftype": "F16",
                  "imatrix": None, "options": {"directory": "m", "files": [{"name": "config.json", "digest": D, "size": 2}],
                                                "upstream": {"repository": None, "revision": None}, "python": {}}}
    assert ConversionRecipe.from_json(conversion).files[0].name == "config.json"
    with pytest.raises(FormatError, match=r"recipe field options.files\[0\].extra is an unexpected field"):
        ConversionRecipe.from_json(_edit(conversion, ("options", "files", 0), "extra", 1))
    with pytest.raises(FormatError, match=r"recipe field options.files\[0\].size must be an integer, not a string"):
        ConversionRecipe.from_json(_edit(conversion, ("options", "files", 0), "size", "2"))


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.mark.parametrize("path, key, value, named", [
    ((), "extra", 1, "extra is an unexpected field"),
    (("file",), "extra", 1, "file.extra is an unexpected field"),
    (("file",), "size", "9", "file.size must be an integer, not a string"),
    (("log", "entries", "release"), "extra", 1, "log.entries.release.extra is an unexpected field"),
    (("log", "entries", "release"), "index", -1, "log.entries.release.index must be at least 0"),
    (("log", "entries"), "other", {"index": 0, "proof": []}, "log.entries.other"),
    (("publisher_key",), "revoked", "no", "publisher_key.revoked must be true or false, not a string"),
])
def test_a_bundle_is_refused_on_its_shape_before_anything_in_it_is_used(world, tmp_path, path, key, value, named):
    bundle = world.release(b"typed bundle")
    bundle_verify.verify_bundle(copy.deepcopy(bundle), "demo/m:q4", world.policy(tmp_path / "ok"), world)
    with pytest.raises(VerificationError, match=f"the registry sent a malformed release bundle: {named}"):
        bundle_verify.verify_bundle(_edit(bundle, path, key, value), "demo/m:q4", world.policy(tmp_path / "bad"), world)


def test_trust_policy_and_state_refuse_unknown_fields(tmp_path):
    make_policy(tmp_path).save()
    folder = tmp_path / "reg"
    policy = json.loads((folder / "policy.json").read_text())
    for path, named in [((), "extra"), (("levels",), "levels.extra"), (("publishers",), "publishers.extra"),
                        (("witnesses",), "witnesses.extra"), (("checks",), "checks.extra")]:
        with pytest.raises(FormatError, match=f"invalid trust policy .*: {named} is an unexpected field"):
            TrustPolicy(folder, _edit(policy, path, "extra", 1))
    with pytest.raises(FormatError, match=r"invalid client state .*\(extra is an unexpected field\)"):
        TrustPolicy(folder, policy, {"format": 2, "versions": {}, "extra": 1})
    with pytest.raises(FormatError, match=r"revoked_keys.sha256:x.index must be an integer"):
        TrustPolicy(folder, policy, {"format": 2, "revoked_keys": {"sha256:x": {"index": "3"}}})


def test_the_learned_key_state_is_a_typed_model(tmp_path):
    from assay.client.keystate import KeyState

    good = {"through": 5, "keys": {D: {"owner": "alice", "registered": 1, "revoked": None, "time": "", "reason": ""}},
            "roles": {"demo": {"alice": [[0, "owner"]]}}}
    assert KeyState(copy.deepcopy(good)).may_sign(D, "demo", 3).allowed
    for edit, named in [(lambda d: d["keys"][D].pop("revoked"), f"keys.{D}.revoked is missing"),
                        (lambda d: d["keys"][D].update(registered="1"), f"keys.{D}.registered must be an integer"),
                        (lambda d: d["roles"]["demo"]["alice"].append([1, "admin"]), r"roles.demo.alice\[1\] must be \[log index, role\]"),
                        (lambda d: d.update(extra=1), "extra is an unexpected field")]:
        bad = copy.deepcopy(good)
        edit(bad)
        with pytest.raises(FormatError, match=f"invalid key state \\({named}"):
            KeyState(bad)
