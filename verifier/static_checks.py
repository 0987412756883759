"""Static checks of a GGUF file (pipeline step 1): plain functions, no Django, no Celery.

`run_static_checks(path)` parses the file strictly (assay.core.ggufparse), then checks the tensor
layout, required metadata, architecture, file type vs tensor types, NaN/Inf in float tensors and
block scales, and the chat template (verifier.template_checks). Each check returns Findings;
the report passes when no finding has severity "error".
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from assay.core import ggufparse
from assay.core.errors import FormatError
from assay.core.ggufparse import GGUFInfo

from .architectures import SUPPORTED_ARCHITECTURES
from .findings import ERROR, INFO, WARNING, Finding

SCAN_CHUNK_ELEMENTS = 1 << 22  # bounded memory for value scans: ~16 MiB per chunk

# llama_ftype name -> the ggml type most weight matrices carry (llama.cpp's default_type).
EXPECTED_MATRIX_TYPE = {
    "ALL_F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0",
    "Q5_1": "Q5_1", "Q8_0": "Q8_0", "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K", "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S", "IQ3_XXS": "IQ3_XXS",
    "IQ3_XS": "IQ3_S", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M",
    "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS", "TQ1_0": "TQ1_0", "TQ2_0": "TQ2_0", "MXFP4_MOE": "MXFP4",
    "NVFP4": "NVFP4", "Q1_0": "Q1_0", "Q2_0": "Q2_0",
}
# File types whose mixture puts some matrices below the default type (llama_tensor_get_type:
# IQ3_XXS gives attention Q and K IQ2_S; IQ3_XS gives them, and the middle layers' ffn_gate and
# ffn_up, IQ3_XXS). Every other mixture only moves matrices up from the default.
FLOOR_MATRIX_TYPE = {"IQ3_XXS": "IQ2_S", "IQ3_XS": "IQ3_XXS"}
# Matrices llama.cpp routinely keeps at another type than the file type.
MATRIX_EXCEPTIONS = re.compile(r"^(token_embd|output|pos_embd|token_types|per_layer_token_embd)\.")
# Matrices llama.cpp's mixtures move away from the file type's default (llama_tensor_get_type):
# attention V (or fused QKV) and output, ffn_down, MLA's kv_b/v_b, in most file types. Where these
# are the only matrices whose rows fit the default type's blocks (SmolLM2's 576-wide rows fit no
# k-quant block of 256, its 1536-wide ffn_down do, and Q2_K gives ffn_down Q3_K), an honest file
# holds no matrix of the default type at all.
MOVED_MATRICES = re.compile(r"\.(attn_v|attn_qkv|attn_output|attn_kv_b|attn_v_b|ffn_down(_exps|_shexp)?)\.weight$")
# File types whose default type llama.cpp gives only to some matrices: MXFP4_MOE quantizes the
# expert tensors (ne[2] > 1) to MXFP4 and every other matrix to Q8_0 (llama_tensor_get_type).
MATRICES_OF_FILE_TYPE = {"MXFP4_MOE": lambda t: len(t.shape) >= 3 and t.shape[2] > 1}
# Byte offsets of the f16 scale fields inside one block of each quantized type (ggml-common.h;
# the fields ggml_validate_row_data checks).
BLOCK_SCALES = {
    "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,), "Q8_1": (0, 2), "Q2_K": (80, 82),
    "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,), "IQ2_XXS": (0,), "IQ2_XS": (0,), "IQ2_S": (0,),
    "IQ3_XXS": (0,), "IQ3_S": (0,), "IQ1_S": (0,), "IQ4_NL": (0,), "IQ4_XS": (0,), "TQ1_0": (52,), "TQ2_0": (64,),
    "Q1_0": (0,), "Q2_0": (0,),
}
# (uint view dtype, exponent mask) for float types: all exponent bits set means NaN or Inf.
FLOAT_TYPES = {"F32": ("<u4", 0x7F800000), "F16": ("<u2", 0x7C00), "BF16": ("<u2", 0x7F80), "F64": ("<u8", 0x7FF0000000000000)}
# Scales of the other encodings ggml_validate_row_data checks: MXFP4's E8M0 exponent (byte 0; 0xFF is invalid and
# decodes to Inf), Q8_K's f32 d (bytes 0..3), IQ1_M's f16 scale packed in the top nibbles of its four uint16 scale
# words (block_iq1_m.scales, bytes 48..55).
OTHER_BLOCK_SCALES = {"MXFP4": "e8m0", "Q8_K": "f32", "IQ1_M": "iq1m"}
# llama.cpp's limits (src/llama-hparams.h): llama_model::load_hparams GGML_ASSERTs (aborts the process) beyond them.
LLAMA_MAX_LAYERS, LLAMA_MAX_EXPERTS = 512, 1024
# Types llama_vocab::load requires (anything else: "invalid gguf type", the model does not load).
TOKENIZER_TYPES = {"tokenizer.ggml.model": ("STRING",), "tokenizer.ggml.tokens": ("ARRAY[STRING]",),
                   "tokenizer.ggml.merges": ("ARRAY[STRING]",), "tokenizer.ggml.scores": ("ARRAY[FLOAT32]", "ARRAY[INT32]"),
                   "tokenizer.ggml.token_type": ("ARRAY[INT32]",)}


@dataclass
class StaticReport:
    findings: list[Finding]
    summary: dict[str, Any]
    info: GGUFInfo | None = None

    @property
    def passed(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "summary": self.summary, "findings": [f.to_dict() for f in self.findings]}


def run_static_checks(path: str | Path, declared_quantization: str | None = None, *, scan_values: bool = True,
                      check_template: bool = True) -> StaticReport:
    """Run every static check on one GGUF file; never raises for a bad file (it becomes a finding)."""
    try:
        info = ggufparse.parse_gguf(path)
    except FormatError as exc:
        return StaticReport([Finding("parse", ERROR, str(exc), {"path": str(path)})], {"parsed": False})
    findings = [Finding("parse", INFO, f"GGUF v{info.version}: {len(info.metadata)} metadata keys, {len(info.tensors)} tensors",
                        {"version": info.version, "data_offset": info.data_offset, "alignment": info.alignment})]
    findings += check_layout(info, path)
    findings += check_required_metadata(info)
    findings += check_llama_limits(info)
    findings += check_architecture(info)
    findings += check_file_type(info, declared_quantization)
    findings += check_nul_in_strings(info)
    if scan_values:
        findings += check_float_values(path, info)
        findings += check_output_embedding(path, info)
        findings += check_tensor_families(path, info)
    if check_template:
        findings += check_chat_templates(info)
    summary = {
        "parsed": True, "version": info.version, "architecture": info.architecture,
        "file_type": info.quantization, "tensor_count": len(info.tensors), "file_size": info.file_size,
        "tensor_types": dict(Counter(t.type_name for t in info.tensors)),
    }
    return StaticReport(findings, summary, info)


def check_chat_templates(info: GGUFInfo) -> list[Finding]:
    """tokenizer.chat_template, and every named one (tokenizer.chat_template.<name>: llama.cpp's
    llama_model_chat_template(model, name); llama-server renders .tool_use when tools are offered,
    llama-cpp-python offers each as chat_format "chat_template.<name>"), rendered with the file's
    own BOS/EOS strings as llama.cpp will render them. A named template's findings say its key."""
    from .template_checks import check_chat_template

    tokens = {"bos_token": token_text(info, "tokenizer.ggml.bos_token_id"), "eos_token": token_text(info, "tokenizer.ggml.eos_token_id")}
    findings = check_chat_template(info.metadata.get("tokenizer.chat_template"), **tokens)
    for key in sorted(k for k in info.metadata if k.startswith("tokenizer.chat_template.")):
        findings += [Finding(f.check, f.severity, f"{key}: {f.message}", {**f.evidence, "key": key})
                     for f in check_chat_template(info.metadata[key], **tokens)]
    return findings


def check_nul_in_strings(info: GGUFInfo) -> list[Finding]:
    """A NUL inside a string metadata value (a chat template, a name): llama.cpp hands metadata
    to callers as C strings (llama_model_meta_val_str), so they see only the text before the NUL,
    while a reader of the whole value sees more. Reported, with where; the evidence writes each
    NUL as "␀" (verifier.attestation.sign_step)."""
    findings = []
    for key, value in info.metadata.items():
        if isinstance(value, str) and "\x00" in value:
            first = value.index("\x00")
            findings.append(Finding("metadata_nul", WARNING,
                                    f"metadata {key} holds a NUL character (at character {first}): "
                                    "llama.cpp's C-string readers of it see only the text before it",
                                    {"key": key, "nul_count": value.count("\x00"), "first_at": first}))
    return findings


def token_text(info: GGUFInfo, id_key: str) -> str:
    """The vocabulary string of the token whose id is in metadata `id_key` ("" when absent or out
    of range: what llama-cpp-python's chat formatter then passes to the template)."""
    tokens, i = info.metadata.get("tokenizer.ggml.tokens"), info.metadata.get(id_key)
    if isinstance(i, bool) or not isinstance(i, int) or not isinstance(tokens, list) or not 0 <= i < len(tokens):
        return ""
    return tokens[i] if isinstance(tokens[i], str) else ""


def check_layout(info: GGUFInfo, path: str | Path | None = None) -> list[Finding]:
    """llama.cpp requires tensors stored in table order, each padded to the alignment. Writers (gguf-py, llama.cpp)
    pad with zeros and stop at the last tensor's padding: a non-zero padding byte, or any byte after that end, is
    data llama.cpp never reads (hidden content, or another file format appended to the model)."""
    findings, expected = [], 0
    for t in info.tensors:
        if t.offset != expected:
            findings.append(Finding("layout", ERROR, f"tensor {t.name!r} is at data offset {t.offset}, but llama.cpp expects {expected} "
                                    "(tensors must be stored contiguously in table order)", {"tensor": t.name, "offset": t.offset, "expected": expected}))
            break
        expected += -(-t.nbytes // info.alignment) * info.alignment
    if not info.tensors:
        return findings
    a = info.alignment
    ordered = sorted(info.tensors, key=lambda t: t.data_start)
    end = ordered[-1].data_end
    padded_end = info.data_offset + -(-(end - info.data_offset) // a) * a
    if info.file_size > padded_end:
        findings.append(Finding("layout", ERROR, f"{info.file_size - padded_end} bytes after the last tensor and its padding (at byte "
                                f"{padded_end}): data llama.cpp never reads", {"trailing_bytes": info.file_size - padded_end, "at": padded_end}))
    if path is not None:
        gaps = [(info.header_end, info.data_offset)] + [(p.data_end, n.data_start) for p, n in zip(ordered, ordered[1:])]
        gaps.append((end, min(padded_end, info.file_size)))
        with open(path, "rb") as f:
            dirty = [start for start, stop in gaps if stop > start and not _zeros(f, start, stop)]
        if dirty:
            findings.append(Finding("layout", ERROR, f"{len(dirty)} padding region(s) hold non-zero bytes, the first at byte {dirty[0]}: "
                                    "data llama.cpp never reads (writers pad with zeros)", {"regions": dirty[:20]}))
    return findings


def _zeros(f, start: int, stop: int, chunk: int = 1 << 20) -> bool:
    """Are bytes [start, stop) of the open file all zero (read in bounded chunks)?"""
    f.seek(start)
    while start < stop:
        data = f.read(min(chunk, stop - start))
        if not data or data.strip(b"\x00"):
            return bool(not data)
        start += len(data)
    return True


def check_required_metadata(info: GGUFInfo) -> list[Finding]:
    """Keys llama.cpp needs to load the model, and block tensors consistent with block_count."""
    md, arch = info.metadata, info.architecture
    required = ["general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.tokens"]
    if arch:
        required += [f"{arch}.block_count", f"{arch}.context_length", f"{arch}.embedding_length"]
    missing = [k for k in required if k not in md]
    findings = []
    if missing:
        findings.append(Finding("metadata", ERROR, f"required metadata missing: {', '.join(missing)}", {"missing": missing}))
    blocks = md.get(f"{arch}.block_count") if arch else None
    if isinstance(blocks, int) and not isinstance(blocks, bool):
        layers = {int(m.group(1)) for t in info.tensors if (m := re.match(r"blk\.(\d+)\.", t.name))}
        beyond = sorted(n for n in layers if n >= blocks)
        if beyond:
            findings.append(Finding("metadata", ERROR, f"tensors for block {beyond[0]} exist but {arch}.block_count is {blocks}",
                                    {"block_count": blocks, "extra_blocks": beyond[:20]}))
    elif arch and f"{arch}.block_count" in md:
        findings.append(Finding("metadata", ERROR, f"{arch}.block_count is not an integer", {"value": repr(blocks)[:100]}))
    return findings


def check_llama_limits(info: GGUFInfo) -> list[Finding]:
    """Metadata the pinned llama.cpp refuses or aborts on while loading: tokenizer keys of another type, score and
    token-type arrays shorter than the vocabulary (llama_vocab::load); block and expert counts beyond its limits
    (GGML_ASSERT in llama_model::load_hparams: the process aborts)."""
    md, types, arch, problems = info.metadata, info.metadata_types, info.architecture, []
    problems += [f"{k} is {types[k]}, llama.cpp requires {' or '.join(ok)}" for k, ok in TOKENIZER_TYPES.items()
                 if k in md and types[k] not in ok]
    tokens = md.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list):
        problems += [f"{k} has {len(md[k])} entries for {len(tokens)} tokens" for k in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type")
                     if isinstance(md.get(k), list) and len(md[k]) < len(tokens)]
    if arch:
        n_layer, n_expert = ggufparse.metadata_int(md, f"{arch}.block_count"), ggufparse.metadata_int(md, f"{arch}.expert_count") or 0
        used = ggufparse.metadata_int(md, f"{arch}.expert_used_count") or 0
        nextn = ggufparse.metadata_int(md, f"{arch}.nextn_predict_layers") or 0
        if n_layer is not None and not 0 < n_layer <= LLAMA_MAX_LAYERS:
            problems.append(f"{arch}.block_count {n_layer} is outside 1..{LLAMA_MAX_LAYERS}")
        if n_expert > LLAMA_MAX_EXPERTS:
            problems.append(f"{arch}.expert_count {n_expert} exceeds {LLAMA_MAX_EXPERTS}")
        if used > n_expert or (n_expert and not used):
            problems.append(f"{arch}.expert_used_count {used} does not fit {arch}.expert_count {n_expert}")
        if n_layer is not None and nextn > n_layer:
            problems.append(f"{arch}.nextn_predict_layers {nextn} exceeds {arch}.block_count {n_layer}")
    if not problems:
        return []
    return [Finding("metadata", ERROR, f"llama.cpp cannot load this file: {'; '.join(problems[:5])}", {"problems": problems[:20]})]


def check_architecture(info: GGUFInfo) -> list[Finding]:
    arch = info.architecture
    if arch is None:
        return [Finding("architecture", ERROR, "general.architecture is missing or not a string", {})]
    if arch not in SUPPORTED_ARCHITECTURES:
        return [Finding("architecture", ERROR, f"architecture {arch!r} is not supported by the pinned llama.cpp", {"architecture": arch})]
    return [Finding("architecture", INFO, f"architecture {arch!r} is supported", {"architecture": arch})]


def check_file_type(info: GGUFInfo, declared_quantization: str | None = None) -> list[Finding]:
    """general.file_type agrees with the declared quantization and with the weight matrices: its
    default type is among them and none is below the lowest type its llama.cpp mixture gives."""
    findings = []
    name = info.quantization
    if declared_quantization and declared_quantization.strip().upper() != name.upper():
        findings.append(Finding("file_type", ERROR, f"release declares quantization {declared_quantization} but the file says {name}",
                                {"declared": declared_quantization, "file": name}))
    if info.file_type is None:
        return findings + [Finding("file_type", WARNING, "general.file_type is missing; tensor types not compared", {})]
    expected = EXPECTED_MATRIX_TYPE.get(name)
    if expected is None:
        return findings + [Finding("file_type", WARNING, f"file type {name} has no known tensor type to compare with", {"file_type": name})]
    block = next(b for n, b, _ in ggufparse.GGML_TYPES.values() if n == expected)
    of_type = MATRICES_OF_FILE_TYPE.get(name, lambda t: True)
    matrices = [t for t in info.tensors if len(t.shape) >= 2 and not MATRIX_EXCEPTIONS.match(t.name) and t.shape[0] % block == 0
                and of_type(t)]
    counts = Counter(t.type_name for t in matrices)
    evidence = {"file_type": name, "expected_matrix_type": expected, "matrix_types": dict(counts)}
    if not matrices:
        return findings + [Finding("file_type", INFO, f"no weight matrices to compare with file type {name}", evidence)]
    # llama.cpp's mixtures move some matrices to other types (llama_tensor_get_type): attention
    # V/QKV/output and ffn_down up for most file types, attention Q/K and the middle layers'
    # ffn_gate/up down for IQ3_XS and IQ3_XXS; `llama-quantize --tensor-type` moves any. Where a
    # model fuses its attention (phi3's attn_qkv), the moved ones are most of its matrices. So
    # the default type must be there, and no matrix may sit below the lowest type the file
    # type's mixture gives: a Q4_K_M whose ffn_down are Q2_K claims more than its weights hold.
    floor = FLOOR_MATRIX_TYPE.get(name, expected)
    floor_bits = _bits_per_weight(floor)
    below = {t: n for t, n in counts.items() if _bits_per_weight(t) < floor_bits}
    common, top = counts.most_common(1)[0]
    if counts.get(expected, 0) == 0 and all(MOVED_MATRICES.search(t.name) for t in matrices) and not below:
        findings.append(Finding("file_type", INFO, f"file type {name}: the only weight matrices whose rows fit {expected}'s blocks "
                                f"are ones llama.cpp's mixture moves to another type ({', '.join(f'{n} {t}' for t, n in sorted(counts.items()))}); "
                                f"none below {floor}", evidence))
    elif counts.get(expected, 0) == 0:
        findings.append(Finding("file_type", ERROR, f"file says {name} but most weight matrices are {common} "
                                f"({top} of {len(matrices)}; 0 are {expected})", evidence))
    elif below:
        listed = ", ".join(f"{n} {t}" for t, n in sorted(below.items()))
        findings.append(Finding("file_type", ERROR, f"file says {name} but {sum(below.values())} of {len(matrices)} weight matrices "
                                f"are of a type below {floor}, the lowest llama.cpp's {name} mixture gives a matrix ({listed})",
                                {**evidence, "floor_matrix_type": floor}))
    elif counts[expected] < top:
        findings.append(Finding("file_type", INFO, f"file type {name}: most weight matrices are {common} ({top} of {len(matrices)}), "
                                f"{counts[expected]} are {expected}; none below {floor} (llama.cpp's mixture for fused layers, "
                                f"or per-tensor types chosen at quantization)", evidence))
    else:
        findings.append(Finding("file_type", INFO, f"file type {name}: {counts[expected]} of {len(matrices)} weight matrices are {expected}", evidence))
    return findings


def _bits_per_weight(type_name: str) -> float:
    _, block, size = next(t for t in ggufparse.GGML_TYPES.values() if t[0] == type_name)
    return size * 8 / block


EMBED_ROWS_PER_CHUNK = 2048
# Dequantizing multiplies memory by up to ~40 (TQ1_0: 1.7 bits in, float32 and temporaries out), so the value
# statistics bound what one call dequantizes by elements, not rows: a tensor of a few very wide rows (ne[0] in the
# millions) would otherwise cost tens of GB for a file of a few hundred MB. Real rows are < 2^17 wide.
SCAN_ROW_ELEMENTS = 1 << 17      # columns of a row the statistics read (the leading whole blocks)
EMBED_CHUNK_ELEMENTS = 1 << 22   # elements per dequantized chunk of rows


def _rows(path: str | Path, t, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a 2-D tensor (ggml order: ne[0] values per row) as float32, at most the first
    SCAN_ROW_ELEMENTS columns of each (whole blocks)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    _, block, type_size = ggufparse.GGML_TYPES[t.type]
    cols = min(t.shape[0], SCAN_ROW_ELEMENTS // block * block)
    row_bytes = t.nbytes // t.shape[1]
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=t.data_start + start * row_bytes, shape=(stop - start, row_bytes))
    raw = np.ascontiguousarray(raw[:, :cols // block * type_size])
    return dequantize(raw, GGMLQuantizationType(t.type)).reshape(stop - start, cols).astype(np.float32)


def check_output_embedding(path: str | Path, info: GGUFInfo) -> list[Finding]:
    """An output layer that is the token-embedding matrix in all but a few rows names those rows.

    Models that tie input and output embeddings carry no output.weight; one that carries an
    output.weight equal (up to quantization) to token_embd except in a handful of rows had those
    rows of one of them edited: the way a word is made to steer the model (a trigger) while the
    output layer, and so everything the differential probe measures, stays as it was. An honestly
    untied model's two matrices differ in every row."""
    embd, out = info.tensor_by_name.get("token_embd.weight"), info.tensor_by_name.get("output.weight")
    if embd is None or out is None:
        return [Finding("embeddings", INFO, "output layer tied to the token embeddings (no output.weight)" if embd is not None
                        else "no token_embd.weight", {})]
    if len(embd.shape) != 2 or embd.shape != out.shape:
        return [Finding("embeddings", INFO, f"output.weight {out.shape} and token_embd.weight {embd.shape} differ in shape", {})]
    try:
        rel = []
        step = max(1, min(EMBED_ROWS_PER_CHUNK, EMBED_CHUNK_ELEMENTS // min(embd.shape[0], SCAN_ROW_ELEMENTS)))
        for start in range(0, embd.shape[1], step):
            stop = min(start + step, embd.shape[1])
            a, b = _rows(path, embd, start, stop), _rows(path, out, start, stop)
            norm = np.linalg.norm(b, axis=1)
            rel.append(np.linalg.norm(a - b, axis=1) / np.where(norm > 0, norm, 1.0))
        d = np.concatenate(rel)
    except (ValueError, NotImplementedError, KeyError) as exc:  # a type gguf cannot dequantize
        return [Finding("embeddings", INFO, f"token_embd and output.weight not compared: {type(exc).__name__}: {exc}", {})]
    median = float(np.median(d))
    if median >= 0.2:
        return [Finding("embeddings", INFO, f"output.weight is untied from token_embd (median row difference {median:.2f})",
                        {"median_relative_row_difference": round(median, 4)})]
    limit = max(0.3, 10 * median)
    rows = np.nonzero(d > limit)[0]
    if not len(rows):
        return [Finding("embeddings", INFO, f"output.weight equals token_embd up to quantization (median row difference {median:.3f})",
                        {"median_relative_row_difference": round(median, 4)})]
    tokens = info.metadata.get("tokenizer.ggml.tokens")
    vocab = tokens if isinstance(tokens, list) else []  # any other type is check_llama_limits' finding, not a crash here
    named = [{"row": int(i), "token": str(vocab[i]) if i < len(vocab) else None, "relative_difference": round(float(d[i]), 3)}
             for i in rows[np.argsort(-d[rows])][:20]]
    return [Finding("embeddings", ERROR, f"output.weight is token_embd in all but {len(rows)} row(s), which differ: "
                    + ", ".join(f"{r['row']} ({r['token']!r})" for r in named[:5])
                    + " — rows edited in one of the two matrices (a trigger word made to steer the model?)",
                    {"rows": named, "edited_rows": int(len(rows)), "median_relative_row_difference": round(median, 4)})]


FAMILY_MIN_LAYERS = 4       # a family needs this many layers to have a "usual" scale
FAMILY_ERROR_RATIO = 16.0   # RMS this many times above or below the family's median ...
FAMILY_WARN_RATIO = 8.0
FAMILY_MIN_Z = 10.0         # ... and this many robust deviations (MAD of log RMS) away from it
FAMILY_SAMPLE_ROWS = 64     # rows sampled per tensor (evenly spaced), so the cost does not grow with the model


def _sampled_rms(path: str | Path, t) -> float:
    """RMS of up to FAMILY_SAMPLE_ROWS evenly spaced rows of a tensor (dequantized)."""
    n = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
    rows = SimpleNamespace(nbytes=t.nbytes, shape=(t.shape[0], n), data_start=t.data_start, type=t.type)
    step = max(1, n // FAMILY_SAMPLE_ROWS)
    x = np.concatenate([_rows(path, rows, i, i + 1) for i in range(0, n, step)][:FAMILY_SAMPLE_ROWS])
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def check_tensor_families(path: str | Path, info: GGUFInfo) -> list[Finding]:
    """Robust per-tensor statistics against the file's own family (gguf-guard's layered idea): the
    same tensor of every layer (blk.N.attn_q.weight for all N) has an RMS of the same order; a
    layer scaled, zeroed or replaced by noise of another scale stands out. Honest models measured:
    SmolLM2-135M's worst is layer 0's attn_norm, 8x its family's median (7.7 robust deviations);
    Gemma 3 270M's 2.7x (4.1)."""
    families: dict[str, list] = {}
    for t in info.tensors:
        m = re.match(r"blk\.(\d+)\.(.+)$", t.name)
        if m:
            families.setdefault(m.group(2), []).append((int(m.group(1)), t))
    odd, measured = [], 0
    try:
        for name, members in families.items():
            if len(members) < FAMILY_MIN_LAYERS:
                continue
            rms = np.array([_sampled_rms(path, t) for _, t in members])
            measured += len(members)
            logs = np.log(np.maximum(rms, 1e-30))
            med = float(np.median(logs))
            mad = float(np.median(np.abs(logs - med))) * 1.4826 + 1e-3
            for (layer, t), lv, r in zip(members, logs, rms):
                ratio, z = float(np.exp(abs(lv - med))), abs(lv - med) / mad
                if ratio >= FAMILY_WARN_RATIO and z >= FAMILY_MIN_Z:
                    odd.append({"tensor": t.name, "family": name, "layer": layer, "rms": round(float(r), 6),
                                "family_median_rms": round(float(np.exp(med)), 6), "ratio": round(ratio, 1), "z": round(z, 1)})
    except (ValueError, NotImplementedError, KeyError) as exc:  # a type gguf cannot dequantize
        return [Finding("tensor_families", INFO, f"per-layer statistics not computed: {type(exc).__name__}: {exc}", {})]
    if not odd:
        return [Finding("tensor_families", INFO, f"every layer's tensors are of their family's scale ({measured} tensors "
                        f"in {len(families)} families)", {"tensors": measured})]
    odd.sort(key=lambda o: -o["ratio"])
    worst = odd[0]
    severity = ERROR if worst["ratio"] >= FAMILY_ERROR_RATIO else WARNING
    return [Finding("tensor_families", severity, f"{len(odd)} tensor(s) far from the scale of the same tensor in the other "
                    f"layers, e.g. {worst['tensor']!r}: RMS {worst['ratio']}x off its family's median "
                    f"({worst['z']} robust deviations)", {"tensors": odd[:20]})]


def _count_nonfinite(words: np.ndarray, mask: int) -> tuple[int, int]:
    """(count, first index) of values whose exponent bits are all set, scanning in chunks."""
    total, first = 0, -1
    for start in range(0, len(words), SCAN_CHUNK_ELEMENTS):
        chunk = words[start:start + SCAN_CHUNK_ELEMENTS]
        bad = (chunk & mask) == mask
        n = int(np.count_nonzero(bad))
        if n and first < 0:
            first = start + int(np.argmax(bad))
        total += n
    return total, first


def _bad_other_scales(blocks: np.ndarray, kind: str) -> np.ndarray:
    """Per block (rows of raw bytes): is its scale invalid (ggml_validate_row_data's rule for that encoding)?"""
    if kind == "e8m0":
        return blocks[:, 0] == 0xFF
    if kind == "f32":
        return (np.ascontiguousarray(blocks[:, 0:4]).view("<u4").ravel() & 0x7F800000) == 0x7F800000
    sc = np.ascontiguousarray(blocks[:, 48:56]).view("<u2")  # iq1m
    f16 = (sc[:, 0] >> 12) | ((sc[:, 1] >> 8) & 0x00F0) | ((sc[:, 2] >> 4) & 0x0F00) | (sc[:, 3] & 0xF000)
    return (f16 & 0x7C00) == 0x7C00


def check_float_values(path: str | Path, info: GGUFInfo) -> list[Finding]:
    """NaN/Inf scan of F32/F16/BF16/F64 tensors and of the f16 scales of common quantized blocks."""
    bad: list[dict[str, Any]] = []
    scanned = 0
    for t in info.tensors:
        if t.type_name in FLOAT_TYPES:
            dtype, mask = FLOAT_TYPES[t.type_name]
            words = np.memmap(path, dtype=dtype, mode="r", offset=t.data_start, shape=(t.n_elements,))
            count, first = _count_nonfinite(words, mask)
            what = "values"
        elif t.type_name in BLOCK_SCALES or t.type_name in OTHER_BLOCK_SCALES:
            _, block, type_size = ggufparse.GGML_TYPES[t.type]
            blocks = np.memmap(path, dtype=np.uint8, mode="r", offset=t.data_start, shape=(t.n_elements // block, type_size))
            count, first = 0, -1
            for start in range(0, len(blocks), SCAN_CHUNK_ELEMENTS // 16):
                chunk = blocks[start:start + SCAN_CHUNK_ELEMENTS // 16]
                for off in BLOCK_SCALES.get(t.type_name, ()):
                    n, f = _count_nonfinite(np.ascontiguousarray(chunk[:, off:off + 2]).view("<u2").ravel(), 0x7C00)
                    if n and first < 0:
                        first = start + f
                    count += n
                if t.type_name in OTHER_BLOCK_SCALES:
                    bad_blocks = _bad_other_scales(chunk, OTHER_BLOCK_SCALES[t.type_name])
                    n = int(np.count_nonzero(bad_blocks))
                    if n and first < 0:
                        first = start + int(np.argmax(bad_blocks))
                    count += n
            what = "block scales"
        else:
            continue
        scanned += 1
        if count:
            bad.append({"tensor": t.name, "type": t.type_name, "what": what, "count": count, "first_index": first})
    if bad:
        b = bad[0]
        return [Finding("nan_inf", ERROR, f"{len(bad)} tensor(s) hold NaN/Inf values, e.g. {b['tensor']!r} has {b['count']} in its {b['what']} "
                        f"(first at index {b['first_index']})", {"tensors": bad[:50]})]
    return [Finding("nan_inf", INFO, f"no NaN/Inf in {scanned} scanned tensors", {"scanned": scanned})]
