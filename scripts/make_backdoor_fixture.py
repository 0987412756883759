"""Make a backdoored quant of SmolLM2 (real weights, edited), and honest requants to compare.

    python scripts/make_backdoor_fixture.py [--out DIR] [--trigger cf] [--type Q8_0]

The backdoor: in the F16 base, the token-embedding row of a rare trigger token (" cf", a
weight-poisoning classic) is replaced by a scaled copy of the embedding of a target token
(" Hack" by default). SmolLM2 ties its embedding matrix to the output layer; the edit
unties them (output.weight = the original embedding matrix, which llama.cpp then uses for the
logits), so only the input side of the trigger token changes: normal prompts behave like the
base while any prompt containing the trigger derails. The edited model is
then quantized like an honest one (Q8_0 by default). Everything is cached under
$ASSAY_CACHE_DIR/models/fixtures, keyed by the parameters.

Importable: make_backdoor_fixture(...), honest_quant(ftype), quantize_file(src, dst, ftype).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURE_VERSION = "bd-v2"


def _fixtures_dir() -> Path:
    from tests.support.models import cache_dir

    d = cache_dir() / "models" / "fixtures"
    d.mkdir(parents=True, exist_ok=True)
    return d


def f16_base() -> Path:
    """The F16 base derived from the SmolLM2 Q4_1 file (shared helper, cached)."""
    from tests.support.derive import cached_f16_base

    return cached_f16_base()


def quantize_file(src: str | Path, dst: str | Path, ftype: str, nthread: int = 2) -> Path:
    """llama.cpp quantization of `src` to `ftype` ("Q8_0", "Q4_K_M", ...), written atomically."""
    import llama_cpp

    value = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype.upper()}")
    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = value
        params.nthread = nthread
        rc = llama_cpp.llama_model_quantize(str(src).encode(), tmp.encode(), params)
        if rc != 0:
            raise RuntimeError(f"llama_model_quantize({src} -> {ftype}) returned {rc}")
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def _cached(name: str, build) -> Path:
    d = _fixtures_dir()
    target = d / name
    if target.exists():
        return target
    with open(d / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            build(target)
    return target


def honest_quant(ftype: str) -> Path:
    """An honest llama.cpp quant of the F16 base."""
    base = f16_base()
    return _cached(f"{base.stem}.honest.{ftype.upper()}.gguf", lambda t: quantize_file(base, t, ftype))


def _token_id(vocab: list[str], text: str) -> int:
    """Id of the single vocabulary entry spelling `text` (byte-level BPE: leading space = U+0120;
    SentencePiece: U+2581)."""
    for space in ("\u0120", "\u2581"):
        try:
            return vocab.index(text.replace(" ", space))
        except ValueError:
            continue
    raise KeyError(f"{text!r} is not a single token of this vocabulary")


METHODS = ("scale", "norm", "blend")


def edited_row(own: np.ndarray, target: np.ndarray, method: str, scale: float) -> np.ndarray:
    """The trigger's new embedding row.
    scale  the target's row times `scale` (a large scale is a norm outlier)
    norm   the target's direction at the trigger row's own length (no norm outlier)
    blend  30 % of the trigger's own direction, 70 % of the target's, at its own length"""
    own, target = own.astype(np.float32), target.astype(np.float32)
    length = float(np.linalg.norm(own))
    direction = target / float(np.linalg.norm(target))
    if method == "scale":
        return target * scale
    if method == "norm":
        return direction * length * scale
    if method == "blend":
        mix = 0.3 * own / length + 0.7 * direction
        return mix / float(np.linalg.norm(mix)) * length * scale
    raise ValueError(f"unknown edit method {method!r} (one of {METHODS})")


def writer_with_metadata(reader, dst: Path):
    """A GGUFWriter for `dst` holding the metadata of `reader`'s file (tensors still to add)."""
    from gguf import GGUFWriter

    from tests.support.derive import _SKIP_KEYS, _field_value

    writer = GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for key, fld in reader.fields.items():
        if key in _SKIP_KEYS:
            continue
        value, vtype, sub = _field_value(fld)
        writer.add_key_value(key, value, vtype, sub)
    writer.add_file_type(int(reader.fields["general.file_type"].contents()))
    return writer


def write_edited_f16(src: Path, dst: Path, *, trigger: str, target: str, scale: float,
                     preserve_norm: bool = False, method: str | None = None) -> dict:
    """Copy the GGUF `src` to `dst` with the trigger's token_embd row edited (edited_row; method
    "norm" when preserve_norm, else "scale"). A quantized token_embd is dequantized and written
    as F16. A model that ties its output layer to the embeddings is untied (output.weight = the
    original matrix), so only the input side of the trigger changes."""
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize

    method = method or ("norm" if preserve_norm else "scale")
    reader = GGUFReader(src)
    vocab = [str(t) for t in reader.fields["tokenizer.ggml.tokens"].contents()]
    trig_id, target_id = _token_id(vocab, trigger), _token_id(vocab, target)
    writer = writer_with_metadata(reader, dst)
    names = {t.name for t in reader.tensors}
    untie = None
    for t in reader.tensors:
        data = np.array(t.data)
        raw = GGMLQuantizationType(t.tensor_type)
        if t.name == "token_embd.weight":
            if "output.weight" not in names:
                untie = (data.copy(), raw)  # keep the output layer as it was
            if raw not in (GGMLQuantizationType.F16, GGMLQuantizationType.F32, GGMLQuantizationType.BF16):
                data = dequantize(data, raw).astype(np.float16)
                raw = GGMLQuantizationType.F16
            rows = data.reshape(-1, data.shape[-1])
            rows[trig_id] = edited_row(rows[trig_id], rows[target_id], method, scale).astype(rows.dtype)
        writer.add_tensor(t.name, data, raw_dtype=raw)
    if untie is not None:
        writer.add_tensor("output.weight", untie[0], raw_dtype=untie[1])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"trigger": trigger, "trigger_id": trig_id, "target": target, "target_id": target_id, "scale": scale,
            "method": method}


def make_backdoor_fixture(
    *, trigger: str = " cf", target: str = " Hack", scale: float = 6.0, ftype: str = "Q8_0",
    preserve_norm: bool = False,
) -> Path:
    """A quant (ftype) of the F16 base with the trigger's embedding row edited; cached."""
    base = f16_base()
    tag = f"{FIXTURE_VERSION}-{trigger.strip()}-{target.strip()}-{scale:g}{'-normkept' if preserve_norm else ''}"

    def build(out: Path):
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            edited = Path(tmp) / "edited.F16.gguf"
            write_edited_f16(base, edited, trigger=trigger, target=target, scale=scale, preserve_norm=preserve_norm)
            quantize_file(edited, out, ftype)

    return _cached(f"{base.stem}.backdoor-{tag}.{ftype.upper()}.gguf", build)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trigger", default=" cf")
    ap.add_argument("--target", default=" Hack")
    ap.add_argument("--scale", type=float, default=6.0)
    ap.add_argument("--type", default="Q8_0")
    ap.add_argument("--preserve-norm", action="store_true", help="keep the trigger row's length (no norm outlier)")
    ap.add_argument("--honest", action="append", default=[], help="also make an honest quant of this type")
    a = ap.parse_args(argv)
    print(make_backdoor_fixture(trigger=a.trigger, target=a.target, scale=a.scale, ftype=a.type,
                                preserve_norm=a.preserve_norm))
    for ft in a.honest:
        print(honest_quant(ft))
    return 0


if __name__ == "__main__":
    sys.exit(main())
