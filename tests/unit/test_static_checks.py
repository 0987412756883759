"""Static checks: the real SmolLM2 file passes; each planted defect is an error finding."""
import numpy as np
import pytest

from tests.support.tiny_gguf import raw_gguf, tensor_info, kv_string, write_hostile, write_tiny_llama
from verifier.architectures import SUPPORTED_ARCHITECTURES
from verifier.static_checks import Finding, run_static_checks


def errors(report, check=None):
    return [f for f in report.findings if f.severity == "error" and (check is None or f.check == check)]


def test_smollm2_passes(smollm2):
    report = run_static_checks(smollm2, declared_quantization="Q4_1")
    assert report.passed, errors(report)
    assert report.summary["file_type"] == "Q4_1" and report.summary["tensor_count"] == 272
    checks = {f.check for f in report.findings}
    assert {"parse", "architecture", "file_type", "nan_inf", "chat_template"} <= checks
    assert any("smollm2-instruct" in f.message for f in report.findings)
    assert report.to_dict()["passed"] is True


def test_tiny_model_passes(tmp_path):
    report = run_static_checks(write_tiny_llama(tmp_path / "t.gguf"), declared_quantization="F16")
    assert report.passed, errors(report)
    assert all(isinstance(f, Finding) and f.severity in ("error", "warning", "info") for f in report.findings)


def test_declared_quantization_mismatch(smollm2):
    (err,) = errors(run_static_checks(smollm2, declared_quantization="Q8_0", scan_values=False, check_template=False))
    assert err.message == "release declares quantization Q8_0 but the file says Q4_1"


def test_file_type_inconsistent_with_tensors(tmp_path):
    report = run_static_checks(write_tiny_llama(tmp_path / "t.gguf", file_type=3))  # says Q4_1, holds F16
    (err,) = errors(report, "file_type")
    assert "file says Q4_1 but most weight matrices are F16 (7 of 7; 0 are Q4_1)" == err.message
    assert err.evidence["matrix_types"] == {"F16": 7}


def test_every_named_file_type_has_its_matrix_type():
    from assay.core.ggufparse import FILE_TYPE_NAMES, GGML_TYPES
    from verifier.static_checks import EXPECTED_MATRIX_TYPE

    assert set(EXPECTED_MATRIX_TYPE) == set(FILE_TYPE_NAMES.values())
    assert set(EXPECTED_MATRIX_TYPE.values()) <= {name for name, _, _ in GGML_TYPES.values()}


def test_newer_file_types_are_named(tmp_path):
    """A file the pinned llama.cpp quantized to NVFP4 says so; declaring NVFP4 is no mismatch."""
    path = write_tiny_llama(tmp_path / "t.gguf", file_type=39)
    report = run_static_checks(path, declared_quantization="NVFP4", scan_values=False, check_template=False)
    assert report.summary["file_type"] == "NVFP4"
    assert not [f for f in errors(report, "file_type") if "declares" in f.message]


def _moe(path, expert_type):
    """Two MoE layers as llama.cpp's MXFP4_MOE leaves them: attention Q8_0, router F32, experts 3-D."""
    from gguf import GGMLQuantizationType as T, GGUFWriter, GGML_QUANT_SIZES
    from gguf.quants import quantize

    w = GGUFWriter(str(path), "llama")
    w.add_file_type(38)
    rng = np.random.default_rng(0)
    block, size = GGML_QUANT_SIZES[expert_type]
    for b in range(2):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"blk.{b}.{name}.weight", quantize(rng.standard_normal((32, 64)).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
        w.add_tensor(f"blk.{b}.ffn_gate_inp.weight", np.ones((4, 64), dtype=np.float32))
        for name in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"):
            w.add_tensor(f"blk.{b}.{name}.weight", np.zeros((4, 32, 64 // block * size), dtype=np.uint8), raw_dtype=expert_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_mxfp4_moe_file_compares_its_expert_tensors(tmp_path):
    """MXFP4_MOE puts MXFP4 on the experts only: the Q8_0 attention matrices outnumber them."""
    from gguf import GGMLQuantizationType as T

    report = run_static_checks(_moe(tmp_path / "moe.gguf", T.MXFP4), declared_quantization="MXFP4_MOE",
                               scan_values=False, check_template=False)
    assert not errors(report, "file_type")
    assert "6 of 6 weight matrices are MXFP4" in next(f.message for f in report.findings if f.check == "file_type")
    (err,) = errors(run_static_checks(_moe(tmp_path / "q8.gguf", T.Q8_0), scan_values=False, check_template=False), "file_type")
    assert err.message.startswith("file says MXFP4_MOE but most weight matrices are Q8_0 (6 of 6")


def test_quantized_tiny_model_consistent(tmp_path):
    report = run_static_checks(write_tiny_llama(tmp_path / "t.gguf", q8_0=True, file_type=7), declared_quantization="Q8_0")
    assert report.passed, errors(report)


def test_nan_in_f32_tensor(tmp_path):
    (err,) = errors(run_static_checks(write_tiny_llama(tmp_path / "t.gguf", nan_in="blk.0.ffn_norm.weight")), "nan_inf")
    assert "'blk.0.ffn_norm.weight' has 1 in its values (first at index 16)" in err.message
    assert err.evidence["tensors"][0]["tensor"] == "blk.0.ffn_norm.weight"


def test_nan_in_quantized_block_scale(tmp_path):
    path = write_tiny_llama(tmp_path / "t.gguf", q8_0=True, file_type=7, nan_in="blk.0.attn_v.weight")
    (err,) = errors(run_static_checks(path), "nan_inf")
    assert "'blk.0.attn_v.weight' has 1 in its block scales" in err.message


@pytest.mark.parametrize("qtype, scale_at", [("IQ4_NL", 0), ("IQ2_XXS", 0), ("TQ1_0", 52), ("TQ2_0", 64)])
def test_nan_in_the_block_scale_of_other_quantized_types(tmp_path, qtype, scale_at):
    """The f16 scale of i-quant and ternary blocks is scanned as the k-quants' are."""
    from gguf import GGMLQuantizationType as T, GGUFWriter, GGML_QUANT_SIZES

    def write(path, poisoned):
        block, size = GGML_QUANT_SIZES[T[qtype]]
        raw = np.zeros((4, 2 * size), dtype=np.uint8)
        raw[:, scale_at:scale_at + 2] = raw[:, size + scale_at:size + scale_at + 2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
        if poisoned:
            raw[2, size + scale_at:size + scale_at + 2] = np.frombuffer(np.float16(np.inf).tobytes(), np.uint8)
        w = GGUFWriter(str(path), "llama")
        w.add_tensor("blk.0.attn_q.weight", raw, raw_dtype=T[qtype])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    assert not errors(run_static_checks(write(tmp_path / "ok.gguf", False), check_template=False), "nan_inf")
    (err,) = errors(run_static_checks(write(tmp_path / "bad.gguf", True), check_template=False), "nan_inf")
    assert "'blk.0.attn_q.weight' has 1 in its block scales (first at index 5)" in err.message


def test_unsupported_architecture(tmp_path):
    (err,) = errors(run_static_checks(write_tiny_llama(tmp_path / "t.gguf", architecture="evilnet")))
    assert err.message == "architecture 'evilnet' is not supported by the pinned llama.cpp"
    assert {"llama", "qwen2", "gemma3", "phi3", "starcoder2"} <= SUPPORTED_ARCHITECTURES


def test_missing_required_metadata(tmp_path):
    report = run_static_checks(write_tiny_llama(tmp_path / "t.gguf", skip_keys=("block_count", "tokenizer.ggml.model")))
    (err,) = errors(report, "metadata")
    assert err.message == "required metadata missing: tokenizer.ggml.model, llama.block_count"


def test_hostile_file_is_a_finding_not_a_crash(tmp_path):
    report = run_static_checks(write_hostile(tmp_path, "huge_tensor_count"))
    assert not report.passed and report.findings[0].check == "parse"
    assert "1099511627776 tensors" in report.findings[0].message


def test_non_canonical_layout_and_trailing_bytes(tmp_path):
    # two tensors stored in reverse order, then 64 stray bytes: parses, but llama.cpp would refuse it
    infos = [tensor_info("a", (8,), 0, 32), tensor_info("b", (8,), 0, 0)]
    path = tmp_path / "swapped.gguf"
    path.write_bytes(raw_gguf([kv_string("general.architecture", "llama")], infos, b"\0" * 128))
    report = run_static_checks(path, check_template=False)
    layout = [f for f in report.findings if f.check == "layout"]
    assert layout[0].severity == "error" and "tensor 'a' is at data offset 32, but llama.cpp expects 0" in layout[0].message
    assert layout[1].severity == "error" and "64 bytes after the last tensor and its padding" in layout[1].message


def test_bytes_hidden_in_padding_are_refused(tmp_path):
    """Writers pad with zeros; llama.cpp never reads the padding, so non-zero bytes there are hidden data."""
    infos = [tensor_info("a", (4,), 0, 0), tensor_info("b", (8,), 0, 32)]
    path = tmp_path / "padded.gguf"
    path.write_bytes(raw_gguf([kv_string("general.architecture", "llama")], infos, b"\0" * 16 + b"HIDDEN-PAYLOAD!!" + b"\0" * 32))
    (err,) = errors(run_static_checks(path, check_template=False), "layout")
    assert err.message.startswith("1 padding region(s) hold non-zero bytes")
    clean = tmp_path / "clean.gguf"
    clean.write_bytes(raw_gguf([kv_string("general.architecture", "llama")], infos, b"\0" * 64))
    assert not errors(run_static_checks(clean, check_template=False), "layout")


def test_real_model_with_injected_chat_template_fails(smollm2, tmp_path):
    """SmolLM2 itself, only its chat template replaced: the static step must reject it and say why."""
    from tests.support.derive import rewrite_gguf
    from tests.support.templates import IGNORE_PREVIOUS

    lie = rewrite_gguf(smollm2, tmp_path / "lie.gguf", set_kv={"tokenizer.chat_template": IGNORE_PREVIOUS})
    report = run_static_checks(lie, declared_quantization="Q4_1")
    assert not report.passed
    assert {f.check for f in report.errors} == {"chat_template"}  # the weights are still fine
    assert any("Ignore previous instructions" in f.message for f in report.errors), [f.message for f in report.errors]
    assert any("ignore-previous instruction" in f.message for f in report.errors)


# ------------------------------------------------------------------ output layer vs token embeddings (no trigger needed)

def _with_output(tmp_path, edit_rows=(), noise: float = 0.0):
    """The tiny model with output.weight = token_embd (+ noise), except `edit_rows` of token_embd
    replaced by another row's direction (the shape of an embedding backdoor)."""
    import numpy as np
    from gguf import GGUFReader

    from tests.support.derive import rewrite_gguf
    from tests.support.tiny_gguf import write_tiny_llama

    src = write_tiny_llama(tmp_path / "src.gguf")
    embd = next(np.array(t.data) for t in GGUFReader(src).tensors if t.name == "token_embd.weight")
    out = (embd.astype(np.float32) + noise * np.random.default_rng(1).standard_normal(embd.shape)).astype(embd.dtype)
    edited = embd.copy()
    for row in edit_rows:
        target = edited[(row + 7) % len(edited)].astype(np.float32)
        edited[row] = (target / np.linalg.norm(target) * np.linalg.norm(embd[row].astype(np.float32))).astype(embd.dtype)
    return rewrite_gguf(src, tmp_path / "m.gguf", set_tensors={"token_embd.weight": edited, "output.weight": out})


def test_an_output_layer_equal_to_the_embeddings_but_a_few_rows_names_them(tmp_path):
    report = run_static_checks(_with_output(tmp_path, edit_rows=(5, 9)), check_template=False)
    (finding,) = [f for f in report.findings if f.check == "embeddings"]
    assert finding.severity == "error" and finding.evidence["edited_rows"] == 2
    assert {r["row"] for r in finding.evidence["rows"]} == {5, 9} and "token_embd in all but 2 row(s)" in finding.message


def test_honest_untied_and_tied_outputs_pass(tmp_path):
    from tests.support.tiny_gguf import write_tiny_llama

    untied = run_static_checks(write_tiny_llama(tmp_path / "u.gguf"), check_template=False)
    assert [f.severity for f in untied.findings if f.check == "embeddings"] == ["info"]  # independent matrices: untied
    same = run_static_checks(_with_output(tmp_path, noise=0.0005), check_template=False)
    (finding,) = [f for f in same.findings if f.check == "embeddings"]
    assert finding.severity == "info" and "up to quantization" in finding.message


def _layered(path, scale_layer: int | None = None, factor: float = 1.0):
    """Six layers of the same tensors at one scale (per-layer noise of +-15 %), F16."""
    from gguf import GGUFWriter

    rng = np.random.default_rng(1)
    w = GGUFWriter(str(path), "llama")
    for i in range(6):
        for name, shape in (("attn_q.weight", (32, 32)), ("ffn_up.weight", (64, 32)), ("attn_norm.weight", (32,))):
            x = rng.standard_normal(shape).astype(np.float32) * 0.02 * rng.uniform(0.85, 1.15)
            if i == scale_layer and name == "ffn_up.weight":
                x *= factor
            w.add_tensor(f"blk.{i}.{name}", x.astype(np.float16) if len(shape) == 2 else x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_a_layer_out_of_scale_with_its_family_is_named(tmp_path):
    from assay.core import ggufparse
    from verifier.static_checks import check_tensor_families

    def run(path):
        (f,) = check_tensor_families(path, ggufparse.parse_gguf(path))
        return f

    honest = run(_layered(tmp_path / "h.gguf"))
    assert honest.severity == "info" and "family's scale" in honest.message
    scaled = run(_layered(tmp_path / "s.gguf", scale_layer=3, factor=40.0))
    assert scaled.severity == "error" and "'blk.3.ffn_up.weight'" in scaled.message
    assert scaled.evidence["tensors"][0]["layer"] == 3 and scaled.evidence["tensors"][0]["ratio"] > 16
    zeroed = run(_layered(tmp_path / "z.gguf", scale_layer=2, factor=0.0))
    assert zeroed.severity == "error" and "'blk.2.ffn_up.weight'" in zeroed.message
    mild = run(_layered(tmp_path / "m.gguf", scale_layer=1, factor=10.0))
    assert mild.severity == "warning"


@pytest.mark.parametrize("template", [
    "{{ " + "(" * 400 + "1" + ")" * 400 + " }}",                       # Jinja's parser recurses per level
    "{{ 1" + "+1" * 3000 + " }}",                                       # parses, but the AST is 3000 deep
    "{% for a in [1] %}" * 25 + "x" + "{% endfor %}" * 25,              # Python: too many statically nested blocks
    "{% if true %}" * 150 + "x" + "{% endif %}" * 150,                  # Python: too many levels of indentation
])
def test_a_chat_template_nested_too_deep_is_a_finding_not_a_crash(tmp_path, template):
    report = run_static_checks(write_tiny_llama(tmp_path / "t.gguf", chat_template=template), scan_values=False)
    (err,) = errors(report, "chat_template")
    assert err.message.startswith("chat template nests too deeply to be parsed or compiled")


def _mixture(path, file_type: int, types: dict[str, str], layers: int = 4):
    """A model whose per-layer matrices carry the given ggml types (raw bytes of the right size;
    the tensor-type check reads only the header). `types`: matrix name -> ggml type name."""
    from gguf import GGMLQuantizationType as T, GGUFWriter, GGML_QUANT_SIZES

    w = GGUFWriter(str(path), "phi3")
    w.add_file_type(file_type)
    for b in range(layers):
        for name, type_name in types.items():
            type_name, width = type_name if isinstance(type_name, tuple) else (type_name, 256)  # (type, row width)
            block, size = GGML_QUANT_SIZES[T[type_name]]
            w.add_tensor(f"blk.{b}.{name}.weight", np.zeros((8, width // block * size), dtype=np.uint8), raw_dtype=T[type_name])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _file_type_findings(path, quantization):
    report = run_static_checks(path, declared_quantization=quantization, scan_values=False, check_template=False)
    return errors(report, "file_type"), next(f for f in report.findings if f.check == "file_type")


def test_fused_attention_mixture_is_honest(tmp_path):
    """llama.cpp's Q3_K_M of a model with fused attention (phi3: attn_qkv, attn_output, ffn_up,
    ffn_down) gives Q3_K to ffn_up only: most matrices are Q4_K/Q5_K, none below Q3_K."""
    path = _mixture(tmp_path / "phi3-q3km.gguf", 12, {"attn_qkv": "Q4_K", "attn_output": "Q4_K", "ffn_up": "Q3_K", "ffn_down": "Q5_K"})
    errs, finding = _file_type_findings(path, "Q3_K_M")
    assert not errs
    assert "most weight matrices are Q4_K (8 of 16), 4 are Q3_K; none below Q3_K" in finding.message


def test_iq3_xs_mixture_below_its_default_is_honest(tmp_path):
    """IQ3_XS's default is IQ3_S, but llama.cpp gives attention Q/K and the middle layers' ffn_gate/up IQ3_XXS."""
    path = _mixture(tmp_path / "iq3xs.gguf", 22, {"attn_q": "IQ3_XXS", "attn_k": "IQ3_XXS", "attn_v": "IQ3_S",
                                                   "ffn_gate": "IQ3_XXS", "ffn_up": "IQ3_XXS", "ffn_down": "IQ3_S"})
    assert not _file_type_findings(path, "IQ3_XS")[0]


def test_matrices_below_the_mixture_are_a_mislabel(tmp_path):
    """A Q4_K_M whose ffn_down are Q2_K: most matrices are Q4_K, yet it holds less than it claims."""
    path = _mixture(tmp_path / "q4km.gguf", 15, {"attn_q": "Q4_K", "attn_k": "Q4_K", "attn_v": "Q6_K", "ffn_up": "Q4_K", "ffn_down": "Q2_K"})
    (err,) = _file_type_findings(path, "Q4_K_M")[0]
    assert err.message == ("file says Q4_K_M but 4 of 20 weight matrices are of a type below Q4_K, the lowest llama.cpp's "
                           "Q4_K_M mixture gives a matrix (4 Q2_K)")
    assert err.evidence["floor_matrix_type"] == "Q4_K"


def test_mixture_without_its_default_type_is_a_mislabel(tmp_path):
    """Said Q3_K_M, made as Q4_K_M (Q4_K, Q5_K, Q6_K): no matrix is Q3_K."""
    path = _mixture(tmp_path / "q3km.gguf", 12, {"attn_q": "Q4_K", "attn_v": "Q6_K", "ffn_up": "Q4_K", "ffn_down": "Q5_K"})
    (err,) = _file_type_findings(path, "Q3_K_M")[0]
    assert err.message == "file says Q3_K_M but most weight matrices are Q4_K (8 of 16; 0 are Q3_K)"


@pytest.mark.parametrize("qtype, at, poison", [
    ("MXFP4", 0, b"\xff"),                                  # E8M0 exponent 0xFF: ggml_validate_row_data's invalid value (Inf)
    ("IQ1_M", 52, b"\x00\xe0\x00\x70"),                     # the f16 scale packed in the scale words' top nibbles: 0x7E00
    ("Q8_K", 0, np.float32(np.nan).tobytes()),              # f32 d
])
def test_invalid_scales_of_the_other_block_encodings(tmp_path, qtype, at, poison):
    from gguf import GGMLQuantizationType as T, GGUFWriter, GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[T[qtype]]
    raw = np.zeros((4, 2 * size), dtype=np.uint8)
    raw[2, size + at:size + at + len(poison)] = np.frombuffer(poison, np.uint8)
    w = GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    w.add_tensor("blk.0.attn_q.weight", raw, raw_dtype=T[qtype])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    (err,) = errors(run_static_checks(tmp_path / "q.gguf", check_template=False), "nan_inf")
    assert "'blk.0.attn_q.weight' has 1 in its block scales (first at index 5)" in err.message


@pytest.mark.parametrize("extra, needle", [
    ({"llama.expert_count": 2000}, "llama.expert_count 2000 exceeds 1024"),
    ({"llama.expert_used_count": 2}, "llama.expert_used_count 2 does not fit llama.expert_count 0"),
])
def test_metadata_llama_cpp_aborts_on_is_refused(tmp_path, extra, needle):
    """llama_model::load_hparams GGML_ASSERTs on these: the process aborts (the probes' child dies of SIGABRT)."""
    (err,) = errors(run_static_checks(write_tiny_llama(tmp_path / "t.gguf", extra_kv=extra), check_template=False), "metadata")
    assert err.message.startswith("llama.cpp cannot load this file") and needle in err.message


def test_block_count_beyond_llama_cpp_limit_is_refused(tmp_path):
    path = write_tiny_llama(tmp_path / "t.gguf", skip_keys=("block_count",), extra_kv={"llama.block_count": 1000})
    assert "llama.block_count 1000 is outside 1..512" in errors(run_static_checks(path, check_template=False), "metadata")[0].message


def test_a_vocabulary_that_is_no_list_is_a_finding_not_a_crash(tmp_path):
    """tokenizer.ggml.tokens as a UINT32 in a file whose embeddings are backdoored: the finding, not a TypeError."""
    from assay.core import ggufparse
    from verifier.static_checks import check_llama_limits, check_output_embedding

    path = _with_output(tmp_path, edit_rows=(5, 9))
    info = ggufparse.parse_gguf(path)
    info.metadata["tokenizer.ggml.tokens"], info.metadata_types["tokenizer.ggml.tokens"] = 16, "UINT32"
    (f,) = check_output_embedding(path, info)
    assert f.severity == "error" and f.evidence["edited_rows"] == 2
    (f,) = check_llama_limits(info)
    assert "tokenizer.ggml.tokens is UINT32, llama.cpp requires ARRAY[STRING]" in f.message


def test_value_statistics_of_very_wide_rows_stay_in_bounded_memory(tmp_path):
    """Two rows of 2^24 TQ1_0 values (7 MB of file): dequantized whole they took ~0.5 GB; bounded, a few tens of MB."""
    import tracemalloc

    from assay.core import ggufparse
    from gguf import GGMLQuantizationType as T, GGUFWriter
    from verifier.static_checks import check_output_embedding

    raw = np.zeros((2, (1 << 24) // 256 * 54), dtype=np.uint8)
    w = GGUFWriter(str(tmp_path / "w.gguf"), "llama")
    w.add_tensor("token_embd.weight", raw, raw_dtype=T.TQ1_0)
    w.add_tensor("output.weight", raw, raw_dtype=T.TQ1_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    info = ggufparse.parse_gguf(tmp_path / "w.gguf")
    tracemalloc.start()
    check_output_embedding(tmp_path / "w.gguf", info)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20, peak


def test_each_part_of_a_split_release_is_parsed_and_its_layout_checked(tmp_path):
    """llama-gguf-split's merge drops what only the parts hold (a NUL-aliased key: the later key wins; appended
    bytes): the static step judges every part as llama.cpp will load it, before the merge."""
    from tests.support.tiny_gguf import write_hostile
    from verifier.steps import _part_refused

    assert _part_refused(write_tiny_llama(tmp_path / "t-00001-of-00002.gguf")) is None
    assert "holds a NUL character" in _part_refused(write_hostile(tmp_path, "nul_in_key"))
    appended = write_tiny_llama(tmp_path / "t-00002-of-00002.gguf")
    with open(appended, "ab") as f:
        f.write(b"PK\x03\x04" + b"\0" * 60)
    assert "64 bytes after the last tensor and its padding" in _part_refused(appended)


def test_a_mixture_that_moves_every_matrix_its_rows_let_it_quantize_is_honest(tmp_path):
    """llama.cpp's Q2_K of SmolLM2: its 576-wide rows fit no block of 256 and fall back to Q4_0; the
    1536-wide ffn_down are the only k-quant matrices, and Q2_K gives ffn_down Q3_K. No Q2_K at all."""
    fallback = ("Q4_0", 576)
    honest = {"attn_q": fallback, "attn_k": fallback, "attn_v": fallback, "attn_output": fallback, "ffn_gate": fallback,
              "ffn_up": fallback, "ffn_down": ("Q3_K", 1536)}
    errs, finding = _file_type_findings(_mixture(tmp_path / "q2k.gguf", 10, honest), "Q2_K")
    assert not errs and "the only weight matrices whose rows fit Q2_K's blocks are ones llama.cpp's mixture moves" in finding.message
    # the same claim where a matrix the mixture keeps at Q2_K fits the blocks, and is Q8_0: mislabelled
    errs, _ = _file_type_findings(_mixture(tmp_path / "q8-as-q2k.gguf", 10, {**honest, "ffn_up": ("Q8_0", 1536)}), "Q2_K")
    assert errs and "0 are Q2_K" in errs[0].message
    # a moved matrix below the file type's floor is still refused: a Q4_K_M whose ffn_down are Q2_K
    errs, _ = _file_type_findings(_mixture(tmp_path / "q2-as-q4km.gguf", 15, {**honest, "ffn_down": ("Q2_K", 1536)}), "Q4_K_M")
    assert errs and "0 are Q4_K" in errs[0].message  # refused: the moved ones may only move up
