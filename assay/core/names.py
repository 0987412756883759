"""Names of namespaces, models and tags, and `namespace/model:tag` references.

One set of rules for the CLI, the server and the statements: a name that passes here is safe
in a URL path segment and a file name (no `/`, no leading dot, no `..` as a whole).
"""
from __future__ import annotations

import re
import unicodedata

from assay.core.errors import FormatError

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


# Unicode categories a file name may not contain: controls (Cc), format characters (Cf: the
# bidirectional overrides and isolates that make "gguf.exe" read as "exe.fugg", zero-width
# characters), line and paragraph separators, unassigned and private-use code points, surrogates.
_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"}


def file_name_problem(name: object) -> str | None:
    """Why `name` cannot be a release's file name (None if it can): a plain, visible name that is
    safe to create in any folder. No path separators, not '.' or '..', no dotfile (a release must
    not write ~/.bashrc), no control, bidirectional or invisible characters, no leading or trailing
    spaces, at most 255 characters."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > 255 or len(name.encode("utf-8", "surrogatepass")) > 255:
        return "it is longer than 255 bytes"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if name.startswith("."):
        return "it starts with '.' (a hidden file, '.' or '..')"
    if name != name.strip():
        return "it starts or ends with white space"
    bad = next((c for c in name if unicodedata.category(c) in _BAD_CATEGORIES), None)
    if bad is not None:
        return f"it contains the invisible or control character U+{ord(bad):04X} ({unicodedata.name(bad, 'unnamed')})"
    return None


def validate_file_name(name: object, what: str = "file name") -> str:
    problem = file_name_problem(name)
    if problem is not None:
        raise FormatError(f"invalid {what} {str(name)[:80]!r}: {problem}")
    return name  # type: ignore[return-value]
