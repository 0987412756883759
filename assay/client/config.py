"""Client configuration: registry credentials, default key, trust store and caches.

Everything lives under $ASSAY_CONFIG_DIR; caches (partial downloads, resumable upload ids, the
models `assay run` keeps) under $ASSAY_CACHE_DIR. By default both follow the platform's
conventions (platformdirs): ~/.config/assay and ~/.cache/assay on Linux ($XDG_CONFIG_HOME and
$XDG_CACHE_HOME respected), ~/Library/Application Support/assay and ~/Library/Caches/assay on macOS.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import platformdirs

from assay.core.errors import AssayError


def config_dir() -> Path:
    return Path(os.environ.get("ASSAY_CONFIG_DIR") or platformdirs.user_config_path("assay"))


def cache_dir() -> Path:
    return Path(os.environ.get("ASSAY_CACHE_DIR") or platformdirs.user_cache_path("assay"))


def default_key_path() -> Path:
    return config_dir() / "keys" / "default.key"


def registry_dir(url: str) -> Path:
    """Per-registry folder for its trust policy and client state."""
    parsed = urlparse(url)
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", f"{parsed.hostname or 'local'}_{parsed.port or ''}{parsed.path.rstrip('/')}")
    return config_dir() / "registries" / slug


def write_json_atomic(path: Path, data: dict, mode: int = 0o600) -> None:
    """write_bytes_atomic of the JSON (indented, keys sorted)."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode)


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write to a temp file beside `path`, fsync it, then rename it into place (mode 0600 by
    default): a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict:
    path = _credentials_path()
    if not path.exists():
        return {"default": None, "registries": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise AssayError(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    return _checked_credentials(data, path)


def _checked_credentials(data: object, path: Path) -> dict:
    """The saved logins in the shape save_login writes, {"default": URL or null, "registries":
    {URL: {"token": TOKEN}}}; anything else is an AssayError naming the file."""
    registries = data.get("registries", {}) if isinstance(data, dict) else None
    default = data.get("default") if isinstance(data, dict) else None
    if (not isinstance(registries, dict) or not (default is None or isinstance(default, str))
            or not all(isinstance(entry, dict) and isinstance(entry.get("token", ""), str) for entry in registries.values())):
        raise AssayError(f'{path} is not a credentials file (expected {{"default": URL, "registries": {{URL: {{"token": TOKEN}}}}}}); '
                         "fix or delete it, then `assay login` again")
    return {**data, "default": default, "registries": registries}


def save_login(url: str, token: str) -> None:
    creds = load_credentials()
    creds.setdefault("registries", {})[url] = {"token": token}
    creds["default"] = url
    write_json_atomic(_credentials_path(), creds)


def remove_login(url: str) -> bool:
    """Forget the token saved for `url` (and make it no longer the default); False if none was."""
    creds = load_credentials()
    had = creds.get("registries", {}).pop(url, None) is not None
    if creds.get("default") == url:
        creds["default"] = next(iter(creds.get("registries", {})), None)
    if had:
        write_json_atomic(_credentials_path(), creds)
    return had


def resolve_registry(url: str | None) -> tuple[str, str | None]:
    """(registry url, token) from the flag, $ASSAY_REGISTRY / $ASSAY_TOKEN or the saved login."""
    creds = load_credentials()
    url = (url or os.environ.get("ASSAY_REGISTRY") or creds.get("default") or "").rstrip("/")
    if not url:
        raise AssayError("no registry: run `assay login URL --token TOKEN` or pass --registry URL")
    token = os.environ.get("ASSAY_TOKEN") or creds.get("registries", {}).get(url, {}).get("token")
    return url, token
