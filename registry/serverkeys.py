"""The registry's own signing key (the log's), created on first start, kept in a file. Verdicts
are signed by verifiers, each with a key of its own that never exists here (registry/verifiers.py)."""
from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings

from assay.core import keys


def _load_or_create(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            keys.save_private_key(path, keys.generate_private_key(), None)
        except FileExistsError:
            pass  # another process created it first
    return keys.load_private_key(path, None, algorithms=(keys.ED25519,))


@functools.lru_cache(maxsize=None)
def log_key():
    return _load_or_create(Path(settings.ASSAY_KEY_DIR) / "log.key")


def log_key_name() -> str:
    return settings.ASSAY_LOG_ORIGIN
