"""Conversion recipes: what `assay convert` signs about a conversion of an upstream checkpoint by
llama.cpp's convert_hf_to_gguf.py (the format; assay/toolchain/convert.py runs the converter).
See that module's docstring for the JSON form."""
from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from assay.core.errors import FormatError
from assay.core.typed import Digest, FieldError, Strict, load, matching

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


PLAIN_FILE_NAME = "must be a plain file name (letters, digits, '.', '_', '-', '+'; not starting with '.')"


def check_file_name(name: object, fieldname: str) -> str:
    if not isinstance(name, str) or not FILE_NAME.match(name):
        raise _fail(fieldname, f"{PLAIN_FILE_NAME}, not {name!r}")
    return name


def _one_line(value: str) -> str:
    if any(ord(c) < 32 for c in value):
        raise ValueError("must be one line of at most 300 characters")
    return value


FileName = Annotated[str, matching(FILE_NAME, PLAIN_FILE_NAME)]
OneLine = Annotated[str, StringConstraints(min_length=1, max_length=300), AfterValidator(_one_line)]
Version = Annotated[str, StringConstraints(max_length=100)]


class _UpstreamFileDoc(Strict):
    name: FileName
    digest: Digest
    size: Annotated[int, Field(ge=0)]


def _distinct_with_config(files: list[_UpstreamFileDoc]) -> list[_UpstreamFileDoc]:
    seen: set[str] = set()
    for i, f in enumerate(files):
        if f.name in seen:
            raise FieldError(f"{i}.name", f"names {f.name!r} twice")
        seen.add(f.name)
    if "config.json" not in seen:
        raise ValueError("must include config.json (the checkpoint's configuration)")
    return files


class _UpstreamDoc(Strict):
    repository: OneLine | None
    revision: OneLine | None


class _ConversionOptionsDoc(Strict):
    directory: FileName
    files: Annotated[list[_UpstreamFileDoc], Field(min_length=1, max_length=MAX_FILES), AfterValidator(_distinct_with_config)]
    upstream: _UpstreamDoc
    python: Annotated[dict[str, Version | None], Field(max_length=32)]


class _ConversionRecipeDoc(Strict):
    """A conversion recipe as JSON (see assay/toolchain/convert.py's docstring)."""
    tool: Literal[CONVERSION_TOOL]  # type: ignore[valid-type]
    llama_cpp_python_version: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    ggml_build: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    ftype: Literal[tuple(OUTTYPES)]  # type: ignore[valid-type]
    imatrix: None
    options: _ConversionOptionsDoc


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
    def from_json(cls, doc: object, *, what: str = "recipe field", root: str = "") -> "ConversionRecipe":
        if not isinstance(doc, dict) or doc.get("tool") != CONVERSION_TOOL:
            raise FormatError(f"not a conversion recipe (its tool must be {CONVERSION_TOOL!r})")
        d = load(_ConversionRecipeDoc, doc, what=what, root=root)
        o = d.options
        return cls(d.llama_cpp_python_version, d.ggml_build, d.ftype, o.directory,
                   tuple(UpstreamFile(f.name, f.digest, f.size) for f in o.files),
                   o.upstream.repository, o.upstream.revision, tuple(sorted(o.python.items())))

    def python_differences(self, here: dict[str, str | None] | None = None) -> list[str]:
        """'torch 2.11.0 (here 2.13.0+cpu)' for each converter package whose version differs here."""
        here = python_versions() if here is None else here
        return [f"{k} {v} (here {here.get(k)})" for k, v in self.python if here.get(k) != v]


def is_conversion(recipe: object) -> bool:
    return isinstance(recipe, dict) and recipe.get("tool") == CONVERSION_TOOL
