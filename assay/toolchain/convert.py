"""Conversion of a Hugging Face checkpoint (config, tokenizer files, safetensors shards) into a
full-precision GGUF with llama.cpp's own converter, and the recipe a verifier converts it again from.

The converter is `convert_hf_to_gguf.py` with its `conversion/` package and `gguf-py/`, unpacked
from the llama.cpp source vendored in the pinned llama-cpp-python sdist (the same source the wheel
and the tools are built from): scripts/unpack_llama_converter.sh, run by bootstrap, records its
folder in the virtual environment (`.assay-llama-convert`), or ASSAY_LLAMA_CONVERT names it. It runs
in a child process (its own session, killed as a group on timeout, a scrubbed environment with the
Hugging Face libraries offline), on a staging folder that holds exactly the upstream files the
recipe names, under the folder name the recipe names (the converter derives the model's name from
it): what the publisher converted is by construction what a verifier converts again.

A conversion recipe is the `recipe` of a release statement that has no base (conversion.CONVERSION_TOOL):

    {"tool": "convert_hf_to_gguf.py", "llama_cpp_python_version": "0.3.36",
     "ggml_build": "llama-cpp-python/0.3.36 ggml/0.9.11 commit/...", "ftype": "F16", "imatrix": null,
     "options": {"directory": "SmolLM2-135M",
                 "files": [{"name": "config.json", "digest": "sha256:...", "size": 704}, ...],
                 "upstream": {"repository": "HuggingFaceTB/SmolLM2-135M", "revision": "<commit>"},
                 "python": {"torch": "2.13.0+cpu", "transformers": "4.57.6", ...}}}

`files` are the inputs (uploaded with the release, fetched by the verifier by digest);
`upstream` is the publisher's claim of where they came from (not checked: nothing here can reach a
hub); `python` records the converter's Python packages (a verifier with others still converts, and
says so when the bytes differ).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from assay.core.errors import AssayError
from assay.core.conversion import (FILE_NAME, MAX_FILES, OUTTYPES, SCRIPT, ConversionRecipe, UpstreamFile, check_file_name,
                                   python_versions)
from assay.toolchain.llama_tools import CannotReproduceHere

# Weights in other formats, left out when the checkpoint has safetensors (the converter reads those).
OTHER_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.tflite", "*.ot")
SETUP_HINT = "run scripts/unpack_llama_converter.sh (make bootstrap does) or set ASSAY_LLAMA_CONVERT to its folder"


# The converter as the child runs it: llama.cpp's script, with the one way transformers imports
# Python a checkpoint ships (auto_map + trust_remote_code=True, which the converter passes for several
# model families' tokenizers) refused. The upstream files are a stranger's: a tokenization_*.py
# among them would run as the verifier's user, a symbolic link away from its key.
REMOTE_CODE_REFUSED = "this checkpoint's tokenizer or model is Python code it ships (auto_map)"
NO_CHECKPOINT_CODE = f"""
import os, runpy, sys
try:
    import transformers.dynamic_module_utils as dynamic
except ImportError:
    dynamic = None
if dynamic is not None:
    def refuse(class_name, *args, **kwargs):
        raise SystemExit("{REMOTE_CODE_REFUSED} ({{}}): Assay's conversion does not run it".format(class_name))
    dynamic.get_class_in_module = refuse
script, sys.argv = sys.argv[1], sys.argv[1:]
sys.path[0] = os.path.dirname(script)  # as for the script run directly
runpy.run_path(script, run_name="__main__")
"""


class ConvertError(AssayError):
    """The conversion failed, timed out or was given a folder it cannot convert."""


class ConverterMissing(CannotReproduceHere):
    """llama.cpp's converter is not unpacked on this machine."""


# ---------------------------------------------------------------- the converter

def converter_dir() -> Path:
    override = os.environ.get("ASSAY_LLAMA_CONVERT")
    if override:
        folder = Path(override)
    else:
        try:
            folder = Path((Path(sys.prefix) / ".assay-llama-convert").read_text().strip())
        except OSError:
            raise ConverterMissing(f"llama.cpp's converter ({SCRIPT}) is not set up here: {SETUP_HINT}") from None
    if not (folder / SCRIPT).is_file():
        raise ConverterMissing(f"llama.cpp's converter is not at {folder / SCRIPT}: {SETUP_HINT}")
    return folder


def converter_digest() -> str:
    """SHA-256 over the sorted (path, sha256) lines of the converter's files: which converter ran,
    for provenance."""
    folder = converter_dir()
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        lines.append(f"{path.relative_to(folder).as_posix()} {hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()




# ---------------------------------------------------------------- recipe











# ---------------------------------------------------------------- the upstream folder

def select_upstream_files(hf_dir: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    """The files of a checkpoint folder that go into the conversion: every regular file at its top
    level (a symbolic link to one counts: the Hugging Face cache's snapshots are made of them) but
    hidden files, GGUF files, weights in other formats where safetensors are present, and names
    matching an `exclude` pattern. Sub-folders are not read by the converter for a text model."""
    if not hf_dir.is_dir():
        raise ConvertError(f"{hf_dir} is not a folder: give the folder of a Hugging Face checkpoint (config.json, tokenizer, *.safetensors)")
    entries = sorted(p for p in hf_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    has_safetensors = any(p.name.endswith(".safetensors") for p in entries)
    chosen = []
    for p in entries:
        if fnmatch.fnmatch(p.name, "*.gguf") or any(fnmatch.fnmatch(p.name, pat) for pat in exclude):
            continue
        if has_safetensors and any(fnmatch.fnmatch(p.name, pat) for pat in OTHER_WEIGHTS):
            continue
        check_name = FILE_NAME.match(p.name)
        if not check_name:
            raise ConvertError(f"{p.name!r} in {hf_dir} has a name a recipe cannot carry (letters, digits, '.', '_', '-', '+'): "
                               "rename it or leave it out with --exclude")
        chosen.append(p)
    if not any(p.name == "config.json" for p in chosen):
        raise ConvertError(f"{hf_dir} has no config.json: not a Hugging Face checkpoint folder")
    if not any(p.name.endswith((".safetensors", ".bin", ".pt", ".pth")) for p in chosen):
        raise ConvertError(f"{hf_dir} holds no weights (*.safetensors)")
    if len(chosen) > MAX_FILES:
        raise ConvertError(f"{hf_dir} has {len(chosen)} files; a conversion takes at most {MAX_FILES} (leave some out with --exclude)")
    return chosen


def make_recipe(files: list[Path], digests: dict[str, str], *, outtype: str, directory: str,
                repository: str | None = None, revision: str | None = None) -> ConversionRecipe:
    from assay.toolchain.quantize import _llama_cpp_python_version, current_build_id

    outtype = outtype.upper()
    if outtype not in OUTTYPES:
        raise ConvertError(f"--outtype must be one of {', '.join(OUTTYPES)}, not {outtype!r}")
    upstream = tuple(UpstreamFile(p.name, digests[p.name], p.stat().st_size) for p in files)
    recipe = ConversionRecipe(_llama_cpp_python_version(), current_build_id(), outtype, check_file_name(directory, "options.directory"),
                              upstream, repository or None, revision or None, tuple(sorted(python_versions().items())))
    return ConversionRecipe.from_json(recipe.to_dict())  # one validation for what is written and what is read


# ---------------------------------------------------------------- running the converter

def convert(recipe: ConversionRecipe, inputs: dict[str, Path], out_path: Path, *, timeout_s: float = 6 * 3600,
            durable: bool = True, check_build: bool = True) -> dict:
    """Run llama.cpp's converter on exactly the recipe's files (`inputs`: name -> local file, each
    checked against its digest by the caller) staged under the recipe's folder name, writing
    `out_path` atomically (nothing is left there on failure). Returns {"elapsed_s", "log_tail"}.
    Raises CannotReproduceHere for a recipe of another llama.cpp build or without a converter
    here, ConvertError when the conversion fails or times out."""
    from assay.toolchain.quantize import _child_env, _last_error_line, _tail, current_build_id, run_logged

    if check_build and recipe.ggml_build != current_build_id():
        raise CannotReproduceHere(f"the recipe's converter comes with llama.cpp build {recipe.ggml_build!r}; this machine has "
                                  f"{current_build_id()!r}")
    script = converter_dir() / SCRIPT
    missing = [f.name for f in recipe.files if f.name not in inputs]
    if missing:
        raise ConvertError(f"upstream file(s) {', '.join(missing)} missing: the conversion needs every file the recipe names")
    out_dir = out_path.parent if str(out_path.parent) else Path(".")
    if not out_dir.is_dir():
        raise ConvertError(f"output directory {out_dir} does not exist")
    workdir = Path(tempfile.mkdtemp(prefix="assay-convert-"))
    fd, tmp_out = tempfile.mkstemp(dir=out_dir, prefix=f".{out_path.name}.", suffix=".partial")
    os.close(fd)
    ok, start = False, time.monotonic()
    try:
        staged = workdir / "upstream" / recipe.directory
        staged.mkdir(parents=True)
        for f in recipe.files:
            os.symlink(Path(inputs[f.name]).resolve(), staged / f.name)
        env = _child_env(str(workdir), 0)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(workdir / "hf"),
                    "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"})
        env.pop("PYTHONPATH", None)  # the converter's own gguf-py first, then the environment's packages
        cmd = [sys.executable, "-s", "-c", NO_CHECKPOINT_CODE, str(script), str(staged), "--outfile", tmp_out,
               "--outtype", OUTTYPES[recipe.ftype]]
        log_path = workdir / "log.txt"
        rc = run_logged(cmd, cwd=workdir, env=env, log_path=log_path, timeout_s=timeout_s)
        if rc is None:
            raise ConvertError(f"the conversion did not finish within {timeout_s:g}s and was stopped")
        log_tail = _tail(log_path, 4000).replace(str(staged), recipe.directory).replace(str(workdir), "<workdir>")
        if rc != 0:
            raise ConvertError(f"llama.cpp's converter failed (exit {rc}): {_last_error_line(log_tail)}")
        if Path(tmp_out).stat().st_size == 0:
            raise ConvertError("llama.cpp's converter wrote an empty file")
        if durable:
            with open(tmp_out, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp_out, out_path)
        ok = True
        return {"elapsed_s": time.monotonic() - start, "log_tail": log_tail[-500:]}
    finally:
        if not ok:
            Path(tmp_out).unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)

