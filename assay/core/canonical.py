"""Canonical JSON (RFC 8785, JCS) for everything that is signed or hashed, and a strict parser."""
from __future__ import annotations

import json

import rfc8785

from assay.core.errors import FormatError

MAX_DEPTH = 64


def canonical_json(obj: object) -> bytes:
    """RFC 8785 bytes of `obj` (UTF-8, sorted keys, no whitespace, ES6 number form)."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise FormatError(f"value cannot be written as canonical JSON: {exc}") from None


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"invalid JSON: duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise FormatError(f"invalid JSON: {name} is not allowed")


def _check_tree(value: object, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise FormatError(f"invalid JSON: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError("invalid JSON: string contains an unpaired surrogate escape") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_tree(key, depth + 1)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(item, depth + 1)


def parse_json_strict(data: bytes) -> object:
    """Parse UTF-8 JSON bytes; reject duplicate keys, NaN/Infinity, bad UTF-8, lone surrogates."""
    if not isinstance(data, (bytes, bytearray)):
        raise FormatError(f"invalid JSON: expected bytes, got {type(data).__name__}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"invalid JSON: not UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise FormatError("invalid JSON: starts with a byte order mark")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except FormatError:
        raise
    except RecursionError:
        raise FormatError("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, oversized integers
        raise FormatError(f"invalid JSON: {exc}") from None
    _check_tree(value)
    return value
