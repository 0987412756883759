"""A chat template's identity: its whitespace-normalized sha256, the one key under which the
built-in known templates (verifier/known_templates.json) and the templates a verifier's
operator reviewed (verifier/reviewed_templates.py) are found."""
from __future__ import annotations

import hashlib
import re


def normalize_template(source: str) -> str:
    """Whitespace-normalized source: runs of whitespace collapsed to one space, ends stripped."""
    return re.sub(r"\s+", " ", source).strip()


def template_hash(source: str) -> str:
    return "sha256:" + hashlib.sha256(normalize_template(source).encode("utf-8")).hexdigest()
