"""Quantization recipes and running llama.cpp quantization in a contained child process.

A Recipe is everything that decides the bytes `llama_model_quantize` writes from a given base:
the llama.cpp build, the target ftype, an importance matrix (by digest) and the options that
change tensor types. Its JSON form is the `recipe` object of a release statement
(DESIGN.md "Release statement") and the `externalParameters` of reproduction provenance:

    {"tool": "llama.cpp", "llama_cpp_python_version": "0.3.36",
     "ggml_build": "llama-cpp-python/0.3.36 ggml/0.25.3 commit/0c1e570-dirty",
     "ftype": "Q4_K_M", "imatrix": null,
     "options": {"output_tensor_type": null, "token_embedding_type": null, "pure": false,
                 "allow_requantize": false, "quantize_output_tensor": true,
                 "tensor_types": [], "nthread": 2}}

`ggml_build` identifies the llama.cpp build: the llama-cpp-python package version, the ggml
library version (`ggml_version()`) and the llama.cpp/ggml commit compiled into the shared
library (`ggml_commit()`, "-dirty" when the vendored tree had local changes). Two machines
with the same identifier run the same quantization source. (Compiler flags are not part of
it; the digest of the shared libraries is recorded in provenance as evidence, see
`build_info()`.) A recipe naming another build is refused with CannotReproduceHere: this
machine cannot say anything about it, which is not the same as "the bytes differ".

`quantize()` runs `llama_cpp.llama_model_quantize` in `python -m assay.toolchain.quantize_child`: its
own session (killed as a process group on timeout), an address-space limit (RLIMIT_AS), a
private temp dir removed afterwards, a scrubbed environment. The output is written to a temp
name in the target directory and renamed only on success; on any failure nothing is left at
out_path.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assay.core.errors import AssayError
from assay.core.recipe import Recipe
from assay.toolchain import confine
from assay.toolchain.llama_tools import CannotReproduceHere, lib_dir






class QuantizeError(AssayError):
    """llama.cpp quantization failed, timed out or ran out of memory."""


# ---------------------------------------------------------------- build identity

def _llama_cpp_python_version() -> str:
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        raise CannotReproduceHere("llama-cpp-python is not installed on this machine, so it cannot quantize") from None


def _read_versions(lib_dir: Path) -> tuple[str, str]:
    """(ggml_version, ggml_commit) read from libggml-base via ctypes; "unknown" where absent."""
    ggml_version = ggml_commit = "unknown"
    base = next(iter(sorted(lib_dir.glob("libggml-base.so*"))), None) or next(iter(sorted(lib_dir.glob("*ggml-base*"))), None)
    if base is None:
        return ggml_version, ggml_commit
    try:
        lib = ctypes.CDLL(str(base))
    except OSError:
        return ggml_version, ggml_commit
    values = {}
    for name in ("ggml_version", "ggml_commit"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            value = fn()
            if value:
                values[name] = value.decode("ascii", "replace")
    return values.get("ggml_version", ggml_version), values.get("ggml_commit", ggml_commit)


@functools.lru_cache(maxsize=1)
def build_id_only() -> str:
    """current_build_id() without hashing the libraries (what the quantization child reports)."""
    version = _llama_cpp_python_version()
    ggml_version, ggml_commit = _read_versions(lib_dir())
    return f"llama-cpp-python/{version} ggml/{ggml_version} commit/{ggml_commit}"


@functools.lru_cache(maxsize=1)
def build_info() -> dict:
    """What this machine's llama.cpp build is: package version, ggml version and commit, library digest.

    Reads the version strings straight from libggml-base via ctypes (no model loaded, no
    llama_cpp import). `libs_sha256` is SHA-256 over the sorted (name, sha256) list of the
    shared libraries: evidence for provenance, not part of the identifier (a rebuild of the
    same commit with other compiler flags changes it)."""
    version = _llama_cpp_python_version()
    libs_dir = lib_dir()
    ggml_version, ggml_commit = _read_versions(libs_dir)
    h = hashlib.sha256()
    libs = {}
    for p in sorted(libs_dir.iterdir()) if libs_dir.is_dir() else []:
        if p.is_file() and not p.is_symlink() and (".so" in p.name or p.suffix in (".dylib", ".dll")):
            d = hashlib.sha256(p.read_bytes()).hexdigest()
            libs[p.name] = d
            h.update(f"{p.name}\0{d}\n".encode())
    commit_hex = ggml_commit.split("-", 1)[0].lower()
    return {
        "llama_cpp_python_version": version,
        "ggml_version": ggml_version,
        "ggml_commit": ggml_commit,
        "git_commit": commit_hex if re.fullmatch(r"[0-9a-f]{7,40}", commit_hex) else None,
        "ggml_build": f"llama-cpp-python/{version} ggml/{ggml_version} commit/{ggml_commit}",
        "libs": libs,
        "libs_sha256": h.hexdigest(),
    }


def current_build_id() -> str:
    """This machine's `ggml_build` identifier, e.g. 'llama-cpp-python/0.3.36 ggml/0.25.3 commit/0c1e570-dirty'."""
    return build_id_only()


# ---------------------------------------------------------------- recipe















def recipe_for_this_machine(ftype: str, **options: Any) -> Recipe:
    """A recipe for this machine's llama.cpp build."""
    if "tensor_types" in options:
        options["tensor_types"] = tuple(tuple(x) for x in options["tensor_types"])
    return Recipe(ftype=ftype.upper(), ggml_build=build_id_only(), llama_cpp_python_version=_llama_cpp_python_version(), **options)


def check_reproducible_here(recipe: Recipe) -> None:
    """Raise CannotReproduceHere unless this machine can run `recipe` as written."""
    if recipe.imatrix is not None:
        from assay.toolchain.llama_tools import ToolsMissing, tool_path

        try:
            tool_path("llama-quantize")
        except ToolsMissing as exc:
            raise CannotReproduceHere(f"the recipe uses an importance matrix and {exc}") from None
    here = build_id_only()
    if recipe.llama_cpp_python_version != _llama_cpp_python_version() or recipe.ggml_build != here:
        raise CannotReproduceHere(f"the recipe was made with llama.cpp build {recipe.ggml_build!r}; this machine has {here!r}")


# ---------------------------------------------------------------- running it

def default_memory_limit(base_path: str | Path) -> int:
    """Address-space limit for a quantization child: base size plus room for the runtime and work buffers."""
    return 2 * Path(base_path).stat().st_size + (6 << 30)


def _child_env(tmp: str, nthread: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "LLAMA_CPP_LIB_PATH", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update({"TMPDIR": tmp, "HOME": tmp, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"})
    if nthread > 0:
        env["OMP_NUM_THREADS"] = str(nthread)
    return env


def _tail(path: Path, n: int = 2000) -> str:
    try:
        data = path.read_bytes()[-n:]
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def _last_error_line(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "failed to quantize:" in ln:
            return ln.split("failed to quantize:", 1)[1].strip()[:300]
    for ln in reversed(lines):
        if "error" in ln.lower() or "failed" in ln.lower() or "exception" in ln.lower():
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


def quantize(
    base_path: str | Path,
    out_path: str | Path,
    recipe: Recipe,
    *,
    timeout_s: float = 3600,
    memory_limit_bytes: int | None = None,
    check_build: bool = True,
    durable: bool = True,
    imatrix_path: str | Path | None = None,
) -> dict:
    """Quantize `base_path` to `out_path` as `recipe` says, in a contained child process.

    `durable`: fsync the result before it takes its name (False for a scratch rebuild that is
    compared and deleted). `imatrix_path`: the importance matrix file a recipe with `imatrix`
    names (checked against that digest); such a recipe runs llama.cpp's own llama-quantize
    (assay.toolchain.llama_tools), everything else `llama_model_quantize` through the bindings.

    Returns {"elapsed_s", "build_id", "log_tail"}. Raises CannotReproduceHere when the recipe
    needs another llama.cpp build, QuantizeError on failure, timeout or memory exhaustion; in
    every failure case nothing is left at out_path."""
    base_path, out_path = Path(base_path), Path(out_path)
    if check_build:
        check_reproducible_here(recipe)
    if recipe.imatrix is not None:
        _check_imatrix_file(recipe, imatrix_path)
    elif imatrix_path is not None:
        raise QuantizeError("an importance matrix file was given but the recipe names none")
    if not base_path.is_file():
        raise QuantizeError(f"base model {base_path} does not exist")
    out_dir = out_path.parent if str(out_path.parent) else Path(".")
    if not out_dir.is_dir():
        raise QuantizeError(f"output directory {out_dir} does not exist")
    limit = memory_limit_bytes if memory_limit_bytes is not None else default_memory_limit(base_path)
    workdir = tempfile.mkdtemp(prefix="assay-quantize-")
    fd, tmp_out = tempfile.mkstemp(dir=out_dir, prefix=f".{out_path.name}.", suffix=".partial")
    os.close(fd)
    ok = False
    start = time.monotonic()
    try:
        log_path = Path(workdir) / "log.txt"
        # The child sets RLIMIT_AS itself, first thing (no preexec_fn: unsafe when the caller has
        # threads, as reproduce() does while it hashes the candidate), then runs the bindings or
        # execs llama-quantize.
        child = [sys.executable, "-s", "-m", "assay.toolchain.quantize_child", "--as-limit", str(limit)]
        env = _child_env(workdir, recipe.nthread)
        if recipe.imatrix is not None:
            from assay.toolchain.llama_tools import tool_env

            os.symlink(Path(imatrix_path).resolve(), Path(workdir) / recipe.imatrix_name)
            child += ["--exec", *tool_command(recipe, base_path.resolve(), Path(tmp_out).resolve())]
            env = tool_env(env)
        else:
            spec = {"base": str(base_path.resolve()), "out": str(Path(tmp_out).resolve()), "params": recipe.child_params()}
            spec_path = Path(workdir) / "spec.json"
            spec_path.write_text(json.dumps(spec))
            child.append(str(spec_path))

        with open(log_path, "wb") as log:
            with confine.confined() as confinement:
                proc = subprocess.Popen(
                    child, stdin=subprocess.DEVNULL, stdout=log if recipe.imatrix is not None else subprocess.PIPE, stderr=log,
                    cwd=workdir, env=env, start_new_session=True, **confinement,
                )
            try:
                stdout, _ = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise QuantizeError(f"quantization to {recipe.ftype} did not finish within {timeout_s:g}s and was stopped") from None
            except BaseException:
                _kill_group(proc)
                raise
            finally:
                _kill_group(proc)  # stray grandchildren, if any
        log_tail = _tail(log_path)
        if proc.returncode != 0:
            if any(s in log_tail for s in ("bad_alloc", "MemoryError", "Cannot allocate memory", "failed to allocate")):
                raise QuantizeError(f"quantization to {recipe.ftype} ran out of memory (address-space limit {limit / 2**30:.2f} GiB): "
                                    f"{_last_error_line(log_tail)}")
            raise QuantizeError(f"quantization to {recipe.ftype} failed (exit {proc.returncode}): {_last_error_line(log_tail)}")
        if recipe.imatrix is not None:
            report = {"ggml_build": build_id_only()}  # the tool ran on this package's libraries (tool_env)
        else:
            try:
                report = json.loads(stdout.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise QuantizeError(f"quantization child gave no result: {_last_error_line(log_tail)}") from None
        if check_build and report.get("ggml_build") != recipe.ggml_build:
            raise CannotReproduceHere(f"the quantization child runs llama.cpp build {report.get('ggml_build')!r}, not {recipe.ggml_build!r}")
        if Path(tmp_out).stat().st_size == 0:
            raise QuantizeError(f"quantization to {recipe.ftype} produced an empty file")
        if durable:
            with open(tmp_out, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp_out, out_path)
        ok = True
        return {"elapsed_s": time.monotonic() - start, "build_id": report.get("ggml_build"), "log_tail": log_tail[-500:]}
    finally:
        if not ok:
            Path(tmp_out).unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _check_imatrix_file(recipe: Recipe, imatrix_path: str | Path | None) -> None:
    from assay.core.digest import digest_file

    if imatrix_path is None:
        raise QuantizeError(f"the recipe names the importance matrix {recipe.imatrix}; its file is needed to quantize")
    path = Path(imatrix_path)
    if not path.is_file():
        raise QuantizeError(f"importance matrix {path} does not exist")
    got = digest_file(path)
    if got != recipe.imatrix:
        raise QuantizeError(f"importance matrix {path.name} is {got}, not the recipe's {recipe.imatrix}")


def tool_command(recipe: Recipe, base: Path, out: Path) -> list[str]:
    """llama-quantize's command line for `recipe` (the importance matrix by its bare name, in the
    working directory)."""
    from assay.toolchain.llama_tools import tool_path

    cmd = [str(tool_path("llama-quantize"))]
    if recipe.imatrix_name is not None:
        cmd += ["--imatrix", recipe.imatrix_name]
    if recipe.output_tensor_type:
        cmd += ["--output-tensor-type", recipe.output_tensor_type]
    if recipe.token_embedding_type:
        cmd += ["--token-embedding-type", recipe.token_embedding_type]
    if recipe.pure:
        cmd.append("--pure")
    if recipe.allow_requantize:
        cmd.append("--allow-requantize")
    if not recipe.quantize_output_tensor:
        cmd.append("--leave-output-tensor")
    for pattern, tname in recipe.tensor_types:
        cmd += ["--tensor-type", f"{pattern}={tname}"]
    cmd += [str(base), str(out), recipe.ftype]
    if recipe.nthread > 0:
        cmd.append(str(recipe.nthread))
    return cmd


def run_logged(cmd: list[str], *, cwd, env: dict, log_path: Path, timeout_s: float) -> int | None:
    """Run `cmd` in its own session with stdout and stderr into `log_path`; kill its process group
    when it exits or times out. The exit status, or None when it ran past `timeout_s`."""
    with open(log_path, "wb") as log, confine.confined() as confinement:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=cwd, env=env, start_new_session=True,
                                **confinement)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        finally:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
