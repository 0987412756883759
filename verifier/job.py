"""A verification job as the registry hands it to a verifier (registry/verification.job_info),
and the local files its blobs were fetched into."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from assay.core import dsse, statements
from assay.core.errors import AssayError, VerificationError


class JobMismatch(VerificationError):
    """The registry's description of a job differs from the publisher's signed release statement:
    the verifier verifies nothing of it (it would vouch for files the statement does not name)."""


@dataclass(frozen=True)
class Job:
    release_id: int
    reference: str
    version: int
    file_name: str
    digest: str
    size: int
    quantization: str
    base_digest: str
    base_size: int
    base_name: str
    recipe: dict | None
    statement_digest: str
    steps: tuple[dict, ...]  # [{name, status, summary, envelope}] as the registry has them
    base: dict | None  # the verified base: {reference, version, digest, verdict_envelope}
    inputs: tuple[dict, ...] = ()  # files the recipe names besides the base: [{role, name, digest, size}]
    statement: statements.ReleaseStatement | None = None  # the signed statement the job was checked against

    @classmethod
    def from_api(cls, data: dict) -> "Job":
        """The job the registry hands out, checked against the publisher's signed release
        statement it carries (JobMismatch when any field differs): the registry describes the
        job, the statement decides it."""
        job = cls(
            release_id=int(data["release_id"]), reference=str(data["reference"]), version=int(data["version"]),
            file_name=str(data["file_name"]), digest=str(data["digest"]), size=int(data["size"]),
            quantization=str(data.get("quantization") or ""), base_digest=str(data.get("base_digest") or ""),
            base_size=int(data.get("base_size") or 0),
            base_name=str(data.get("base_name") or ""), recipe=data.get("recipe"),
            statement_digest=str(data["statement_digest"]), steps=tuple(data.get("steps") or ()), base=data.get("base"),
            inputs=tuple(data.get("inputs") or ()),
        )
        return job.checked_against(data.get("release_envelope"))

    def checked_against(self, envelope: object) -> "Job":
        """This job with its statement, once every file, name and recipe the registry gave is the
        one the statement (whose digest the verdict will sign) gives."""
        try:
            payload = dsse.parse_envelope(envelope).payload
        except (AssayError, TypeError, AttributeError) as exc:
            raise JobMismatch(f"the registry's job for release {self.release_id} carries no valid release statement: {exc}") from None
        if statements.statement_digest(payload) != self.statement_digest:
            raise JobMismatch(f"the release statement the registry gave for release {self.release_id} is not the one with "
                              f"digest {self.statement_digest}")
        stmt = statements.parse_release_statement(payload)
        parts = [(i.get("name"), i.get("digest")) for i in self.inputs if i.get("role") == "part"]
        named = _digests_named(stmt.recipe)
        stray = [str(i.get("digest")) for i in self.inputs if i.get("role") != "part" and i.get("digest") not in named]
        differences = [what for what, given, signed in (
            ("file", (self.file_name, self.digest), (stmt.subject_name, stmt.subject_digest)),
            ("parts", parts, list(stmt.parts[1:])),
            ("quantization", self.quantization, stmt.quantization),
            ("base", (self.base_name, self.base_digest), (stmt.base.name, stmt.base.digest) if stmt.base else ("", "")),
            ("recipe", self.recipe, stmt.recipe),
            ("reference", (self.reference, self.version), (stmt.reference, stmt.version)),
        ) if given != signed]
        if stray:
            differences.append(f"inputs the recipe does not name ({', '.join(stray)})")
        if self.base is not None and self.base.get("digest") != self.base_digest:
            differences.append("the base release's digest")
        differences += self._base_differences()
        if differences:
            raise JobMismatch(f"the registry's job for release {self.release_id} differs from its signed release statement in: "
                              f"{', '.join(differences)}; nothing of it was verified")
        return replace(self, statement=stmt)

    def _base_differences(self) -> list[str]:
        """The verified base as the registry describes it, against the base's own signed release
        statement: that statement must be the one the base's verdict signs, for the base file the
        quant names, under the name the quant's statement gives its base, and a split base's later
        parts (names, digests, order) are the ones it lists. The chain link the verdict signs names
        the base by that reference and version (verifier/level.py), so both are the statement's.
        The verdict's signature is checked where the base's level is read (verifier/level): a
        verdict no registered verifier signed earns the quant no level, whatever it was built from."""
        if self.base is None:
            return []
        try:
            verdict = statements.parse_verdict_statement(dsse.parse_envelope(self.base.get("verdict_envelope")).payload)
            payload = dsse.parse_envelope(self.base.get("release_envelope")).payload
            stmt = statements.parse_release_statement(payload)
        except (AssayError, TypeError, AttributeError):
            return ["the base release's signed statement and verdict"]
        if statements.statement_digest(payload) != verdict.release_statement_digest:
            return ["the base release's statement (not the one its verdict signs)"]
        given_parts = [(p.get("name"), p.get("digest")) for p in self.base.get("parts") or ()]
        return [what for what, given, signed in (
            ("the base release's name (not the base the release statement names)", self.base_name, stmt.reference),
            ("the base release's reference and version", (self.base.get("reference"), self.base.get("version")),
             (stmt.reference, stmt.version)),
            ("the base release's file", (self.base.get("file_name"), self.base.get("digest")), (stmt.subject_name, stmt.subject_digest)),
            ("the base release's parts", given_parts, list(stmt.parts[1:])),
        ) if given != signed]

    def step(self, name: str) -> dict | None:
        return next((s for s in self.steps if s.get("name") == name), None)


def _digests_named(value: object) -> set[str]:
    """Every `sha256:` digest a recipe names, at any depth (its imatrix, calibration text, upstream files)."""
    if isinstance(value, dict):
        return set().union(*(_digests_named(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_digests_named(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) and value.startswith("sha256:") else set()


def input_key(item: dict) -> str:
    """Where a fetched input is found in JobFiles.inputs: its role ("imatrix", "calibration"), or
    "upstream/<name>" for a conversion's upstream files (several share that role)."""
    return f"upstream/{item.get('name')}" if item.get("role") == "upstream" else str(item.get("role"))


@dataclass(frozen=True)
class JobFiles:
    candidate: Path
    base: Path | None
    inputs: dict[str, Path] = field(default_factory=dict)  # input_key -> fetched file (e.g. "imatrix", "upstream/config.json")
    # A split GGUF: every part in order, under its signed name in one folder (the first is
    # `candidate`), as llama.cpp and llama-gguf-split find them; () for a single file. The same
    # for a split base.
    parts: tuple[Path, ...] = ()
    base_parts: tuple[Path, ...] = ()
    _merged: dict = field(default_factory=dict, compare=False, repr=False)

    def model(self) -> Path:
        """The file the checks read: the candidate, or its parts merged into one GGUF by
        llama-gguf-split (raises SplitError when they do not merge)."""
        return self._merge("candidate", self.candidate, self.parts)

    def base_model(self) -> Path | None:
        return None if self.base is None else self._merge("base", self.base, self.base_parts)

    def _merge(self, key: str, first: Path, parts: tuple[Path, ...]) -> Path:
        if not parts:
            return first
        if key not in self._merged:
            from assay.toolchain.gguf_split import merge_parts

            self._merged[key] = merge_parts(first, first.parent.parent / f"{key}-merged.gguf")
        return self._merged[key]

    def redactions(self, job: Job) -> dict[str, str]:
        """Local paths -> the digests they hold: the verdict names digests, not this host's layout."""
        out = {str(self.candidate): job.digest}
        if self.base is not None:
            out[str(self.base)] = job.base_digest
        for i in job.inputs:
            if input_key(i) in self.inputs:
                out[str(self.inputs[input_key(i)])] = i["digest"]
        if self.parts:
            out[str(self.parts[0].parent)] = "<parts>"
            out[str(self.candidate.parent.parent / "candidate-merged.gguf")] = f"{job.digest} (its parts merged)"
        if self.base_parts:
            out[str(self.base_parts[0].parent)] = "<base parts>"
            out[str(self.base.parent.parent / "base-merged.gguf")] = f"{job.base_digest} (its parts merged)"
        return out
