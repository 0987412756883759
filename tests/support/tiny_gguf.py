"""Tiny GGUF files for tests: a valid minimal llama model (written with gguf.GGUFWriter) and
raw-byte builders for hostile files (written by hand, so any field can lie)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType
from gguf.quants import quantize

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
N_EMBD, N_VOCAB, N_FF = 32, 16, 64
TOKENS = ["<unk>", "<|im_start|>", "<|im_end|>"] + [chr(ord("a") + i) for i in range(N_VOCAB - 3)]


def write_tiny_llama(path: str | Path, *, chat_template: str | None = CHATML_TEMPLATE, file_type: int = int(LlamaFileType.MOSTLY_F16),
                     architecture: str = "llama", nan_in: str | None = None, extra_kv: dict | None = None,
                     skip_keys: tuple[str, ...] = (), q8_0: bool = False, tokens: list[str] | None = None) -> Path:
    """A minimal but structurally complete llama-architecture GGUF (one block, F16 matrices, F32 norms).

    nan_in: name of an F32 tensor (e.g. "blk.0.attn_norm.weight") to poison with a NaN, or of a
    block matrix (with q8_0=True) whose first Q8_0 block scale becomes NaN.
    q8_0: store the block matrices as Q8_0 instead of F16 (pass file_type=7 to label it so).
    tokens: another vocabulary of N_VOCAB strings (BOS is id 1, EOS id 2).
    """
    path = Path(path)
    rng = np.random.default_rng(0)
    w = GGUFWriter(str(path), architecture)
    keys = {
        "block_count": lambda: w.add_block_count(1),
        "context_length": lambda: w.add_context_length(128),
        "embedding_length": lambda: w.add_embedding_length(N_EMBD),
        "feed_forward_length": lambda: w.add_feed_forward_length(N_FF),
        "head_count": lambda: w.add_head_count(4),
        "head_count_kv": lambda: w.add_head_count_kv(4),
        "rms_eps": lambda: w.add_layer_norm_rms_eps(1e-5),
        "file_type": lambda: w.add_file_type(file_type),
        "tokenizer.ggml.model": lambda: w.add_tokenizer_model("gpt2"),
    }
    w.add_name("tiny-test-llama")
    for key, add in keys.items():
        if key not in skip_keys:
            add()
    if tokens is not None and len(tokens) != N_VOCAB:
        raise ValueError(f"tokens must have {N_VOCAB} entries")
    w.add_token_list(list(tokens) if tokens is not None else TOKENS)
    w.add_token_types([1] * N_VOCAB)
    w.add_token_merges(["a b", "c d"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    for key, value in (extra_kv or {}).items():
        w.add_string(key, value) if isinstance(value, str) else w.add_uint32(key, value)

    def mat(rows: int, cols: int) -> np.ndarray:
        return rng.standard_normal((rows, cols)).astype(np.float16)

    def block_mat(name: str, rows: int, cols: int) -> None:
        if not q8_0:
            return w.add_tensor(name, mat(rows, cols))
        q = quantize(mat(rows, cols).astype(np.float32), GGMLQuantizationType.Q8_0)
        if name == nan_in:
            q[0, 0:2] = np.frombuffer(np.float16(np.nan).tobytes(), dtype=np.uint8)
        w.add_tensor(name, q, raw_dtype=GGMLQuantizationType.Q8_0)

    def norm(name: str) -> np.ndarray:
        v = np.ones(N_EMBD, dtype=np.float32)
        if name == nan_in:
            v[N_EMBD // 2] = np.nan
        return v

    w.add_tensor("token_embd.weight", mat(N_VOCAB, N_EMBD))
    w.add_tensor("blk.0.attn_norm.weight", norm("blk.0.attn_norm.weight"))
    for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
        block_mat(f"blk.0.{t}.weight", N_EMBD, N_EMBD)
    w.add_tensor("blk.0.ffn_norm.weight", norm("blk.0.ffn_norm.weight"))
    block_mat("blk.0.ffn_gate.weight", N_FF, N_EMBD)
    block_mat("blk.0.ffn_up.weight", N_FF, N_EMBD)
    block_mat("blk.0.ffn_down.weight", N_EMBD, N_FF)
    w.add_tensor("output_norm.weight", norm("output_norm.weight"))
    w.add_tensor("output.weight", mat(N_VOCAB, N_EMBD))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---- raw byte builders ---------------------------------------------------------------------

def gstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv_string(key: str, value: str | bytes) -> bytes:
    return gstr(key) + struct.pack("<I", 8) + gstr(value)


def kv_u32(key: str, value: int) -> bytes:
    return gstr(key) + struct.pack("<II", 4, value)


def tensor_info(name: str, shape: tuple[int, ...], ggml_type: int, offset: int) -> bytes:
    return gstr(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", ggml_type, offset)


def raw_gguf(kvs: list[bytes] = (), tensors: list[bytes] = (), data: bytes = b"", *, n_tensors: int | None = None,
             n_kv: int | None = None, version: int = 3, alignment: int = 32) -> bytes:
    """Assemble a GGUF from pre-encoded KVs and tensor infos; counts may lie."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    pad = (-len(body)) % alignment
    return body + b"\x00" * pad + data


F32, F16, Q8_0 = 0, 1, 8


def f32_pair(offsets=(0, 32), shapes=((8,), (8,)), types=(F32, F32), names=("a", "b"), data_len: int = 64) -> bytes:
    """Two small tensors; change offsets/shapes/types/names to make them collide or misbehave."""
    infos = [tensor_info(n, s, t, o) for n, s, t, o in zip(names, shapes, types, offsets)]
    return raw_gguf([kv_string("general.architecture", "llama")], infos, b"\x00" * data_len)


HOSTILE = {
    "huge_tensor_count": lambda: raw_gguf(n_tensors=1 << 40, n_kv=0),
    "huge_string": lambda: b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("general.name") + struct.pack("<IQ", 8, 1 << 40) + b"abc",
    "huge_array": lambda: b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 4, 1 << 40) + b"\x00" * 16,
    "overlap": lambda: f32_pair(offsets=(0, 0), data_len=64),
    "misaligned": lambda: f32_pair(offsets=(0, 40), data_len=96),
    "past_eof": lambda: f32_pair(offsets=(0, 32), shapes=((8,), (64,)), data_len=64),
    "bad_block": lambda: f32_pair(offsets=(0, 64), shapes=((40,), (8,)), types=(Q8_0, F32), data_len=128),
    "duplicate_tensor": lambda: f32_pair(names=("a", "a")),
    "unknown_type": lambda: f32_pair(types=(F32, 4)),
    "too_many_dims": lambda: raw_gguf([], [tensor_info("a", (1, 1, 1, 1, 1), F32, 0)], b"\x00" * 32),
    "zero_dim": lambda: raw_gguf([], [tensor_info("a", (8, 0), F32, 0)], b"\x00" * 32),
    "duplicate_key": lambda: raw_gguf([kv_string("general.name", "x"), kv_string("general.name", "y")]),
    "bad_utf8_key": lambda: raw_gguf([gstr(b"general.\xff") + struct.pack("<I", 8) + gstr("x")]),
    "bad_alignment": lambda: raw_gguf([kv_u32("general.alignment", 24)]),
    "bad_version": lambda: b"GGUF" + struct.pack("<IQQ", 7, 0, 0),
    "not_gguf": lambda: b"PK\x03\x04" + b"\x00" * 60,
    "deep_array": lambda: b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("x") + struct.pack("<I", 9)
    + struct.pack("<IQ", 9, 1) * 8 + struct.pack("<IQ", 4, 0),
    # llama.cpp looks keys and tensor names up as C strings: these would be its chat template and its output layer
    "nul_in_key": lambda: raw_gguf([kv_string("tokenizer.chat_template\x00", "{{ 1 }}"), kv_string("tokenizer.chat_template", "{{ 2 }}")]),
    "nul_in_tensor_name": lambda: f32_pair(names=("output.weight\x00", "b")),
}


def write_hostile(tmp_path: Path, name: str) -> Path:
    path = Path(tmp_path) / f"{name}.gguf"
    path.write_bytes(HOSTILE[name]())
    return path


def truncated_copy(src: Path, dst: Path, length: int) -> Path:
    with open(src, "rb") as f:
        dst.write_bytes(f.read(length))
    return dst
