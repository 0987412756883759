"""in-toto Statement v1 payloads: build (canonical JSON bytes) and strictly validate.

Statement kinds (all with payloadType application/vnd.in-toto+json in a DSSE envelope):
- release (publisher signs): predicateType `urn:assay:release:v1`, subject = the GGUF file.
- verdict (verifier signs): SLSA Verification Summary v1 plus an Assay `checks` list.
- provenance (verifier signs, when it reproduced the build): SLSA Provenance v1.
- key event (`urn:assay:key-event:v1`): a publisher key's registration or revocation.
  Subject = the key (name = key id, digest = sha256 of the raw public key).
  A *register* event is signed by the key being registered (proof of possession); a *revoke*
  event is signed by the registry's log key (the registry revokes on the owner's authenticated
  request, which also works when the private key is lost). Both are appended to the log.
- verifier key event (`urn:assay:verifier-key:v1`): a verifier's key registered (signed by that
  key) or revoked (signed by the log key); logged like a key event.
- step result (`urn:assay:verification-step:v1`, verifier signs, never logged): one check
  step's outcome as a verifier reports it to the registry before it signs the verdict.

Validators reject unknown fields, wrong types and non-canonical payloads with a FormatError
naming the field; they return dataclasses. One builder and one validator per kind.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from assay.core.canonical import canonical_json, parse_json_strict
from assay.core.conversion import CONVERSION_TOOL, ConversionRecipe
from assay.core.digest import DIGEST_RE, digest_bytes
from assay.core.errors import FormatError
from assay.core.levels import Level
from assay.core.names import NAME_RE, TAG_RE, file_name_problem, parse_reference
from assay.core.recipe import TOOL as QUANTIZE_TOOL
from assay.core.recipe import Recipe
from assay.core.splits import check_split_names

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
RELEASE_PREDICATE = "urn:assay:release:v1"
VERDICT_PREDICATE = "https://slsa.dev/verification_summary/v1"
PROVENANCE_PREDICATE = "https://slsa.dev/provenance/v1"
KEY_EVENT_PREDICATE = "urn:assay:key-event:v1"
BUILD_TYPE = "urn:assay:gguf-quantize:v1"
CONVERT_BUILD_TYPE = "urn:assay:gguf-convert:v1"  # a full-precision GGUF converted again from its upstream files
BUILD_TYPES = (BUILD_TYPE, CONVERT_BUILD_TYPE)
# The verification steps, in order: the checks a verdict reports, then the signing of the verdict.
# The one list of them: the registry's step rows, the verifier's pipeline and the trust policy's
# required checks all take it from here.
CHECK_STEPS = ("static", "reproduce", "probes")
STEP_NAMES = (*CHECK_STEPS, "attest")
RELEASE_INPUT_URI = "urn:assay:release-statement"  # VSA inputAttestations entry for the release
CHECK_RESULTS = ("passed", "failed", "skipped", "error")
MAX_VERSION = 2**31 - 1  # a release version fits every database's integer column

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX_ANY = re.compile(r"\A[0-9a-f]{8,128}\Z")
_ALG = re.compile(r"\A[a-zA-Z0-9_-]{1,32}\Z")
_QUANT = re.compile(r"\A[A-Za-z0-9_]{1,32}(\([0-9]{1,10}\))?\Z")
_RFC3339 = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z\Z")
_FILE_NAME = re.compile(r"\A[^/\\\x00-\x1f]{1,255}\Z")
_MAX_TEXT = 4096


# ---------------------------------------------------------------- small helpers

def _fail(path: str, problem: str) -> FormatError:
    return FormatError(f"invalid statement: {path} {problem}")


def _obj(value: Any, path: str, required: set[str], optional: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, f"must be an object, not {_tname(value)}")
    missing = required - set(value)
    if missing:
        raise _fail(path, f"is missing field(s) {', '.join(sorted(missing))}")
    extra = set(value) - required - set(optional)
    if extra:
        raise _fail(path, f"has unexpected field(s) {', '.join(sorted(map(str, extra)))}")
    return value


def _tname(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _str(value: Any, path: str, *, pattern: re.Pattern | None = None, max_len: int = _MAX_TEXT, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, not {_tname(value)}")
    if not empty and not value:
        raise _fail(path, "must not be empty")
    if len(value) > max_len:
        raise _fail(path, f"is longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise _fail(path, f"has an invalid value {value[:80]!r}")
    return value


def _int(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"must be an integer, not {_tname(value)}")
    if value < minimum:
        raise _fail(path, f"must be at least {minimum}")
    if value > 2**53 - 1:
        raise _fail(path, "is too large")
    return value


def _list(value: Any, path: str, *, min_len: int = 0, max_len: int = 1000) -> list:
    if not isinstance(value, list):
        raise _fail(path, f"must be a list, not {_tname(value)}")
    if not min_len <= len(value) <= max_len:
        raise _fail(path, f"must have {min_len} to {max_len} entries")
    return value


def _digest_str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not DIGEST_RE.match(value):
        raise _fail(path, "must be a digest 'sha256:' followed by 64 lowercase hex digits")
    return value


def _digest_set(value: Any, path: str, *, sha256_required: bool = True) -> dict:
    """in-toto DigestSet: {"sha256": hex, other algorithms: lowercase hex}."""
    if not isinstance(value, dict) or not value:
        raise _fail(path, "must be a non-empty object of algorithm: hex digest")
    for alg, hexdigest in value.items():
        if not _ALG.match(alg):
            raise _fail(f"{path}.{alg}", "is not a digest algorithm name")
        _str(hexdigest, f"{path}.{alg}", pattern=_HEX64 if alg == "sha256" else _HEX_ANY)
    if sha256_required and "sha256" not in value:
        raise _fail(path, "must contain a sha256 digest")
    return value


def _time(value: Any, path: str) -> str:
    _str(value, path, max_len=40)
    if not _RFC3339.match(value):
        raise _fail(path, f"must be an RFC 3339 UTC time like 2025-01-31T12:00:00Z, not {value!r}")
    try:
        datetime.fromisoformat(value[:19])
    except ValueError:
        raise _fail(path, f"is not a valid date and time: {value!r}") from None
    return value


def format_time(when: datetime | str | None) -> str:
    """RFC 3339 UTC with second precision ("2025-01-31T12:00:00Z"); None means now."""
    if when is None:
        when = datetime.now(timezone.utc)
    elif isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00") if when.endswith("Z") else when)
        except ValueError:
            raise FormatError(f"invalid time {when!r}: expected an ISO 8601 / RFC 3339 date and time") from None
    if not isinstance(when, datetime):
        raise TypeError(f"expected a datetime, got {type(when).__name__}")
    if when.tzinfo is None:
        raise FormatError(f"invalid time {when.isoformat()}: it has no time zone")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_value(value: Any, path: str) -> Any:
    """Any JSON value that canonical JSON can write (rejects floats like NaN, huge ints)."""
    canonical_json(value)
    return value


def _subject_name(name: Any, path: str) -> str:
    _str(name, path, pattern=_FILE_NAME, max_len=255)
    problem = file_name_problem(name)
    if problem is not None:
        raise _fail(path, f"{name[:80]!r} is not a safe file name: {problem}")
    return name


def _subject_entry(name: str, digest: str) -> dict:
    _subject_name(name, "subject.name")
    return {"name": name, "digest": {"sha256": _digest_str(digest, "subject.digest")[len("sha256:"):]}}


# ---------------------------------------------------------------- generic statement

@dataclass(frozen=True)
class Subject:
    name: str
    digest: str  # "sha256:<hex>"
    digests: dict  # the full DigestSet


@dataclass(frozen=True)
class Statement:
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: dict


def build_statement(subjects: list[tuple[str, str]], predicate_type: str, predicate: dict) -> bytes:
    """Canonical JSON bytes of an in-toto Statement v1 with sha256 subjects."""
    return canonical_json({
        "_type": STATEMENT_TYPE,
        "subject": [_subject_entry(n, d) for n, d in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    })


def parse_statement(payload: bytes, predicate_type: str | None = None) -> Statement:
    """Validate the in-toto Statement layer; the predicate is returned unchecked."""
    doc = parse_json_strict(payload)
    if canonical_json(doc) != bytes(payload):
        raise FormatError("invalid statement: payload is not canonical JSON (RFC 8785)")
    _obj(doc, "statement", {"_type", "subject", "predicateType", "predicate"})
    if doc["_type"] != STATEMENT_TYPE:
        raise _fail("_type", f"must be {STATEMENT_TYPE!r}, not {doc['_type']!r}")
    ptype = _str(doc["predicateType"], "predicateType", max_len=256)
    if predicate_type is not None and ptype != predicate_type:
        raise _fail("predicateType", f"is {ptype!r}, expected {predicate_type!r}")
    subjects = []
    for i, entry in enumerate(_list(doc["subject"], "subject", min_len=1, max_len=64)):
        _obj(entry, f"subject[{i}]", {"name", "digest"})
        name = _subject_name(entry["name"], f"subject[{i}].name")
        digests = _digest_set(entry["digest"], f"subject[{i}].digest")
        subjects.append(Subject(name, "sha256:" + digests["sha256"], digests))
    if not isinstance(doc["predicate"], dict):
        raise _fail("predicate", f"must be an object, not {_tname(doc['predicate'])}")
    return Statement(tuple(subjects), ptype, doc["predicate"])


def statement_digest(payload: bytes) -> str:
    """`sha256:` of the exact payload bytes (what a verdict's inputAttestations names)."""
    return digest_bytes(bytes(payload))


def _single_subject(stmt: Statement) -> Subject:
    if len(stmt.subjects) != 1:
        raise _fail("subject", f"must name exactly one file, not {len(stmt.subjects)}")
    return stmt.subjects[0]


# ---------------------------------------------------------------- release

RECIPE_FIELDS = {"tool", "llama_cpp_python_version", "ggml_build", "ftype", "imatrix", "options"}


@dataclass(frozen=True)
class BaseRef:
    name: str  # "ns/model:tag"
    digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class ReleaseStatement:
    subject_name: str
    subject_digest: str
    namespace: str
    model: str
    tag: str
    version: int
    format: str
    quantization: str
    base: BaseRef | None
    recipe: dict | None
    model_card_digest: str | None
    created: str
    # Every file of the release, in order: (name, digest). One entry for a single GGUF; the parts
    # of a split GGUF (<prefix>-00001-of-0000N.gguf ...) otherwise, the first being the subject.
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def reference(self) -> str:
        return f"{self.namespace}/{self.model}:{self.tag}"

    @property
    def is_split(self) -> bool:
        return len(self.parts) > 1


def _check_recipe(recipe: Any, path: str = "predicate.recipe") -> dict:
    """The one recipe validator, as strict as the tools that use the recipe: a quantization recipe
    (assay/core/recipe.py) or a conversion recipe (assay/core/conversion.py), told apart by tool."""
    _obj(recipe, path, RECIPE_FIELDS)
    _json_value(recipe, path)
    tool = recipe["tool"]
    try:
        if tool == CONVERSION_TOOL:
            ConversionRecipe.from_json(recipe)
        elif tool == QUANTIZE_TOOL:
            Recipe.from_json(recipe)
        else:
            raise _fail(f"{path}.tool", f"must be {QUANTIZE_TOOL!r} (a quantization) or {CONVERSION_TOOL!r} (a conversion), not {str(tool)[:80]!r}")
    except FormatError as exc:
        text = str(exc)
        if text.startswith("invalid statement:"):
            raise
        if text.startswith("recipe field "):  # "recipe field options.nthread must be ...": name it in the statement
            raise FormatError(f"invalid statement: {path}.{text[len('recipe field '):]}") from None
        raise _fail(path, f"is not a valid recipe: {text}") from None
    return recipe


def _check_base(base: Any) -> BaseRef:
    _obj(base, "predicate.base", {"name", "digest"})
    try:
        parse_reference(base["name"])
    except FormatError:
        raise _fail("predicate.base.name", f"must be a reference namespace/model:tag, not {base['name']!r}") from None
    return BaseRef(base["name"], _digest_str(base["digest"], "predicate.base.digest"))


def build_release_statement(
    *,
    subject_name: str,
    subject_digest: str,
    namespace: str,
    model: str,
    tag: str,
    version: int,
    quantization: str,
    base: dict | None,
    recipe: dict | None,
    model_card_digest: str | None,
    created: datetime | str | None = None,
    format: str = "gguf",
    parts: list[tuple[str, str]] | None = None,
) -> bytes:
    """The publisher's release statement as canonical JSON bytes (validated before returning).
    `parts`: every file of a split GGUF in order, (name, digest), the first being the subject."""
    predicate = {
        "namespace": namespace, "model": model, "tag": tag, "version": version, "format": format,
        "quantization": quantization,
        "base": None if base is None else {"name": base.get("name"), "digest": base.get("digest")},
        "recipe": recipe, "model_card_digest": model_card_digest, "created": format_time(created),
    }
    subjects = list(parts) if parts else [(subject_name, subject_digest)]
    if subjects[0] != (subject_name, subject_digest):
        raise FormatError("the first part of a split release must be its subject")
    payload = build_statement(subjects, RELEASE_PREDICATE, predicate)
    parse_release_statement(payload)
    return payload


def parse_release_statement(payload: bytes) -> ReleaseStatement:
    stmt = parse_statement(payload, RELEASE_PREDICATE)
    check_split_names([s.name for s in stmt.subjects])  # one file, or the parts of one split GGUF in order
    if len({s.digest for s in stmt.subjects}) != len(stmt.subjects):
        raise _fail("subject", "names the same bytes twice: each part of a split GGUF holds other tensors")
    subject = stmt.subjects[0]
    p = _obj(stmt.predicate, "predicate", {
        "namespace", "model", "tag", "version", "format", "quantization", "base", "recipe", "model_card_digest", "created",
    })
    _str(p["namespace"], "predicate.namespace", pattern=NAME_RE, max_len=64)
    _str(p["model"], "predicate.model", pattern=NAME_RE, max_len=64)
    _str(p["tag"], "predicate.tag", pattern=TAG_RE, max_len=128)
    _int(p["version"], "predicate.version", 1)
    if p["version"] > MAX_VERSION:
        raise _fail("predicate.version", f"must be at most {MAX_VERSION}")
    if p["format"] != "gguf":
        raise _fail("predicate.format", f"must be 'gguf', not {p['format']!r}")
    _str(p["quantization"], "predicate.quantization", pattern=_QUANT, max_len=48)
    base = None if p["base"] is None else _check_base(p["base"])
    recipe = None if p["recipe"] is None else _check_recipe(p["recipe"])
    conversion = recipe is not None and recipe["tool"] == CONVERSION_TOOL
    if conversion and base is not None:
        raise _fail("predicate", f"a conversion recipe ({CONVERSION_TOOL}) names upstream files, not a base: base must be null")
    if (base is None) != (recipe is None) and not conversion:
        raise _fail("predicate", "must have both base and recipe (a derived quant), a conversion recipe alone (a conversion "
                                 "from upstream files) or neither (an original)")
    if p["model_card_digest"] is not None:
        _digest_str(p["model_card_digest"], "predicate.model_card_digest")
    _time(p["created"], "predicate.created")
    return ReleaseStatement(
        subject_name=subject.name, subject_digest=subject.digest, namespace=p["namespace"], model=p["model"],
        tag=p["tag"], version=p["version"], format=p["format"], quantization=p["quantization"], base=base,
        recipe=recipe, model_card_digest=p["model_card_digest"], created=p["created"],
        parts=tuple((s.name, s.digest) for s in stmt.subjects),
    )


# ---------------------------------------------------------------- verdict (SLSA VSA v1)

@dataclass(frozen=True)
class VerdictStatement:
    subject_name: str
    subject_digest: str
    verifier_id: str
    time_verified: str
    resource_uri: str
    policy_uri: str
    policy_digest: str | None
    release_statement_digest: str
    result: str  # "PASSED" | "FAILED"
    verified_levels: tuple[str, ...]
    checks: list[dict] = field(default_factory=list)  # [{name, result, summary, evidence}]
    level: Level | None = None  # None only in verdicts signed before levels existed

    @property
    def level_or_unreproduced(self) -> Level:
        """The signed level; a verdict without one vouches for no build chain."""
        return self.level or Level("unreproduced", (), "the verdict names no verification level")

    @property
    def passed(self) -> bool:
        return self.result == "PASSED"

    def check(self, name: str) -> dict | None:
        return next((c for c in self.checks if c["name"] == name), None)


def evidence_digest(evidence: dict) -> str:
    """The digest a verdict signs for a check's evidence: sha256 of its canonical JSON. The
    evidence document itself is stored once and served apart (GET .../evidence)."""
    return digest_bytes(canonical_json(evidence))


def _check_checks(checks: Any, path: str = "predicate.checks") -> list[dict]:
    """Each check is {name, result, summary} with either `evidenceDigest` (the digest of its
    evidence document, served apart) or, in verdicts signed before that, `evidence` inline."""
    seen = set()
    for i, c in enumerate(_list(checks, path, max_len=64)):
        _obj(c, f"{path}[{i}]", {"name", "result", "summary"}, {"evidence", "evidenceDigest"})
        if ("evidence" in c) == ("evidenceDigest" in c):
            raise _fail(f"{path}[{i}]", "must have exactly one of evidence and evidenceDigest")
        name = _str(c["name"], f"{path}[{i}].name", pattern=re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z"))
        if name in seen:
            raise _fail(f"{path}[{i}].name", f"repeats check {name!r}")
        seen.add(name)
        if c["result"] not in CHECK_RESULTS:
            raise _fail(f"{path}[{i}].result", f"must be one of {', '.join(CHECK_RESULTS)}, not {c['result']!r}")
        _str(c["summary"], f"{path}[{i}].summary", empty=True, max_len=_MAX_TEXT)
        if "evidence" in c and not isinstance(c["evidence"], dict):
            raise _fail(f"{path}[{i}].evidence", f"must be an object, not {_tname(c['evidence'])}")
        if "evidenceDigest" in c:
            _digest_str(c["evidenceDigest"], f"{path}[{i}].evidenceDigest")
    return checks


def build_verdict_statement(
    *,
    subject_name: str,
    subject_digest: str,
    verifier_id: str,
    time_created: datetime | str | None,
    resource_uri: str,
    policy_uri: str,
    release_statement_digest: str,
    passed: bool,
    checks: list[dict],
    policy_digest: str | None = None,
    level: Level | None = None,
) -> bytes:
    """The verifier's verdict: SLSA VSA v1 with the per-check results in `checks` and the
    verification level (assay/core/levels.py) in `assayLevel`, also named in `verifiedLevels` as
    ASSAY_<LEVEL> for SLSA tooling."""
    policy: dict = {"uri": policy_uri}
    if policy_digest is not None:
        policy["digest"] = {"sha256": _digest_str(policy_digest, "policy_digest")[7:]}
    predicate = {
        "verifier": {"id": verifier_id},
        "timeVerified": format_time(time_created),
        "resourceUri": resource_uri,
        "policy": policy,
        "inputAttestations": [{"uri": RELEASE_INPUT_URI, "digest": {"sha256": _digest_str(release_statement_digest, "release_statement_digest")[7:]}}],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [level_label(level.name)] if level else [],
        "checks": [_verdict_check(c) for c in checks],
    }
    if level is not None:
        predicate["assayLevel"] = level.to_dict()
    payload = build_statement([(subject_name, subject_digest)], VERDICT_PREDICATE, predicate)
    parse_verdict_statement(payload)
    return payload


def _verdict_check(c: dict) -> dict:
    """A check as a verdict signs it: its evidence by digest (given, or computed from `evidence`)."""
    digest = c.get("evidenceDigest") or evidence_digest(c.get("evidence") or {})
    return {"name": c["name"], "result": c["result"], "summary": c.get("summary") or "", "evidenceDigest": digest}


def level_label(name: str) -> str:
    """The verifiedLevels entry of a level (SLSA VSA's <TRACK>_<LEVEL> form)."""
    return "ASSAY_" + name.upper()


def parse_verdict_statement(payload: bytes) -> VerdictStatement:
    stmt = parse_statement(payload, VERDICT_PREDICATE)
    subject = _single_subject(stmt)
    p = _obj(stmt.predicate, "predicate", {
        "verifier", "timeVerified", "resourceUri", "policy", "inputAttestations", "verificationResult", "verifiedLevels", "checks",
    }, {"assayLevel"})
    _obj(p["verifier"], "predicate.verifier", {"id"})
    _str(p["verifier"]["id"], "predicate.verifier.id", max_len=256)
    _time(p["timeVerified"], "predicate.timeVerified")
    _str(p["resourceUri"], "predicate.resourceUri", max_len=1024)
    _obj(p["policy"], "predicate.policy", {"uri"}, {"digest"})
    _str(p["policy"]["uri"], "predicate.policy.uri", max_len=1024)
    policy_digest = None
    if "digest" in p["policy"]:
        policy_digest = "sha256:" + _digest_set(p["policy"]["digest"], "predicate.policy.digest")["sha256"]
    release_digest = None
    for i, att in enumerate(_list(p["inputAttestations"], "predicate.inputAttestations", min_len=1, max_len=64)):
        _obj(att, f"predicate.inputAttestations[{i}]", {"uri", "digest"})
        _str(att["uri"], f"predicate.inputAttestations[{i}].uri", max_len=1024)
        digests = _digest_set(att["digest"], f"predicate.inputAttestations[{i}].digest")
        if att["uri"] == RELEASE_INPUT_URI:
            if release_digest is not None:
                raise _fail("predicate.inputAttestations", "names more than one release statement")
            release_digest = "sha256:" + digests["sha256"]
    if release_digest is None:
        raise _fail("predicate.inputAttestations", f"has no entry with uri {RELEASE_INPUT_URI!r}")
    if p["verificationResult"] not in ("PASSED", "FAILED"):
        raise _fail("predicate.verificationResult", f"must be 'PASSED' or 'FAILED', not {p['verificationResult']!r}")
    levels = _list(p["verifiedLevels"], "predicate.verifiedLevels", max_len=32)
    for i, level in enumerate(levels):
        _str(level, f"predicate.verifiedLevels[{i}]", max_len=64)
    checks = _check_checks(p["checks"])
    level = Level.from_dict(p["assayLevel"], "predicate.assayLevel") if "assayLevel" in p else None
    labels = [lv for lv in levels if lv.startswith("ASSAY_")]
    if labels != ([level_label(level.name)] if level else []):
        raise _fail("predicate.verifiedLevels", f"names {labels} but assayLevel is {level.name if level else None!r}")
    return VerdictStatement(
        subject_name=subject.name, subject_digest=subject.digest, verifier_id=p["verifier"]["id"],
        time_verified=p["timeVerified"], resource_uri=p["resourceUri"], policy_uri=p["policy"]["uri"],
        policy_digest=policy_digest, release_statement_digest=release_digest, result=p["verificationResult"],
        verified_levels=tuple(levels), checks=checks, level=level,
    )


# ---------------------------------------------------------------- provenance (SLSA Provenance v1)

@dataclass(frozen=True)
class ProvenanceStatement:
    subject_name: str
    subject_digest: str
    build_type: str
    external_parameters: dict
    resolved_dependencies: list[dict]
    builder_id: str
    started_on: str | None
    finished_on: str | None


def _check_resource(value: Any, path: str) -> dict:
    _obj(value, path, set(), {"uri", "digest", "name"})
    if not value:
        raise _fail(path, "must have a uri, digest or name")
    if "uri" in value:
        _str(value["uri"], f"{path}.uri", max_len=1024)
    if "name" in value:
        _str(value["name"], f"{path}.name", max_len=255)
    if "digest" in value:
        _digest_set(value["digest"], f"{path}.digest", sha256_required=False)
    return value


def build_provenance_statement(
    *,
    subject_name: str,
    subject_digest: str,
    builder_id: str,
    recipe: dict | None,
    resolved_dependencies: list[dict],
    started_on: datetime | str | None = None,
    finished_on: datetime | str | None = None,
    build_type: str = BUILD_TYPE,
) -> bytes:
    """SLSA Provenance v1 for a quantization the verifier reproduced (or, with CONVERT_BUILD_TYPE,
    a conversion it ran again from the upstream files)."""
    metadata = {}
    if started_on is not None:
        metadata["startedOn"] = format_time(started_on)
    if finished_on is not None:
        metadata["finishedOn"] = format_time(finished_on)
    predicate = {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": dict(recipe or {}),
            "resolvedDependencies": list(resolved_dependencies),
        },
        "runDetails": {"builder": {"id": builder_id}, "metadata": metadata},
    }
    payload = build_statement([(subject_name, subject_digest)], PROVENANCE_PREDICATE, predicate)
    parse_provenance_statement(payload)
    return payload


def parse_provenance_statement(payload: bytes) -> ProvenanceStatement:
    stmt = parse_statement(payload, PROVENANCE_PREDICATE)
    subject = _single_subject(stmt)
    p = _obj(stmt.predicate, "predicate", {"buildDefinition", "runDetails"})
    bd = _obj(p["buildDefinition"], "predicate.buildDefinition", {"buildType", "externalParameters"}, {"internalParameters", "resolvedDependencies"})
    if bd["buildType"] not in BUILD_TYPES:
        raise _fail("predicate.buildDefinition.buildType", f"must be one of {', '.join(map(repr, BUILD_TYPES))}, not {bd['buildType']!r}")
    if not isinstance(bd["externalParameters"], dict):
        raise _fail("predicate.buildDefinition.externalParameters", "must be an object")
    if "internalParameters" in bd and not isinstance(bd["internalParameters"], dict):
        raise _fail("predicate.buildDefinition.internalParameters", "must be an object")
    deps = bd.get("resolvedDependencies", [])
    for i, dep in enumerate(_list(deps, "predicate.buildDefinition.resolvedDependencies", max_len=256)):
        _check_resource(dep, f"predicate.buildDefinition.resolvedDependencies[{i}]")
    rd = _obj(p["runDetails"], "predicate.runDetails", {"builder"}, {"metadata", "byproducts"})
    _obj(rd["builder"], "predicate.runDetails.builder", {"id"}, {"version", "builderDependencies"})
    _str(rd["builder"]["id"], "predicate.runDetails.builder.id", max_len=256)
    md = _obj(rd.get("metadata", {}), "predicate.runDetails.metadata", set(), {"invocationId", "startedOn", "finishedOn"})
    for key in ("startedOn", "finishedOn"):
        if key in md:
            _time(md[key], f"predicate.runDetails.metadata.{key}")
    if "invocationId" in md:
        _str(md["invocationId"], "predicate.runDetails.metadata.invocationId", max_len=256)
    return ProvenanceStatement(
        subject_name=subject.name, subject_digest=subject.digest, build_type=bd["buildType"],
        external_parameters=bd["externalParameters"], resolved_dependencies=deps, builder_id=rd["builder"]["id"],
        started_on=md.get("startedOn"), finished_on=md.get("finishedOn"),
    )


# ---------------------------------------------------------------- key events

@dataclass(frozen=True)
class KeyEvent:
    event: str  # "register" | "revoke"
    keyid: str
    public_key: str  # base64 of the raw 32 bytes
    owner: str
    time: str
    reason: str | None


def build_key_event(
    event: str,
    *,
    keyid: str,
    public_key: str,
    owner: str,
    time: datetime | str | None = None,
    reason: str | None = None,
) -> bytes:
    """Registration (sign with the key itself) or revocation (sign with the log key) of a key."""
    payload = _build_key_statement(KEY_EVENT_PREDICATE, event, keyid, public_key, ("owner", owner), time, reason)
    parse_key_event(payload)
    return payload


def _build_key_statement(predicate_type: str, event: str, keyid: str, public_key: str, holder: tuple[str, str],
                         time: datetime | str | None, reason: str | None) -> bytes:
    """A register/revoke statement about a key; `holder` is (field, name): owner or verifier."""
    predicate = {"event": event, "keyid": keyid, "public_key": public_key, holder[0]: holder[1], "time": format_time(time)}
    if event == "revoke":
        predicate["reason"] = reason or ""
    elif reason:
        raise FormatError("a reason is only recorded for a revoke event")
    return build_statement([(keyid, keyid)], predicate_type, predicate)


def _parse_key_statement(payload: bytes, predicate_type: str, holder: str) -> dict:
    """The checked predicate of a register/revoke statement about a key (see _build_key_statement)."""
    from assay.core.keys import key_id, public_key_from_text  # local: keys imports nothing from here

    stmt = parse_statement(payload, predicate_type)
    subject = _single_subject(stmt)
    p = stmt.predicate
    if p.get("event") == "revoke":
        _obj(p, "predicate", {"event", "keyid", "public_key", holder, "time", "reason"})
        _str(p["reason"], "predicate.reason", empty=True, max_len=1000)
    elif p.get("event") == "register":
        _obj(p, "predicate", {"event", "keyid", "public_key", holder, "time"})
    else:
        raise _fail("predicate.event", f"must be 'register' or 'revoke', not {p.get('event')!r}")
    _digest_str(p["keyid"], "predicate.keyid")
    try:
        actual = key_id(public_key_from_text(p["public_key"]))
    except FormatError:
        raise _fail("predicate.public_key", "must be base64 of a 32-byte Ed25519 key or of a P-256 SubjectPublicKeyInfo") from None
    if actual != p["keyid"]:
        raise _fail("predicate.keyid", f"is {p['keyid']} but the public key's id is {actual}")
    if subject.name != p["keyid"] or subject.digest != p["keyid"]:
        raise _fail("subject", "must name the key (name and sha256 digest = the key id)")
    _str(p[holder], f"predicate.{holder}", pattern=NAME_RE, max_len=64)
    _time(p["time"], "predicate.time")
    return p


def parse_key_event(payload: bytes) -> KeyEvent:
    p = _parse_key_statement(payload, KEY_EVENT_PREDICATE, "owner")
    return KeyEvent(p["event"], p["keyid"], p["public_key"], p["owner"], p["time"], p.get("reason"))


def parse_key_event_envelope_unverified(envelope: dict) -> KeyEvent:
    """Decode a key-event envelope WITHOUT checking its signature (the caller verifies next)."""
    from assay.core.dsse import parse_envelope

    parsed = parse_envelope(envelope)
    if parsed.payload_type != PAYLOAD_TYPE:
        raise FormatError(f"invalid envelope: payloadType is {parsed.payload_type!r}, expected {PAYLOAD_TYPE!r}")
    return parse_key_event(parsed.payload)


# ---------------------------------------------------------------- namespace roles

ROLE_PREDICATE = "urn:assay:namespace-role:v1"
ROLES = ("owner", "publisher", "reader", "none")  # "none": removed from the namespace
PUBLISHING_ROLES = ("owner", "publisher")


@dataclass(frozen=True)
class RoleEvent:
    namespace: str
    member: str
    role: str
    time: str


def _role_subject(namespace: str, member: str) -> tuple[str, str]:
    name = f"{namespace}:{member}"
    return name, digest_bytes(name.encode("utf-8"))


def build_role_event(*, namespace: str, member: str, role: str, time: datetime | str | None = None) -> bytes:
    """`member`'s role in `namespace` from now on (the registry signs it with its log key and logs
    it): the keys `member` registered may sign releases there while the role is owner or publisher."""
    predicate = {"namespace": namespace, "member": member, "role": role, "time": format_time(time)}
    payload = build_statement([_role_subject(namespace, member)], ROLE_PREDICATE, predicate)
    parse_role_event(payload)
    return payload


def parse_role_event(payload: bytes) -> RoleEvent:
    stmt = parse_statement(payload, ROLE_PREDICATE)
    subject = _single_subject(stmt)
    p = _obj(stmt.predicate, "predicate", {"namespace", "member", "role", "time"})
    _str(p["namespace"], "predicate.namespace", pattern=NAME_RE, max_len=64)
    _str(p["member"], "predicate.member", pattern=NAME_RE, max_len=64)
    if p["role"] not in ROLES:
        raise _fail("predicate.role", f"must be one of {', '.join(ROLES)}, not {p['role']!r}")
    _time(p["time"], "predicate.time")
    if (subject.name, subject.digest) != _role_subject(p["namespace"], p["member"]):
        raise _fail("subject", "must name namespace:member with the sha256 of that name")
    return RoleEvent(p["namespace"], p["member"], p["role"], p["time"])


# ---------------------------------------------------------------- verifier keys

VERIFIER_EVENT_PREDICATE = "urn:assay:verifier-key:v1"


@dataclass(frozen=True)
class VerifierEvent:
    event: str  # "register" | "revoke"
    keyid: str
    public_key: str  # base64 of the raw 32 bytes
    verifier: str  # the verifier's name at the registry
    time: str
    reason: str | None


def build_verifier_event(event: str, *, keyid: str, public_key: str, verifier: str,
                         time: datetime | str | None = None, reason: str | None = None) -> bytes:
    """A verifier key's registration (signed by that key: proof of possession) or revocation
    (signed by the registry's log key). Both are logged; clients and auditors see every key that
    was ever allowed to sign verdicts at this registry, and when it stopped."""
    payload = _build_key_statement(VERIFIER_EVENT_PREDICATE, event, keyid, public_key, ("verifier", verifier), time, reason)
    parse_verifier_event(payload)
    return payload


def parse_verifier_event(payload: bytes) -> VerifierEvent:
    p = _parse_key_statement(payload, VERIFIER_EVENT_PREDICATE, "verifier")
    return VerifierEvent(p["event"], p["keyid"], p["public_key"], p["verifier"], p["time"], p.get("reason"))


# ---------------------------------------------------------------- one verification step

STEP_PREDICATE = "urn:assay:verification-step:v1"


@dataclass(frozen=True)
class StepResult:
    subject_name: str
    subject_digest: str
    release_statement_digest: str
    verifier_id: str
    step: str
    result: str  # one of CHECK_RESULTS
    summary: str
    evidence: dict
    time: str


def build_step_result(*, subject_name: str, subject_digest: str, release_statement_digest: str, verifier_id: str,
                      step: str, result: str, summary: str, evidence: dict, time: datetime | str | None = None) -> bytes:
    """One check step's outcome as a verifier reports it to the registry (signed by the verifier,
    never logged): the verifier later signs its verdict only over step results that carry its own
    signature, so a registry cannot change a step's outcome or evidence in between."""
    predicate = {"releaseStatement": {"sha256": _digest_str(release_statement_digest, "release_statement_digest")[7:]},
                 "verifier": {"id": verifier_id}, "step": step, "result": result, "summary": summary,
                 "evidence": evidence, "time": format_time(time)}
    payload = build_statement([(subject_name, subject_digest)], STEP_PREDICATE, predicate)
    parse_step_result(payload)
    return payload


def parse_step_result(payload: bytes) -> StepResult:
    stmt = parse_statement(payload, STEP_PREDICATE)
    subject = _single_subject(stmt)
    p = _obj(stmt.predicate, "predicate", {"releaseStatement", "verifier", "step", "result", "summary", "evidence", "time"})
    release_digest = "sha256:" + _str(_obj(p["releaseStatement"], "predicate.releaseStatement", {"sha256"})["sha256"],
                                      "predicate.releaseStatement.sha256", pattern=_HEX64)
    verifier_id = _digest_str(_obj(p["verifier"], "predicate.verifier", {"id"})["id"], "predicate.verifier.id")
    _check_checks([{k: p[k] for k in ("result", "summary", "evidence")} | {"name": p["step"]}], "predicate")
    _time(p["time"], "predicate.time")
    return StepResult(subject.name, subject.digest, release_digest, verifier_id, p["step"], p["result"], p["summary"],
                      p["evidence"], p["time"])


# ---------------------------------------------------------------- sealed log entries

SEALED_PREDICATE = "urn:assay:sealed-entry:v1"
SEALED_KINDS = ("release", "verdict", "provenance")
_SALT = re.compile(r"\A[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class SealedEntry:
    kind: str
    commitment: str
    time: str


def seal_commitment(salt_hex: str, envelope: dict) -> str:
    """sha256(salt || canonical JSON of the envelope): what the log holds for an entry of a
    private namespace. The random salt keeps a guessable statement from being confirmed by
    hashing guesses; readers of the release get the salt and the envelope, and check both."""
    if not isinstance(salt_hex, str) or not _SALT.match(salt_hex):
        raise FormatError("a seal's salt must be 64 lowercase hex digits")
    return digest_bytes(bytes.fromhex(salt_hex) + canonical_json(envelope))


def build_sealed_entry(*, kind: str, commitment: str, time: datetime | str | None = None) -> bytes:
    """The log entry standing for a release, verdict or provenance of a private namespace: the
    registry signs it with its log key; it names no namespace, model, file or output."""
    payload = build_statement([("sealed", commitment)], SEALED_PREDICATE, {"kind": kind, "commitment": commitment, "time": format_time(time)})
    parse_sealed_entry(payload)
    return payload


def parse_sealed_entry(payload: bytes) -> SealedEntry:
    stmt = parse_statement(payload, SEALED_PREDICATE)
    subject = _single_subject(stmt)
    p = _obj(stmt.predicate, "predicate", {"kind", "commitment", "time"})
    if p["kind"] not in SEALED_KINDS:
        raise _fail("predicate.kind", f"must be one of {', '.join(SEALED_KINDS)}, not {p['kind']!r}")
    _digest_str(p["commitment"], "predicate.commitment")
    _time(p["time"], "predicate.time")
    if (subject.name, subject.digest) != ("sealed", p["commitment"]):
        raise _fail("subject", "must be 'sealed' with the commitment as its digest")
    return SealedEntry(p["kind"], p["commitment"], p["time"])
