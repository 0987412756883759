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

`quantize()` runs `llama_cpp.llama_model_quantize` in `python -m assay.quantize_child`: its
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import AssayError, FormatError
from .llama_tools import CannotReproduceHere, lib_dir  # noqa: F401  (CannotReproduceHere: callers import it from here)

TOOL = "llama.cpp"

# llama_ftype values (llama.h). Only what a publisher can ask `llama_model_quantize` for.
FTYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
    "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
    "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "IQ2_XXS": 19, "IQ2_XS": 20, "Q2_K_S": 21,
    "IQ3_XS": 22, "IQ3_XXS": 23, "IQ1_S": 24, "IQ4_NL": 25, "IQ3_S": 26, "IQ3_M": 27,
    "IQ2_S": 28, "IQ2_M": 29, "IQ4_XS": 30, "IQ1_M": 31, "BF16": 32,
}
# llama.cpp's quantize tool refuses these without an importance matrix (too lossy otherwise).
IMATRIX_REQUIRED = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "Q2_K_S", "IQ1_S", "IQ1_M"})

# ggml_type values (ggml.h) usable as per-tensor types; GGML_TYPE_COUNT (= "default") is 43 in this build.
GGML_TYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15,
    "IQ2_XXS": 16, "IQ2_XS": 17, "IQ3_XXS": 18, "IQ1_S": 19, "IQ4_NL": 20, "IQ3_S": 21,
    "IQ2_S": 22, "IQ4_XS": 23, "BF16": 30, "TQ1_0": 34, "TQ2_0": 35,
}
GGML_TYPE_DEFAULT = 43  # GGML_TYPE_COUNT: "let the ftype decide"

OPTION_DEFAULTS: dict[str, Any] = {
    "output_tensor_type": None,
    "token_embedding_type": None,
    "pure": False,
    "allow_requantize": False,
    "quantize_output_tensor": True,
    "tensor_types": [],
    "nthread": 0,
    "imatrix_name": None,
    "imatrix_source": None,
    "split": None,
}
RECIPE_KEYS = ("tool", "llama_cpp_python_version", "ggml_build", "ftype", "imatrix", "options")
_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
IMATRIX_NAME = re.compile(r"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}\Z")
MAX_TENSOR_TYPE_RULES = 256


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

def _fail(fieldname: str, msg: str) -> FormatError:
    return FormatError(f"recipe field {fieldname} {msg}")


def _type_name(value: Any, fieldname: str, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or value.upper() not in GGML_TYPES:
        raise _fail(fieldname, f"must be {'null or ' if nullable else ''}a ggml tensor type ({', '.join(GGML_TYPES)}), not {value!r}")
    return value.upper()


SPLIT_SIZE = re.compile(r"\A[1-9][0-9]{0,12}[KMG]?\Z")


def check_split_option(split: object) -> dict:
    """options.split: {"max_tensors": N} or {"max_size": "<n>[K|M|G]"} (llama-gguf-split's own units)."""
    where = "options.split"
    if not isinstance(split, dict) or len(split) != 1 or not set(split) <= {"max_tensors", "max_size"}:
        raise _fail(where, f"must be {{\"max_tensors\": N}} or {{\"max_size\": \"2G\"}}, not {split!r}")
    if "max_tensors" in split:
        n = split["max_tensors"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
            raise _fail(f"{where}.max_tensors", f"must be an integer from 1 to 1000000, not {n!r}")
    elif not isinstance(split["max_size"], str) or not SPLIT_SIZE.match(split["max_size"]):
        raise _fail(f"{where}.max_size", f"must be a size such as 500M or 2G, not {split['max_size']!r}")
    return split


SOURCE_KEYS = ("calibration", "calibration_name", "ctx", "chunks")


@dataclass(frozen=True)
class ImatrixSource:
    calibration: str        # sha256 digest of the calibration text
    calibration_name: str   # the bare file name llama-imatrix is given (recorded in the matrix)
    ctx: int                # tokens per chunk (-c)
    chunks: int             # chunks evaluated (--chunks)

    def __post_init__(self) -> None:
        where = "recipe field options.imatrix_source"
        if not isinstance(self.calibration, str) or not _DIGEST.match(self.calibration):
            raise FormatError(f"{where}.calibration must be a digest sha256:<64 hex>, not {self.calibration!r}")
        if not isinstance(self.calibration_name, str) or not IMATRIX_NAME.match(self.calibration_name):
            raise FormatError(f"{where}.calibration_name must be a plain file name (letters, digits, '.', '_', '-'; "
                              f"not starting with '.'), not {self.calibration_name!r}")
        for name, low, high in (("ctx", 8, 1 << 20), ("chunks", 1, 1 << 20)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise FormatError(f"{where}.{name} must be an integer from {low} to {high}, not {v!r}")

    def to_dict(self) -> dict:
        return {"calibration": self.calibration, "calibration_name": self.calibration_name, "ctx": self.ctx, "chunks": self.chunks}

    @classmethod
    def from_dict(cls, data: object) -> "ImatrixSource":
        if not isinstance(data, dict):
            raise FormatError(f"recipe field options.imatrix_source must be an object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(SOURCE_KEYS))
        if unknown:
            raise FormatError(f"recipe field options.imatrix_source.{unknown[0]} is not a known field")
        missing = [k for k in SOURCE_KEYS if k not in data]
        if missing:
            raise FormatError(f"recipe field options.imatrix_source.{missing[0]} is missing")
        return cls(**{k: data[k] for k in SOURCE_KEYS})


@dataclass(frozen=True)
class Recipe:
    ftype: str
    ggml_build: str
    llama_cpp_python_version: str
    tool: str = TOOL
    imatrix: str | None = None  # "sha256:<hex>" of the importance matrix file
    output_tensor_type: str | None = None  # ggml type name for output.weight, None = ftype default
    token_embedding_type: str | None = None  # ggml type name for token_embd.weight
    pure: bool = False  # every quantizable tensor gets the ftype's base type (no k-quant mixes)
    allow_requantize: bool = False  # allow a base that is itself quantized
    quantize_output_tensor: bool = True  # False = llama-quantize --leave-output-tensor
    tensor_types: tuple[tuple[str, str], ...] = ()  # (regex on tensor name, ggml type), first match wins
    nthread: int = 0  # recorded; must not change the bytes for deterministic types
    # The name llama-quantize writes into the quant's metadata (quantize.imatrix.file): the
    # importance matrix is always given to the tool under this bare file name, so a rebuild
    # elsewhere writes the same bytes. Set exactly when `imatrix` is.
    imatrix_name: str | None = None
    # How the importance matrix was computed (assay.imatrix.ImatrixSource as a dict: calibration
    # text by digest and name, context, chunks), so a verifier can compute it again; None = the
    # matrix is an input taken as published.
    imatrix_source: dict | None = None
    # A split GGUF: the quant is cut into parts with llama-gguf-split afterwards, as
    # {"max_tensors": N} or {"max_size": "2G"} (the tool's --split-max-tensors / --split-max-size);
    # None = one file.
    split: dict | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- construction
    @classmethod
    def for_this_machine(cls, ftype: str, **options: Any) -> "Recipe":
        """A recipe for this machine's llama.cpp build."""
        if "tensor_types" in options:
            options["tensor_types"] = tuple(tuple(x) for x in options["tensor_types"])
        return cls(ftype=ftype.upper(), ggml_build=build_id_only(), llama_cpp_python_version=_llama_cpp_python_version(), **options)

    def with_options(self, **changes: Any) -> "Recipe":
        d = {k: v for k, v in asdict(self).items()}
        d["tensor_types"] = tuple(tuple(x) for x in d["tensor_types"])
        d.update(changes)
        return Recipe(**d)

    # -- validation
    def validate(self) -> None:
        if self.tool != TOOL:
            raise _fail("tool", f"must be {TOOL!r}, not {self.tool!r}")
        for name in ("ggml_build", "llama_cpp_python_version"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v or len(v) > 200 or not v.isprintable():
                raise _fail(name, f"must be a non-empty printable string of at most 200 characters, not {v!r}")
        if not isinstance(self.ftype, str) or self.ftype not in FTYPES:
            raise _fail("ftype", f"must be one of {', '.join(FTYPES)}, not {self.ftype!r}")
        if self.imatrix is not None and (not isinstance(self.imatrix, str) or not _DIGEST.match(self.imatrix)):
            raise _fail("imatrix", f"must be null or a digest sha256:<64 hex>, not {self.imatrix!r}")
        if self.ftype in IMATRIX_REQUIRED and self.imatrix is None:
            raise _fail("imatrix", f"is required for {self.ftype} (llama.cpp needs an importance matrix for it)")
        if (self.imatrix is None) != (self.imatrix_name is None):
            raise _fail("options.imatrix_name", "must be given exactly when imatrix is (the file name llama-quantize records)")
        if self.imatrix_source is not None:
            if self.imatrix is None:
                raise _fail("options.imatrix_source", "is only for a recipe with an importance matrix")
            ImatrixSource.from_dict(self.imatrix_source)
        if self.imatrix_name is not None and (not isinstance(self.imatrix_name, str) or not IMATRIX_NAME.match(self.imatrix_name)):
            raise _fail("options.imatrix_name", f"must be a plain file name (letters, digits, '.', '_', '-'; not starting with '.'; "
                                                f"at most 120 characters), not {self.imatrix_name!r}")
        if self.split is not None:
            check_split_option(self.split)
        _type_name(self.output_tensor_type, "options.output_tensor_type", nullable=True)
        _type_name(self.token_embedding_type, "options.token_embedding_type", nullable=True)
        for name in ("pure", "allow_requantize", "quantize_output_tensor"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(f"options.{name}", f"must be true or false, not {getattr(self, name)!r}")
        if isinstance(self.nthread, bool) or not isinstance(self.nthread, int) or not 0 <= self.nthread <= 1024:
            raise _fail("options.nthread", f"must be an integer from 0 (all cores) to 1024, not {self.nthread!r}")
        if not isinstance(self.tensor_types, tuple) or len(self.tensor_types) > MAX_TENSOR_TYPE_RULES:
            raise _fail("options.tensor_types", f"must be a list of at most {MAX_TENSOR_TYPE_RULES} [pattern, type] pairs")
        for i, rule in enumerate(self.tensor_types):
            if not isinstance(rule, tuple) or len(rule) != 2:
                raise _fail(f"options.tensor_types[{i}]", f"must be a [pattern, type] pair, not {rule!r}")
            pattern, tname = rule
            if not isinstance(pattern, str) or not pattern or len(pattern) > 256 or "\0" in pattern:
                raise _fail(f"options.tensor_types[{i}][0]", f"must be a non-empty regular expression of at most 256 characters, not {pattern!r}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _fail(f"options.tensor_types[{i}][0]", f"is not a valid regular expression: {exc}") from None
            if tname != _type_name(tname, f"options.tensor_types[{i}][1]", nullable=False):
                raise _fail(f"options.tensor_types[{i}][1]", f"must be written in upper case, not {tname!r}")

    # -- JSON
    @property
    def options(self) -> dict:
        return {
            "output_tensor_type": self.output_tensor_type,
            "token_embedding_type": self.token_embedding_type,
            "pure": self.pure,
            "allow_requantize": self.allow_requantize,
            "quantize_output_tensor": self.quantize_output_tensor,
            "tensor_types": [list(r) for r in self.tensor_types],
            "nthread": self.nthread,
            **({"imatrix_name": self.imatrix_name} if self.imatrix_name is not None else {}),
            **({"imatrix_source": dict(self.imatrix_source)} if self.imatrix_source is not None else {}),
            **({"split": dict(self.split)} if self.split is not None else {}),
        }

    def to_dict(self) -> dict:
        return {
            "tool": self.tool,
            "llama_cpp_python_version": self.llama_cpp_python_version,
            "ggml_build": self.ggml_build,
            "ftype": self.ftype,
            "imatrix": self.imatrix,
            "options": self.options,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | dict) -> "Recipe":
        """Parse a recipe (JSON text or an already-decoded object); FormatError names the bad field."""
        if isinstance(data, (str, bytes, bytearray)):
            if len(data) > 1 << 20:
                raise FormatError("recipe is larger than 1 MiB")
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise FormatError(f"recipe is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FormatError(f"recipe must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(RECIPE_KEYS))
        if unknown:
            raise _fail(unknown[0], "is not a known recipe field")
        missing = [k for k in RECIPE_KEYS if k not in data]
        if missing:
            raise _fail(missing[0], "is missing")
        options = data["options"]
        if not isinstance(options, dict):
            raise _fail("options", f"must be an object, not {type(options).__name__}")
        unknown = sorted(set(options) - set(OPTION_DEFAULTS))
        if unknown:
            # an option we do not understand may change the bytes: never ignore it
            raise _fail(f"options.{unknown[0]}", "is not a known quantization option")
        opts = {**OPTION_DEFAULTS, **options}
        tt = opts["tensor_types"]
        if not isinstance(tt, list):
            raise _fail("options.tensor_types", f"must be a list of [pattern, type] pairs, not {tt!r}")
        rules = []
        for i, rule in enumerate(tt):
            if not isinstance(rule, list) or len(rule) != 2:
                raise _fail(f"options.tensor_types[{i}]", f"must be a [pattern, type] pair, not {rule!r}")
            rules.append(tuple(rule))
        for key in ("tool", "llama_cpp_python_version", "ggml_build", "ftype"):
            if not isinstance(data[key], str):
                raise _fail(key, f"must be a string, not {data[key]!r}")
        return cls(
            tool=data["tool"], llama_cpp_python_version=data["llama_cpp_python_version"], ggml_build=data["ggml_build"],
            ftype=data["ftype"], imatrix=data["imatrix"],
            output_tensor_type=opts["output_tensor_type"], token_embedding_type=opts["token_embedding_type"],
            pure=opts["pure"], allow_requantize=opts["allow_requantize"], quantize_output_tensor=opts["quantize_output_tensor"],
            tensor_types=tuple(rules), nthread=opts["nthread"], imatrix_name=opts["imatrix_name"],
            imatrix_source=opts["imatrix_source"], split=opts["split"],
        )

    # -- what the child process gets
    def child_params(self) -> dict:
        return {
            "ftype": FTYPES[self.ftype],
            "nthread": self.nthread,
            "output_tensor_type": GGML_TYPES[self.output_tensor_type] if self.output_tensor_type else GGML_TYPE_DEFAULT,
            "token_embedding_type": GGML_TYPES[self.token_embedding_type] if self.token_embedding_type else GGML_TYPE_DEFAULT,
            "pure": self.pure,
            "allow_requantize": self.allow_requantize,
            "quantize_output_tensor": self.quantize_output_tensor,
            "tensor_types": [[p, GGML_TYPES[t]] for p, t in self.tensor_types],
        }


def check_reproducible_here(recipe: Recipe) -> None:
    """Raise CannotReproduceHere unless this machine can run `recipe` as written."""
    if recipe.imatrix is not None:
        from .llama_tools import ToolsMissing, tool_path

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
    (assay.llama_tools), everything else `llama_model_quantize` through the bindings.

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
        child = [sys.executable, "-s", "-m", "assay.quantize_child", "--as-limit", str(limit)]
        env = _child_env(workdir, recipe.nthread)
        if recipe.imatrix is not None:
            from .llama_tools import tool_env

            os.symlink(Path(imatrix_path).resolve(), Path(workdir) / recipe.imatrix_name)
            child += ["--exec", *tool_command(recipe, base_path.resolve(), Path(tmp_out).resolve())]
            env = tool_env(env)
        else:
            spec = {"base": str(base_path.resolve()), "out": str(Path(tmp_out).resolve()), "params": recipe.child_params()}
            spec_path = Path(workdir) / "spec.json"
            spec_path.write_text(json.dumps(spec))
            child.append(str(spec_path))

        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                child, stdin=subprocess.DEVNULL, stdout=log if recipe.imatrix is not None else subprocess.PIPE, stderr=log,
                cwd=workdir, env=env, start_new_session=True,
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
    from .digest import digest_file

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
    from .llama_tools import tool_path

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
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=cwd, env=env, start_new_session=True)
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
