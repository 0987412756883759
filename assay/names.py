"""Names of namespaces, models and tags, and `namespace/model:tag` references.

One set of rules for the CLI, the server and the statements: a name that passes here is safe
in a URL path segment and a file name (no `/`, no leading dot, no `..` as a whole).
"""
from __future__ import annotations

import re

from .errors import FormatError

NAME_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"

NAME_RE = re.compile(rf"\A{NAME_PATTERN}\Z")
TAG_RE = re.compile(rf"\A{TAG_PATTERN}\Z")
REFERENCE_RE = re.compile(rf"\A(?P<namespace>{NAME_PATTERN})/(?P<model>{NAME_PATTERN}):(?P<tag>{TAG_PATTERN})\Z")


def is_name(value: object) -> bool:
    return isinstance(value, str) and bool(NAME_RE.match(value))


def is_tag(value: object) -> bool:
    return isinstance(value, str) and bool(TAG_RE.match(value))


def validate_name(value: object, what: str = "name") -> str:
    """Return `value` if it is a valid namespace / model / user name; raise FormatError."""
    if not is_name(value):
        raise FormatError(
            f"invalid {what} {value!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return value  # type: ignore[return-value]


def validate_tag(value: object) -> str:
    if not is_tag(value):
        raise FormatError(
            f"invalid tag {value!r}: use 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        )
    return value  # type: ignore[return-value]


def parse_reference(reference: object) -> tuple[str, str, str]:
    """Split `namespace/model:tag` into its three parts; raise FormatError if malformed."""
    m = REFERENCE_RE.match(reference) if isinstance(reference, str) else None
    if m is None:
        if isinstance(reference, str) and "/" in reference and ":" in reference:
            ns, rest = reference.split("/", 1)
            model, tag = rest.rsplit(":", 1)
            validate_name(ns, "namespace")
            validate_name(model, "model name")
            validate_tag(tag)
        raise FormatError(f"invalid reference {reference!r}: expected namespace/model:tag, e.g. demo/smollm2:q4_1")
    return m["namespace"], m["model"], m["tag"]


def format_reference(namespace: str, model: str, tag: str) -> str:
    validate_name(namespace, "namespace")
    validate_name(model, "model name")
    validate_tag(tag)
    return f"{namespace}/{model}:{tag}"
