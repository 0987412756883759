"""Fixed vectors for the rule that says whether a verdict's signed level is supported by the
release statement and the verdict's own checks (assay/core/levelcheck.py): every level an honest
verifier signs (levels.decide, as verifier/level.py calls it) passes, and each way a verdict can
claim more than that is named."""
from __future__ import annotations

import itertools

import pytest

from assay.core import levels, statements
from assay.core.levelcheck import level_problem
from assay.core.levels import CONVERTED, ORIGINAL, REPRODUCED, UNREPRODUCED, ChainLink, Level

SUBJECT = "sha256:" + "1" * 64
BASE = {"name": "demo/base:f16", "digest": "sha256:" + "b" * 64}
OTHER = "sha256:" + "c" * 64
IMATRIX = "sha256:" + "d" * 64
QUANT_RECIPE = {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36", "ggml_build": "test", "ftype": "Q4_1",
                "imatrix": None, "options": {}}
IMATRIX_RECIPE = {**QUANT_RECIPE, "ftype": "IQ2_XS", "imatrix": IMATRIX, "options": {"imatrix_name": "m.imatrix"}}
SPLIT_RECIPE = {**QUANT_RECIPE, "options": {"split": {"max_tensors": 2}}}
CONVERSION_RECIPE = {
    "tool": "convert_hf_to_gguf.py", "llama_cpp_python_version": "0.3.36", "ggml_build": "b", "ftype": "F16", "imatrix": None,
    "options": {"directory": "tiny", "files": [{"name": "config.json", "digest": "sha256:" + "e" * 64, "size": 6},
                                               {"name": "model.safetensors", "digest": "sha256:" + "f" * 64, "size": 9}],
                "upstream": {"repository": "example/tiny", "revision": "0" * 40}, "python": {"torch": "2.13.0+cpu"}},
}
ORIGIN = ChainLink(BASE["name"], 1, BASE["digest"], ORIGINAL)
FROM_ORIGINAL = Level(REPRODUCED, (ORIGIN,))


def release(*, base=None, recipe=None, quantization="F16", parts=None):
    payload = statements.build_release_statement(
        subject_name=parts[0][0] if parts else "m.gguf", subject_digest=SUBJECT, namespace="demo", model="m", tag="q4",
        version=1, quantization=quantization, base=base, recipe=recipe, model_card_digest=None, created="2026-11-24T00:00:00Z",
        parts=parts)
    return statements.parse_release_statement(payload)


def verdict(level: Level | None, reproduce: str = "skipped"):
    checks = [{"name": "static", "result": "passed", "summary": "ok", "evidence": {}},
              {"name": "reproduce", "result": reproduce, "summary": "x", "evidence": {}},
              {"name": "probes", "result": "passed", "summary": "ok", "evidence": {}}]
    payload = statements.build_verdict_statement(
        subject_name="m.gguf", subject_digest=SUBJECT, verifier_id="v", time_created="2026-11-24T00:00:01Z",
        resource_uri="assay:demo/m:q4@1", policy_uri="urn:test", release_statement_digest="sha256:" + "9" * 64,
        passed=True, checks=checks, level=level)
    return statements.parse_verdict_statement(payload)


def provenance(*, recipe, deps, build_type=statements.BUILD_TYPE, subject=SUBJECT):
    return statements.parse_provenance_statement(statements.build_provenance_statement(
        subject_name="m.gguf", subject_digest=subject, builder_id="v", recipe=recipe, resolved_dependencies=deps,
        build_type=build_type))


def blob(digest: str, name: str | None = None) -> dict:
    return {"uri": "assay:blob", **({"name": name} if name else {}), "digest": {"sha256": digest.split(":", 1)[1]}}


QUANT = dict(base=BASE, recipe=QUANT_RECIPE, quantization="Q4_1")
QUANT_PROV = dict(recipe=QUANT_RECIPE, deps=[blob(BASE["digest"]), {"uri": "pkg:pypi/llama-cpp-python@0.3.36", "name": "b"}])
CONVERSION_PROV = dict(recipe=CONVERSION_RECIPE, build_type=statements.CONVERT_BUILD_TYPE,
                       deps=[blob(f["digest"], f["name"]) for f in CONVERSION_RECIPE["options"]["files"]])


# -- what honest verifiers sign ------------------------------------------------------------------

@pytest.mark.parametrize("case, stmt, level, reproduce, prov, types", [
    ("original", dict(), Level(ORIGINAL), "skipped", None, {"F16": 3, "F32": 1}),
    ("quantized file without a base", dict(quantization="Q4_1"),
     Level(UNREPRODUCED, (), "a quantized file published without a base to rebuild it from"), "skipped", None, {"Q4_1": 3}),
    ("verdict signed before levels", dict(), None, "skipped", None, None),
    ("converted", dict(recipe=CONVERSION_RECIPE), Level(CONVERTED), "passed", CONVERSION_PROV, {"F16": 2}),
    ("conversion not converted again", dict(recipe=CONVERSION_RECIPE), Level(ORIGINAL), "skipped", None, {"F16": 2}),
    ("quant of an original", QUANT, FROM_ORIGINAL, "passed", QUANT_PROV, {"Q4_1": 2}),
    ("quant of a quant", QUANT, Level(REPRODUCED, (ChainLink(BASE["name"], 2, BASE["digest"], REPRODUCED),
                                                   ChainLink("demo/origin:f16", 1, OTHER, CONVERTED))), "passed", QUANT_PROV, None),
    ("quant of a converted base", QUANT, Level(REPRODUCED, (ChainLink(BASE["name"], 1, BASE["digest"], CONVERTED),)),
     "passed", QUANT_PROV, None),
    ("quant nobody could rebuild", QUANT, Level(UNREPRODUCED, (), "no verifier can rebuild it"), "skipped", None, None),
    ("quant that did not reproduce", QUANT, Level(UNREPRODUCED, (), "x"), "failed", None, None),
    ("quant of an unverified base", QUANT, Level(UNREPRODUCED, (), "its base is not a verified release"), "passed", QUANT_PROV, None),
    ("quant of an unreproduced base", QUANT, Level(UNREPRODUCED, (ChainLink(BASE["name"], 1, BASE["digest"], UNREPRODUCED),), "x"),
     "passed", QUANT_PROV, None),
    ("imatrix quant", dict(base=BASE, recipe=IMATRIX_RECIPE, quantization="IQ2_XS"), FROM_ORIGINAL, "passed",
     dict(recipe=IMATRIX_RECIPE, deps=[blob(BASE["digest"]), blob(IMATRIX, "imatrix")]), {"IQ2_XS": 2}),
    ("split quant", dict(QUANT, recipe=SPLIT_RECIPE, parts=[("m-00001-of-00002.gguf", SUBJECT), ("m-00002-of-00002.gguf", OTHER)]),
     FROM_ORIGINAL, "passed", dict(recipe=SPLIT_RECIPE, deps=[blob(BASE["digest"])]), None),
])
def test_honest_verdicts_are_supported(case, stmt, level, reproduce, prov, types):
    p = provenance(**prov) if prov else None
    assert level_problem(release(**stmt), verdict(level, reproduce), provenance=p, tensor_types=types) is None, case


@pytest.mark.parametrize("has_base, rebuilt, base_level, conversion, full_precision", itertools.product(
    [False, True], [False, True], [None, ORIGINAL, CONVERTED, REPRODUCED, UNREPRODUCED], [False, True], [False, True]))
def test_every_level_the_verifier_decides_is_supported(has_base, rebuilt, base_level, conversion, full_precision):
    """levels.decide with the arguments verifier/level.release_level gives it, for every shape of release."""
    if has_base and conversion:
        pytest.skip("a conversion recipe names no base (the statement refuses it)")
    base = None
    if base_level is not None:
        base = Level(base_level, (ChainLink("demo/origin:f16", 1, OTHER, ORIGINAL),) if base_level == REPRODUCED else ())
    link = ChainLink(BASE["name"], 1, BASE["digest"], base_level) if base is not None else None
    decided = levels.decide(full_precision=full_precision, has_base=has_base, reproduced=rebuilt, base=base, base_link=link,
                            converted=not has_base and conversion and rebuilt)
    stmt = QUANT if has_base else dict(recipe=CONVERSION_RECIPE) if conversion else dict()
    prov = None
    if rebuilt and (has_base or conversion):
        prov = provenance(**(QUANT_PROV if has_base else CONVERSION_PROV))
    types = {"F16": 2} if full_precision else {"Q8_0": 2}
    assert level_problem(release(**stmt), verdict(decided, "passed" if rebuilt else "skipped"), provenance=prov,
                         tensor_types=types) is None


# -- what a verdict may not claim --------------------------------------------------------------

@pytest.mark.parametrize("stmt, level, reproduce, types, message", [
    (dict(), Level(REPRODUCED, (ChainLink("alice/nothing:q4", 1, OTHER, ORIGINAL),)), "skipped", None,
     "names a build chain (built from alice/nothing:q4@1 (original)), but the release names no base"),
    (dict(), Level(CONVERTED), "skipped", None, "its signed statement has no conversion recipe"),
    (dict(recipe=CONVERSION_RECIPE), Level(CONVERTED), "skipped", None, "its level is 'converted', but its reproduce check is skipped"),
    (dict(recipe=CONVERSION_RECIPE), Level(CONVERTED), "passed", {"Q8_0": 1, "F32": 1}, "a full-precision file, but its static "
     "check found tensor types F32, Q8_0"),
    (dict(quantization="Q4_1"), Level(ORIGINAL), "skipped", {"Q4_1": 3}, "its level is 'original', a full-precision file"),
    (dict(), Level(UNREPRODUCED, (ORIGIN,), "x"), "skipped", None, "but the release names no base"),
    (QUANT, Level(ORIGINAL), "skipped", {"Q8_0": 2}, "its level is 'original', but the release names base demo/base:f16"),
    (QUANT, Level(ORIGINAL), "passed", None, "a release built from a base is reproduced or unreproduced"),
    (QUANT, Level(CONVERTED), "passed", None, "its level is 'converted', but the release names base"),
    (QUANT, FROM_ORIGINAL, "skipped", None, "its level is 'reproduced', but its reproduce check is skipped, not passed"),
    (QUANT, FROM_ORIGINAL, "failed", None, "its reproduce check is failed"),
    (QUANT, Level(REPRODUCED, (ChainLink("bob/other:f16", 3, OTHER, ORIGINAL),)), "passed", None,
     f"its chain starts at bob/other:f16@3 ({OTHER}), but the release names base demo/base:f16 ({BASE['digest']})"),
    (QUANT, Level(REPRODUCED, (ChainLink("bob/other:f16", 3, BASE["digest"], ORIGINAL),)), "passed", None,
     "its chain starts at bob/other:f16@3"),
    (QUANT, Level(UNREPRODUCED, (ChainLink(BASE["name"], 1, OTHER, UNREPRODUCED),), "x"), "skipped", None, "its chain starts at"),
    (QUANT, Level(REPRODUCED, (ChainLink(BASE["name"], 1, BASE["digest"], UNREPRODUCED),)), "passed", None,
     "its chain says the base demo/base:f16 is itself unreproduced"),
])
def test_unsupported_levels_are_named(stmt, level, reproduce, types, message):
    problem = level_problem(release(**stmt), verdict(level, reproduce), tensor_types=types)
    assert problem is not None and message in problem, problem


@pytest.mark.parametrize("stmt, prov, message", [
    (QUANT, dict(QUANT_PROV, subject=OTHER), f"the provenance is for {OTHER}"),
    (QUANT, dict(QUANT_PROV, deps=[blob(OTHER)]), "does not name the base demo/base:f16"),
    (QUANT, dict(QUANT_PROV, recipe={**QUANT_RECIPE, "ftype": "Q2_K"}), "rebuilt file type Q2_K, the signed recipe says Q4_1"),
    (QUANT, dict(QUANT_PROV, recipe={**QUANT_RECIPE, "options": {"nthread": 3}}), "not the recipe the release statement signs"),
    (QUANT, dict(QUANT_PROV, build_type=statements.CONVERT_BUILD_TYPE), "not a rebuild from the base"),
    (dict(recipe=CONVERSION_RECIPE), dict(CONVERSION_PROV, deps=CONVERSION_PROV["deps"][:1]),
     "does not name the upstream file(s) model.safetensors"),
    (dict(recipe=CONVERSION_RECIPE), dict(CONVERSION_PROV, build_type=statements.BUILD_TYPE), "not a conversion"),
    (dict(recipe=CONVERSION_RECIPE), dict(CONVERSION_PROV, recipe={**CONVERSION_RECIPE, "ggml_build": "other"}),
     "not the recipe the release statement signs"),
    (dict(), QUANT_PROV, "names neither a base nor a conversion recipe"),
])
def test_provenance_that_names_something_else_is_named(stmt, prov, message):
    level = Level(CONVERTED) if stmt.get("recipe") == CONVERSION_RECIPE else FROM_ORIGINAL if stmt else Level(ORIGINAL)
    problem = level_problem(release(**stmt), verdict(level, "passed"), provenance=provenance(**prov))
    assert problem is not None and message in problem, problem


# -- a bogus base level does not spread into the quants built from it (verifier/level.py) -------

@pytest.mark.parametrize("base_verdict_level, statement_digest, expected", [
    (Level(ORIGINAL), None, Level(ORIGINAL)),
    (Level(REPRODUCED, (ChainLink("bob/other:f16", 3, OTHER, ORIGINAL),)), None, None),  # the base names no base of its own
    (Level(CONVERTED), None, None),  # no conversion recipe, nothing converted again
    (Level(ORIGINAL), "sha256:" + "8" * 64, None),  # a verdict over another statement than the base's
])
def test_the_verifier_reads_a_base_level_only_when_the_base_supports_it(base_verdict_level, statement_digest, expected):
    from assay.core import dsse, keys
    from verifier.job import Job
    from verifier.level import base_level

    publisher, verifier = keys.generate_private_key(), keys.generate_private_key()
    payload = statements.build_release_statement(
        subject_name="base.gguf", subject_digest=BASE["digest"], namespace="demo", model="base", tag="f16", version=1,
        quantization="F16", base=None, recipe=None, model_card_digest=None, created="2026-11-24T00:00:00Z")
    verdict_payload = statements.build_verdict_statement(
        subject_name="base.gguf", subject_digest=BASE["digest"], verifier_id=keys.key_id(verifier.public_key()),
        time_created="2026-11-24T00:00:01Z", resource_uri="assay:demo/base:f16@1", policy_uri="urn:test",
        release_statement_digest=statement_digest or statements.statement_digest(payload), passed=True,
        checks=[{"name": n, "result": "skipped" if n == "reproduce" else "passed", "summary": "ok", "evidence": {}}
                for n in ("static", "reproduce", "probes")], level=base_verdict_level)
    job = Job(release_id=2, reference="demo/m:q4", version=1, file_name="m.gguf", digest=SUBJECT, size=1, quantization="Q4_1",
              base_digest=BASE["digest"], base_size=1, base_name=BASE["name"], recipe=QUANT_RECIPE, statement_digest="sha256:" + "7" * 64,
              steps=(), base={"reference": BASE["name"], "version": 1, "digest": BASE["digest"],
                              "verdict_envelope": dsse.sign_envelope(verdict_payload, statements.PAYLOAD_TYPE, verifier),
                              "release_envelope": dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, publisher)})
    assert base_level(job, {keys.key_id(verifier.public_key()): verifier.public_key()}) == expected
