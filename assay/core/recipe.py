"""Quantization recipes: everything that decides the bytes `llama_model_quantize` writes from a
given base (the format; assay/toolchain/quantize.py runs it). See that module's docstring for the
JSON form, which is the `recipe` object of a release statement and the `externalParameters` of
reproduction provenance."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from assay.core.errors import FormatError

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
    # How the importance matrix was computed (assay.toolchain.imatrix.ImatrixSource as a dict: calibration
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
