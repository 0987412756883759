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

Each kind's predicate is a typed model (assay/core/typed.py: unknown fields rejected, strict
types); a validator loads the payload into its model, checks what spans fields, and returns a
dataclass. Bad input is a FormatError naming the field. One builder and one validator per kind.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, create_model, model_validator

from assay.core.canonical import canonical_json, parse_json_strict
from assay.core.conversion import CONVERSION_TOOL, ConversionRecipe
from assay.core.digest import BLAKE3_RE, DIGEST_RE, digest_bytes
from assay.core.errors import FormatError
from assay.core.levels import Level
from assay.core.names import NAME_RE, TAG_RE, file_name_problem, parse_reference
from assay.core.nul import nul_path
from assay.core.recipe import TOOL as QUANTIZE_TOOL
from assay.core.recipe import Recipe
from assay.core.splits import check_split_names
from assay.core.typed import Digest, FieldError, Strict, load, matching, type_name

M = TypeVar("M", bound=Strict)

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
_CHECK_NAME = re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z")
_MAX_TEXT = 4096


# ---------------------------------------------------------------- field types

def _fail(path: str, problem: str) -> FormatError:
    return FormatError(f"invalid statement: {path} {problem}")


def _load(model: type[M], data: Any, root: str = "") -> M:
    return load(model, data, what="invalid statement:", root=root, whole="statement")


def _text(max_len: int = _MAX_TEXT, *, empty: bool = False):
    return StringConstraints(min_length=0 if empty else 1, max_length=max_len)


Hex64 = Annotated[str, matching(_HEX64, "must be 64 lowercase hex digits")]
Name = Annotated[str, _text(64), matching(NAME_RE)]
Tag = Annotated[str, _text(128), matching(TAG_RE)]
Text64 = Annotated[str, _text(64)]
Text255 = Annotated[str, _text(255)]
Text256 = Annotated[str, _text(256)]
Text1024 = Annotated[str, _text(1024)]
Summary = Annotated[str, _text(_MAX_TEXT, empty=True)]
CheckName = Annotated[str, matching(_CHECK_NAME)]


def _check_time(value: str) -> str:
    if len(value) > 40 or not _RFC3339.match(value):
        raise ValueError(f"must be an RFC 3339 UTC time like 2025-01-31T12:00:00Z, not {value[:40]!r}")
    try:
        datetime.fromisoformat(value[:19])
    except ValueError:
        raise ValueError(f"is not a valid date and time: {value!r}") from None
    return value


Time = Annotated[str, AfterValidator(_check_time)]


def _digest_set(sha256_required: bool):
    """in-toto DigestSet: {"sha256": hex, other algorithms: lowercase hex}."""
    def check(value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("must be a non-empty object of algorithm: hex digest")
        for alg, hexdigest in value.items():
            if not _ALG.match(alg):
                raise ValueError(f"names {alg[:40]!r}, which is not a digest algorithm name")
            if not (_HEX64 if alg in ("sha256", "blake3") else _HEX_ANY).match(hexdigest):
                raise FieldError(alg, f"has an invalid value {hexdigest[:80]!r}")
        if sha256_required and "sha256" not in value:
            raise ValueError("must contain a sha256 digest")
        return value
    return Annotated[dict[str, str], AfterValidator(check)]


DigestSet = _digest_set(True)
AnyDigestSet = _digest_set(False)


def _check_subject_name(name: str) -> str:
    problem = file_name_problem(name) if _FILE_NAME.match(name) else "it is empty, longer than 255 characters or holds a path separator or control character"
    if problem is not None:
        raise ValueError(f"{name[:80]!r} is not a safe file name: {problem}")
    return name


SubjectName = Annotated[str, AfterValidator(_check_subject_name)]


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


def _hex(digest: str, what: str) -> str:
    """The hex part of a `sha256:` digest a builder is given (FormatError naming `what` if it is none)."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise FormatError(f"invalid {what} {str(digest)[:80]!r}: expected sha256:<64 lowercase hex digits>")
    return digest[len("sha256:"):]


def _subject_entry(name: str, digest: str, blake3: str | None = None) -> dict:
    try:
        _check_subject_name(name)
    except (ValueError, TypeError) as exc:
        raise _fail("subject.name", str(exc) if isinstance(exc, ValueError) else "must be a string") from None
    digests = {"sha256": _hex(digest, "subject digest")}
    if blake3 is not None:
        if not isinstance(blake3, str) or not BLAKE3_RE.match(blake3):
            raise FormatError(f"invalid BLAKE3 digest {str(blake3)[:80]!r}: expected blake3:<64 lowercase hex digits>")
        digests["blake3"] = blake3[len("blake3:"):]
    return {"name": name, "digest": digests}


def _blake3_of(subject: "Subject") -> str | None:
    """A subject's `blake3:<hex>`, when its DigestSet declares one."""
    return "blake3:" + subject.digests["blake3"] if "blake3" in subject.digests else None


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


def build_statement(subjects: list[tuple[str, str]], predicate_type: str, predicate: dict,
                    blake3: dict[str, str] | None = None) -> bytes:
    """Canonical JSON bytes of an in-toto Statement v1 with sha256 subjects; `blake3` maps a
    subject's `sha256:` digest to the `blake3:` digest its DigestSet declares too."""
    blake3 = blake3 or {}
    return canonical_json({
        "_type": STATEMENT_TYPE,
        "subject": [_subject_entry(n, d, blake3.get(d)) for n, d in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    })


class _SubjectDoc(Strict):
    name: SubjectName
    digest: DigestSet


class _StatementDoc(Strict):
    """in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)."""
    type: Literal[STATEMENT_TYPE] = Field(alias="_type")  # type: ignore[valid-type]
    subject: Annotated[list[_SubjectDoc], Field(min_length=1, max_length=64)]
    predicateType: Text256
    predicate: dict[str, Any]


def parse_statement(payload: bytes, predicate_type: str | None = None) -> Statement:
    """Validate the in-toto Statement layer; the predicate is returned for its kind's model."""
    doc = parse_json_strict(payload)
    if canonical_json(doc) != bytes(payload):
        raise FormatError("invalid statement: payload is not canonical JSON (RFC 8785)")
    where = nul_path(doc)
    if where is not None:  # no registry database could store it; a verifier writes it as "␀"
        raise _fail(where, "holds a NUL character (U+0000), which no Assay statement may hold")
    stmt = _load(_StatementDoc, doc)
    if predicate_type is not None and stmt.predicateType != predicate_type:
        raise _fail("predicateType", f"is {stmt.predicateType!r}, expected {predicate_type!r}")
    subjects = tuple(Subject(e.name, "sha256:" + e.digest["sha256"], e.digest) for e in stmt.subject)
    return Statement(subjects, stmt.predicateType, doc["predicate"])


def statement_digest(payload: bytes) -> str:
    """`sha256:` of the exact payload bytes (what a verdict's inputAttestations names)."""
    return digest_bytes(bytes(payload))


def _single_subject(stmt: Statement) -> Subject:
    if len(stmt.subjects) != 1:
        raise _fail("subject", f"must name exactly one file, not {len(stmt.subjects)}")
    return stmt.subjects[0]


# ---------------------------------------------------------------- release

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
    # The `blake3:` digest each file's DigestSet declares next to its SHA-256 (assay/core/digest.py):
    # sha256 digest -> blake3 digest; empty for a statement that declares none.
    blake3: dict = field(default_factory=dict)

    @property
    def declares_blake3(self) -> bool:
        """Whether every file has a BLAKE3 digest (a client checks by BLAKE3 only then)."""
        return bool(self.parts) and all(d in self.blake3 for _, d in self.parts)

    @property
    def reference(self) -> str:
        return f"{self.namespace}/{self.model}:{self.tag}"

    @property
    def is_split(self) -> bool:
        return len(self.parts) > 1


def parse_recipe(recipe: Any, path: str = "predicate.recipe") -> Recipe | ConversionRecipe:
    """The one recipe validator, as strict as the tools that use the recipe: a quantization recipe
    (assay/core/recipe.py) or a conversion recipe (assay/core/conversion.py), told apart by tool.
    Each is a typed model; a problem is named by its path in the statement."""
    if not isinstance(recipe, dict):
        raise _fail(path, f"must be an object, not {type_name(recipe)}")
    tool = recipe.get("tool")
    if tool == CONVERSION_TOOL:
        return ConversionRecipe.from_json(recipe, what="invalid statement:", root=path)
    if tool == QUANTIZE_TOOL:
        return Recipe.from_json(recipe, what="invalid statement:", root=path)
    raise _fail(f"{path}.tool", f"must be {QUANTIZE_TOOL!r} (a quantization) or {CONVERSION_TOOL!r} (a conversion), not {str(tool)[:80]!r}")


def _check_reference(value: str) -> str:
    try:
        parse_reference(value)
    except FormatError:
        raise ValueError(f"must be a reference namespace/model:tag, not {value[:80]!r}") from None
    return value


class _BaseDoc(Strict):
    name: Annotated[str, AfterValidator(_check_reference)]
    digest: Digest


class _ReleasePredicate(Strict):
    namespace: Name
    model: Name
    tag: Tag
    version: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    format: Literal["gguf"]
    quantization: Annotated[str, _text(48), matching(_QUANT)]
    base: _BaseDoc | None
    recipe: dict[str, Any] | None
    model_card_digest: Digest | None
    created: Time


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
    blake3: dict[str, str] | None = None,
) -> bytes:
    """The publisher's release statement as canonical JSON bytes (validated before returning).
    `parts`: every file of a split GGUF in order, (name, digest), the first being the subject.
    `blake3`: sha256 digest -> `blake3:` digest of each file, declared in its subject DigestSet
    (all files or none)."""
    predicate = {
        "namespace": namespace, "model": model, "tag": tag, "version": version, "format": format,
        "quantization": quantization,
        "base": None if base is None else {"name": base.get("name"), "digest": base.get("digest")},
        "recipe": recipe, "model_card_digest": model_card_digest, "created": format_time(created),
    }
    subjects = list(parts) if parts else [(subject_name, subject_digest)]
    if subjects[0] != (subject_name, subject_digest):
        raise FormatError("the first part of a split release must be its subject")
    if blake3 and set(blake3) != {d for _, d in subjects}:
        raise FormatError("a release declares a BLAKE3 digest for every file or for none")
    payload = build_statement(subjects, RELEASE_PREDICATE, predicate, blake3)
    parse_release_statement(payload)
    return payload


def parse_release_statement(payload: bytes) -> ReleaseStatement:
    stmt = parse_statement(payload, RELEASE_PREDICATE)
    check_split_names([s.name for s in stmt.subjects])  # one file, or the parts of one split GGUF in order
    if len({s.digest for s in stmt.subjects}) != len(stmt.subjects):
        raise _fail("subject", "names the same bytes twice: each part of a split GGUF holds other tensors")
    blake3 = {s.digest: "blake3:" + s.digests["blake3"] for s in stmt.subjects if "blake3" in s.digests}
    if blake3 and len(blake3) != len(stmt.subjects):
        raise _fail("subject", "declares a BLAKE3 digest for some files and not others: for every file or for none")
    subject = stmt.subjects[0]
    p = _load(_ReleasePredicate, stmt.predicate, "predicate")
    base = None if p.base is None else BaseRef(p.base.name, p.base.digest)
    recipe = None if p.recipe is None else stmt.predicate["recipe"]
    conversion = recipe is not None and isinstance(parse_recipe(recipe), ConversionRecipe)
    if conversion and base is not None:
        raise _fail("predicate", f"a conversion recipe ({CONVERSION_TOOL}) names upstream files, not a base: base must be null")
    if (base is None) != (recipe is None) and not conversion:
        raise _fail("predicate", "must have both base and recipe (a derived quant), a conversion recipe alone (a conversion "
                                 "from upstream files) or neither (an original)")
    return ReleaseStatement(
        subject_name=subject.name, subject_digest=subject.digest, namespace=p.namespace, model=p.model,
        tag=p.tag, version=p.version, format=p.format, quantization=p.quantization, base=base,
        recipe=recipe, model_card_digest=p.model_card_digest, created=p.created,
        parts=tuple((s.name, s.digest) for s in stmt.subjects), blake3=blake3,
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
    # The subject's `blake3:` digest in the verdict's subject DigestSet: the verifier checked the
    # BLAKE3 digest the release statement declares for every file against the bytes (None: it did not).
    subject_blake3: str | None = None

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


class _CheckDoc(Strict):
    """A check as a verdict signs it: {name, result, summary} with either `evidenceDigest` (the
    digest of its evidence document, served apart) or, in verdicts signed before that, `evidence` inline."""
    name: CheckName
    result: Literal[CHECK_RESULTS]  # type: ignore[valid-type]
    summary: Summary
    evidence: dict[str, Any] = None  # type: ignore[assignment]  (absent, never null)
    evidenceDigest: Digest = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_evidence(self) -> "_CheckDoc":
        if (self.evidence is None) == (self.evidenceDigest is None):
            raise ValueError("must have exactly one of evidence and evidenceDigest")
        return self


def _unique_names(checks: list[_CheckDoc]) -> list[_CheckDoc]:
    seen: set[str] = set()
    for i, c in enumerate(checks):
        if c.name in seen:
            raise ValueError(f"repeats check {c.name!r} (entry {i})")
        seen.add(c.name)
    return checks


class _VerifierRef(Strict):
    id: Text256


class _PolicyRef(Strict):
    uri: Text1024
    digest: DigestSet = None  # type: ignore[assignment]


class _Attestation(Strict):
    uri: Text1024
    digest: DigestSet


class _VerdictPredicate(Strict):
    """SLSA Verification Summary v1 (https://slsa.dev/spec/v1.0/verification_summary) with Assay's
    `checks` and `assayLevel`."""
    verifier: _VerifierRef
    timeVerified: Time
    resourceUri: Text1024
    policy: _PolicyRef
    inputAttestations: Annotated[list[_Attestation], Field(min_length=1, max_length=64)]
    verificationResult: Literal["PASSED", "FAILED"]
    verifiedLevels: Annotated[list[Text64], Field(max_length=32)]
    checks: Annotated[list[_CheckDoc], Field(max_length=64), AfterValidator(_unique_names)]
    assayLevel: dict[str, Any] = None  # type: ignore[assignment]


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
    subject_blake3: str | None = None,
) -> bytes:
    """`subject_blake3`: given only by a verifier that checked the BLAKE3 digest the release
    statement declares for every file against the bytes; a client then checks downloads by it.
    The verifier's verdict: SLSA VSA v1 with the per-check results in `checks` and the
    verification level (assay/core/levels.py) in `assayLevel`, also named in `verifiedLevels` as
    ASSAY_<LEVEL> for SLSA tooling."""
    policy: dict = {"uri": policy_uri}
    if policy_digest is not None:
        policy["digest"] = {"sha256": _hex(policy_digest, "policy digest")}
    predicate = {
        "verifier": {"id": verifier_id},
        "timeVerified": format_time(time_created),
        "resourceUri": resource_uri,
        "policy": policy,
        "inputAttestations": [{"uri": RELEASE_INPUT_URI, "digest": {"sha256": _hex(release_statement_digest, "release statement digest")}}],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [level_label(level.name)] if level else [],
        "checks": [_verdict_check(c) for c in checks],
    }
    if level is not None:
        predicate["assayLevel"] = level.to_dict()
    payload = build_statement([(subject_name, subject_digest)], VERDICT_PREDICATE, predicate,
                              {subject_digest: subject_blake3} if subject_blake3 else None)
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
    p = _load(_VerdictPredicate, stmt.predicate, "predicate")
    policy_digest = None if p.policy.digest is None else "sha256:" + p.policy.digest["sha256"]
    releases = ["sha256:" + a.digest["sha256"] for a in p.inputAttestations if a.uri == RELEASE_INPUT_URI]
    if len(releases) != 1:
        raise _fail("predicate.inputAttestations", f"has no entry with uri {RELEASE_INPUT_URI!r}" if not releases
                    else "names more than one release statement")
    release_digest = releases[0]
    levels = p.verifiedLevels
    checks = stmt.predicate["checks"]
    level = None if p.assayLevel is None else Level.from_dict(p.assayLevel, "predicate.assayLevel", "invalid statement:")
    labels = [lv for lv in levels if lv.startswith("ASSAY_")]
    if labels != ([level_label(level.name)] if level else []):
        raise _fail("predicate.verifiedLevels", f"names {labels} but assayLevel is {level.name if level else None!r}")
    return VerdictStatement(
        subject_name=subject.name, subject_digest=subject.digest, verifier_id=p.verifier.id,
        time_verified=p.timeVerified, resource_uri=p.resourceUri, policy_uri=p.policy.uri,
        policy_digest=policy_digest, release_statement_digest=release_digest, result=p.verificationResult,
        verified_levels=tuple(levels), checks=checks, level=level, subject_blake3=_blake3_of(subject),
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


class _ResourceDescriptor(Strict):
    uri: Text1024 = None  # type: ignore[assignment]
    name: Text255 = None  # type: ignore[assignment]
    digest: AnyDigestSet = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _names_something(self) -> "_ResourceDescriptor":
        if self.uri is None and self.name is None and self.digest is None:
            raise ValueError("must have a uri, digest or name")
        return self


class _BuildDefinition(Strict):
    buildType: Literal[BUILD_TYPES]  # type: ignore[valid-type]
    externalParameters: dict[str, Any]
    internalParameters: dict[str, Any] = None  # type: ignore[assignment]
    resolvedDependencies: Annotated[list[_ResourceDescriptor], Field(max_length=256)] = None  # type: ignore[assignment]


class _Builder(Strict):
    id: Text256
    version: dict[str, Any] = None  # type: ignore[assignment]
    builderDependencies: list[Any] = None  # type: ignore[assignment]


class _BuildMetadata(Strict):
    invocationId: Text256 = None  # type: ignore[assignment]
    startedOn: Time = None  # type: ignore[assignment]
    finishedOn: Time = None  # type: ignore[assignment]


class _RunDetails(Strict):
    builder: _Builder
    metadata: _BuildMetadata = None  # type: ignore[assignment]
    byproducts: list[Any] = None  # type: ignore[assignment]


class _ProvenancePredicate(Strict):
    """SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance)."""
    buildDefinition: _BuildDefinition
    runDetails: _RunDetails


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
    p = _load(_ProvenancePredicate, stmt.predicate, "predicate")
    bd, md = stmt.predicate["buildDefinition"], p.runDetails.metadata
    return ProvenanceStatement(
        subject_name=subject.name, subject_digest=subject.digest, build_type=p.buildDefinition.buildType,
        external_parameters=bd["externalParameters"], resolved_dependencies=bd.get("resolvedDependencies", []),
        builder_id=p.runDetails.builder.id,
        started_on=md.startedOn if md else None, finished_on=md.finishedOn if md else None,
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


def _key_statement_model(holder: str, event: str) -> type[Strict]:
    """The predicate of a register or revoke statement about a key held by an owner or a verifier."""
    fields: dict[str, Any] = {"event": (Literal[event], ...), "keyid": (Digest, ...), "public_key": (Annotated[str, _text(256)], ...),
                              holder: (Name, ...), "time": (Time, ...)}
    if event == "revoke":
        fields["reason"] = (Annotated[str, _text(1000, empty=True)], ...)
    return create_model(f"_{holder.capitalize()}Key{event.capitalize()}", __base__=Strict, **fields)


_KEY_STATEMENTS = {(holder, event): _key_statement_model(holder, event)
                   for holder in ("owner", "verifier") for event in ("register", "revoke")}


def _parse_key_statement(payload: bytes, predicate_type: str, holder: str) -> dict:
    """The checked predicate of a register/revoke statement about a key (see _build_key_statement)."""
    from assay.core.keys import key_id, public_key_from_text  # local: keys imports nothing from here

    stmt = parse_statement(payload, predicate_type)
    subject = _single_subject(stmt)
    p = stmt.predicate
    event = p.get("event")
    if event not in ("register", "revoke"):
        raise _fail("predicate.event", f"must be 'register' or 'revoke', not {str(event)[:80]!r}")
    _load(_KEY_STATEMENTS[holder, event], p, "predicate")
    try:
        actual = key_id(public_key_from_text(p["public_key"]))
    except FormatError:
        raise _fail("predicate.public_key", "must be base64 of a 32-byte Ed25519 key or of a P-256 SubjectPublicKeyInfo") from None
    if actual != p["keyid"]:
        raise _fail("predicate.keyid", f"is {p['keyid']} but the public key's id is {actual}")
    if subject.name != p["keyid"] or subject.digest != p["keyid"]:
        raise _fail("subject", "must name the key (name and sha256 digest = the key id)")
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
# "rekeyed": a private namespace's role-blinding key was replaced (a member left, who knew it). The
# event is blinded with the old key and names the new one by an HMAC under the old: a client that
# holds both can check the link; one that holds only the old key learns nothing more.
REKEYED = "rekeyed"
EVENT_ROLES = (*ROLES, REKEYED)
PUBLISHING_ROLES = ("owner", "publisher")


@dataclass(frozen=True)
class RoleEvent:
    namespace: str
    member: str
    role: str
    time: str


# A private namespace's role events name neither the namespace nor the member: each is blinded
# with the namespace's role-blinding key, a 32-byte secret the registry gives the namespace's
# readers (in the bundles of its releases). An HMAC, so that nobody without the key can test a
# guessed name; bound to the namespace's name, so that a key given for one namespace finds no
# history of another. Outsiders see only that some private namespace's roles changed.
BLIND_PREFIX = "blind:"
BLIND_RE = re.compile(r"\Ablind:[0-9a-f]{64}\Z")


def _blind(key_hex: str, label: str, *parts: str) -> str:
    if not _HEX64.match(key_hex or ""):
        raise FormatError("a role-blinding key must be 64 lowercase hex digits")
    message = b"\x00".join([b"assay-role-" + label.encode("ascii"), *(p.encode("utf-8") for p in parts)])
    return BLIND_PREFIX + hmac.new(bytes.fromhex(key_hex), message, hashlib.sha256).hexdigest()


def blind_namespace(key_hex: str, namespace: str) -> str:
    """What a role event says for `namespace` when it is blinded with `key_hex`."""
    return _blind(key_hex, "namespace", namespace)


def blind_member(key_hex: str, namespace: str, member: str) -> str:
    """What a role event says for `member` of `namespace` when blinded with `key_hex`."""
    return _blind(key_hex, "member", namespace, member)


def blind_rekey(old_key_hex: str, namespace: str, new_key_hex: str) -> str:
    """The member a "rekeyed" event (blinded with the old key) names: the link to the new key."""
    return _blind(old_key_hex, "rekey", namespace, new_key_hex)


def is_blinded(value: str) -> bool:
    return isinstance(value, str) and bool(BLIND_RE.match(value))


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


def _name_or_blinded(value: str) -> str:
    if not (NAME_RE.match(value) or BLIND_RE.match(value)):
        raise ValueError(f"must be a name or blind:<64 hex digits>, not {value[:80]!r}")
    return value


NameOrBlinded = Annotated[str, _text(80), AfterValidator(_name_or_blinded)]


class _RolePredicate(Strict):
    namespace: NameOrBlinded
    member: NameOrBlinded
    role: Literal[EVENT_ROLES]  # type: ignore[valid-type]
    time: Time

    @model_validator(mode="after")
    def _both_or_neither(self) -> "_RolePredicate":
        if is_blinded(self.namespace) != is_blinded(self.member):
            raise FieldError("member", "must be blinded exactly when the namespace is")
        if self.role == REKEYED and not is_blinded(self.namespace):
            raise FieldError("role", "may be 'rekeyed' only in a blinded event")
        return self


def parse_role_event(payload: bytes) -> RoleEvent:
    stmt = parse_statement(payload, ROLE_PREDICATE)
    subject = _single_subject(stmt)
    p = _load(_RolePredicate, stmt.predicate, "predicate")
    if (subject.name, subject.digest) != _role_subject(p.namespace, p.member):
        raise _fail("subject", "must name namespace:member with the sha256 of that name")
    return RoleEvent(p.namespace, p.member, p.role, p.time)


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
    predicate = {"releaseStatement": {"sha256": _hex(release_statement_digest, "release statement digest")},
                 "verifier": {"id": verifier_id}, "step": step, "result": result, "summary": summary,
                 "evidence": evidence, "time": format_time(time)}
    payload = build_statement([(subject_name, subject_digest)], STEP_PREDICATE, predicate)
    parse_step_result(payload)
    return payload


class _StatementRef(Strict):
    sha256: Hex64


class _VerifierKeyRef(Strict):
    id: Digest


class _StepPredicate(Strict):
    releaseStatement: _StatementRef
    verifier: _VerifierKeyRef
    step: CheckName
    result: Literal[CHECK_RESULTS]  # type: ignore[valid-type]
    summary: Summary
    evidence: dict[str, Any]
    time: Time


def parse_step_result(payload: bytes) -> StepResult:
    stmt = parse_statement(payload, STEP_PREDICATE)
    subject = _single_subject(stmt)
    p = _load(_StepPredicate, stmt.predicate, "predicate")
    return StepResult(subject.name, subject.digest, "sha256:" + p.releaseStatement.sha256, p.verifier.id, p.step,
                      p.result, p.summary, stmt.predicate["evidence"], p.time)


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


class _SealedPredicate(Strict):
    kind: Literal[SEALED_KINDS]  # type: ignore[valid-type]
    commitment: Digest
    time: Time


def parse_sealed_entry(payload: bytes) -> SealedEntry:
    stmt = parse_statement(payload, SEALED_PREDICATE)
    subject = _single_subject(stmt)
    p = _load(_SealedPredicate, stmt.predicate, "predicate")
    if (subject.name, subject.digest) != ("sealed", p.commitment):
        raise _fail("subject", "must be 'sealed' with the commitment as its digest")
    return SealedEntry(p.kind, p.commitment, p.time)
