"""Whole numbers read from text that strangers send (headers, query strings, settings, a
witness's answer): str.isdigit() also takes "²" and other Unicode digits, which int() refuses,
and int() refuses more than 4,300 digits; both were ValueError tracebacks or 500s."""
from __future__ import annotations


def whole_number(text: str, max_digits: int = 19) -> int | None:
    """The non-negative whole number `text` spells in ASCII digits (surrounding whitespace
    allowed), at most `max_digits` of them; None for anything else."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= max_digits else None
