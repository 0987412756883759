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
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import FormatError
from .quantize import QuantizeError, _child_env, _kill_group, _last_error_line, _tail, default_memory_limit

_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
_NAME = re.compile(r"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}\Z")
SOURCE_KEYS = ("calibration", "calibration_name", "ctx", "chunks")


@dataclass(frozen=True)
class ImatrixSource:
    calibration: str        # sha256 digest of the calibration text
    calibration_name: str   # the bare file name llama-imatrix is given (recorded in the matrix)
    ctx: int                # tokens per chunk (-c)
    chunks: int             # chunks evaluated (--chunks)

    def __post_init__(self) -> None:
        where = "recipe field options.imatrix_source"
        if not isinstance(self.calibration, str) or not _DIGEST.match(self.calibration):
            raise FormatError(f"{where}.calibration must be a digest sha256:<64 hex>, not {self.calibration!r}")
        if not isinstance(self.calibration_name, str) or not _NAME.match(self.calibration_name):
            raise FormatError(f"{where}.calibration_name must be a plain file name (letters, digits, '.', '_', '-'; "
                              f"not starting with '.'), not {self.calibration_name!r}")
        for name, low, high in (("ctx", 8, 1 << 20), ("chunks", 1, 1 << 20)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise FormatError(f"{where}.{name} must be an integer from {low} to {high}, not {v!r}")

    def to_dict(self) -> dict:
        return {"calibration": self.calibration, "calibration_name": self.calibration_name, "ctx": self.ctx, "chunks": self.chunks}

    @classmethod
    def from_dict(cls, data: object) -> "ImatrixSource":
        if not isinstance(data, dict):
            raise FormatError(f"recipe field options.imatrix_source must be an object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(SOURCE_KEYS))
        if unknown:
            raise FormatError(f"recipe field options.imatrix_source.{unknown[0]} is not a known field")
        missing = [k for k in SOURCE_KEYS if k not in data]
        if missing:
            raise FormatError(f"recipe field options.imatrix_source.{missing[0]} is missing")
        return cls(**{k: data[k] for k in SOURCE_KEYS})


def compute_imatrix(base: str | Path, calibration: str | Path, out: str | Path, *, ctx: int, chunks: int,
                    threads: int = 0, timeout_s: float = 3600, calibration_name: str | None = None) -> Path:
    """llama-imatrix over `calibration` (given to the tool under its bare name, or
    `calibration_name`), on the CPU, in a contained child; the matrix lands at `out` only when
    complete. Raises QuantizeError on failure (nothing left at `out`)."""
    from .llama_tools import tool_env, tool_path

    base, calibration, out = Path(base), Path(calibration), Path(out)
    name = calibration_name or calibration.name
    if not _NAME.match(name):
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
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-s", "-m", "assay.quantize_child", "--as-limit", str(limit), "--exec", *cmd],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir,
                                    env=tool_env(_child_env(str(workdir), threads)), start_new_session=True)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise QuantizeError(f"llama-imatrix did not finish within {timeout_s:g}s and was stopped") from None
            finally:
                _kill_group(proc)
        if proc.returncode != 0 or not tmp_out.is_file():
            raise QuantizeError(f"llama-imatrix failed (exit {proc.returncode}): {_last_error_line(_tail(log_path))}")
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
