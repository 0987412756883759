"""Chat templates this verifier's operator reviewed and accepts, kept in the verifier's own folder
(`ASSAY_VERIFIER_DIR/reviewed_templates.json`).

The template checks read a template that matches none of the built-in known templates
(verifier/known_templates.json) as a stranger's program, and refuse fixed text that reads as an
instruction to the model. Some honest vendors' templates carry such text (tool-call rules in
capitals: "You MUST ...", "NEVER ..."), so a release with one is refused until a person has read
it. The operator reads the template once (`python -m verifier template review FILE`, which shows
every finding first) and the verifier then treats that exact template (the same whitespace-
normalized sha256 as the built-in list) as known: its findings become informational, and the
verdict names the review. Hidden characters and reaching for private attributes stay errors
whoever reviewed the template. A changed byte of text makes it a different template.

One file per verifier: a second verifier's operator decides for their own verdicts.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from assay.client.config import write_json_atomic
from assay.core.errors import AssayError

from .identity import verifier_dir
from .template_identity import template_hash

FILE_NAME = "reviewed_templates.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def reviewed_path() -> Path:
    return verifier_dir() / FILE_NAME


def load_reviewed(path: Path | None = None) -> dict[str, dict]:
    """{name: {"sha256", "source", "reviewed", "note"}}; {} when the operator reviewed none. A file
    that is not such a table is an error naming it, never an empty list in disguise."""
    path = path or reviewed_path()
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AssayError(f"cannot read the reviewed chat templates in {path}: {exc}") from None
    if not isinstance(table, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("source"), str) for v in table.values()):
        raise AssayError(f"{path} is not a table of reviewed chat templates (name -> sha256, source)")
    return table


def reviewed_name(source: str, path: Path | None = None) -> str | None:
    """The name under which the operator reviewed this exact template, if any."""
    digest = template_hash(source)
    return next((name for name, entry in load_reviewed(path).items() if template_hash(entry["source"]) == digest), None)  # the source decides, not the listed sha256


def add_reviewed(name: str, source: str, note: str = "", path: Path | None = None) -> dict:
    """Record `source` as reviewed under `name` (replacing an entry of that name). Returns the entry."""
    if not NAME.fullmatch(name):
        raise AssayError(f"template name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if not isinstance(source, str) or not source.strip():
        raise AssayError("the chat template is empty")
    path = path or reviewed_path()
    table = load_reviewed(path)
    entry = {"sha256": template_hash(source), "source": source, "note": " ".join(note.split())[:500],
             "reviewed": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    table[name] = entry
    _save(path, table)
    return entry


def remove_reviewed(name: str, path: Path | None = None) -> None:
    path = path or reviewed_path()
    table = load_reviewed(path)
    if name not in table:
        raise AssayError(f"no reviewed chat template named {name!r} in {path}")
    del table[name]
    _save(path, table)


def _save(path: Path, table: dict) -> None:
    write_json_atomic(path, table, mode=0o644)  # a crash leaves the old table or the new one
