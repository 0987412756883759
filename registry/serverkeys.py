"""The registry's own signing keys (verifier and log), created on first start, kept in files."""
from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings

from assay import keys


def _load_or_create(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            keys.save_private_key(path, keys.generate_private_key(), None)
        except FileExistsError:
            pass  # another process created it first
    return keys.load_private_key(path, None)


@functools.lru_cache(maxsize=None)
def verifier_key():
    return _load_or_create(Path(settings.ASSAY_KEY_DIR) / "verifier.key")


@functools.lru_cache(maxsize=None)
def log_key():
    return _load_or_create(Path(settings.ASSAY_KEY_DIR) / "log.key")


def log_key_name() -> str:
    return settings.ASSAY_LOG_ORIGIN
