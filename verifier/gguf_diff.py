"""What differs between two GGUF files: metadata keys, tensor types/shapes/bytes, tensor order.

Used when a rebuild does not reproduce a release bit-exactly, to say *what* the publisher's file
has that an honest rebuild does not. Headers are read with the strict, bounded parser
(assay.core.ggufparse); tensor bytes are compared in bounded memory, streaming both files in chunks
of whole quantization blocks, so a byte difference is reported as the fraction of that
tensor's quantization blocks that differ.

`expected` is what the verifier built, `actual` is the candidate. "added" means present only in
the candidate, "removed" only in the rebuild.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from assay.core.ggufparse import GGML_TYPES, GGUFInfo, TensorInfo, file_type_name, parse_gguf

CHUNK_TARGET = 1 << 20  # bytes per read, rounded down to whole blocks
PREVIEW = 60


def _block_bytes(type_id: int) -> int:
    entry = GGML_TYPES.get(type_id)
    return entry[2] if entry else 1


def preview(value: Any, limit: int = PREVIEW) -> str:
    """A short, one-line rendering of a metadata value."""
    if isinstance(value, list):
        head = ", ".join(preview(v, 20) for v in value[:3])
        more = ", ..." if len(value) > 3 else ""
        return f"[{len(value)} items: {head}{more}]"
    text = repr(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class MetadataDiff:
    key: str
    change: str  # "added" | "removed" | "changed"
    expected: str | None = None  # preview of the rebuild's value
    actual: str | None = None  # preview of the candidate's value
    expected_type: str | None = None
    actual_type: str | None = None
    first_differing_index: int | None = None  # for arrays of the same type

    def line(self) -> str:
        if self.change == "added":
            return f"metadata {self.key}: only in candidate = {self.actual}"
        if self.change == "removed":
            return f"metadata {self.key}: missing from candidate (rebuild has {self.expected})"
        kind = f" (type {self.expected_type} -> {self.actual_type})" if self.expected_type != self.actual_type else ""
        at = f" from index {self.first_differing_index}" if self.first_differing_index is not None else ""
        return f"metadata {self.key}: changed{kind}{at}: {self.expected} -> {self.actual}"


@dataclass
class TensorDiff:
    name: str
    kind: str  # "type" | "shape" | "bytes" | "missing" (only in rebuild) | "extra" (only in candidate)
    expected_type: str | None = None
    actual_type: str | None = None
    expected_shape: list[int] | None = None
    actual_shape: list[int] | None = None
    blocks_total: int | None = None
    blocks_differing: int | None = None
    first_differing_block: int | None = None

    @property
    def fraction(self) -> float | None:
        """Fraction of this tensor's quantization blocks whose bytes differ ("bytes" diffs only)."""
        if self.blocks_total:
            return self.blocks_differing / self.blocks_total
        return None

    def line(self) -> str:
        if self.kind == "missing":
            return f"tensor {self.name}: missing from candidate (rebuild has {self.expected_type} {self.expected_shape})"
        if self.kind == "extra":
            return f"tensor {self.name}: only in candidate ({self.actual_type} {self.actual_shape})"
        if self.kind == "type":
            shape = f", shape {self.expected_shape} -> {self.actual_shape}" if self.expected_shape != self.actual_shape else ""
            return f"tensor {self.name}: type {self.expected_type} -> {self.actual_type}{shape}"
        if self.kind == "shape":
            return f"tensor {self.name}: shape {self.expected_shape} -> {self.actual_shape} ({self.expected_type})"
        return (f"tensor {self.name}: bytes differ in {self.blocks_differing} of {self.blocks_total} "
                f"{self.expected_type} blocks ({100 * (self.fraction or 0):.3g}%), first at block {self.first_differing_block}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fraction"] = self.fraction
        return d


@dataclass
class GGUFDiff:
    expected_path: str
    actual_path: str
    header: list[str] = field(default_factory=list)  # version / alignment / key-order differences
    metadata: list[MetadataDiff] = field(default_factory=list)
    tensors: list[TensorDiff] = field(default_factory=list)
    order_changed: bool = False
    order_detail: str | None = None
    other_bytes_differ: bool = False  # bytes differ but no metadata value or tensor does (padding, trailing data)
    expected_size: int = 0
    actual_size: int = 0

    @property
    def identical(self) -> bool:
        return not (self.header or self.metadata or self.tensors or self.order_changed or self.other_bytes_differ)

    @property
    def metadata_keys(self) -> list[str]:
        return sorted(m.key for m in self.metadata)

    @property
    def tensor_names(self) -> list[str]:
        return sorted({t.name for t in self.tensors})

    def tensors_of_kind(self, kind: str) -> list[TensorDiff]:
        return [t for t in self.tensors if t.kind == kind]

    def lines(self) -> list[str]:
        out = [f"header: {h}" for h in self.header]
        out += [m.line() for m in self.metadata]
        out += [t.line() for t in self.tensors]
        if self.order_changed:
            out.append(f"tensor order differs: {self.order_detail}")
        if self.other_bytes_differ:
            out.append("bytes outside metadata values and tensor data differ (header encoding, padding or trailing data; "
                       f"sizes {self.expected_size} vs {self.actual_size})")
        return sorted(out)

    def summary(self, max_lines: int = 40) -> str:
        """One line per difference, sorted; capped at max_lines with '... and N more'."""
        lines = self.lines()
        if not lines:
            return "no differences"
        if len(lines) > max_lines:
            lines = lines[:max_lines] + [f"... and {len(lines) - max_lines} more"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON for evidence. The file paths are left out: they are the worker's temp and
        blob-store paths, and the evidence ends up in the signed verdict (the reproduce result
        names both files by digest)."""
        return {
            "identical": self.identical,
            "header": list(self.header),
            "metadata": [asdict(m) for m in self.metadata],
            "tensors": [t.to_dict() for t in self.tensors],
            "order_changed": self.order_changed,
            "order_detail": self.order_detail,
            "other_bytes_differ": self.other_bytes_differ,
            "expected_size": self.expected_size,
            "actual_size": self.actual_size,
            "summary": self.summary(),
        }


def _same_value(x: Any, y: Any) -> bool:
    """Metadata values equal as stored: a NaN equals a NaN, 0.0 differs from -0.0, 1 from True."""
    if type(x) is not type(y):
        return False
    if isinstance(x, list):
        return len(x) == len(y) and all(_same_value(a, b) for a, b in zip(x, y))
    if isinstance(x, float):
        return (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))
    return x == y


def _first_list_difference(a: list, b: list) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if not _same_value(x, y):
            return i
    return min(len(a), len(b))


def _diff_metadata(e: GGUFInfo, a: GGUFInfo) -> list[MetadataDiff]:
    out = []
    for key in sorted(set(e.metadata) | set(a.metadata)):
        if key not in a.metadata:
            out.append(MetadataDiff(key, "removed", expected=preview(e.metadata[key]), expected_type=e.metadata_types.get(key)))
        elif key not in e.metadata:
            out.append(MetadataDiff(key, "added", actual=preview(a.metadata[key]), actual_type=a.metadata_types.get(key)))
        else:
            ev, av = e.metadata[key], a.metadata[key]
            et, at = e.metadata_types.get(key), a.metadata_types.get(key)
            if et == at and _same_value(ev, av):
                continue
            idx = None
            if isinstance(ev, list) and isinstance(av, list) and et == at:
                idx = _first_list_difference(ev, av)
                exp_p = f"[{len(ev)} items] {preview(ev[idx:idx + 3])}"
                act_p = f"[{len(av)} items] {preview(av[idx:idx + 3])}"
            else:
                exp_p, act_p = preview(ev), preview(av)
                if key == "general.file_type" and isinstance(ev, int) and isinstance(av, int):
                    exp_p, act_p = f"{ev} ({file_type_name(ev)})", f"{av} ({file_type_name(av)})"
            out.append(MetadataDiff(key, "changed", expected=exp_p, actual=act_p, expected_type=et, actual_type=at,
                                    first_differing_index=idx))
    return out


def _compare_tensor_bytes(fe, fa, te: TensorInfo, ta: TensorInfo) -> tuple[int, int, int | None]:
    """(blocks_total, blocks_differing, first_differing_block), reading at most ~2 MiB at a time."""
    bb = _block_bytes(te.type)
    total = -(-te.nbytes // bb)
    chunk = max(bb, (CHUNK_TARGET // bb) * bb)
    differing, first, done = 0, None, 0
    while done < te.nbytes:
        n = min(chunk, te.nbytes - done)
        fe.seek(te.data_start + done)
        fa.seek(ta.data_start + done)
        be, ba = fe.read(n), fa.read(n)
        if len(be) != n or len(ba) != n:
            raise OSError(f"short read in tensor {te.name!r}")
        if be != ba:
            whole = (n // bb) * bb
            if whole:
                xe = np.frombuffer(be, dtype=np.uint8, count=whole).reshape(-1, bb)
                xa = np.frombuffer(ba, dtype=np.uint8, count=whole).reshape(-1, bb)
                bad = np.flatnonzero((xe != xa).any(axis=1))
                if bad.size:
                    differing += int(bad.size)
                    if first is None:
                        first = done // bb + int(bad[0])
            if whole < n and be[whole:] != ba[whole:]:
                differing += 1
                if first is None:
                    first = (done + whole) // bb
        done += n
    return total, differing, first


def _same_file_bytes(p1, p2) -> bool:
    with open(p1, "rb") as f1, open(p2, "rb") as f2:
        while True:
            b1, b2 = f1.read(CHUNK_TARGET), f2.read(CHUNK_TARGET)
            if b1 != b2:
                return False
            if not b1:
                return True


def diff_gguf(expected_path: str | os.PathLike, actual_path: str | os.PathLike) -> GGUFDiff:
    """Every metadata and tensor difference between `expected_path` (the rebuild) and `actual_path`.

    Raises assay.core.errors.FormatError if either file is not a well-formed GGUF."""
    e, a = parse_gguf(expected_path), parse_gguf(actual_path)
    d = GGUFDiff(str(expected_path), str(actual_path), expected_size=e.file_size, actual_size=a.file_size)
    if e.version != a.version:
        d.header.append(f"GGUF version {e.version} -> {a.version}")
    if e.alignment != a.alignment:
        d.header.append(f"alignment {e.alignment} -> {a.alignment}")
    d.metadata = _diff_metadata(e, a)

    with open(expected_path, "rb") as fe, open(actual_path, "rb") as fa:
        for te in e.tensors:
            ta = a.tensor_by_name.get(te.name)
            if ta is None:
                d.tensors.append(TensorDiff(te.name, "missing", expected_type=te.type_name, expected_shape=list(te.shape)))
                continue
            common = dict(expected_type=te.type_name, actual_type=ta.type_name,
                          expected_shape=list(te.shape), actual_shape=list(ta.shape))
            if te.type != ta.type:
                d.tensors.append(TensorDiff(te.name, "type", **common))
            elif te.shape != ta.shape:
                d.tensors.append(TensorDiff(te.name, "shape", **common))
            else:
                total, differing, first = _compare_tensor_bytes(fe, fa, te, ta)
                if differing:
                    d.tensors.append(TensorDiff(te.name, "bytes", blocks_total=total, blocks_differing=differing,
                                                first_differing_block=first, **common))
    for ta in a.tensors:
        if ta.name not in e.tensor_by_name:
            d.tensors.append(TensorDiff(ta.name, "extra", actual_type=ta.type_name, actual_shape=list(ta.shape)))

    order_e = [t.name for t in e.tensors if t.name in a.tensor_by_name]
    order_a = [t.name for t in a.tensors if t.name in e.tensor_by_name]
    if order_e != order_a:
        i = _first_list_difference(order_e, order_a)
        d.order_changed = True
        d.order_detail = f"position {i}: rebuild has {order_e[i]!r}, candidate has {order_a[i]!r}"
    else:  # same header order, but the data could still be laid out differently
        by_off_e = [t.name for t in sorted(e.tensors, key=lambda t: t.offset) if t.name in a.tensor_by_name]
        by_off_a = [t.name for t in sorted(a.tensors, key=lambda t: t.offset) if t.name in e.tensor_by_name]
        if by_off_e != by_off_a:
            i = _first_list_difference(by_off_e, by_off_a)
            d.order_changed = True
            d.order_detail = f"data layout position {i}: rebuild stores {by_off_e[i]!r}, candidate stores {by_off_a[i]!r}"

    if d.identical and not _same_file_bytes(expected_path, actual_path):
        # Nothing visible differs, yet the bytes do: key order, header encoding, padding or trailing data.
        if list(e.metadata) != list(a.metadata):
            d.header.append("metadata key order differs")
        else:
            d.other_bytes_differ = True
    return d
