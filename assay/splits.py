"""Split GGUF files: llama.cpp's `<prefix>-00001-of-0000N.gguf` parts, made and merged by its own
llama-gguf-split (built from the same vendored source: assay.llama_tools).

A release may be such a set: its statement's subjects are every part, in order, each with its
digest; llama.cpp opens the first part and finds the others beside it by name, so the names are
part of what is signed. `split_name_parts` is the one rule for those names.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import AssayError, FormatError

SPLIT_NAME = re.compile(r"\A(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf\Z")
MAX_PARTS = 64  # the statement layer's limit on subjects


class SplitError(AssayError):
    """A split set is incomplete or inconsistent, or llama-gguf-split failed."""


def parse_split_name(name: str) -> tuple[str, int, int] | None:
    """('model-Q4_K_M', 2, 3) for 'model-Q4_K_M-00002-of-00003.gguf'; None for any other name."""
    m = SPLIT_NAME.match(name)
    if not m:
        return None
    return m["prefix"], int(m["no"]), int(m["count"])


def part_name(prefix: str, no: int, count: int) -> str:
    return f"{prefix}-{no:05d}-of-{count:05d}.gguf"


def check_split_names(names: list[str], where: str = "subject") -> None:
    """Several files are one split set: the same prefix, numbered 1..N in order, N of them."""
    if len(names) == 1:
        return
    first = parse_split_name(names[0])
    if first is None:
        raise FormatError(f"invalid statement: {where} names {len(names)} files, which must be the parts of one split GGUF "
                          f"(<prefix>-00001-of-{len(names):05d}.gguf ...), not {names[0]!r}")
    prefix, _, count = first
    if count != len(names) or count > MAX_PARTS:
        raise FormatError(f"invalid statement: {where} names {len(names)} parts of a split of {count} (at most {MAX_PARTS})")
    for i, name in enumerate(names, 1):
        if name != part_name(prefix, i, count):
            raise FormatError(f"invalid statement: {where}[{i - 1}] must be {part_name(prefix, i, count)!r}, not {name!r}")


def sibling_parts(first: Path) -> list[Path] | None:
    """All parts of the split set whose first part is `first` (None when `first` is not named as
    a first part); every part must exist beside it."""
    parsed = parse_split_name(first.name)
    if parsed is None:
        return None
    prefix, no, count = parsed
    if no != 1:
        raise SplitError(f"{first.name} is part {no} of a split GGUF: give its first part, {part_name(prefix, 1, count)}")
    if count > MAX_PARTS:
        raise SplitError(f"{first.name} names a split of {count} parts; a release holds at most {MAX_PARTS}")
    parts = [first.with_name(part_name(prefix, i, count)) for i in range(1, count + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise SplitError(f"split GGUF {first.name}: part(s) {', '.join(missing)} missing beside it")
    return parts


def _run_split_tool(args: list[str], timeout_s: float) -> None:
    from .llama_tools import tool_env, tool_path
    from .quantize import _child_env

    with tempfile.TemporaryDirectory(prefix="assay-gguf-split-") as workdir:
        proc = subprocess.run([str(tool_path("llama-gguf-split")), *args], cwd=workdir, env=tool_env(_child_env(workdir, 0)),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
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
