"""Computing an importance matrix with llama.cpp's own llama-imatrix, reproducibly.

Measured (bench/imatrix.py): on the CPU, llama-imatrix over the same model and calibration text
writes byte-identical matrices run after run and with 1 or 2 threads. So a matrix can be a
rebuilt step of the supply chain, not only an input taken on trust: the recipe's
`options.imatrix_source` names the calibration text (by digest and bare file name, which
llama-imatrix records in the matrix as `imatrix.datasets`), the context size and the number of
chunks; the verifier computes the matrix again from the base and that text (on the CPU: a GPU's
sums need not match the CPU's) and compares bytes before it rebuilds the quant.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from assay.core.recipe import IMATRIX_NAME
from assay.toolchain.quantize import QuantizeError, _child_env, _last_error_line, _tail, default_memory_limit, run_logged


def compute_imatrix(base: str | Path, calibration: str | Path, out: str | Path, *, ctx: int, chunks: int,
                    threads: int = 0, timeout_s: float = 3600, calibration_name: str | None = None) -> Path:
    """llama-imatrix over `calibration` (given to the tool under its bare name, or
    `calibration_name`), on the CPU, in a contained child; the matrix lands at `out` only when
    complete. Raises QuantizeError on failure (nothing left at `out`)."""
    from assay.toolchain.llama_tools import tool_env, tool_path

    base, calibration, out = Path(base), Path(calibration), Path(out)
    name = calibration_name or calibration.name
    if not IMATRIX_NAME.match(name):
        raise QuantizeError(f"calibration file name {name!r} is not a plain file name (letters, digits, '.', '_', '-'): "
                            "llama-imatrix records it in the matrix; rename the file")
    for path, what in ((base, "model"), (calibration, "calibration text")):
        if not path.is_file():
            raise QuantizeError(f"{what} {path} does not exist")
    workdir = Path(tempfile.mkdtemp(prefix="assay-imatrix-"))
    try:
        os.symlink(calibration.resolve(), workdir / name)
        tmp_out = workdir / "out.imatrix.gguf"
        cmd = [str(tool_path("llama-imatrix")), "-m", str(base.resolve()), "-f", name, "-o", str(tmp_out),
               "-c", str(ctx), "--chunks", str(chunks), "-ngl", "0", "--no-ppl"]
        if threads > 0:
            cmd += ["-t", str(threads)]
        limit = default_memory_limit(base)
        log_path = workdir / "log.txt"
        rc = run_logged([sys.executable, "-s", "-m", "assay.toolchain.quantize_child", "--as-limit", str(limit), "--exec", *cmd], cwd=workdir,
                        env=tool_env(_child_env(str(workdir), threads)), log_path=log_path, timeout_s=timeout_s)
        if rc is None:
            raise QuantizeError(f"llama-imatrix did not finish within {timeout_s:g}s and was stopped")
        if rc != 0 or not tmp_out.is_file():
            raise QuantizeError(f"llama-imatrix failed (exit {rc}): {_last_error_line(_tail(log_path))}")
        fd, staged = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.", suffix=".partial")
        os.close(fd)
        try:
            shutil.copyfile(tmp_out, staged)
            os.replace(staged, out)
        except BaseException:
            Path(staged).unlink(missing_ok=True)
            raise
        return out
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
