"""Ed25519 keys: generation, key ids, text / PEM forms, private key files (mode 0600).

Key id = `sha256:<hex of SHA-256(raw 32-byte public key)>` (DESIGN.md "Keys").
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .digest import format_digest
from .errors import AssayError, FormatError

__all__ = [
    "Ed25519PrivateKey", "Ed25519PublicKey", "KeyExistsError", "Signer", "as_signer", "fingerprint",
    "generate_private_key", "is_encrypted_key_file", "key_id", "load_private_key", "load_public_key",
    "public_key_bytes", "public_key_from_text", "public_key_to_pem", "public_key_to_text",
    "save_private_key", "save_public_key", "verify_signature",
]

_MAX_KEY_FILE = 64 * 1024


class KeyExistsError(AssayError, FileExistsError):
    """A key file is already there and overwrite was not asked for."""

    def __str__(self) -> str:  # FileExistsError would print "[Errno ...]" otherwise
        return self.args[0] if self.args else "key file exists"


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte form of an Ed25519 public key."""
    if not isinstance(public_key, Ed25519PublicKey):
        raise TypeError(f"expected an Ed25519 public key, got {type(public_key).__name__}")
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """`sha256:<hex>` of the raw 32-byte public key."""
    return format_digest(hashlib.sha256(public_key_bytes(public_key)).hexdigest())


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Short human form for prompts: the key id's first 16 hex digits in groups of 4."""
    hexdigest = key_id(public_key)[len("sha256:"):][:16]
    return "SHA256:" + ":".join(hexdigest[i:i + 4] for i in range(0, 16, 4))


def public_key_to_text(public_key: Ed25519PublicKey) -> str:
    """Standard base64 of the raw 32 bytes (the form used in JSON and the API)."""
    return base64.b64encode(public_key_bytes(public_key)).decode("ascii")


def public_key_from_text(text: object) -> Ed25519PublicKey:
    """Inverse of public_key_to_text; FormatError for anything but base64 of 32 bytes."""
    if not isinstance(text, str) or len(text) != 44:
        raise FormatError("invalid public key: expected base64 of a 32-byte Ed25519 key (44 characters)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid public key: not valid base64") from None
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != text:
        raise FormatError("invalid public key: not the canonical base64 of 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_to_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
        return True
    except InvalidSignature:
        return False


class Signer:
    """A private key with its key id; `sign(data)` returns the 64-byte Ed25519 signature."""

    def __init__(self, private_key: Ed25519PrivateKey):
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError(f"expected an Ed25519 private key, got {type(private_key).__name__}")
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.keyid = key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def __repr__(self) -> str:
        return f"Signer({self.keyid})"


def as_signer(signer: "Signer | Ed25519PrivateKey") -> Signer:
    """Accept a Signer or a bare Ed25519 private key."""
    return signer if isinstance(signer, Signer) else Signer(signer)


def _write_new_file(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    """Write via a temp file created O_EXCL with `mode`, then link (no overwrite) or rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not overwrite and path.exists():
        raise KeyExistsError(f"{path} already exists; refusing to overwrite it (use --force to replace the key)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or (for public keys) not matter
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic "create if absent", no window for a race
            except FileExistsError:
                raise KeyExistsError(f"{path} already exists; refusing to overwrite it (use --force to replace the key)") from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise KeyExistsError(f"{path} already exists; refusing to overwrite it") from None
                os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def save_private_key(path: str | Path, private_key: Ed25519PrivateKey, passphrase: bytes | None = None, *, overwrite: bool = False) -> None:
    """Write PKCS#8 PEM, encrypted when a passphrase is given, mode 0600, atomically.

    Raises KeyExistsError (also a FileExistsError) if the file exists and overwrite is False.
    """
    if passphrase is not None and not passphrase:
        raise AssayError("empty passphrase: give a passphrase or none at all")
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    _write_new_file(Path(path), pem, 0o600, overwrite)


def _read_key_file(path: str | Path) -> bytes:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise AssayError(f"no key file at {path}") from None
    except IsADirectoryError:
        raise AssayError(f"{path} is a directory, not a key file") from None
    except PermissionError:
        raise AssayError(f"cannot read key file {path}: permission denied") from None
    if len(data) > _MAX_KEY_FILE:
        raise FormatError(f"{path} is not a key file (too large)")
    return data


def is_encrypted_key_file(path: str | Path) -> bool:
    """True if `path` holds a passphrase-encrypted PKCS#8 PEM private key."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in _read_key_file(path)


def load_private_key(path: str | Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Load an Ed25519 PKCS#8 PEM private key. A passphrase given for an unencrypted key is ignored."""
    data = _read_key_file(path)
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    if encrypted and not passphrase:
        raise AssayError(f"{path} is encrypted: a passphrase is needed (set ASSAY_KEY_PASSPHRASE or enter it when asked)")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except ValueError:
        if encrypted:
            raise AssayError(f"wrong passphrase for {path} (or the file is damaged)") from None
        raise FormatError(f"{path} is not a PEM private key") from None
    except (TypeError, UnsupportedAlgorithm):
        raise FormatError(f"{path} is not a usable private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FormatError(f"{path} holds a key of type {type(key).__name__.lstrip('_')}, not an Ed25519 private key")
    return key


def save_public_key(path: str | Path, public_key: Ed25519PublicKey, *, overwrite: bool = True) -> None:
    """Write a SubjectPublicKeyInfo PEM file (mode 0644), atomically."""
    _write_new_file(Path(path), public_key_to_pem(public_key), 0o644, overwrite)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM file, or from a file holding its base64 text form."""
    data = _read_key_file(path)
    if b"-----BEGIN" not in data:
        try:
            return public_key_from_text(data.decode("ascii").strip())
        except (UnicodeDecodeError, FormatError):
            raise FormatError(f"{path} is not an Ed25519 public key (PEM or base64 of 32 bytes)") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise FormatError(f"{path} holds a key of type {type(key).__name__.lstrip('_')}, not an Ed25519 public key")
    return key
