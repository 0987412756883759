"""Strict, bounded GGUF (v2/v3, little-endian) reader.

Deliberately independent of the `gguf` package's reader: every count and length read from the
file is checked against the bytes that remain BEFORE anything is allocated or looped over, so a
hostile header fails in O(1) time and memory. The file is memory-mapped; tensor data is never
read in bulk (use `read_tensor_bytes` for one tensor). Every violation is a FormatError whose
message names the file, what is wrong and the byte offset.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from assay.core.errors import FormatError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # tensor names are < 64 bytes in ggml
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 16
MAX_KEY_LENGTH = 1 << 16
MAX_KV_COUNT = 1 << 16
MAX_TENSOR_COUNT = 1 << 20
MAX_ARRAY_DEPTH = 4
MAX_ARRAY_ELEMENTS_TOTAL = 1 << 24  # across all metadata arrays; real vocabularies are < 1M
HEADER_SIZE = 4 + 4 + 8 + 8

# GGUF metadata value types: id -> (name, struct format or None, size).
VALUE_TYPES: dict[int, tuple[str, str | None, int]] = {
    0: ("UINT8", "<B", 1), 1: ("INT8", "<b", 1), 2: ("UINT16", "<H", 2), 3: ("INT16", "<h", 2),
    4: ("UINT32", "<I", 4), 5: ("INT32", "<i", 4), 6: ("FLOAT32", "<f", 4), 7: ("BOOL", "<B", 1),
    8: ("STRING", None, 8), 9: ("ARRAY", None, 12), 10: ("UINT64", "<Q", 8), 11: ("INT64", "<q", 8),
    12: ("FLOAT64", "<d", 8),
}
STRING, ARRAY, BOOL = 8, 9, 7
_NUMPY_DTYPES = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 10: "<u8", 11: "<i8", 12: "<f8"}

# ggml tensor types: id -> (name, block size in elements, bytes per block). From the gguf package,
# corrected to ggml's own block structs (ggml-common.h) where the package lags or errs: the file's
# bytes are laid out by ggml, and the pinned llama.cpp is what writes and reads them.
GGML_TYPE_CORRECTIONS: dict[int, tuple[str, int, int]] = {
    9: ("Q8_1", 32, 36),   # block_q8_1 is {ggml_half d, s; int8 qs[32]}; gguf-py still says 4 + 4 + 32
    42: ("Q2_0", 64, 18),  # block_q2_0 is {ggml_half d; uint8 qs[16]}; ggml type 42, not yet in gguf-py
}
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    **{int(t): (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType if t in GGML_QUANT_SIZES},
    **GGML_TYPE_CORRECTIONS,
}

# llama_ftype (general.file_type) -> the quantization name used across Assay.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "ALL_F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
    25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M",
    32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0",
}
FILE_TYPE_GUESSED = 1024


def metadata_int(metadata: dict, key: str) -> int | None:
    """An integer metadata value, the largest of a per-layer array (head_count_kv), or None when
    the key is missing or holds anything else (a hostile file's string, float or list of strings)."""
    value = metadata.get(key)
    if isinstance(value, list):
        value = max((v for v in value if isinstance(v, int) and not isinstance(v, bool)), default=None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def file_type_name(ftype: int | None) -> str:
    """Name of a llama_ftype value ("Q4_1", "Q4_K_M", ...); "unknown" / "unknown(N)" otherwise."""
    if ftype is None:
        return "unknown"
    name = FILE_TYPE_NAMES.get(int(ftype) & ~FILE_TYPE_GUESSED)
    return name if name is not None else f"unknown({int(ftype)})"


def file_type_from_name(name: str) -> int | None:
    """Inverse of file_type_name (case-insensitive); None for an unknown name."""
    for value, known in FILE_TYPE_NAMES.items():
        if known.lower() == name.strip().lower():
            return value
    return None


def ggml_type_name(type_id: int) -> str:
    entry = GGML_TYPES.get(type_id)
    return entry[0] if entry else f"unknown({type_id})"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: shape in ggml order (ne[0] first), offset relative to the data section."""
    name: str
    shape: tuple[int, ...]
    type: int
    type_name: str
    offset: int
    nbytes: int
    n_elements: int
    data_start: int  # absolute byte offset in the file

    @property
    def data_end(self) -> int:
        return self.data_start + self.nbytes


@dataclass
class GGUFInfo:
    """Everything the header says, after validation."""
    path: str
    version: int
    metadata: dict[str, Any]
    metadata_types: dict[str, str]
    tensors: list[TensorInfo]
    data_offset: int
    alignment: int
    file_size: int
    architecture: str | None = None
    file_type: int | None = None
    header_end: int = 0  # end of the tensor infos, before alignment padding
    tensor_by_name: dict[str, TensorInfo] = field(default_factory=dict, repr=False)

    @property
    def quantization(self) -> str:
        return file_type_name(self.file_type)


class _Reader:
    """Cursor over a read-only buffer; every read is bounds-checked first."""

    def __init__(self, buf, size: int, label: str):
        self.buf, self.size, self.label, self.pos = buf, size, label, 0
        self.array_elements = 0

    def fail(self, message: str, at: int | None = None) -> FormatError:
        return FormatError(f"{self.label}: {message} at byte {self.pos if at is None else at}")

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.remaining():
            raise self.fail(f"truncated file: {what} needs {n} bytes but only {self.remaining()} remain")

    def unpack(self, fmt: str, size: int, what: str):
        self.need(size, what)
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return self.unpack("<I", 4, what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", 8, what)

    def string(self, what: str, max_len: int | None = None) -> str:
        start = self.pos
        length = self.u64(f"length of {what}")
        if max_len is not None and length > max_len:
            raise self.fail(f"{what} is {length} bytes long (limit {max_len})", start)
        if length > self.remaining():
            raise self.fail(f"truncated file: {what} claims {length} bytes but only {self.remaining()} remain", start)
        raw = bytes(self.buf[self.pos:self.pos + length])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8", self.pos) from None
        self.pos += length
        return text

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype not in VALUE_TYPES:
            raise self.fail(f"{what} has unknown value type {vtype}", self.pos - 4)
        if vtype == STRING:
            return self.string(what)
        if vtype == ARRAY:
            return self.array(what, depth + 1)
        _, fmt, size = VALUE_TYPES[vtype]
        start = self.pos
        value = self.unpack(fmt, size, what)
        if vtype == BOOL:
            if value not in (0, 1):
                raise self.fail(f"{what} is a bool with invalid byte {value}", start)
            return bool(value)
        return value

    def array(self, what: str, depth: int) -> list:
        start = self.pos
        if depth > MAX_ARRAY_DEPTH:
            raise self.fail(f"{what} nests arrays deeper than {MAX_ARRAY_DEPTH} levels", start)
        etype = self.u32(f"element type of {what}")
        count = self.u64(f"length of {what}")
        if etype not in VALUE_TYPES:
            raise self.fail(f"{what} has unknown element type {etype}", start)
        if etype == ARRAY:  # gguf_init_from_file refuses an array of arrays (invalid GGUF type 9)
            raise self.fail(f"{what} is an array of arrays, which llama.cpp cannot read", start)
        min_size = VALUE_TYPES[etype][2]
        if count * min_size > self.remaining():
            raise self.fail(
                f"truncated file: {what} claims {count} elements (at least {count * min_size} bytes) "
                f"but only {self.remaining()} bytes remain", start)
        self.array_elements += count
        if self.array_elements > MAX_ARRAY_ELEMENTS_TOTAL:
            raise self.fail(f"metadata arrays hold more than {MAX_ARRAY_ELEMENTS_TOTAL} elements in total ({what})", start)
        if etype in _NUMPY_DTYPES:
            import numpy as np

            values = np.frombuffer(self.buf, dtype=_NUMPY_DTYPES[etype], count=count, offset=self.pos).tolist()
            self.pos += count * min_size
            return values
        if etype == BOOL:
            raw = bytes(self.buf[self.pos:self.pos + count])
            if raw.strip(b"\x00\x01"):
                raise self.fail(f"{what} holds a bool that is neither 0 nor 1", self.pos)
            self.pos += count
            return [b == 1 for b in raw]
        return [self.value(etype, f"{what}[{i}]", depth) for i in range(count)]


def _tensor_size(name: str, shape: tuple[int, ...], type_id: int, r: _Reader, at: int) -> tuple[int, int]:
    """(n_elements, nbytes) for a tensor; FormatError on an unknown type or a bad shape."""
    if type_id not in GGML_TYPES:
        raise r.fail(f"tensor {name!r} has unknown ggml type {type_id}", at)
    type_name, block, type_size = GGML_TYPES[type_id]
    if shape[0] % block:
        raise r.fail(f"tensor {name!r} of type {type_name} has ne[0]={shape[0]}, not a multiple of its block size {block}", at)
    n = 1
    for d in shape:
        n *= d
    return n, n // block * type_size


def parse_gguf(path: str | os.PathLike) -> GGUFInfo:
    """Parse and validate the header, metadata and tensor table of a GGUF file."""
    path = Path(path)
    label = path.name
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise FormatError(f"{label}: cannot open file: {exc.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 4:
            raise FormatError(f"{label}: not a GGUF file (only {size} bytes, no magic)")
        magic = f.read(4)
        if magic != GGUF_MAGIC:
            raise FormatError(f"{label}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                return _parse(_Reader(buf, size, label), str(path))
            except (struct.error, ValueError, OverflowError) as exc:  # defensive: should be unreachable
                raise FormatError(f"{label}: malformed GGUF header ({exc})") from None


def _parse(r: _Reader, path: str) -> GGUFInfo:
    r.pos = 4
    version = r.u32("version")
    if version not in SUPPORTED_VERSIONS:
        swapped = struct.unpack("<I", struct.pack(">I", version))[0]
        hint = " (big-endian GGUF is not supported)" if swapped in SUPPORTED_VERSIONS else ""
        raise r.fail(f"unsupported GGUF version {version}{hint}; expected 2 or 3", 4)
    n_tensors = r.u64("tensor count")
    n_kv = r.u64("metadata key/value count")
    # Minimal encodings: a KV is 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes; a tensor
    # info is 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes.
    if n_kv > MAX_KV_COUNT or n_kv * 14 > r.remaining():
        raise r.fail(f"truncated file or hostile header: header claims {n_kv} metadata entries but only "
                     f"{r.remaining()} bytes remain (limit {MAX_KV_COUNT} entries)", 16)
    if n_tensors > MAX_TENSOR_COUNT or n_tensors * 32 > r.remaining():
        raise r.fail(f"truncated file or hostile header: header claims {n_tensors} tensors but only "
                     f"{r.remaining()} bytes remain (limit {MAX_TENSOR_COUNT} tensors)", 8)

    metadata: dict[str, Any] = {}
    types: dict[str, str] = {}
    kv_at: dict[str, int] = {}
    for i in range(n_kv):
        at = r.pos
        key = r.string(f"key of metadata entry {i}", MAX_KEY_LENGTH)
        if not key:
            raise r.fail(f"metadata entry {i} has an empty key", at)
        if "\x00" in key:  # llama.cpp finds keys with strcmp: it would take this entry for the key before the NUL
            raise r.fail(f"metadata key {key!r} holds a NUL character; llama.cpp compares keys as C strings and would "
                         f"read it as {key.split(chr(0), 1)[0]!r}", at)
        if key in metadata:
            raise r.fail(f"duplicate metadata key {key!r}", at)
        kv_at[key] = at
        vtype = r.u32(f"value type of {key!r}")
        if vtype == ARRAY and r.remaining() >= 4:
            etype = struct.unpack_from("<I", r.buf, r.pos)[0]
            types[key] = f"ARRAY[{VALUE_TYPES.get(etype, (str(etype),))[0]}]"
        else:
            types[key] = VALUE_TYPES.get(vtype, (str(vtype),))[0]
        metadata[key] = r.value(vtype, f"value of {key!r}")

    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in metadata:
        alignment = metadata["general.alignment"]
        if types["general.alignment"] != "UINT32":
            raise r.fail(f"general.alignment has type {types['general.alignment']}, expected UINT32", kv_at["general.alignment"])
        if not 1 <= alignment <= MAX_ALIGNMENT or alignment & (alignment - 1):
            raise r.fail(f"general.alignment {alignment} is not a power of two between 1 and {MAX_ALIGNMENT}", kv_at["general.alignment"])

    raw_tensors = []
    names: set[str] = set()
    for i in range(n_tensors):
        at = r.pos
        name = r.string(f"name of tensor {i}", GGML_MAX_NAME - 1)
        if "\x00" in name:  # ggml_set_name and gguf_find_tensor stop at the NUL: llama.cpp would load it under another name
            raise r.fail(f"tensor name {name!r} holds a NUL character; ggml would name it {name.split(chr(0), 1)[0]!r}", at)
        if name in names:
            raise r.fail(f"duplicate tensor name {name!r}", at)
        names.add(name)
        n_dims = r.u32(f"n_dims of tensor {name!r}")
        if not 1 <= n_dims <= GGML_MAX_DIMS:
            raise r.fail(f"tensor {name!r} has {n_dims} dimensions (allowed 1..{GGML_MAX_DIMS})", r.pos - 4)
        shape = tuple(r.u64(f"dimension {d} of tensor {name!r}") for d in range(n_dims))
        if any(d <= 0 for d in shape):
            raise r.fail(f"tensor {name!r} has a non-positive dimension {list(shape)}", at)
        type_id = r.u32(f"type of tensor {name!r}")
        offset = r.u64(f"offset of tensor {name!r}")
        n_elements, nbytes = _tensor_size(name, shape, type_id, r, at)
        raw_tensors.append((at, name, shape, type_id, offset, n_elements, nbytes))

    header_end = r.pos
    data_offset = -(-header_end // alignment) * alignment
    if n_tensors and data_offset > r.size:
        raise r.fail(f"truncated file: data section would start at byte {data_offset} but the file has {r.size} bytes", header_end)
    data_size = max(r.size - data_offset, 0)

    tensors: list[TensorInfo] = []
    for at, name, shape, type_id, offset, n_elements, nbytes in raw_tensors:
        if offset % alignment:
            raise r.fail(f"tensor {name!r} offset {offset} is not a multiple of the alignment {alignment}", at)
        if offset + nbytes > data_size:
            raise r.fail(
                f"tensor {name!r} ({ggml_type_name(type_id)} {list(shape)}, {nbytes} bytes at data offset {offset}) "
                f"extends past the end of the file (data section is {data_size} bytes; truncated?)", at)
        tensors.append(TensorInfo(name, shape, type_id, ggml_type_name(type_id), offset, nbytes, n_elements,
                                  data_offset + offset))
    ordered = sorted(tensors, key=lambda t: (t.offset, t.nbytes))
    for prev, cur in zip(ordered, ordered[1:]):
        if cur.offset < prev.offset + prev.nbytes:
            raise r.fail(f"tensor {cur.name!r} (data offset {cur.offset}) overlaps tensor {prev.name!r} "
                         f"(data offsets {prev.offset}..{prev.offset + prev.nbytes})", cur.data_start)

    arch = metadata.get("general.architecture")
    ftype = metadata.get("general.file_type")
    return GGUFInfo(
        path=path, version=version, metadata=metadata, metadata_types=types, tensors=tensors,
        data_offset=data_offset, alignment=alignment, file_size=r.size,
        architecture=arch if isinstance(arch, str) else None,
        file_type=ftype if isinstance(ftype, int) and not isinstance(ftype, bool) else None,
        header_end=header_end, tensor_by_name={t.name: t for t in tensors},
    )


def read_tensor_bytes(path: str | os.PathLike, info: GGUFInfo, tensor: TensorInfo | str) -> bytes:
    """The raw bytes of one tensor (a single read of tensor.nbytes bytes)."""
    if isinstance(tensor, str):
        if tensor not in info.tensor_by_name:
            raise FormatError(f"{Path(path).name}: no tensor named {tensor!r}")
        tensor = info.tensor_by_name[tensor]
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size != info.file_size:
            raise FormatError(f"{Path(path).name}: file changed since it was parsed ({size} bytes, was {info.file_size})")
        f.seek(tensor.data_start)
        data = f.read(tensor.nbytes)
    if len(data) != tensor.nbytes:
        raise FormatError(f"{Path(path).name}: truncated file: tensor {tensor.name!r} at byte {tensor.data_start}")
    return data
