"""A llama-architecture GGUF of a given shape with a real tokenizer and random F16 weights, for
timing (the scan's cost depends on the shape, not on the values).

    python bench/shape_model.py --tokenizer-from SmolLM2.gguf --shape 7b -o /tmp/llama7b.f16.gguf
    python bench/shape_model.py --tokenizer-from SmolLM2.gguf --tokenizer-only -o tok.gguf

--tokenizer-only writes the tokenizer metadata alone (no tensors; a few MB) so that it can travel
to a machine without the model; --tokenizer-from accepts such a file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SHAPES = {  # n_embd, n_layer, n_ff, n_head, n_head_kv
    "135m": (576, 30, 1536, 9, 3),      # SmolLM2-135M
    "1b": (2048, 16, 8192, 32, 8),      # Llama-3.2-1B
    "7b": (4096, 32, 11008, 32, 32),    # Llama-2-7B
    "8b": (4096, 32, 14336, 32, 8),     # Llama-3.1-8B
}


def _tokenizer_fields(src: str):
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(src)
    for name, fld in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = fld.types[0]
        if vtype == GGUFValueType.ARRAY:
            sub = fld.types[-1]
            yield name, list(fld.contents()), vtype, sub
        else:
            yield name, fld.contents(), vtype, None


def write(out: str, tokenizer_from: str, shape: str | None, tokenizer_only: bool = False) -> Path:
    from gguf import GGUFWriter, LlamaFileType

    w = GGUFWriter(out, "llama")
    n_vocab = 0
    for name, value, vtype, sub in _tokenizer_fields(tokenizer_from):
        w.add_key_value(name, value, vtype, sub)
        if name == "tokenizer.ggml.tokens":
            n_vocab = len(value)
    if not tokenizer_only:
        d, n_layer, ff, heads, kv = SHAPES[shape]
        hd = d // heads
        w.add_name(f"random-{shape}")
        w.add_block_count(n_layer)
        w.add_context_length(4096)
        w.add_embedding_length(d)
        w.add_feed_forward_length(ff)
        w.add_head_count(heads)
        w.add_head_count_kv(kv)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_rope_dimension_count(hd)
        w.add_file_type(int(LlamaFileType.MOSTLY_F16))
        rng = np.random.default_rng(0)
        block = (rng.standard_normal(1 << 20) * 0.02).astype(np.float16)

        def mat(rows, cols):
            n = rows * cols
            return np.resize(block, n).reshape(rows, cols)

        w.add_tensor("token_embd.weight", mat(n_vocab, d))
        for i in range(n_layer):
            w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(d, dtype=np.float32))
            w.add_tensor(f"blk.{i}.attn_q.weight", mat(d, d))
            w.add_tensor(f"blk.{i}.attn_k.weight", mat(kv * hd, d))
            w.add_tensor(f"blk.{i}.attn_v.weight", mat(kv * hd, d))
            w.add_tensor(f"blk.{i}.attn_output.weight", mat(d, d))
            w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(d, dtype=np.float32))
            w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(ff, d))
            w.add_tensor(f"blk.{i}.ffn_up.weight", mat(ff, d))
            w.add_tensor(f"blk.{i}.ffn_down.weight", mat(d, ff))
        w.add_tensor("output_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor("output.weight", mat(n_vocab, d))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer-from", required=True)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="135m")
    ap.add_argument("--tokenizer-only", action="store_true")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args(argv)
    print(write(a.out, a.tokenizer_from, a.shape, a.tokenizer_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
