"""Strict GGUF parser: the real SmolLM2 file, a tiny writer-made file, and hostile files."""
import time
import tracemalloc

import pytest

from assay.core import ggufparse
from assay.core.errors import FormatError
from assay.core.ggufparse import file_type_from_name, file_type_name, parse_gguf, read_tensor_bytes
from tests.support.tiny_gguf import HOSTILE, kv_string, raw_gguf, tensor_info, truncated_copy, write_hostile, write_tiny_llama


def fails(path, *needles):
    with pytest.raises(FormatError) as exc:
        parse_gguf(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(path.name + ": ")
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_smollm2_parses(smollm2):
    info = parse_gguf(smollm2)
    assert info.version == 3 and info.architecture == "llama" and info.alignment == 32
    assert info.file_type == 3 and file_type_name(info.file_type) == "Q4_1" == info.quantization
    assert len(info.tensors) == 272 and info.file_size == smollm2.stat().st_size
    assert info.metadata["llama.block_count"] == 30 and info.metadata["tokenizer.ggml.model"] == "gpt2"
    assert len(info.metadata["tokenizer.ggml.tokens"]) == 49152
    assert info.metadata_types["tokenizer.ggml.tokens"] == "ARRAY[STRING]"
    assert "<|im_start|>" in info.metadata["tokenizer.chat_template"]
    emb = info.tensor_by_name["token_embd.weight"]
    assert (emb.shape, emb.type_name, emb.offset, emb.data_start) == ((576, 49152), "Q8_0", 0, info.data_offset)
    norm = info.tensor_by_name["blk.0.attn_norm.weight"]
    assert norm.nbytes == 576 * 4 and len(read_tensor_bytes(smollm2, info, norm)) == 2304


def test_matches_gguf_package(tmp_path):
    import gguf

    path = write_tiny_llama(tmp_path / "tiny.gguf", chat_template="{{ messages }}")
    info = parse_gguf(path)
    ref = gguf.GGUFReader(str(path))
    assert [(t.name, int(t.data_offset), int(t.n_bytes)) for t in ref.tensors] == [(t.name, t.data_start, t.nbytes) for t in info.tensors]
    assert info.metadata["tokenizer.chat_template"] == "{{ messages }}" and info.quantization == "F16"
    assert read_tensor_bytes(path, info, "output_norm.weight") == bytes(ref.tensors[-2].data)


def test_file_type_names_match_gguf_constants():
    from gguf.constants import LlamaFileType

    for ftype in LlamaFileType:
        if ftype != LlamaFileType.GUESSED:
            assert ggufparse.FILE_TYPE_NAMES[int(ftype)] == ftype.name.replace("MOSTLY_", "")
    for value, name in ggufparse.FILE_TYPE_NAMES.items():
        assert file_type_from_name(name.lower()) == value
    assert file_type_name(3 | 1024) == "Q4_1" and file_type_name(99) == "unknown(99)" and file_type_name(None) == "unknown"


def test_file_type_names_cover_the_pinned_llama_cpp():
    """Every llama_ftype the pinned llama.cpp can write (NVFP4, Q1_0, Q2_0 ...) has its name."""
    llama_cpp = pytest.importorskip("llama_cpp.llama_cpp")
    pinned = {getattr(llama_cpp, k): k.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_")
              for k in dir(llama_cpp) if k.startswith("LLAMA_FTYPE_") and k != "LLAMA_FTYPE_GUESSED"}
    assert ggufparse.FILE_TYPE_NAMES == pinned


def test_huge_tensor_count_fails_fast_without_allocating(tmp_path):
    path = write_hostile(tmp_path, "huge_tensor_count")
    tracemalloc.start()
    t0 = time.perf_counter()
    msg = fails(path, "1099511627776 tensors", "at byte 8")
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 2 * 1024 * 1024, (elapsed, peak, msg)


@pytest.mark.parametrize("name, needles", [
    ("huge_string", ["value of 'general.name' claims 1099511627776 bytes", "truncated"]),
    ("huge_array", ["'tokenizer.ggml.tokens' claims 1099511627776 elements", "truncated"]),
    ("overlap", ["tensor 'b' (data offset 0) overlaps tensor 'a'"]),
    ("misaligned", ["tensor 'b' offset 40 is not a multiple of the alignment 32"]),
    ("past_eof", ["tensor 'b'", "extends past the end of the file"]),
    ("bad_block", ["type Q8_0 has ne[0]=40, not a multiple of its block size 32"]),
    ("duplicate_tensor", ["duplicate tensor name 'a'"]),
    ("unknown_type", ["tensor 'b' has unknown ggml type 4"]),
    ("too_many_dims", ["5 dimensions"]),
    ("zero_dim", ["non-positive dimension"]),
    ("duplicate_key", ["duplicate metadata key 'general.name'"]),
    ("bad_utf8_key", ["not valid UTF-8"]),
    ("bad_alignment", ["general.alignment 24 is not a power of two"]),
    ("bad_version", ["unsupported GGUF version 7"]),
    ("not_gguf", ["not a GGUF file (magic b'PK\\x03\\x04'"]),
    ("deep_array", ["is an array of arrays, which llama.cpp cannot read"]),
    ("nul_in_key", ["metadata key 'tokenizer.chat_template\\x00' holds a NUL character", "read it as 'tokenizer.chat_template'"]),
    ("nul_in_tensor_name", ["tensor name 'output.weight\\x00' holds a NUL character"]),
])
def test_hostile_files(tmp_path, name, needles):
    tracemalloc.start()
    fails(write_hostile(tmp_path, name), *needles)
    assert tracemalloc.get_traced_memory()[1] < 2 * 1024 * 1024
    tracemalloc.stop()


def test_hostile_table_fully_covered():
    assert set(HOSTILE) == {"huge_tensor_count", "huge_string", "huge_array", "overlap", "misaligned", "past_eof", "bad_block",
                            "duplicate_tensor", "unknown_type", "too_many_dims", "zero_dim", "duplicate_key", "bad_utf8_key",
                            "bad_alignment", "bad_version", "not_gguf", "deep_array", "nul_in_key", "nul_in_tensor_name"}


def test_truncated_at_every_stage(tmp_path):
    src = write_tiny_llama(tmp_path / "tiny.gguf")
    info = parse_gguf(src)
    cases = {
        2: "not a GGUF file (only 2 bytes",
        6: "truncated file: version needs 4 bytes",
        20: "truncated file: metadata key/value count",
        200: "truncated file or hostile header: header claims",
        info.header_end - 3: "truncated file: offset of tensor 'output.weight'",
        info.data_offset + 10: "extends past the end of the file",
        info.file_size - 1: "tensor 'output.weight'",
    }
    for cut, needle in cases.items():
        fails(truncated_copy(src, tmp_path / f"cut{cut}.gguf", cut), needle)
    # a cut inside the metadata itself (counts allow it, the string does not)
    many_kv = tmp_path / "cut_kv.gguf"
    data = src.read_bytes()
    many_kv.write_bytes(data[:info.header_end // 2])
    assert "truncated" in fails(many_kv)


def test_read_tensor_bytes_detects_changed_file(tmp_path):
    path = write_tiny_llama(tmp_path / "tiny.gguf")
    info = parse_gguf(path)
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(FormatError, match="changed since it was parsed"):
        read_tensor_bytes(path, info, info.tensors[0])


def test_tensor_sizes_follow_ggml_block_layouts(tmp_path):
    """ggml lays the bytes out: Q8_1 blocks are 36 bytes (two f16 and 32 quants; gguf-py still says
    40), and Q2_0 (type 42) is a type the pinned ggml writes though gguf-py does not know it yet."""
    q8_1, q2_0 = 9, 42
    infos = [tensor_info("a", (32, 8), q8_1, 0), tensor_info("b", (64, 2), q2_0, 288), tensor_info("c", (8,), 0, 352)]
    path = tmp_path / "layouts.gguf"
    path.write_bytes(raw_gguf([kv_string("general.architecture", "llama")], infos, b"\x00" * 384))
    info = parse_gguf(path)
    assert [(t.type_name, t.nbytes, t.data_start - info.data_offset) for t in info.tensors] == [
        ("Q8_1", 288, 0), ("Q2_0", 36, 288), ("F32", 32, 352)]


def test_type_table_matches_the_pinned_ggml():
    """Every ggml type the pinned library knows has its block size and bytes here, and no other."""
    import ctypes

    from assay.toolchain.llama_tools import CannotReproduceHere, lib_dir

    try:
        libs = sorted(lib_dir().glob("libggml-base.so*"))
    except CannotReproduceHere:
        libs = []
    if not libs:
        pytest.skip("the pinned llama-cpp-python (libggml-base) is not installed")
    ggml = ctypes.CDLL(str(libs[0]))
    ggml.ggml_type_size.restype, ggml.ggml_blck_size.restype = ctypes.c_size_t, ctypes.c_int64
    ggml.ggml_type_name.restype = ctypes.c_char_p
    from llama_cpp import llama_cpp

    pinned = {}
    for type_id in range(llama_cpp.GGML_TYPE_COUNT):
        block, size = ggml.ggml_blck_size(type_id), ggml.ggml_type_size(type_id)
        if block and size:  # removed types answer 0
            pinned[type_id] = (ggml.ggml_type_name(type_id).decode().upper(), block, size)
    assert {k: (v[0].upper(), v[1], v[2]) for k, v in ggufparse.GGML_TYPES.items()} == pinned
