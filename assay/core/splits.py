"""Split GGUF files: llama.cpp's `<prefix>-00001-of-0000N.gguf` parts, made and merged by its own
llama-gguf-split (built from the same vendored source: assay.toolchain.llama_tools).

A release may be such a set: its statement's subjects are every part, in order, each with its
digest; llama.cpp opens the first part and finds the others beside it by name, so the names are
part of what is signed. `split_name_parts` is the one rule for those names.
"""
from __future__ import annotations

import re
from pathlib import Path

from assay.core.errors import AssayError, FormatError

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






