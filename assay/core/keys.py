"""Signing keys: generation, key ids, text / PEM forms, private key files (mode 0600).

Two algorithms. Ed25519 signs everything the services sign (verifier, log, witness) and is the
default for publishers. ECDSA P-256 (SHA-256, DER signatures) is accepted for publisher keys so
that one key can sign both an Assay release and an OpenSSF model_signing signature, which
supports elliptic-curve keys only (see assay/core/ossf_signature.py).

Key id = `sha256:<hex of SHA-256(public key bytes)>` (DESIGN.md "Keys"), where the bytes are the
raw 32 bytes for Ed25519 and the DER SubjectPublicKeyInfo for P-256. The text form used in JSON
and the API is the standard base64 of the same bytes: 44 characters for Ed25519, 124 for P-256.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from assay.core.digest import format_digest
from assay.core.errors import AssayError, FormatError

__all__ = [
    "ALGORITHMS", "Ed25519PrivateKey", "Ed25519PublicKey", "KeyExistsError", "PrivateKey", "PublicKey", "algorithm_of", "Signer", "as_signer", "fingerprint",
    "generate_private_key", "is_encrypted_key_file", "key_id", "load_private_key", "load_public_key",
    "public_key_bytes", "public_key_from_text", "public_key_to_pem", "public_key_to_text",
    "save_private_key", "save_public_key", "verify_signature",
]

_MAX_KEY_FILE = 64 * 1024

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256"
ALGORITHMS = (ED25519, ECDSA_P256)

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
_P256_SPKI_LEN = 91  # DER SubjectPublicKeyInfo of an uncompressed P-256 point


class KeyExistsError(AssayError, FileExistsError):
    """A key file is already there and overwrite was not asked for."""

    def __str__(self) -> str:  # FileExistsError would print "[Errno ...]" otherwise
        return self.args[0] if self.args else "key file exists"


def generate_private_key(algorithm: str = ED25519) -> PrivateKey:
    if algorithm == ED25519:
        return Ed25519PrivateKey.generate()
    if algorithm == ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    raise AssayError(f"unknown key algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")


def _is_p256(key: object) -> bool:
    return isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) and isinstance(key.curve, ec.SECP256R1)


def algorithm_of(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, (Ed25519PublicKey, Ed25519PrivateKey)):
        return ED25519
    if _is_p256(key):
        return ECDSA_P256
    raise TypeError(f"unsupported key type {type(key).__name__}: expected Ed25519 or ECDSA P-256")


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte form of an Ed25519 public key (what signed notes and checkpoints carry)."""
    if not isinstance(public_key, Ed25519PublicKey):
        raise TypeError(f"expected an Ed25519 public key, got {type(public_key).__name__}")
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_id_bytes(public_key: PublicKey) -> bytes:
    """The bytes a key id and the text form are made of: raw for Ed25519, DER SPKI for P-256."""
    if algorithm_of(public_key) == ED25519:
        return public_key_bytes(public_key)
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key: PublicKey) -> str:
    """`sha256:<hex>` of the public key's bytes (raw for Ed25519, DER SPKI for P-256)."""
    return format_digest(hashlib.sha256(public_key_id_bytes(public_key)).hexdigest())


def fingerprint(public_key: PublicKey) -> str:
    """Short human form for prompts: the key id's first 16 hex digits in groups of 4."""
    hexdigest = key_id(public_key)[len("sha256:"):][:16]
    return "SHA256:" + ":".join(hexdigest[i:i + 4] for i in range(0, 16, 4))


def public_key_to_text(public_key: PublicKey) -> str:
    """Standard base64 of the key's id bytes (the form used in JSON and the API)."""
    return base64.b64encode(public_key_id_bytes(public_key)).decode("ascii")


_TEXT_FORMS = "base64 of a 32-byte Ed25519 key (44 characters) or of a P-256 SubjectPublicKeyInfo (124 characters)"


def public_key_from_text(text: object) -> PublicKey:
    """Inverse of public_key_to_text; FormatError for anything but the canonical text of either form."""
    if not isinstance(text, str) or len(text) not in (44, 124):
        raise FormatError(f"invalid public key: expected {_TEXT_FORMS}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid public key: not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError("invalid public key: not canonical base64")
    if len(raw) == 32:
        return Ed25519PublicKey.from_public_bytes(raw)
    if len(raw) != _P256_SPKI_LEN:
        raise FormatError(f"invalid public key: expected {_TEXT_FORMS}")
    try:
        key = serialization.load_der_public_key(raw)
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError("invalid public key: not a DER SubjectPublicKeyInfo") from None
    if not _is_p256(key) or public_key_id_bytes(key) != raw:
        raise FormatError("invalid public key: not an uncompressed ECDSA P-256 key")
    return key


def public_key_to_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


_MAX_SIGNATURE = 256  # 64 bytes for Ed25519, at most 72 for a DER P-256 signature


def verify_signature(public_key: PublicKey, signature: bytes, data: bytes) -> bool:
    if not isinstance(signature, bytes) or len(signature) > _MAX_SIGNATURE:
        return False
    try:
        if isinstance(public_key, Ed25519PublicKey):
            if len(signature) != 64:
                return False
            public_key.verify(signature, data)
        elif _is_p256(public_key):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
        return True
    except InvalidSignature:
        return False


class Signer:
    """A private key with its key id; `sign(data)` returns the signature (Ed25519, or DER ECDSA-SHA256)."""

    def __init__(self, private_key: PrivateKey):
        if not isinstance(private_key, Ed25519PrivateKey) and not _is_p256(private_key):
            raise TypeError(f"expected an Ed25519 or ECDSA P-256 private key, got {type(private_key).__name__}")
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.keyid = key_id(self.public_key)
        self.algorithm = algorithm_of(private_key)

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == ED25519:
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        return f"Signer({self.keyid})"


def as_signer(signer: "Signer | PrivateKey") -> Signer:
    """Accept a Signer or a bare private key."""
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


def save_private_key(path: str | Path, private_key: PrivateKey, passphrase: bytes | None = None, *, overwrite: bool = False) -> None:
    """Write PKCS#8 PEM, encrypted when a passphrase is given, mode 0600, atomically.

    Raises KeyExistsError (also a FileExistsError) if the file exists and overwrite is False.
    """
    if passphrase is not None and not passphrase:
        raise AssayError("empty passphrase: give a passphrase or none at all")
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    _write_new_file(Path(path), pem, 0o600, overwrite)


def public_key_path(private_path: str | Path) -> Path:
    """Where `assay keygen` puts the public key of the private key at `private_path`: beside it, .pub."""
    return Path(private_path).with_suffix(".pub")


def check_key_pair_paths(path: str | Path, *, overwrite: bool = False) -> Path:
    """Before a key is made or a passphrase asked for: the private key may be written at `path`
    (nothing there, or `overwrite`) and its public key beside it (a path of its own, not a
    folder). Returns the public key's path."""
    path = Path(path)
    public = public_key_path(path)
    if public == path:
        raise AssayError(f"{path} is where its public key would go (keygen writes it beside the private key, as .pub): "
                         f"name the private key file otherwise, e.g. {path.with_suffix('.key')}")
    if public.is_dir():
        raise AssayError(f"cannot write the public key {public}: it is a folder; nothing was written")
    if not overwrite and path.exists():
        raise KeyExistsError(f"{path} already exists; refusing to overwrite it (use --force to replace the key)")
    return public


def save_key_pair(path: str | Path, private_key: PrivateKey, passphrase: bytes | None = None, *, overwrite: bool = False) -> Path:
    """Write the private key (save_private_key) and its public key beside it (public_key_path),
    after check_key_pair_paths; return the public key's path. Should the public key still fail,
    a private key this call made is removed again: no half pair is left for the next keygen to
    refuse as 'already exists'."""
    path = Path(path)
    public = check_key_pair_paths(path, overwrite=overwrite)
    save_private_key(path, private_key, passphrase, overwrite=overwrite)
    try:
        save_public_key(public, private_key.public_key())
    except OSError as exc:
        if not overwrite:
            path.unlink(missing_ok=True)
        kept = f"the new private key is at {path}" if overwrite else "the private key was not kept"
        raise AssayError(f"cannot write the public key {public}: {exc.strerror or exc}; {kept}") from None
    return public


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


def load_private_key(path: str | Path, passphrase: bytes | None = None, *, algorithms: tuple[str, ...] = ALGORITHMS) -> PrivateKey:
    """Load a PEM private key of one of `algorithms`. A passphrase given for an unencrypted key is ignored.

    PKCS#8 and, for P-256, the traditional "EC PRIVATE KEY" form (what openssl ecparam writes)."""
    data = _read_key_file(path)
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data
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
    _check_algorithm(key, path, algorithms, "private")
    return key


def _check_algorithm(key: object, path: str | Path, algorithms: tuple[str, ...], kind: str) -> None:
    try:
        algorithm = algorithm_of(key)
    except TypeError:
        algorithm = None
    if algorithm in algorithms:
        return
    names = {ED25519: "Ed25519", ECDSA_P256: "ECDSA P-256"}
    if algorithm is not None:
        what = f"an {names[algorithm]} key"
    elif isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        what = f"an ECDSA key on curve {key.curve.name}"
    else:
        what = f"a key of type {type(key).__name__.lstrip('_')}"
    raise FormatError(f"{path} holds {what}, not an {' or '.join(names[a] for a in algorithms)} {kind} key")


def save_public_key(path: str | Path, public_key: PublicKey, *, overwrite: bool = True) -> None:
    """Write a SubjectPublicKeyInfo PEM file (mode 0644), atomically."""
    _write_new_file(Path(path), public_key_to_pem(public_key), 0o644, overwrite)


def load_public_key(path: str | Path, *, algorithms: tuple[str, ...] = (ED25519,)) -> PublicKey:
    """Load a public key of one of `algorithms` from a PEM file, or from a file holding its text form."""
    data = _read_key_file(path)
    if b"-----BEGIN" not in data:
        try:
            key = public_key_from_text(data.decode("ascii").strip())
        except (UnicodeDecodeError, FormatError):
            raise FormatError(f"{path} is not a public key (PEM, or {_TEXT_FORMS})") from None
    else:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise FormatError(f"{path} is not a PEM public key") from None
    _check_algorithm(key, path, algorithms, "public")
    return key
