"""`assay pull` and `assay verify`: verify everything, then (and only then) rename into place."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from . import bundle_verify
from .client import RegistryClient
from .config import cache_dir, registry_dir
from .digest import digest_file
from .errors import AssayError, VerificationError
from .names import parse_reference
from .trustpolicy import TrustPolicy


def load_policy(registry_url: str) -> TrustPolicy:
    directory = registry_dir(registry_url)
    if not (directory / "policy.json").exists():
        raise VerificationError(f"registry {registry_url} is not trusted yet: run `assay trust add {registry_url}`")
    return TrustPolicy.load(directory)


def target_path(out: str | Path, file_name: str) -> Path:
    """`out` names a folder (existing, ending in a separator, or not ending in .gguf) or a file."""
    if Path(file_name).name != file_name or file_name in ("", ".", ".."):
        raise VerificationError(f"refusing file name {file_name!r} from the statement: it is not a plain file name")
    text = str(out)
    folder = Path(text).is_dir() or text.endswith(("/", os.sep)) or not text.lower().endswith(".gguf")
    return Path(text) / file_name if folder else Path(text)


def pull(client: RegistryClient, reference: str, out: str | Path, progress_factory=None) -> tuple[Path, bundle_verify.VerifiedBundle]:
    parse_reference(reference)
    policy = load_policy(client.url)
    bundle = client.resolve(reference)
    verified = bundle_verify.verify_bundle(bundle, reference, policy, client.consistency_proof)
    target = target_path(out, verified.file_name)
    if target.is_file() and target.stat().st_size == verified.size and digest_file(target) == verified.digest:
        bundle_verify.record_success(policy, verified)  # already here, byte for byte
        return target, verified
    partial = cache_dir() / "partial" / f"{hashlib.sha256(client.url.encode()).hexdigest()[:16]}-{verified.digest[7:]}.part"
    progress = progress_factory(verified.size, f"pull {verified.file_name}") if progress_factory else None
    try:
        actual = client.download_blob(verified.digest, partial, progress.advance if progress else None)
    finally:
        if progress:
            progress.close()
    if actual != verified.digest:
        partial.unlink(missing_ok=True)
        raise VerificationError(f"downloaded bytes hash to {actual}, but the signed statements name {verified.digest}; nothing was written")
    target.parent.mkdir(parents=True, exist_ok=True)
    if partial.stat().st_dev == target.parent.stat().st_dev:
        os.replace(partial, target)
    else:
        _copy_then_rename(partial, target)
    bundle_verify.record_success(policy, verified)
    return target, verified


def _copy_then_rename(src: Path, target: Path) -> None:
    tmp = target.parent / f".{target.name}.assay-tmp"
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while block := fin.read(1 << 20):
                fout.write(block)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, target)
        src.unlink()
    finally:
        tmp.unlink(missing_ok=True)


def verify_file(client: RegistryClient, path: Path, reference: str) -> bundle_verify.VerifiedBundle:
    """Re-check a file already on disk against the release's signed statements and the log."""
    if not path.is_file():
        raise AssayError(f"{path} is not a file")
    policy = load_policy(client.url)
    bundle = client.resolve(reference)
    verified = bundle_verify.verify_bundle(bundle, reference, policy, client.consistency_proof)
    actual = digest_file(path)
    if actual != verified.digest:
        raise VerificationError(f"{path} hashes to {actual}, but {reference} is signed for {verified.digest}")
    bundle_verify.record_success(policy, verified)
    return verified
