"""`assay pull` and `assay verify`: verify everything, then (and only then) rename into place."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from assay.client import bundle_verify
from assay.core import dsse, keys, ossf_signature
from assay.client.catchup import catch_up
from assay.client.diskwrite import copy_file
from assay.client.http import RegistryClient, RegistryHTTPError
from assay.client.config import cache_dir, registry_dir, write_bytes_atomic, write_json_atomic
from assay.core.digest import algorithm_of, digest_file, new_hash
from assay.core.durable import fsync_directory
from assay.core.errors import AssayError, VerificationError
from assay.core.names import file_name_problem, parse_reference
from assay.client.together import Check, Job, digest_files, run_together
from assay.client.trustpolicy import TrustPolicy


def load_policy(registry_url: str) -> TrustPolicy:
    directory = registry_dir(registry_url)
    if not (directory / "policy.json").exists():
        raise VerificationError(f"registry {registry_url} is not trusted yet: run `assay trust add {registry_url}`")
    return TrustPolicy.load(directory)


def resolve_verified(client: RegistryClient, reference: str) -> dict:
    """The bundle of the newest verified release. A release the verifier rejected is a failed
    verification (exit 3), not an error; one still pending is an error (exit 1)."""
    try:
        return client.resolve(reference)
    except RegistryHTTPError as exc:
        if exc.body.get("release_status") == "rejected":
            raise VerificationError(str(exc)) from None
        raise


def target_path(out: str | Path, file_name: str) -> Path:
    """`out` names a folder (existing, ending in a separator, or not ending in .gguf) or a file."""
    problem = file_name_problem(file_name)
    if problem is not None or Path(file_name).name != file_name:
        raise VerificationError(f"refusing file name {file_name[:80]!r} from the statement: {problem or 'it is not a plain file name'}")
    text = str(out)
    folder = Path(text).is_dir() or text.endswith(("/", os.sep)) or not text.lower().endswith(".gguf")
    return Path(text) / file_name if folder else Path(text)


def pull(client: RegistryClient, reference: str, out: str | Path, progress_factory=None,
         notice: Callable[[str], None] | None = None, *, force: bool = False,
         model_signing: bool = False) -> tuple[Path, bundle_verify.VerifiedBundle]:
    """Verify the release, download its bytes into a partial file in the cache (resuming one a
    cut run left), check their digest and only then move them to the target.

    `model_signing`: also write the publisher's OpenSSF model_signing signature and public key
    beside the file (model_signing_paths), after the file itself is in place.

    The partial file is shared by every pull of the same digest from the same registry, so a
    lock beside it is held from the download until the bytes are in place: a second concurrent
    pull waits (`notice` is told so), then finds the file at its target or resumes the partial."""
    parse_reference(reference)
    policy = load_policy(client.url)
    bundle = resolve_verified(client, reference)
    with policy.remembering():  # what verifying learned is saved once, afterwards, pass or fail
        return _pull_verified(client, bundle, reference, policy, out, progress_factory, notice, force=force, model_signing=model_signing)


def _pull_verified(client: RegistryClient, bundle: dict, reference: str, policy: TrustPolicy, out: str | Path, progress_factory,
                   notice, *, force: bool, model_signing: bool) -> tuple[Path, bundle_verify.VerifiedBundle]:
    verified = bundle_verify.verify_bundle(bundle, reference, policy, client)
    signature_files = _model_signing_files(verified, out, force) if model_signing else []
    if verified.release.is_split:
        target = _pull_parts(client, bundle, verified, out, progress_factory, notice, force=force)
        _write_small_files(signature_files)
        bundle_verify.record_success(policy, verified)
        return target, verified
    target = target_path(out, verified.file_name)
    check_target_writable(target)
    if not force and target.exists() and not _already_there(target, verified):
        raise AssayError(f"{target} already exists and is not {reference} ({verified.digest}); "
                         "nothing was downloaded: move it away, or pass --force to replace it")
    partial = cache_dir() / "partial" / f"{hashlib.sha256(client.url.encode()).hexdigest()[:16]}-{verified.digest[7:]}.part"
    wait_message = f"another `assay pull` is downloading {verified.file_name}; waiting for it to finish"
    with exclusive_lock(partial.with_suffix(".lock"), lambda: notice and notice(wait_message)):
        if not _already_there(target, verified):
            if not _copy_known(verified, partial):
                _download(client, verified, partial, progress_factory)
            _move_into_place(partial, target, force=force)
    _write_small_files(signature_files)
    bundle_verify.record_success(policy, verified)
    _remember(verified.digest, target)
    return target, verified


# -- the publisher's OpenSSF model_signing signature, for `model_signing verify key` ----------------

def model_signing_paths(first_file: Path) -> tuple[Path, Path]:
    """(signature, publisher public key PEM) written beside a pulled release's (first) file."""
    return first_file.with_name(first_file.name + ".sig"), first_file.with_name(first_file.name + ".publisher.pem")


def _model_signing_files(verified: bundle_verify.VerifiedBundle, out: str | Path, force: bool) -> list[tuple[Path, bytes]]:
    """What --model-signing writes, checked before any download: the release must carry a signature
    (bundle_verify checked it) and nothing different may already sit at either path."""
    if verified.model_signing is None:
        raise AssayError(f"{verified.reference} carries no OpenSSF model_signing signature: its publisher signed it with key "
                         f"{verified.publisher_keyid}, and only releases signed with an ECDSA P-256 key carry one; "
                         "nothing was downloaded (pull without --model-signing)")
    folder = Path(out) if verified.release.is_split else None
    first = target_path(folder or out, verified.file_name)
    signature_path, key_path = model_signing_paths(first)
    files = [(signature_path, ossf_signature.dumps(verified.model_signing)), (key_path, keys.public_key_to_pem(verified.publisher_public_key))]
    for path, data in files:
        check_target_writable(path)
        if not force and path.exists() and (not path.is_file() or path.read_bytes() != data):
            raise AssayError(f"{path} already exists and is not this release's model_signing file; nothing was downloaded: "
                             "move it away, or pass --force to replace it")
    return files


def _write_small_files(files: list[tuple[Path, bytes]]) -> None:
    """Write each file atomically (config.write_bytes_atomic), readable by all like the model."""
    for path, data in files:
        try:
            write_bytes_atomic(path, data, 0o644)
        except OSError as exc:
            raise AssayError(f"cannot write {path}: {exc.strerror or exc}") from None


# -- a split GGUF: every part, all or nothing ------------------------------------------------------

def _pull_parts(client: RegistryClient, bundle: dict, verified: bundle_verify.VerifiedBundle, out: str | Path, progress_factory,
                notice, *, force: bool) -> Path:
    """Download every part of a split release into its own partial file, check each against the
    digest the signed statement gives it, and only when all are there move them into the folder
    `out` together: a failure before the last rename leaves none of them at their final names.
    Returns the first part's path (what llama.cpp opens)."""
    parts = verified.release.parts
    sizes = {p.get("digest"): p.get("size") for p in bundle.get("parts") or [] if isinstance(p, dict)}
    if str(out).lower().endswith(".gguf") and not Path(out).is_dir():
        raise AssayError(f"{verified.reference} is a split GGUF of {len(parts)} parts: pull it into a folder (e.g. -o models/), not {out}")
    targets = [target_path(Path(out), name) for name, _ in parts]
    for t in targets:
        check_target_writable(t)
    for name, digest in parts:
        size = sizes.get(digest)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise VerificationError(f"the registry gives no size for part {name} ({digest}) of {verified.reference}")
    there = _parts_already_there([(t, verified.check_digest(digest), sizes[digest]) for t, (_, digest) in zip(targets, parts)])
    for t, (name, digest) in zip(targets, parts):
        if not force and t in there and not there[t]:
            raise AssayError(f"{t} already exists and is not part {name} of {verified.reference} ({digest}); "
                             "nothing was downloaded: move it away, or pass --force to replace it")
    stem = hashlib.sha256(client.url.encode()).hexdigest()[:16]
    partials = [cache_dir() / "partial" / f"{stem}-{digest[7:]}.part" for _, digest in parts]
    with ExitStack() as locks:
        for partial in sorted(set(partials)):  # one order for every pull: two pulls never wait on each other in a circle
            locks.enter_context(exclusive_lock(partial.with_suffix(".lock"),
                                               lambda: notice and notice(f"another `assay pull` is downloading parts of {verified.reference}; waiting")))
        todo, jobs = [], []
        for t, partial, (name, digest) in zip(targets, partials, parts):
            size = sizes[digest]
            if there[t] if t in there else _matches(t, verified.check_digest(digest), size):  # one there before, or one another pull just finished
                continue
            if partial not in (p for p, _ in todo):  # two parts with the same bytes: one download
                jobs.append(partial_filler(client, replace(verified, file_name=name, digest=digest, size=size), partial, progress_factory))
            todo.append((partial, t))
        run_together(jobs, limit=client.downloads_at_once())  # several parts at once, each hashed on its own thread
        _move_all_into_place(todo, force=force)
    for t, (_, digest) in zip(targets, parts):
        _remember(digest, t)
    return targets[0]


def _parts_already_there(parts: list[tuple[Path, str, int]]) -> dict[Path, bool]:
    """For each target that exists: whether it already holds its part (hashed at once, like the
    downloads)."""
    there: dict[Path, bool] = {}

    def checker(target: Path, digest: str, size: int) -> Job:
        def run(check: Check) -> None:
            there[target] = _matches(target, digest, size)
        return run
    run_together([checker(*p) for p in parts if p[0].exists()])
    return there


def _matches(path: Path, check_digest: str, size: int) -> bool:
    """Whether `path` holds the file whose check digest (VerifiedBundle.check_digest: its sha256, or
    its blake3 when the statement and the verdicts vouch for it) is `check_digest`."""
    try:
        return (path.is_file() and path.stat().st_size == size
                and digest_file(path, algorithm=algorithm_of(check_digest)) == check_digest)
    except OSError:
        return False  # unreadable: try to replace it, which says why if it cannot


def _move_all_into_place(moves: list[tuple[Path, Path]], *, force: bool = False) -> None:
    """Bring every verified partial next to its target under a temporary name (a copy when the
    cache is on another file system), then rename them all (without `force`, none over a file
    that appeared at its name meanwhile: _rename_no_clobber); if anything fails, or Ctrl-C comes,
    the parts renamed by this call and the temporary files (a half copy too) are removed again
    and the verified downloads kept in the cache."""
    import shutil

    staged: list[tuple[Path, Path, bool]] = []  # (partial, temporary name beside the target, moved rather than copied)
    renamed: list[Path] = []
    try:
        for i, (partial, target) in enumerate(moves):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.assay-tmp")
            used_again = any(p == partial for p, _ in moves[i + 1:])  # the same bytes at a later part's name
            same_fs = partial.stat().st_dev == target.parent.stat().st_dev and not used_again
            if same_fs:
                os.replace(partial, tmp)
            staged.append((partial, tmp, same_fs))  # a copy is listed before it is made: a half copy is removed too
            if not same_fs:
                shutil.copyfile(partial, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
        for (_, tmp, _), (_, target) in zip(staged, moves):
            _rename_no_clobber(tmp, target, force)
            renamed.append(target)
    except BaseException as exc:
        _take_back(staged, [target for _, target in moves], renamed)
        if isinstance(exc, FileExistsError):
            raise AssayError(f"{exc.filename} appeared while the parts were downloading; it was not replaced (move it away, or "
                             "pass --force to replace it) and none of them was left at its final name (the verified downloads "
                             "are kept in the cache for the next try)") from None
        if not isinstance(exc, OSError):
            raise
        raise AssayError(f"cannot write the parts into {moves[0][1].parent}: {exc.strerror or exc}; none of them was left "
                         "at its final name (the verified downloads are kept in the cache for the next try)") from None
    for folder in {target.parent for _, target in moves}:
        fsync_directory(folder)  # the new names survive a crash, as the bytes under them do
    for partial, _, moved in staged:
        if not moved:
            partial.unlink(missing_ok=True)


def _take_back(staged: list[tuple[Path, Path, bool]], targets: list[Path], renamed: list[Path]) -> None:
    """Undo _move_all_into_place: a part moved out of the cache goes back there (from its final
    or its temporary name), a copy is removed."""
    for (partial, tmp, moved), target in zip(staged, targets):
        source = target if target in renamed else tmp
        if moved:
            try:
                os.replace(source, partial)  # back into the cache
                continue
            except OSError:
                pass
        source.unlink(missing_ok=True)


# -- verified copies already on this machine -------------------------------------------------------
KNOWN_FILE = "pulled.json"
MAX_KNOWN = 8


def _known_paths() -> dict[str, list[str]]:
    """digest -> the paths of verified copies pulled before; what a damaged file holds in
    another shape is left out (it is only a hint)."""
    try:
        data = json.loads((cache_dir() / KNOWN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {digest: [p for p in paths if isinstance(p, str)] for digest, paths in data.items() if isinstance(paths, list)}


def _remember(digest: str, path: Path) -> None:
    """Note where a verified copy of `digest` now lies (a hint: it is hashed again before use)."""
    try:
        with exclusive_lock(cache_dir() / (KNOWN_FILE + ".lock")):
            known = _known_paths()
            paths = [p for p in known.get(digest, []) if p != str(path.resolve())]
            known[digest] = [str(path.resolve()), *paths][:MAX_KNOWN]
            write_json_atomic(cache_dir() / KNOWN_FILE, known)
    except (OSError, AssayError):
        pass  # only a hint for later pulls and runs


def _copy_known(verified: bundle_verify.VerifiedBundle, partial: Path) -> bool:
    """Fill `partial` from a copy of these bytes pulled before (e.g. `assay run` after
    `assay pull`), hashing while copying; False (nothing kept) if no such copy still matches."""
    for source in _known_paths().get(verified.digest, []):
        try:
            if not (Path(source).is_file() and Path(source).stat().st_size == verified.size):
                continue
            expected = verified.check_digest()
            algorithm = algorithm_of(expected)
            h = new_hash(algorithm)
            with open(source, "rb", buffering=0) as src, open(partial, "wb", buffering=0) as dst:
                copy_file(src, dst, h)  # on disk before it is renamed to the target, as a download is
            if f"{algorithm}:{h.hexdigest()}" == expected:
                return True
        except OSError:
            pass
        partial.unlink(missing_ok=True)
    return False


def level_lines(verified: bundle_verify.VerifiedBundle) -> list[str]:
    """The two lines `pull` and `run` print: the level and what it rests on."""
    from assay.core.levels import DESCRIPTIONS

    level = verified.level
    lines = [f"level: {level.name} ({DESCRIPTIONS[level.name]})", f"chain: {level.chain_text()}"]
    if len(verified.verifiers) > 1:
        lines.append(f"verifiers: {len(verified.verifiers)} pinned verifiers passed it ({', '.join(verified.verifiers)})")
    return lines


def summary(verified: bundle_verify.VerifiedBundle, path: Path | None = None) -> dict:
    """What `--json` prints for a verified release."""
    out = {
        "reference": verified.reference, "version": verified.version, "file": verified.file_name, "digest": verified.digest,
        "size": verified.size, "publisher_key": verified.publisher_keyid, "verifier_key": verified.verifier_keyid,
        "verifiers": list(verified.verifiers or (verified.verifier_keyid,)),
        "level": verified.level.name, "level_reason": verified.level.reason,
        "chain": [link.to_dict() for link in verified.level.chain],
        "log": {"origin": verified.checkpoint.origin, "size": verified.checkpoint.size}, "witnesses": list(verified.witnesses),
        "checked_by": algorithm_of(verified.check_digest()),  # blake3 where the statement and the verdicts vouch for it
    }
    if path is not None:
        out["path"] = str(path)
    if verified.release.is_split:  # every part, in order (the first is "file"/"path")
        out["parts"] = [{"name": n, "digest": d, **({"path": str(path.with_name(n))} if path is not None else {})}
                        for n, d in verified.release.parts]
    return out


def _already_there(target: Path, verified: bundle_verify.VerifiedBundle) -> bool:
    return _matches(target, verified.check_digest(), verified.size)


def check_target_writable(target: Path) -> None:
    """Refuse before downloading anything when the target cannot be written."""
    if target.is_dir():
        raise AssayError(f"cannot write {target}: it is a folder")
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folders that do not exist yet are made after the download
    if not existing.is_dir():
        raise AssayError(f"cannot write {target}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AssayError(f"cannot write {target}: no permission to write in {existing}")


def partial_filler(client: RegistryClient, part: bundle_verify.VerifiedBundle, partial: Path, progress_factory) -> Job:
    """A job for run_together: fill `partial` with the verified bytes of `part`, from a copy on
    this machine or by downloading them."""
    def fill(check: Check) -> None:
        if not _copy_known(part, partial):
            _download(client, part, partial, progress_factory, check)
    return fill


def _download(client: RegistryClient, verified: bundle_verify.VerifiedBundle, partial: Path, progress_factory,
              check: Check | None = None) -> None:
    """`check` is called after every block received (together.run_together stops a download through it)."""
    progress = progress_factory(verified.size, f"pull {verified.file_name}") if progress_factory else None

    def advance(n: int) -> None:
        if check:
            check()
        if progress:
            progress.advance(n)
    expected = verified.check_digest()
    try:
        actual = client.download_blob(verified.digest, partial, advance if progress or check else None, expected_size=verified.size,
                                      algorithm=algorithm_of(expected))
    except OSError as exc:
        raise AssayError(f"cannot write the download to {partial}: {exc.strerror or exc}") from None
    finally:
        if progress:
            progress.close()
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise VerificationError(f"downloaded bytes hash to {actual}, but the signed statements name {expected}"
                                f"{f' (the file {verified.digest})' if expected != verified.digest else ''}; nothing was written")


def _move_into_place(partial: Path, target: Path, *, force: bool = False) -> None:
    """Move the verified download to `target` (a copy across file systems). Without `force`, a file
    that appeared at the target while it downloaded is not replaced (_rename_no_clobber); whatever
    fails, the download is kept in the cache."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if partial.stat().st_dev != target.parent.stat().st_dev:
                raise OSError(errno.EXDEV, "another file system")
            _rename_into_place(partial, target, force)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_then_rename(partial, target, force)
        fsync_directory(target.parent)  # the new name survives a crash, as the bytes under it do
    except FileExistsError:
        raise AssayError(f"{target} appeared while it was downloading; it was not replaced: move it away, or pass --force to "
                         f"replace it (the verified download is kept in {partial} for the next try)") from None
    except OSError as exc:
        raise AssayError(f"cannot write {target}: {exc.strerror or exc} (the verified download is kept in "
                         f"{partial} for the next try)") from None


def _rename_into_place(partial: Path, target: Path, force: bool) -> None:
    """Rename on one file system: with `force` straight over the target; without, by way of a
    temporary name beside it, and back into the cache if the target is taken."""
    if force:
        os.replace(partial, target)
        return
    tmp = target.with_name(f".{target.name}.{os.urandom(4).hex()}.assay-tmp")
    os.replace(partial, tmp)
    try:
        _rename_no_clobber(tmp, target, force)
    except BaseException:
        os.replace(tmp, partial)
        raise


def _rename_no_clobber(tmp: Path, target: Path, force: bool) -> None:
    """Rename `tmp`, beside `target`, to `target`: with `force` over whatever is there; without,
    only while nothing is (os.link refuses atomically), so a file that appeared there during the
    download is never replaced: FileExistsError naming the target."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
    except OSError:  # a file system without hard links: look, then rename
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _copy_then_rename(partial: Path, target: Path, force: bool) -> None:
    """Move across file systems: copy into a temp file beside the target, fsync, rename into place
    (_rename_no_clobber), and only then remove the partial. A failure leaves the target untouched
    and the partial kept."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".assay-tmp")
    try:
        with os.fdopen(fd, "wb", buffering=0) as dst, open(partial, "rb", buffering=0) as src:
            copy_file(src, dst)
        os.chmod(tmp, 0o644)
        _rename_no_clobber(Path(tmp), target, force)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    partial.unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path: Path, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made if needed, removed on release). If another process
    holds it, call on_wait once and wait. A lock file its holder removed while we waited is not
    the lock any more: open the path again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssayError(f"cannot make the download folder {path.parent}: {exc.strerror or exc}") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AssayError(f"cannot make the lock file {path}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                    on_wait = None
                fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)  # still locked: a waiter on this file sees it gone and retries
        finally:
            os.close(fd)


def verify_file(client: RegistryClient, path: Path, reference: str) -> bundle_verify.VerifiedBundle:
    """Re-check a file already on disk against the release's signed statements and the log."""
    if not path.is_file():
        raise AssayError(f"{path} is not a file")
    policy = load_policy(client.url)
    bundle = resolve_verified(client, reference)
    with policy.remembering():
        verified = bundle_verify.verify_bundle(bundle, reference, policy, client)
        _check_file_and_parts(path, reference, verified)
        bundle_verify.record_success(policy, verified)
    return verified


def _check_file_and_parts(path: Path, reference: str, verified: bundle_verify.VerifiedBundle) -> None:
    """The file, and for a split GGUF every other part beside it, against their signed digests
    (the parts hashed at once: together.digest_files)."""
    files = [(path, verified.check_digest(), "")]
    for name, digest in verified.release.parts[1:]:
        part = path.with_name(name)
        if not part.is_file():
            raise VerificationError(f"part {name} of {reference} is not beside {path.name}")
        files.append((part, verified.check_digest(digest), " for that part"))
    algorithm = algorithm_of(files[0][1])  # every file's, or none: the statement declares BLAKE3 for all or none
    try:
        actual = digest_files([f for f, _, _ in files], hash_file=lambda p, progress: digest_file(p, progress, algorithm))
    except OSError as exc:
        raise AssayError(f"cannot read {exc.filename or path}: {exc.strerror or exc}") from None
    for (file, digest, what), got in zip(files, actual):
        if got != digest:
            raise VerificationError(f"{file} hashes to {got}, but {reference} is signed for {digest}{what}")


@dataclass
class StatementCheck:
    """One signed statement of a bundle, as `assay inspect` shows it."""

    name: str                   # release | verdict | provenance
    payload: bytes | None       # None when the envelope cannot even be parsed
    signed_by: list[str]
    signature_ok: bool | None   # None: not checked (the registry is not trusted)
    signature: str              # who signed it, or why it does not verify
    log_ok: bool | None
    log: str

    @property
    def ok(self) -> bool:
        return bool(self.signature_ok and self.log_ok)


_MALFORMED = (AssayError, KeyError, IndexError, TypeError, AttributeError, ValueError)


def check_statements(bundle: dict, reference: str, policy: TrustPolicy | None, source=None) -> list[StatementCheck]:
    """Check each signed statement of a bundle on its own, with the pull path's checks: the
    release envelope against the publisher key (key id, revocation, trust policy), the verdict
    and provenance envelopes against the pinned verifier keys, and each one's log inclusion
    proof against a checkpoint signed by the pinned log key."""
    with policy.remembering() if policy is not None else contextlib.nullcontext():
        return _check_statements(bundle, reference, policy, source)


def _check_statements(bundle: dict, reference: str, policy: TrustPolicy | None, source) -> list[StatementCheck]:
    checks = []
    checkpoint, text, log_problem = None, None, None
    if policy is not None:
        try:
            checkpoint, text = bundle_verify.verify_log_checkpoint(bundle, policy)
            if source is not None:
                bundle_verify.verify_consistency(policy.newest_checkpoint(), checkpoint, source.consistency_proof, policy, allow_older=True)
                catch_up(policy, source, checkpoint)
        except _MALFORMED as exc:
            log_problem = f"NOT VERIFIED: {exc}"
            checkpoint = None
    for name in ("release", "verdict", "provenance"):
        envelope = bundle.get(f"{name}_envelope")
        if not envelope:
            continue
        try:
            parsed = dsse.parse_envelope(envelope)
            payload, signed_by = parsed.payload, [keyid for keyid, _ in parsed.signatures]
        except AssayError:
            payload, signed_by = None, []
        if policy is None:
            checks.append(StatementCheck(name, payload, signed_by, None, "not checked", None, "not checked"))
            continue
        log_ok, log = False, log_problem or ""
        if checkpoint is not None:
            try:
                index = bundle_verify.verify_inclusion(bundle, name, checkpoint)
                log_ok, log = True, f"included at index {index} of the signed log (size {checkpoint.size})"
            except _MALFORMED as exc:
                log = f"NOT VERIFIED: {exc}"
        try:
            if name == "release":
                _require_checkpoint(checkpoint, log_problem)
                indices = {n: bundle_verify.verify_inclusion(bundle, n, checkpoint) for n in ("release", "key_registration")}
                key = bundle_verify.verify_publisher_key(bundle, policy, bundle_verify.LogView(checkpoint, text, indices))
                bundle_verify.verify_release_envelope(bundle, reference, policy, key, indices["release"])
                signature_ok, signature = True, f"verified (publisher key {key.keyid}, owner {key.owner})"
            else:
                keyid = dsse.verify_envelope(envelope, policy.verifier_keys()).keyid
                signature_ok, signature = True, f"verified (pinned verifier key {keyid})"
        except _MALFORMED as exc:
            signature_ok, signature = False, f"NOT VERIFIED: {exc}"
        checks.append(StatementCheck(name, payload, signed_by, signature_ok, signature, log_ok, log))
    return checks


def _require_checkpoint(checkpoint, problem: str | None) -> None:
    """The publisher key is known only from its logged registration: no checkpoint, no key."""
    if checkpoint is None:
        raise VerificationError(f"the publisher key cannot be checked without the log: {problem}")
