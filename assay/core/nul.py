"""U+0000 (NUL) in JSON strings: PostgreSQL stores it neither in a text column nor in jsonb.

The registry refuses a NUL anywhere in what it is sent (400, naming where: `nul_path`); an
Assay statement holds none (statements.parse_statement); and the verifier, whose evidence quotes
what a publisher's file holds (a chat template, a model's output), writes each NUL as the visible
symbol U+2400 "␀" before it signs (`visible_nul`), so a reader of the evidence sees where it was.
"""
from __future__ import annotations

NUL = "\x00"
NUL_SYMBOL = "\u2400"  # ␀, SYMBOL FOR NULL: what a NUL in signed evidence is written as


def nul_path(value: object, path: str = "") -> str | None:
    """Where the first NUL in a JSON value is (a string, or a key of an object), as a field path
    such as `evidence.findings[2].message` ("" for the value itself); None when it holds none."""
    return string_path(value, lambda text: NUL in text, path, show_key=lambda key: key.replace(NUL, NUL_SYMBOL))


def string_path(value: object, bad, path: str = "", show_key=str) -> str | None:
    """Where the first string or object key of a JSON value for which `bad(text)` holds is, as a
    field path (a key that is bad itself ends in " (the key)", written by `show_key`); None when
    there is none. NUL (nul_path) and unpaired surrogates (registry/api/common) are found this way."""
    if isinstance(value, str):
        return path if bad(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            here = f"{path}.{key}" if path else key
            if bad(key):
                return f"{show_key(here)} (the key)"
            found = string_path(item, bad, here, show_key)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = string_path(item, bad, f"{path}[{i}]", show_key)
            if found is not None:
                return found
    return None


def visible_nul(value):
    """`value` (JSON: dicts, lists, strings, scalars) with each NUL in its strings and keys
    written as "␀" (U+2400). A key that would then collide with another keeps a longer form."""
    if isinstance(value, str):
        return value.replace(NUL, NUL_SYMBOL)
    if isinstance(value, dict):
        out: dict = {}
        for key, item in value.items():
            key = visible_nul(key) if isinstance(key, str) else key
            while key in out:  # "a\x00" next to a literal "a␀": neither is dropped
                key = f"{key}{NUL_SYMBOL}"
            out[key] = visible_nul(item)
        return out
    if isinstance(value, list):
        return [visible_nul(item) for item in value]
    if isinstance(value, tuple):
        return tuple(visible_nul(item) for item in value)
    return value
