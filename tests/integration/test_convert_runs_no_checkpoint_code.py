"""A conversion release's upstream files are a stranger's: llama.cpp's converter loads some model
families' tokenizers with transformers' trust_remote_code=True, which imports a .py file the
checkpoint names in its tokenizer_config.json (auto_map). A publisher listing such a file among the
recipe's upstream files ran Python of its choosing on every verifier that converted the release
again (verifier/reconvert.py), as the verifier's user: its key and its registry token are a
symbolic link away (the staged inputs point into the verifier's folder)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from assay.core.digest import digest_file  # noqa: E402
from assay.toolchain.convert import converter_dir, make_recipe  # noqa: E402


@pytest.fixture
def hostile_checkpoint(tmp_path) -> tuple[list[Path], Path]:
    """A Qwen-family checkpoint (its vocabulary is read with trust_remote_code=True) whose tokenizer
    is a class in its own tokenization_evil.py; the files lie where a verifier fetches a job's blobs,
    beside a verifier key. The code, if it runs, copies the key to `stolen`."""
    import numpy as np
    from safetensors.numpy import save_file

    try:
        converter_dir()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    verifier = tmp_path / "verifier"
    (verifier / "jobs" / "assay-job-7-x" / "blobs").mkdir(parents=True)
    (verifier / "verifier.key").write_text("-----BEGIN PRIVATE KEY----- the verifier's key")
    src = verifier / "jobs" / "assay-job-7-x" / "blobs"
    stolen = tmp_path / "stolen.txt"
    (src / "config.json").write_text(json.dumps({
        "architectures": ["QWenLMHeadModel"], "num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 2,
        "max_position_embeddings": 16, "vocab_size": 16, "intermediate_size": 16, "layer_norm_epsilon": 1e-6, "kv_channels": 4,
        "rotary_emb_base": 10000}))
    (src / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}, "tokenizer_class": "EvilTokenizer"}))
    (src / "tokenization_evil.py").write_text(
        "import os\nfrom pathlib import Path\n"
        "for link in Path(os.getcwd()).rglob('config.json'):\n"
        "    key = Path(os.path.realpath(link)).parents[3] / 'verifier.key'\n"
        f"    Path({str(stolen)!r}).write_text(key.read_text())\n")
    save_file({"transformer.wte.weight": np.zeros((16, 8), dtype=np.float32)}, str(src / "model.safetensors"))
    return sorted(src.iterdir()), stolen


def test_the_verifier_never_runs_python_a_checkpoint_ships(hostile_checkpoint, tmp_path):
    from verifier.reconvert import reconvert

    files, stolen = hostile_checkpoint
    recipe = make_recipe(files, {p.name: digest_file(p) for p in files}, outtype="F16", directory="qwen-evil")
    candidate = tmp_path / "candidate.gguf"
    candidate.write_bytes(b"GGUF whatever the publisher uploaded")
    result = reconvert(candidate, recipe, {p.name: p for p in files}, workdir=tmp_path, timeout_s=300)
    assert not stolen.exists(), f"the checkpoint's code ran and read: {stolen.read_text()!r}"
    assert result.status == "error" and "Python code" in result.message, (result.status, result.message)


def test_an_honest_checkpoint_converts_to_the_bytes_the_converter_writes_on_its_own(tmp_path):
    """The guard changes nothing else: the same bytes as llama.cpp's script run directly."""
    import os
    import subprocess
    import sys

    from assay.toolchain.convert import OUTTYPES, convert, select_upstream_files
    from tests.support.hf_checkpoint import tiny_llama_checkpoint

    try:
        script = converter_dir() / "convert_hf_to_gguf.py"
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    folder = tiny_llama_checkpoint(tmp_path / "tiny-llama", seed=3)
    files = select_upstream_files(folder)
    recipe = make_recipe(files, {p.name: digest_file(p) for p in files}, outtype="F16", directory="tiny-llama")
    convert(recipe, {p.name: p for p in files}, tmp_path / "guarded.gguf", timeout_s=600, durable=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([sys.executable, "-s", str(script), str(folder), "--outfile", str(tmp_path / "direct.gguf"),
                    "--outtype", OUTTYPES["F16"]], check=True, env=env, capture_output=True, cwd=tmp_path)
    assert digest_file(tmp_path / "guarded.gguf") == digest_file(tmp_path / "direct.gguf")
