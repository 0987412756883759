"""Convert a release's upstream checkpoint again and compare (the evidence for the level `converted`).

`reconvert()` is a plain function like verifier.reproduce.reproduce: it runs llama.cpp's converter
(assay.toolchain.convert) on the upstream files the signed recipe names, fetched by digest, compares the
result with the release's file byte for byte and, when they differ, explains the difference tensor
by tensor (verifier.gguf_diff). Its statuses are reproduce's: "reproduced" (byte-identical),
"not_reproduced" (the bytes differ; `diff` says where), "cannot_reproduce_here" (another llama.cpp
build, no converter here, or the bytes differ where this verifier's converter packages are not the
recipe's: nothing that counts against the release), "error" (the conversion itself failed).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from assay.core.conversion import ConversionRecipe, python_versions
from assay.toolchain.convert import convert, converter_digest
from assay.core.digest import digest_file, files_identical, parse_digest
from assay.core.errors import AssayError
from assay.toolchain.llama_tools import CannotReproduceHere
from assay.toolchain.quantize import build_info
from assay.core.statements import CONVERT_BUILD_TYPE

from .gguf_diff import diff_gguf
from .reproduce import ReproduceResult, _now


def reconvert(candidate_path: str | os.PathLike, recipe: ConversionRecipe, inputs: dict[str, Path], *,
              workdir: str | os.PathLike, timeout_s: float = 3600) -> ReproduceResult:
    """Convert `inputs` (upstream file name -> local file) as `recipe` says and compare with
    `candidate_path`. Never raises for a failed or impossible conversion: the status says so."""
    started, t0 = _now(), time.monotonic()
    try:
        build_id = build_info()["ggml_build"]
    except AssayError:
        build_id = None

    def done(status: str, **kw) -> ReproduceResult:
        return ReproduceResult(status=status, elapsed_s=time.monotonic() - t0, build_id=build_id, started=started, finished=_now(),
                               ftype=recipe.ftype, **{"expected_digest": None, "candidate_digest": None, "diff": None, **kw})

    candidate_path = Path(candidate_path)
    candidate = digest_file(candidate_path)
    for f in recipe.files:
        path = inputs.get(f.name)
        if path is None:
            return done("error", candidate_digest=candidate, message=f"the upstream file {f.name} ({f.digest}) was not handed over with the job")
        got = digest_file(path)
        if got != f.digest:
            return done("error", candidate_digest=candidate, message=f"the fetched upstream file {f.name} is {got}, not {f.digest}: the copy is damaged")
    rebuild = Path(tempfile.mkdtemp(dir=workdir, prefix="reconvert-")) / "rebuild.gguf"
    try:
        try:
            c = convert(recipe, inputs, rebuild, timeout_s=timeout_s, durable=False)
        except CannotReproduceHere as exc:
            return done("cannot_reproduce_here", candidate_digest=candidate, message=str(exc))
        except AssayError as exc:
            return done("error", candidate_digest=candidate, message=str(exc))
        if files_identical(rebuild, candidate_path):
            result = done("reproduced", expected_digest=candidate, candidate_digest=candidate, quantize_s=c["elapsed_s"],
                          message=f"converted {recipe.ftype} is byte-identical")
            result.provenance = provenance_fields(result, recipe)
            return result
        expected = digest_file(rebuild)
        differs = recipe.python_differences()
        if differs:  # another converter environment: the difference is no evidence against the file
            return done("cannot_reproduce_here", expected_digest=expected, candidate_digest=candidate, quantize_s=c["elapsed_s"],
                        message=f"the conversion gives {expected}, not the release's {candidate}, and this verifier's converter "
                                f"packages are not the recipe's: {', '.join(differs)}")
        try:
            diff = diff_gguf(rebuild, candidate_path)
        except AssayError as exc:
            return done("not_reproduced", expected_digest=expected, candidate_digest=candidate, quantize_s=c["elapsed_s"],
                        message=f"the bytes differ and the candidate could not be compared tensor by tensor: {exc}")
        return done("not_reproduced", expected_digest=expected, candidate_digest=candidate, diff=diff, quantize_s=c["elapsed_s"],
                    message=f"converted {recipe.ftype} differs from the candidate in {len(diff.lines())} place(s)")
    finally:
        rebuild.unlink(missing_ok=True)
        try:
            rebuild.parent.rmdir()
        except OSError:
            pass


def provenance_fields(result: ReproduceResult, recipe: ConversionRecipe) -> dict:
    """SLSA Provenance v1 parts of a conversion run again: subject = the bytes converted;
    externalParameters = the recipe; resolvedDependencies = every upstream file, the converter
    (from llama-cpp-python's vendored llama.cpp) and the Python packages it ran on."""
    info = build_info()
    deps = [{"uri": "assay:blob", "name": f.name, "digest": {"sha256": parse_digest(f.digest)}} for f in recipe.files]
    deps.append({"uri": f"pkg:pypi/llama-cpp-python@{info['llama_cpp_python_version']}#vendor/llama.cpp/convert_hf_to_gguf.py",
                 "name": info["ggml_build"], "digest": {"sha256": converter_digest()}})
    deps += [{"uri": f"pkg:pypi/{name}@{version}"} for name, version in sorted(python_versions().items()) if version]
    return {"buildType": CONVERT_BUILD_TYPE, "subject_digest": result.expected_digest, "externalParameters": recipe.to_dict(),
            "resolvedDependencies": deps, "startedOn": result.started, "finishedOn": result.finished}
