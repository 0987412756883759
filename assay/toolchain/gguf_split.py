"""Splitting a GGUF into parts and merging them back with llama.cpp's own llama-gguf-split
(the naming rule of the parts is assay/core/splits.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from assay.core.splits import SplitError, check_split_names, parse_split_name
from assay.toolchain import confine
from assay.toolchain.llama_tools import tool_env, tool_path
from assay.toolchain.quantize import _child_env


def _run_split_tool(args: list[str], timeout_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="assay-gguf-split-") as workdir:
        with confine.confined() as confinement:
            proc = subprocess.run([str(tool_path("llama-gguf-split")), *args], cwd=workdir, env=tool_env(_child_env(workdir, 0)),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, **confinement)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
        raise SplitError(f"llama-gguf-split failed (exit {proc.returncode}): {tail[-1] if tail else 'no output'}")


def split_file(src: Path, out_first: Path, *, max_tensors: int | None = None, max_size: str | None = None,
               timeout_s: float = 3600) -> list[Path]:
    """Split `src` with llama-gguf-split into parts named after `out_first` (which must be named
    <prefix>-00001-of-0000N.gguf for the N the split gives, or <prefix>.gguf: the parts then take
    that prefix). Written in a private folder and moved into place only when all are there."""
    if (max_tensors is None) == (max_size is None):
        raise SplitError("give exactly one of max_tensors and max_size")
    parsed = parse_split_name(out_first.name)
    prefix = parsed[0] if parsed else out_first.name.removesuffix(".gguf")
    out_dir = out_first.parent
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".split-"))
    try:
        flag = ["--split-max-tensors", str(max_tensors)] if max_tensors is not None else ["--split-max-size", str(max_size)]
        _run_split_tool(["--split", *flag, str(src.resolve()), str(tmp.resolve() / prefix)], timeout_s)
        made = sorted(tmp.iterdir())
        names = [p.name for p in made]
        check_split_names(names, "the split")
        if parsed and names[0] != out_first.name:
            raise SplitError(f"the split gives {len(names)} parts ({names[0]} ...), not {out_first.name}")
        final = [out_dir / n for n in names]
        for p in made:
            os.replace(p, out_dir / p.name)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def merge_parts(first: Path, out: Path, *, timeout_s: float = 3600) -> Path:
    """Merge a split set (its parts beside `first`) into one GGUF at `out` with llama-gguf-split."""
    # The parts are found by name beside the first: an absolute path, with its links not resolved.
    _run_split_tool(["--merge", os.path.abspath(first), os.path.abspath(out)], timeout_s)
    if not out.is_file():
        raise SplitError("llama-gguf-split wrote no merged file")
    return out
