"""Conversion recipes: what `assay convert` signs about a conversion of an upstream checkpoint by
llama.cpp's convert_hf_to_gguf.py (the format; assay/toolchain/convert.py runs the converter).
See that module's docstring for the JSON form."""
from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

from assay.core.errors import FormatError

# The recipe tool of a conversion from a Hugging Face checkpoint: a release with such a recipe has
# no base; its inputs are the upstream files the recipe names.
CONVERSION_TOOL = "convert_hf_to_gguf.py"

SCRIPT = "convert_hf_to_gguf.py"


OUTTYPES = {"F16": "f16", "BF16": "bf16", "F32": "f32"}  # full precision only: the level `converted` means that


PYTHON_PACKAGES = ("torch", "transformers", "tokenizers", "sentencepiece", "safetensors", "numpy", "protobuf")


FILE_NAME = re.compile(r"\A[A-Za-z0-9_-][A-Za-z0-9._+-]{0,199}\Z")


MAX_FILES = 512


def python_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PYTHON_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass(frozen=True)
class UpstreamFile:
    name: str
    digest: str
    size: int

    def to_dict(self) -> dict:
        return {"name": self.name, "digest": self.digest, "size": self.size}


def _fail(fieldname: str, msg: str) -> FormatError:
    return FormatError(f"recipe field {fieldname} {msg}")


def check_file_name(name: object, fieldname: str) -> str:
    if not isinstance(name, str) or not FILE_NAME.match(name):
        raise _fail(fieldname, f"must be a plain file name (letters, digits, '.', '_', '-', '+'; not starting with '.'), not {name!r}")
    return name


@dataclass(frozen=True)
class ConversionRecipe:
    llama_cpp_python_version: str
    ggml_build: str
    ftype: str
    directory: str
    files: tuple[UpstreamFile, ...]
    repository: str | None = None
    revision: str | None = None
    python: tuple[tuple[str, str | None], ...] = ()

    def to_dict(self) -> dict:
        return {
            "tool": CONVERSION_TOOL, "llama_cpp_python_version": self.llama_cpp_python_version, "ggml_build": self.ggml_build,
            "ftype": self.ftype, "imatrix": None,
            "options": {"directory": self.directory, "files": [f.to_dict() for f in self.files],
                        "upstream": {"repository": self.repository, "revision": self.revision},
                        "python": dict(self.python)},
        }

    @classmethod
    def from_json(cls, doc: object) -> "ConversionRecipe":
        if not isinstance(doc, dict) or doc.get("tool") != CONVERSION_TOOL:
            raise FormatError(f"not a conversion recipe (its tool must be {CONVERSION_TOOL!r})")
        for key in ("llama_cpp_python_version", "ggml_build"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise _fail(key, "must be a non-empty string")
        if doc.get("ftype") not in OUTTYPES:
            raise _fail("ftype", f"must be one of {', '.join(OUTTYPES)} for a conversion, not {doc.get('ftype')!r}")
        if doc.get("imatrix") is not None:
            raise _fail("imatrix", "must be null for a conversion")
        options = doc.get("options")
        if not isinstance(options, dict) or set(options) != {"directory", "files", "upstream", "python"}:
            raise _fail("options", "must be an object with directory, files, upstream and python")
        directory = check_file_name(options["directory"], "options.directory")
        raw = options["files"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_FILES:
            raise _fail("options.files", f"must list 1 to {MAX_FILES} upstream files")
        files, seen = [], set()
        for i, f in enumerate(raw):
            where = f"options.files[{i}]"
            if not isinstance(f, dict) or set(f) != {"name", "digest", "size"}:
                raise _fail(where, "must be an object with name, digest and size")
            name = check_file_name(f["name"], f"{where}.name")
            if name in seen:
                raise _fail(f"{where}.name", f"names {name!r} twice")
            seen.add(name)
            if not isinstance(f["digest"], str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", f["digest"]):
                raise _fail(f"{where}.digest", f"must be a digest sha256:<64 hex>, not {f['digest']!r}")
            if isinstance(f["size"], bool) or not isinstance(f["size"], int) or f["size"] < 0:
                raise _fail(f"{where}.size", "must be a non-negative integer")
            files.append(UpstreamFile(name, f["digest"], f["size"]))
        if "config.json" not in seen:
            raise _fail("options.files", "must include config.json (the checkpoint's configuration)")
        upstream = options["upstream"]
        if not isinstance(upstream, dict) or set(upstream) != {"repository", "revision"}:
            raise _fail("options.upstream", "must be an object with repository and revision (each a string or null)")
        for key in ("repository", "revision"):
            value = upstream[key]
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 300 or any(ord(c) < 32 for c in value)):
                raise _fail(f"options.upstream.{key}", "must be null or one line of at most 300 characters")
        python = options["python"]
        if not isinstance(python, dict) or len(python) > 32 or not all(
                isinstance(k, str) and (v is None or (isinstance(v, str) and len(v) <= 100)) for k, v in python.items()):
            raise _fail("options.python", "must map package names to versions")
        return cls(doc["llama_cpp_python_version"], doc["ggml_build"], doc["ftype"], directory, tuple(files),
                   upstream["repository"], upstream["revision"], tuple(sorted(python.items())))

    def python_differences(self, here: dict[str, str | None] | None = None) -> list[str]:
        """'torch 2.11.0 (here 2.13.0+cpu)' for each converter package whose version differs here."""
        here = python_versions() if here is None else here
        return [f"{k} {v} (here {here.get(k)})" for k, v in self.python if here.get(k) != v]


def is_conversion(recipe: object) -> bool:
    return isinstance(recipe, dict) and recipe.get("tool") == CONVERSION_TOOL
