"""Child process for assay.toolchain.quantize: runs one `llama_model_quantize` call and reports on stdout.

Usage: python -m assay.toolchain.quantize_child [--as-limit BYTES] SPEC.json
       python -m assay.toolchain.quantize_child --as-limit BYTES --exec TOOL ARG...   (limits, then exec TOOL)
SPEC = {"base": path, "out": path, "params": Recipe.child_params()}. llama.cpp's own log goes
to stderr (the parent keeps its tail for error messages); the last stdout line is a JSON report.
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import os
import resource
import sys
import types


def _load_bindings():
    """llama_cpp.llama_cpp (the ctypes bindings) without the package __init__, which imports the
    high-level API, numpy and jinja2 (~0.1-0.2 s of start-up this child does not need)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: llama-cpp-python is not installed")
    pkg = types.ModuleType("llama_cpp")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules["llama_cpp"] = pkg
    return importlib.import_module("llama_cpp.llama_cpp")


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[1] == "--as-limit":
        limit = int(argv[2])
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if argv[3] == "--exec" and len(argv) > 4:  # llama.cpp's own tool, under the same limits
            os.execve(argv[4], argv[4:], os.environ)
        argv = [argv[0], *argv[3:]]
    if len(argv) != 2:
        print("usage: python -m assay.toolchain.quantize_child [--as-limit BYTES] SPEC.json", file=sys.stderr)
        return 64
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    llama_cpp = _load_bindings()
    llama_cpp.llama_backend_init()

    from assay.toolchain.quantize import build_id_only

    p = spec["params"]
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = int(p["nthread"])
    params.ftype = int(p["ftype"])
    params.output_tensor_type = int(p["output_tensor_type"])
    params.token_embedding_type = int(p["token_embedding_type"])
    params.allow_requantize = bool(p["allow_requantize"])
    params.quantize_output_tensor = bool(p["quantize_output_tensor"])
    params.pure = bool(p["pure"])
    params.only_copy = False
    params.keep_split = False
    params.dry_run = False
    keep = []
    if p["tensor_types"]:
        n = len(p["tensor_types"])
        arr = (llama_cpp.llama_model_tensor_override * (n + 1))()
        for i, (pattern, gtype) in enumerate(p["tensor_types"]):
            b = ctypes.create_string_buffer(pattern.encode("utf-8"))
            keep.append(b)
            arr[i].pattern = ctypes.cast(b, ctypes.c_char_p)
            arr[i].type = int(gtype)
        arr[n].pattern = None
        arr[n].type = 0
        keep.append(arr)
        params.tt_overrides = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    rc = llama_cpp.llama_model_quantize(spec["base"].encode(), spec["out"].encode(), ctypes.byref(params))
    sys.stderr.flush()
    if rc != 0:
        print(f"error: llama_model_quantize returned {rc}", file=sys.stderr)
        return 2
    print(json.dumps({"ok": True, "ggml_build": build_id_only()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
