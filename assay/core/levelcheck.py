"""Whether a verdict's signed level is one the release and the verdict's own checks support (the
one rule: the registry applies it before it logs a verdict, a client when it verifies a bundle,
and a verifier when it reads a base's level).

A verifier signs the level; nothing but this rule stops a verifier's key (or a bug) from signing
`reproduced` for a file nobody rebuilt, or a chain that names some other release. The rule is
what verifier/level.py (levels.decide) gives an honest release, read back from what the signed
release statement says and what the verdict's checks report:

- a release that names a base (a quant, imatrix quant or split quant) is `reproduced` or
  `unreproduced`, never `original` or `converted`; `reproduced` needs the reproduce check PASSED
  and a chain whose first link is a base at a level quants build on (converted, reproduced,
  original); any chain starts at the base the statement names (its digest and reference);
- a release without a base has no chain: `converted` needs the signed conversion recipe and the
  reproduce check PASSED, `reproduced` cannot be; `original` and `converted` are full-precision
  files (checked when the static check's tensor types are at hand);
- a provenance (given when the reproduce check passed) is for the subject and names what the
  honest verifier's does: for a quant, the quantize build type, the statement's recipe and the
  base's digest among what it was built from; for a conversion, the conversion build type, the
  recipe and every upstream file the recipe names.
"""
from __future__ import annotations

from assay.core import levels, statements
from assay.core.conversion import is_conversion


def _check_result(verdict: statements.VerdictStatement, name: str) -> str | None:
    return next((c.get("result") for c in verdict.checks if c.get("name") == name), None)


def _sha256s(provenance: statements.ProvenanceStatement) -> set:
    return {d["digest"].get("sha256") for d in provenance.resolved_dependencies
            if isinstance(d, dict) and isinstance(d.get("digest"), dict)}


def static_tensor_types(evidence: object) -> dict | None:
    """The tensor types a static check's evidence lists (summary.tensor_types), if it lists any:
    what verifier/level.py decides full precision from."""
    summary = evidence.get("summary") if isinstance(evidence, dict) else None
    types = summary.get("tensor_types") if isinstance(summary, dict) else None
    return types if isinstance(types, dict) and types else None


def level_problem(release: statements.ReleaseStatement, verdict: statements.VerdictStatement, *,
                  provenance: statements.ProvenanceStatement | None = None,
                  tensor_types: dict | list | None = None) -> str | None:
    """Why the verdict's level (and provenance, when given) is not what the signed release
    statement and the verdict's own checks support; None when it is.

    `tensor_types`: the tensor types the verifier's static check found (its evidence's
    summary.tensor_types), when the caller has that evidence; the verifier decides full precision
    from them."""
    level = verdict.level_or_unreproduced
    name, chain, base = level.name, level.chain, release.base
    reproduce = _check_result(verdict, "reproduce")
    rebuilt = reproduce == "passed"
    if base is not None:
        if name in (levels.ORIGINAL, levels.CONVERTED):
            return (f"its level is '{name}', but the release names base {base.name} ({base.digest}): a release built from a "
                    f"base is reproduced or unreproduced")
        if name == levels.REPRODUCED and not rebuilt:
            return f"its level is 'reproduced', but its reproduce check is {reproduce or 'missing'}, not passed"
        if chain and (chain[0].digest, chain[0].reference) != (base.digest, base.name):
            return (f"its chain starts at {chain[0].reference}@{chain[0].version} ({chain[0].digest}), but the release names "
                    f"base {base.name} ({base.digest})")
        if name == levels.REPRODUCED and chain[0].level not in levels.BUILDS_ON:
            return f"its level is 'reproduced', but its chain says the base {base.name} is itself {chain[0].level}"
    else:
        if chain:
            return f"its level '{name}' names a build chain ({level.chain_text()}), but the release names no base"
        if name == levels.REPRODUCED:
            return "its level is 'reproduced', but the release names no base to rebuild it from"
        if name == levels.CONVERTED and not is_conversion(release.recipe):
            return "it is said to be converted, but its signed statement has no conversion recipe"
        if name == levels.CONVERTED and not rebuilt:
            return f"its level is 'converted', but its reproduce check is {reproduce or 'missing'}, not passed"
        if name in (levels.ORIGINAL, levels.CONVERTED) and tensor_types and not levels.is_full_precision(tensor_types):
            return (f"its level is '{name}', a full-precision file, but its static check found tensor types "
                    f"{', '.join(sorted(tensor_types))[:200]}")
    return None if provenance is None else _provenance_problem(release, provenance)


def _provenance_problem(release: statements.ReleaseStatement, prov: statements.ProvenanceStatement) -> str | None:
    recipe = release.recipe or {}
    if prov.subject_digest != release.subject_digest:
        return f"the provenance is for {prov.subject_digest}, not {release.subject_digest}"
    if release.base is not None:
        if prov.build_type != statements.BUILD_TYPE:
            return f"the provenance records a {prov.build_type}, not a rebuild from the base"
        if release.base.digest.split(":", 1)[1] not in _sha256s(prov):
            return (f"the reproduction provenance does not name the base {release.base.name} ({release.base.digest}) "
                    f"among what it was built from")
        rebuilt = prov.external_parameters.get("ftype")
        if rebuilt != recipe.get("ftype"):
            return f"the reproduction provenance rebuilt file type {rebuilt}, the signed recipe says {recipe.get('ftype')}"
    elif is_conversion(release.recipe):
        if prov.build_type != statements.CONVERT_BUILD_TYPE:
            return f"the provenance records a {prov.build_type}, not a conversion"
        used = _sha256s(prov)
        files = (recipe.get("options") or {}).get("files") or []
        missing = [f.get("name") if isinstance(f, dict) else f for f in files
                   if not isinstance(f, dict) or str(f.get("digest", "")).split(":", 1)[-1] not in used]
        if missing:
            return f"the conversion provenance does not name the upstream file(s) {', '.join(map(str, missing))} among what it converted"
    else:
        return "a provenance came with it, but the release names neither a base nor a conversion recipe to build it from"
    if prov.external_parameters != recipe:
        return "the provenance's build parameters are not the recipe the release statement signs"
    return None
