"""Conversion benchmark: what `assay convert` and the verifier's conversion check cost over llama.cpp's
bare converter, on the same checkpoint in the same run.

    python bench/convert.py                     # a SmolLM2-135M-shaped Llama checkpoint (random weights, f32)
    python bench/convert.py --layers 4 --hidden 256 --runs 3

Measured, each `--runs` times (the median printed):
  bare       convert_hf_to_gguf.py HF_DIR --outfile X --outtype f16 (the converter alone)
  assay      `assay convert` (hash the upstream files, stage them, convert, hash the output, write the recipe)
  verifier   verifier.reconvert.reconvert (check each upstream file's digest, convert, compare with the release)
and whether every output is byte-identical (the conversion is deterministic).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_checkpoint(folder: Path, hidden: int, layers: int, inter: int, heads: int, kv: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.support.hf_checkpoint import smollm2_tokenizer

    tok = smollm2_tokenizer(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, torch_dtype="float32")
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=576)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--heads", type=int, default=9)
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args(argv)
    from assay.core.conversion import SCRIPT, ConversionRecipe
    from assay.toolchain.convert import converter_dir
    from assay.core.digest import digest_file
    from verifier.reconvert import reconvert

    with tempfile.TemporaryDirectory(prefix="assay-bench-convert-") as tmp:
        tmp = Path(tmp)
        hf = make_checkpoint(tmp / "bench-llama", a.hidden, a.layers, a.intermediate, a.heads, a.kv_heads)
        size = sum(p.stat().st_size for p in hf.iterdir())
        print(f"checkpoint: {a.layers} layers, hidden {a.hidden}, {size / 1e6:.0f} MB upstream", flush=True)
        bare_out, assay_out = tmp / "bare.gguf", tmp / "assay.gguf"
        script = converter_dir() / SCRIPT
        times: dict[str, list[float]] = {"bare": [], "assay": [], "verifier": []}
        digests = set()
        for _ in range(a.runs):
            times["bare"].append(timed(lambda: subprocess.run(
                [sys.executable, str(script), str(hf), "--outfile", str(bare_out), "--outtype", "f16"],
                check=True, capture_output=True)))
            digests.add(digest_file(bare_out))
            assay_out.unlink(missing_ok=True)
            times["assay"].append(timed(lambda: subprocess.run(
                [str(Path(sys.executable).parent / "assay"), "convert", str(hf), "-o", str(assay_out), "--force"],
                check=True, capture_output=True)))
            digests.add(digest_file(assay_out))
            import json

            recipe = ConversionRecipe.from_json(json.loads((tmp / "assay.gguf.recipe.json").read_text())["recipe"])
            inputs = {f.name: hf / f.name for f in recipe.files}
            result = None

            def verify():
                nonlocal result
                result = reconvert(assay_out, recipe, inputs, workdir=tmp)
            times["verifier"].append(timed(verify))
            assert result.status == "reproduced", result.message
        bare = statistics.median(times["bare"])
        print(f"outputs byte-identical across {3 * a.runs} conversions: {len(digests) == 1}")
        print("| step | median s | ratio vs bare converter |\n|---|---|---|")
        for name, ts in times.items():
            print(f"| {name} | {statistics.median(ts):.2f} | {statistics.median(ts) / bare:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
