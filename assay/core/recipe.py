"""Quantization recipes: everything that decides the bytes `llama_model_quantize` writes from a
given base (the format; assay/toolchain/quantize.py runs it). See that module's docstring for the
JSON form, which is the `recipe` object of a release statement and the `externalParameters` of
reproduction provenance."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from assay.core.errors import FormatError
from assay.core.typed import Digest, FieldError, Strict, load, matching, type_name

M = TypeVar("M", bound=Strict)

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


IMATRIX_NAME = re.compile(r"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}\Z")


MAX_TENSOR_TYPE_RULES = 256


SPLIT_SIZE = re.compile(r"\A[1-9][0-9]{0,12}[KMG]?\Z")


def _fail(fieldname: str, msg: str) -> FormatError:
    return FormatError(f"recipe field {fieldname} {msg}")


def _load(model: type[M], data: Any, *, what: str = "recipe field", root: str = "") -> M:
    return load(model, data, what=what, root=root)


def _tensor_type(value: str) -> str:
    if value.upper() not in GGML_TYPES:
        raise ValueError(f"must be a ggml tensor type ({', '.join(GGML_TYPES)}), not {value[:40]!r}")
    return value.upper()


def _tensor_type_rule(rule: list[str]) -> list[str]:
    pattern, tname = rule
    if "\0" in pattern:
        raise FieldError("0", "must not hold a NUL character")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise FieldError("0", f"is not a valid regular expression: {exc}") from None
    if tname not in GGML_TYPES:
        raise FieldError("1", f"must be a ggml tensor type written in upper case ({', '.join(GGML_TYPES)}), not {tname[:40]!r}")
    return rule


TensorType = Annotated[str, AfterValidator(_tensor_type)]
TensorTypeRule = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=256)]],
                           Field(min_length=2, max_length=2), AfterValidator(_tensor_type_rule)]
ImatrixName = Annotated[str, matching(IMATRIX_NAME, "must be a plain file name (letters, digits, '.', '_', '-'; "
                                                     "not starting with '.'; at most 120 characters)")]


def _build_text(value: str) -> str:
    if not value or len(value) > 200 or not value.isprintable():
        raise ValueError(f"must be a non-empty printable string of at most 200 characters, not {value[:80]!r}")
    return value


BuildText = Annotated[str, AfterValidator(_build_text)]


class _ImatrixSourceDoc(Strict):
    calibration: Digest
    calibration_name: ImatrixName
    ctx: Annotated[int, Field(ge=8, le=1 << 20)]
    chunks: Annotated[int, Field(ge=1, le=1 << 20)]


class _SplitDoc(Strict):
    """llama-gguf-split's --split-max-tensors or --split-max-size (its own units), exactly one."""
    max_tensors: Annotated[int, Field(ge=1, le=1_000_000)] = None  # type: ignore[assignment]
    max_size: Annotated[str, matching(SPLIT_SIZE, "must be a size such as 500M or 2G")] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _exactly_one(self) -> "_SplitDoc":
        if (self.max_tensors is None) == (self.max_size is None):
            raise ValueError('must be {"max_tensors": N} or {"max_size": "2G"}')
        return self


class _OptionsDoc(Strict):
    """A recipe's options; an option this model does not know may change the bytes: never ignored."""
    output_tensor_type: TensorType | None = None
    token_embedding_type: TensorType | None = None
    pure: bool = False
    allow_requantize: bool = False
    quantize_output_tensor: bool = True
    tensor_types: Annotated[list[TensorTypeRule], Field(max_length=MAX_TENSOR_TYPE_RULES)] = []
    nthread: Annotated[int, Field(ge=0, le=1024)] = 0
    imatrix_name: ImatrixName | None = None
    imatrix_source: _ImatrixSourceDoc | None = None
    split: _SplitDoc | None = None


class _RecipeDoc(Strict):
    """A quantization recipe as JSON (see assay/toolchain/quantize.py's docstring)."""
    tool: Literal[TOOL]  # type: ignore[valid-type]
    llama_cpp_python_version: BuildText
    ggml_build: BuildText
    ftype: Literal[tuple(FTYPES)]  # type: ignore[valid-type]
    imatrix: Digest | None
    options: _OptionsDoc

    @model_validator(mode="after")
    def _imatrix_rules(self) -> "_RecipeDoc":
        if self.ftype in IMATRIX_REQUIRED and self.imatrix is None:
            raise FieldError("imatrix", f"is required for {self.ftype} (llama.cpp needs an importance matrix for it)")
        if (self.imatrix is None) != (self.options.imatrix_name is None):
            raise FieldError("options.imatrix_name", "must be given exactly when imatrix is (the file name llama-quantize records)")
        if self.options.imatrix_source is not None and self.imatrix is None:
            raise FieldError("options.imatrix_source", "is only for a recipe with an importance matrix")
        return self


def check_split_option(split: object) -> dict:
    """options.split: {"max_tensors": N} or {"max_size": "<n>[K|M|G]"} (llama-gguf-split's own units)."""
    _load(_SplitDoc, split, root="options.split")
    return split  # type: ignore[return-value]


@dataclass(frozen=True)
class ImatrixSource:
    calibration: str        # sha256 digest of the calibration text
    calibration_name: str   # the bare file name llama-imatrix is given (recorded in the matrix)
    ctx: int                # tokens per chunk (-c)
    chunks: int             # chunks evaluated (--chunks)

    def __post_init__(self) -> None:
        _load(_ImatrixSourceDoc, self.to_dict(), root="options.imatrix_source")

    def to_dict(self) -> dict:
        return {"calibration": self.calibration, "calibration_name": self.calibration_name, "ctx": self.ctx, "chunks": self.chunks}

    @classmethod
    def from_dict(cls, data: object) -> "ImatrixSource":
        doc = _load(_ImatrixSourceDoc, data, root="options.imatrix_source")
        return cls(doc.calibration, doc.calibration_name, doc.ctx, doc.chunks)


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
    # How the importance matrix was computed (ImatrixSource as a dict: calibration text by digest
    # and name, context, chunks), so a verifier can compute it again; None = the matrix is an
    # input taken as published.
    imatrix_source: dict | None = None
    # A split GGUF: the quant is cut into parts with llama-gguf-split afterwards, as
    # {"max_tensors": N} or {"max_size": "2G"} (the tool's --split-max-tensors / --split-max-size);
    # None = one file.
    split: dict | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- construction
    def with_options(self, **changes: Any) -> "Recipe":
        d = {k: v for k, v in asdict(self).items()}
        d["tensor_types"] = tuple(tuple(x) for x in d["tensor_types"])
        d.update(changes)
        return Recipe(**d)

    # -- validation: the one model, _RecipeDoc, checks what this recipe writes as JSON
    def validate(self) -> None:
        try:
            doc = self.to_dict()
        except TypeError:
            raise _fail("options.tensor_types", "must be a list of [pattern, type] pairs") from None
        _load(_RecipeDoc, doc)

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
    def from_json(cls, data: str | bytes | dict, *, what: str = "recipe field", root: str = "") -> "Recipe":
        """Parse a recipe (JSON text or an already-decoded object); FormatError names the bad field
        ("<what> <root>.<field> <problem>")."""
        if isinstance(data, (str, bytes, bytearray)):
            if len(data) > 1 << 20:
                raise FormatError("recipe is larger than 1 MiB")
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise FormatError(f"recipe is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FormatError(f"recipe must be a JSON object, not {type_name(data)}")
        doc = _load(_RecipeDoc, data, what=what, root=root)
        o = doc.options
        return cls(
            tool=doc.tool, llama_cpp_python_version=doc.llama_cpp_python_version, ggml_build=doc.ggml_build,
            ftype=doc.ftype, imatrix=doc.imatrix,
            output_tensor_type=o.output_tensor_type, token_embedding_type=o.token_embedding_type,
            pure=o.pure, allow_requantize=o.allow_requantize, quantize_output_tensor=o.quantize_output_tensor,
            tensor_types=tuple((p, t) for p, t in o.tensor_types), nthread=o.nthread, imatrix_name=o.imatrix_name,
            imatrix_source=data["options"].get("imatrix_source"), split=data["options"].get("split"),
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
