"""Typed models of the JSON formats (pydantic v2): the one way a format is validated.

Every model derives from `Strict`: unknown fields are rejected, types are strict (no string "1"
for an integer, no true for 1), and a model is immutable once validated. `load` validates a
decoded JSON value against a model and turns the first problem into a FormatError that names
the field by its path in the document ("invalid statement: predicate.version must be at most
2147483647"), so every format reports bad input the same way.

A custom check inside a model raises ValueError with the problem as it reads after the field's
path ("must be a digest sha256:<64 hex>"); `load` puts the path in front.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from assay.core.digest import DIGEST_RE
from assay.core.errors import FormatError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every format model: strict types, unknown fields rejected, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True,
                              validate_default=False, revalidate_instances="never")


class FieldError(ValueError):
    """Raised by a model's validator about one of its fields (a rule that spans fields): `load`
    names that field, given as a path inside the model ("options.imatrix_name")."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


def matching(pattern: re.Pattern, problem: str = "has an invalid value") -> AfterValidator:
    """A string field's check against a Python regular expression (`\\A...\\Z`, as the formats write
    them); the error is `problem` followed by the value."""
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{problem} {_short(value)}" if problem == "has an invalid value" else f"{problem}, not {_short(value)}")
        return value
    return AfterValidator(check)


Digest = Annotated[str, matching(DIGEST_RE, "must be a digest sha256:<64 lowercase hex digits>")]


def type_name(value: Any) -> str:
    """How an error names a JSON value's type."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def field_path(loc: tuple, root: str = "") -> str:
    """("predicate", "checks", 0, "name") under root "" -> "predicate.checks[0].name"."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


# pydantic's error types, as the problem that follows a field's path; {type} is the given value's
# JSON type, {value} the value (shortened), other names come from the error's context.
_PROBLEMS = {
    "missing": "is missing",
    "extra_forbidden": "is an unexpected field",
    "model_type": "must be an object, not {type}",
    "dict_type": "must be an object, not {type}",
    "model_attributes_type": "must be an object, not {type}",
    "string_type": "must be a string, not {type}",
    "int_type": "must be an integer, not {type}",
    "int_parsing": "must be an integer, not {type}",
    "int_from_float": "must be an integer, not {type}",
    "bool_type": "must be true or false, not {type}",
    "list_type": "must be a list, not {type}",
    "tuple_type": "must be a list, not {type}",
    "none_required": "must be null",
    "string_too_long": "is longer than {max_length} characters",
    "string_pattern_mismatch": "has an invalid value {value}",
    "too_short": "must have at least {min_length} entries",
    "too_long": "must have at most {max_length} entries",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be greater than {gt}",
    "less_than": "must be less than {lt}",
}


def describe(error: dict) -> str:
    """One pydantic error as the problem that follows the field's path."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])  # a model's own check: its message is the problem
    if kind == "literal_error":
        expected = str(ctx.get("expected"))
        return f"must be {'one of ' if ' or ' in expected else ''}{expected}, not {_short(value)}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must have at least {ctx.get('min_length')} characters"
    template = _PROBLEMS.get(kind)
    if template is None:
        return error.get("msg", "is invalid")
    return template.format(**{**ctx, "type": type_name(value), "value": _short(value)})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load(model: type[M], data: Any, *, what: str, root: str = "", whole: str = "") -> M:
    """`data` (decoded JSON) as a `model`; FormatError "<what> <path> <problem>" otherwise.
    `root` is the path of `data` inside its document; `whole` names `data` in a problem with it
    as a whole when it has no path (the document itself)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = tuple(error["loc"])
        raised = (error.get("ctx") or {}).get("error")
        if isinstance(raised, FieldError):
            loc += tuple(int(part) if part.isdigit() else part for part in raised.field.split("."))
        path = field_path(loc, root) or whole or "the document"
        raise FormatError(f"{what} {path} {describe(error)}".strip()) from None
