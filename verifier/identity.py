"""The verifier's own identity, kept in its own folder (ASSAY_VERIFIER_DIR; never the registry's):
its signing key (created on first use, mode 0600) and its registration at one registry (URL,
name and the verifier token the registry issued), made with `python -m verifier register`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from assay.core import dsse, keys, statements
from assay.client.config import write_json_atomic
from assay.core.errors import AssayError

KEY_FILE = "verifier.key"
REGISTRATION_FILE = "registration.json"


def verifier_dir() -> Path:
    return Path(os.environ.get("ASSAY_VERIFIER_DIR") or Path.cwd() / "var" / "verifier")


def signing_key(directory: Path | None = None):
    """The verifier's private key, created on first use."""
    path = (directory or verifier_dir()) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        try:
            keys.save_private_key(path, keys.generate_private_key(), None)
        except FileExistsError:
            pass  # another worker process created it first
    return keys.load_private_key(path, None, algorithms=(keys.ED25519,))


def verifier_id(directory: Path | None = None) -> str:
    return keys.key_id(signing_key(directory).public_key())


def registration_envelope(name: str, directory: Path | None = None) -> dict:
    """The verifier-key registration the registry logs, signed by the key itself."""
    private = signing_key(directory)
    public = private.public_key()
    payload = statements.build_verifier_event("register", keyid=keys.key_id(public), public_key=keys.public_key_to_text(public),
                                              verifier=name)
    return dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, private)


@dataclass(frozen=True)
class Registration:
    registry: str
    name: str
    token: str


def save_registration(registration: Registration, directory: Path | None = None) -> Path:
    path = (directory or verifier_dir()) / REGISTRATION_FILE
    write_json_atomic(path, {"registry": registration.registry, "name": registration.name, "token": registration.token})
    return path


def load_registration(directory: Path | None = None) -> Registration:
    path = (directory or verifier_dir()) / REGISTRATION_FILE
    try:
        data = json.loads(path.read_text())
        return Registration(str(data["registry"]), str(data["name"]), str(data["token"]))
    except FileNotFoundError:
        raise AssayError(f"this verifier is not registered with a registry ({path} is missing): run "
                         "`python -m verifier register REGISTRY_URL --name NAME --token ADMIN_TOKEN`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise AssayError(f"{path} is damaged ({exc}); register the verifier again") from None
