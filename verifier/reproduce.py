"""Reproduce a quantized release from its base and recipe, bit for bit (DESIGN.md "Reproduce").

`reproduce()` is a plain function (no Django, no Celery): it rebuilds the candidate with
llama.cpp in a contained child process (assay.toolchain.quantize.quantize), compares SHA-256 and, when
the bytes differ, explains the difference tensor by tensor (verifier.gguf_diff). The candidate
is hashed in a background thread while the child quantizes and the rebuild is then compared
with it byte by byte (its own hash is computed only when they differ), so verification costs
little more than the quantization itself.

Statuses:
  reproduced             the rebuild is byte-identical to the candidate
  not_reproduced         the bytes differ; `diff` says where
  cannot_reproduce_here  the recipe needs a llama.cpp build (or imatrix) this machine lacks:
                         nothing was compared, which is not evidence against the release
  error                  the rebuild itself failed (bad base, timeout, out of memory, ...)
"""
from __future__ import annotations

import concurrent.futures
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from assay.core.digest import digest_file, files_identical, parse_digest
from assay.core.errors import AssayError
from assay.toolchain.llama_tools import CannotReproduceHere
from assay.core.recipe import Recipe
from assay.toolchain.quantize import build_info, quantize

from .gguf_diff import GGUFDiff, diff_gguf

BUILD_TYPE = "urn:assay:gguf-quantize:v1"
STATUSES = ("reproduced", "not_reproduced", "cannot_reproduce_here", "error")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReproduceResult:
    status: str  # one of STATUSES
    expected_digest: str | None  # sha256 of what the verifier built
    candidate_digest: str | None  # sha256 of the release's file
    diff: GGUFDiff | None  # when not_reproduced
    elapsed_s: float  # whole call
    build_id: str | None  # this machine's ggml_build identifier
    started: str  # RFC 3339 UTC
    finished: str
    message: str = ""  # one line: why, for anything but "reproduced"
    quantize_s: float | None = None  # the child's quantization alone
    ftype: str | None = None
    provenance: dict | None = None  # provenance_fields(...) when reproduced and base_digest was given

    @property
    def reproduced(self) -> bool:
        return self.status == "reproduced"

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "expected_digest": self.expected_digest,
            "candidate_digest": self.candidate_digest,
            "diff": self.diff.to_dict() if self.diff is not None else None,
            "elapsed_s": round(self.elapsed_s, 3),
            "quantize_s": round(self.quantize_s, 3) if self.quantize_s is not None else None,
            "build_id": self.build_id,
            "ftype": self.ftype,
            "started": self.started,
            "finished": self.finished,
            "message": self.message,
            "provenance": self.provenance,
        }


def reproduce(
    base_path: str | os.PathLike,
    candidate_path: str | os.PathLike,
    recipe: Recipe,
    *,
    workdir: str | os.PathLike,
    timeout_s: float = 3600,
    memory_limit_bytes: int | None = None,
    keep_rebuild: bool = False,
    base_digest: str | None = None,
    imatrix_path: str | os.PathLike | None = None,
    candidate_parts: tuple[Path, ...] | list[Path] = (),
) -> ReproduceResult:
    """Rebuild `candidate_path` from `base_path` with `recipe` and compare.

    `workdir` receives the rebuild (deleted afterwards unless keep_rebuild, then it is
    workdir/rebuild.gguf). With `base_digest` ("sha256:..."), a reproduced result carries
    `provenance` = provenance_fields(result, recipe, base_digest). `imatrix_path`: the importance
    matrix of a recipe that names one (checked against its digest). `candidate_parts`: a split
    GGUF's parts in order (the first is `candidate_path`): the rebuild is split as the recipe's
    `split` says and compared part by part. Never raises for a failed or impossible rebuild: the
    status says so."""
    started, t0 = _now(), time.monotonic()
    build_id = None
    try:
        build_id = build_info()["ggml_build"]
    except AssayError:
        pass

    def done(status: str, **kw) -> ReproduceResult:
        return ReproduceResult(status=status, elapsed_s=time.monotonic() - t0, build_id=build_id, started=started,
                               finished=_now(), ftype=recipe.ftype, **{"expected_digest": None, "candidate_digest": None,
                                                                       "diff": None, **kw})

    candidate_path = Path(candidate_path)
    if not candidate_path.is_file():
        return done("error", message=f"candidate file {candidate_path} does not exist")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rebuild = workdir / "rebuild.gguf" if keep_rebuild else Path(tempfile.mkdtemp(dir=workdir, prefix="rebuild-")) / "rebuild.gguf"
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        candidate_future = pool.submit(_digest_at_low_priority, candidate_path)
        try:
            try:
                q = quantize(base_path, rebuild, recipe, timeout_s=timeout_s, memory_limit_bytes=memory_limit_bytes,
                             durable=keep_rebuild, imatrix_path=imatrix_path)
            except CannotReproduceHere as exc:
                return done("cannot_reproduce_here", candidate_digest=candidate_future.result(), message=str(exc))
            except AssayError as exc:  # QuantizeError (failed, timed out, out of memory) or a bad base
                return done("error", candidate_digest=candidate_future.result(), message=str(exc))
            candidate = candidate_future.result()
            if recipe.split is not None:
                return _compare_parts(done, rebuild, recipe, list(candidate_parts), candidate, q["elapsed_s"], base_digest, timeout_s)
            # Equal bytes have the candidate's digest: comparing costs half of hashing the rebuild.
            expected = candidate if files_identical(rebuild, candidate_path) else digest_file(rebuild)
            if expected == candidate:
                result = done("reproduced", expected_digest=expected, candidate_digest=candidate, quantize_s=q["elapsed_s"],
                              message=f"rebuilt {recipe.ftype} is byte-identical")
                if base_digest is not None:
                    result.provenance = provenance_fields(result, recipe, base_digest)
                return result
            try:
                diff = diff_gguf(rebuild, candidate_path)
            except AssayError as exc:
                return done("not_reproduced", expected_digest=expected, candidate_digest=candidate, quantize_s=q["elapsed_s"],
                            message=f"the bytes differ and the candidate could not be compared tensor by tensor: {exc}")
            n = len(diff.lines())
            return done("not_reproduced", expected_digest=expected, candidate_digest=candidate, diff=diff,
                        quantize_s=q["elapsed_s"], message=f"rebuilt {recipe.ftype} differs from the candidate in {n} place(s)")
        finally:
            if not keep_rebuild:
                rebuild.unlink(missing_ok=True)
                try:
                    rebuild.parent.rmdir()
                except OSError:
                    pass


def _compare_parts(done, rebuild: Path, recipe: Recipe, parts: list[Path], candidate: str, quantize_s: float,
                   base_digest: str | None, timeout_s: float) -> ReproduceResult:
    """Split the rebuild as the recipe says (llama-gguf-split) and compare it with the release's
    parts one by one; the first part that differs is explained tensor by tensor."""
    from assay.core.splits import SplitError
    from assay.toolchain.gguf_split import split_file

    folder = rebuild.parent / "parts"
    folder.mkdir()
    try:
        try:
            rebuilt = split_file(rebuild, folder / "rebuild.gguf", timeout_s=timeout_s, **recipe.split)
        except (SplitError, OSError) as exc:
            return done("error", candidate_digest=candidate, quantize_s=quantize_s, message=f"the rebuild could not be split: {exc}")
        if len(rebuilt) != len(parts):
            return done("not_reproduced", expected_digest=digest_file(rebuilt[0]), candidate_digest=candidate, quantize_s=quantize_s,
                        message=f"the recipe's split gives {len(rebuilt)} parts, the release has {len(parts)}")
        for i, (mine, theirs) in enumerate(zip(rebuilt, parts), 1):
            if files_identical(mine, theirs):
                continue
            expected = digest_file(rebuilt[0])
            try:
                diff = diff_gguf(mine, theirs)
            except AssayError as exc:
                return done("not_reproduced", expected_digest=expected, candidate_digest=candidate, quantize_s=quantize_s,
                            message=f"part {i} of {len(parts)} ({theirs.name}) differs and could not be compared tensor by tensor: {exc}")
            return done("not_reproduced", expected_digest=expected, candidate_digest=candidate, diff=diff, quantize_s=quantize_s,
                        message=f"part {i} of {len(parts)} ({theirs.name}) differs from the rebuild in {len(diff.lines())} place(s)")
        result = done("reproduced", expected_digest=candidate, candidate_digest=candidate, quantize_s=quantize_s,
                      message=f"rebuilt {recipe.ftype}, split into {len(parts)} parts, is byte-identical part by part")
        if base_digest is not None:
            result.provenance = provenance_fields(result, recipe, base_digest)
        return result
    finally:
        for p in folder.iterdir():
            p.unlink(missing_ok=True)
        folder.rmdir()


def _digest_at_low_priority(path: Path) -> str:
    """digest_file in a thread niced to 19 (Linux: a thread's own priority), so the hash uses
    the cores the quantization leaves idle instead of slowing it down; hashlib releases the GIL."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    return digest_file(path)


def provenance_fields(result: ReproduceResult, recipe: Recipe, base_digest: str) -> dict:
    """The SLSA Provenance v1 parts of a reproduction, ready for statements.build_provenance_statement.

    subject = the bytes the verifier produced (result.expected_digest); externalParameters = the
    recipe JSON; resolvedDependencies = the base blob and the llama.cpp build that ran."""
    base_hex = parse_digest(base_digest)
    info = build_info()
    llama_dep: dict = {
        "uri": f"pkg:pypi/llama-cpp-python@{info['llama_cpp_python_version']}",
        "name": info["ggml_build"],
        "digest": {"sha256": info["libs_sha256"]},  # SHA-256 over the (name, sha256) list of its shared libraries
    }
    # The llama.cpp commit is in `name` (ggml_build): ggml only exposes a 7-hex short id, which is
    # not a digest, so it does not go in `digest` (in-toto's gitCommit wants the full hash).
    if info.get("git_commit") and len(info["git_commit"]) == 40:
        llama_dep["digest"]["gitCommit"] = info["git_commit"]
    deps = [{"uri": "assay:blob", "digest": {"sha256": base_hex}}, llama_dep]
    if recipe.imatrix is not None:
        from assay.toolchain.llama_tools import tools_digest

        deps.append({"uri": "assay:blob", "name": "imatrix", "digest": {"sha256": parse_digest(recipe.imatrix)}})
        if recipe.imatrix_source is not None:  # the matrix was computed again from this text
            deps.append({"uri": "assay:blob", "name": "calibration",
                         "digest": {"sha256": parse_digest(recipe.imatrix_source["calibration"])}})
        # llama.cpp's own llama-quantize ran (built from the same vendored source, on the same libraries)
        deps.append({"uri": f"pkg:pypi/llama-cpp-python@{info['llama_cpp_python_version']}#vendor/llama.cpp/tools",
                     "name": "llama-quantize", "digest": {"sha256": tools_digest()}})
    return {
        "buildType": BUILD_TYPE,
        "subject_digest": result.expected_digest,
        "externalParameters": recipe.to_dict(),
        "resolvedDependencies": deps,
        "startedOn": result.started,
        "finishedOn": result.finished,
    }
