"""llama.cpp's own command-line tools: llama-quantize (quantization with an importance matrix,
which llama.cpp's C API takes only as a C++ container), llama-imatrix and llama-gguf-split.

scripts/build_llama_tools.sh builds them from the llama.cpp source vendored in the pinned
llama-cpp-python, with the wheel's CMake arguments and no RPATH; bootstrap records their folder in
the virtual environment (`.assay-llama-tools`), or ASSAY_LLAMA_TOOLS names it. They run with
LD_LIBRARY_PATH set to the wheel's own libllama/libggml first, so a quantization through the tool
runs the same library code, and carries the same build id, as one through the bindings.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from assay.core.errors import AssayError

TOOLS = ("llama-quantize", "llama-imatrix", "llama-gguf-split")
BUILD_HINT = "build them with scripts/build_llama_tools.sh (make bootstrap does) or set ASSAY_LLAMA_TOOLS to their folder"


class CannotReproduceHere(AssayError):
    """The recipe needs something this machine does not have (another llama.cpp build, an imatrix, ...).

    Not a mismatch: nothing was compared."""


def lib_dir() -> Path:
    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise CannotReproduceHere("llama-cpp-python is not installed on this machine, so it cannot quantize")
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


class ToolsMissing(AssayError):
    """llama.cpp's tools are not built on this machine."""


def tools_dir() -> Path:
    override = os.environ.get("ASSAY_LLAMA_TOOLS")
    if override:
        return Path(override)
    marker = Path(sys.prefix) / ".assay-llama-tools"
    try:
        return Path(marker.read_text().strip())
    except OSError:
        raise ToolsMissing(f"llama.cpp's tools ({', '.join(TOOLS)}) are not built here: {BUILD_HINT}") from None


def tool_path(name: str) -> Path:
    if name not in TOOLS:
        raise ValueError(name)
    path = tools_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolsMissing(f"llama.cpp's {name} is not at {path}: {BUILD_HINT}")
    return path


def tool_env(env: dict) -> dict:
    """`env` with LD_LIBRARY_PATH set so the tool loads the wheel's libllama/libggml (and its own
    helper libraries beside it), nothing else."""
    return {**env, "LD_LIBRARY_PATH": f"{lib_dir()}:{tools_dir()}"}


def tools_digest() -> str:
    """SHA-256 over the sorted (name, sha256) lines of the tool binaries and their helper
    libraries (libllama-common, libllama-quantize-impl): which tool build ran, for provenance."""
    folder = tools_dir()
    lines = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and (p.name in TOOLS or p.name.startswith("libllama-"))):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        lines.append(f"{path.name} {h.hexdigest()}\n")
    if not lines:
        raise ToolsMissing(f"no llama.cpp tools in {folder}: {BUILD_HINT}")
    return hashlib.sha256("".join(lines).encode()).hexdigest()
