"""An F16 base model derived from the SmolLM2 Q4_1 GGUF, for real quantization tests.

The only real model the tests have is SmolLM2-135M-Instruct in Q4_1. Quantizing needs an
unquantized base, so we dequantize every tensor (`gguf.quants.dequantize`) and write an F16
GGUF: 2-D weight matrices as F16, 1-D tensors (norms) as F32, every metadata key copied
(architecture, tokenizer arrays, chat template, ...) and `general.file_type` = 1 (MOSTLY_F16).
This is a real, loadable base model; quantizing it is exactly what a publisher does to an F16
conversion of a Hugging Face checkpoint.

Derived files are cached under cache_dir()/models/, keyed by the source file's digest (and any
perturbation), built atomically (temp file + rename under a file lock) so concurrent test
processes reuse one copy.

Usable from scripts:  python -m tests.support.derive [SRC.gguf] [OUT.gguf]
"""
from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize

from assay.core.digest import digest_file

from .models import cache_dir, smollm2_gguf

DERIVATION_VERSION = "f16-v1"
LLAMA_FTYPE_MOSTLY_F16 = 1
_SKIP_KEYS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture", "general.file_type"}


def _field_value(field):
    """(value, vtype, sub_type) of a GGUFReader field, in the form GGUFWriter.add_key_value takes."""
    vtype = field.types[0]
    if vtype == GGUFValueType.ARRAY:
        sub = field.types[-1] if len(field.types) > 1 else None
        if sub == GGUFValueType.ARRAY:
            raise ValueError(f"nested arrays are not supported ({field.name})")
        return field.contents(), vtype, sub
    return field.contents(), vtype, None


def derive_f16_base(
    src_path: str | Path,
    out_path: str | Path,
    *,
    perturb_tensor: str | None = None,
    perturb_delta: float = 0.0625,
) -> Path:
    """Write an F16 GGUF of every tensor of `src_path` (dequantized) to `out_path`.

    perturb_tensor: name of one tensor whose first row is shifted by `perturb_delta`, giving a
    "different base" that differs from the honest one in that tensor only.
    """
    src_path, out_path = Path(src_path), Path(out_path)
    reader = GGUFReader(src_path)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(out_path, arch)
    for name, field in reader.fields.items():
        if name in _SKIP_KEYS:
            continue
        value, vtype, sub = _field_value(field)
        writer.add_key_value(name, value, vtype, sub)
    writer.add_file_type(LLAMA_FTYPE_MOSTLY_F16)
    found = perturb_tensor is None
    for t in reader.tensors:
        data = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        if t.name == perturb_tensor:
            data = np.array(data, dtype=np.float32)
            data.reshape(-1, data.shape[-1])[0] += np.float32(perturb_delta)
            found = True
        if len(t.shape) >= 2:
            arr, dtype = data.astype(np.float16), GGMLQuantizationType.F16
        else:
            arr, dtype = np.ascontiguousarray(data, dtype=np.float32), GGMLQuantizationType.F32
        writer.add_tensor(t.name, arr, raw_dtype=dtype)
    if not found:
        raise KeyError(f"no tensor named {perturb_tensor!r} in {src_path}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path


def cached_f16_base(src_path: str | Path | None = None, *, perturb_tensor: str | None = None) -> Path:
    """The derived F16 base of `src_path` (default: SmolLM2 Q4_1), built once and cached."""
    src = Path(src_path) if src_path else smollm2_gguf()
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    key = digest_file(src).split(":", 1)[1][:16]
    suffix = f"-perturbed-{perturb_tensor}" if perturb_tensor else ""
    target = models / f"{src.stem}.{DERIVATION_VERSION}-{key}{suffix}.F16.gguf"
    if target.exists():
        return target
    with open(models / ".derive.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        fd, tmp = tempfile.mkstemp(dir=models, prefix=".derive-", suffix=".gguf.tmp")
        os.close(fd)
        try:
            derive_f16_base(src, tmp, perturb_tensor=perturb_tensor)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(derive_f16_base(sys.argv[1], sys.argv[2]))
    else:
        print(cached_f16_base(sys.argv[1] if len(sys.argv) > 1 else None))


def rewrite_gguf(src_path: str | Path, out_path: str | Path, *, set_kv: dict[str, str] | None = None,
                 set_tensors: dict[str, np.ndarray] | None = None) -> Path:
    """Copy a GGUF (metadata in order, tensor bytes untouched) with some string metadata replaced
    (and, with set_tensors, some tensors' data: same shape and type, as raw arrays).

    What a publisher who "only changed the chat template" would ship."""
    set_kv = dict(set_kv or {})
    reader = GGUFReader(src_path)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(out_path, arch)
    for name, field in reader.fields.items():
        if name in ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture"):
            continue
        if name in set_kv:
            writer.add_key_value(name, set_kv.pop(name), GGUFValueType.STRING)
            continue
        value, vtype, sub = _field_value(field)
        writer.add_key_value(name, value, vtype, sub)
    for name, value in set_kv.items():
        writer.add_key_value(name, value, GGUFValueType.STRING)
    for t in reader.tensors:
        data = (set_tensors or {}).get(t.name)
        writer.add_tensor(t.name, np.asarray(t.data) if data is None else data, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out_path)


def flip_tensor_byte(src_path: str | Path, out_path: str | Path, tensor: str, byte_offset: int = 0, mask: int = 0x01) -> Path:
    """Copy a GGUF with one byte of one tensor's data flipped (an edit made after quantization)."""
    from assay.core.ggufparse import parse_gguf

    info = parse_gguf(src_path)
    t = info.tensor_by_name[tensor]
    if not 0 <= byte_offset < t.nbytes:
        raise ValueError(f"byte offset {byte_offset} outside tensor {tensor} ({t.nbytes} bytes)")
    data = bytearray(Path(src_path).read_bytes())
    data[t.data_start + byte_offset] ^= mask
    Path(out_path).write_bytes(bytes(data))
    return Path(out_path)
