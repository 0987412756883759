"""`assay publish`: check the file locally, upload it (resumably), sign the release statement."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assay.core import dsse, ggufparse, keys, ossf_signature, statements
from assay.core.conversion import ConversionRecipe, is_conversion
from assay.client.http import RegistryClient, RegistryHTTPError
from assay.core.digest import digest_bytes, digest_file, file_digests
from assay.core.errors import AssayError, VerificationError
from assay.core.names import parse_reference
from assay.core.splits import sibling_parts
from assay.client.together import digest_files


@dataclass
class PublishPlan:
    path: Path
    reference: str
    digest: str
    size: int
    quantization: str
    base: dict | None
    recipe: dict | None
    model_card: str
    imatrix: Path | None = None  # the importance matrix the recipe names (uploaded with the release)
    calibration: Path | None = None  # the text the matrix was computed from, where the recipe says (uploaded too)
    upstream: tuple[tuple[Path, str], ...] = ()  # a conversion's upstream files (path, digest), uploaded too
    parts: tuple[tuple[Path, str], ...] = ()  # a split GGUF: every part in order (path, digest), the first being `path`
    model_signing_sig: Path | None = None  # an OpenSSF model_signing signature made beforehand, to publish with it
    blake3: dict = field(default_factory=dict)  # each file's sha256 digest -> its blake3 digest (declared in the statement)

    @property
    def files(self) -> list[tuple[str, str]]:
        """Every file of the release in order, (name, digest)."""
        return [(p.name, d) for p, d in self.parts] or [(self.path.name, self.digest)]


def load_recipe(path: Path, recipe_path: Path | None) -> dict | None:
    """The recipe written by `assay quantize` next to its output (FILE.recipe.json), if any."""
    candidate = recipe_path or path.with_name(path.name + ".recipe.json")
    if not candidate.exists():
        if recipe_path:
            raise AssayError(f"recipe file {recipe_path} does not exist")
        return None
    try:
        doc = json.loads(candidate.read_text(encoding="utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise AssayError(f"recipe file {candidate} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise AssayError(f"cannot read recipe file {candidate}: {exc.strerror or exc}") from None
    if not isinstance(doc, dict):
        raise AssayError(f"recipe file {candidate} is not a JSON object")
    return doc


def read_model_card(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AssayError(f"model card {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                         "save it as UTF-8 Markdown") from None
    except OSError as exc:
        raise AssayError(f"cannot read model card {path}: {exc.strerror or exc}") from None


def plan_publish(path: Path, reference: str, *, base_ref: str | None, recipe_path: Path | None, model_card_path: Path | None,
                 progress_factory=None, imatrix_path: Path | None = None, calibration_path: Path | None = None,
                 upstream_dir: Path | None = None, model_signing_sig: Path | None = None) -> PublishPlan:
    parse_reference(reference)
    if not path.is_file():
        raise AssayError(f"{path} is not a file")
    files = sibling_parts(path) or [path]  # a split GGUF: its first part names them all
    info = ggufparse.parse_gguf(path)  # refuses non-GGUF and hostile headers before any upload
    for part in files[1:]:
        ggufparse.parse_gguf(part)
    recipe_doc = load_recipe(path, recipe_path)
    both = digest_files(files, progress_factory, hash_file=file_digests)  # a split GGUF's parts hashed at once
    digests, blake3 = [sha for sha, _ in both], {sha: b3 for sha, b3 in both}
    digest = digests[0]
    parts = tuple(zip(files, digests)) if len(files) > 1 else ()
    base, recipe, upstream = None, None, ()
    if recipe_doc is not None:
        recipe = recipe_doc.get("recipe", recipe_doc)
        if recipe_doc.get("output_digest") and recipe_doc["output_digest"] != digest:
            raise AssayError(f"{path} does not match its recipe file (the recipe was written for {recipe_doc['output_digest']})")
    if is_conversion(recipe):
        if base_ref:
            raise AssayError("this file was converted from an upstream checkpoint (its recipe names the upstream files): it has no base; drop --base")
        upstream = _upstream_files(recipe, upstream_dir or (Path(recipe_doc["upstream_dir"]) if isinstance(recipe_doc.get("upstream_dir"), str) else None))
    elif upstream_dir is not None:
        raise AssayError("--upstream given but the file has no conversion recipe (made by `assay convert`)")
    elif recipe_doc is not None:
        if not base_ref:
            raise AssayError("this file has a quantization recipe: name its base release with --base ns/model:tag")
        base = {"name": base_ref, "digest": recipe_doc.get("base_digest")}
        split = (recipe.get("options") or {}).get("split") if isinstance(recipe, dict) else None
        if parts and split is None:
            raise AssayError(f"{path.name} is part 1 of a split GGUF of {len(parts)} parts, but its recipe does not say how it was "
                             "split, so no verifier could rebuild the parts: quantize with `assay quantize ... --split-max-tensors N` "
                             "(or --split-max-size) instead of splitting afterwards")
        if split is not None and not parts:
            raise AssayError(f"the recipe of {path.name} splits the quant ({split}), but {path.name} is not the first part of a split GGUF")
    elif base_ref:
        raise AssayError(f"--base given but no recipe found ({path.name}.recipe.json); quantize with `assay quantize` or pass --recipe")
    imatrix = _imatrix_file(recipe, recipe_doc or {}, imatrix_path)
    calibration = _calibration_file(recipe, recipe_doc or {}, calibration_path)
    card = read_model_card(model_card_path) if model_card_path else ""
    return PublishPlan(path, reference, digest, path.stat().st_size, ggufparse.file_type_name(info.file_type), base, recipe, card,
                       imatrix, calibration, upstream, parts, model_signing_sig, blake3=blake3)


def model_signing_for(plan: PublishPlan, signer: keys.Signer) -> dict | None:
    """The OpenSSF model_signing signature to publish with the release (assay/core/ossf_signature.py):
    the one given with --model-signing-sig, checked to be by `signer` over exactly the release's
    files; else, for an ECDSA P-256 key, a new one; an Ed25519 key makes none (model_signing
    verifies elliptic-curve keys only)."""
    if plan.model_signing_sig is None:
        if signer.algorithm != keys.ECDSA_P256:
            return None
        _, model, _ = parse_reference(plan.reference)
        return ossf_signature.sign(signer, plan.path.name if not plan.parts else model, plan.files)
    where = plan.model_signing_sig
    try:
        data = where.read_bytes()
    except OSError as exc:
        raise AssayError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        bundle = ossf_signature.load(data)
        signed = ossf_signature.verify(bundle, signer.public_key)
        ossf_signature.check_covers(signed, plan.files)
    except AssayError as exc:
        hint = (" Publish with the key that made it: `assay keygen --import KEY.pem --out FILE`, `assay keys register --key FILE`, "
                "then `assay publish ... --key FILE`." if isinstance(exc, VerificationError) and "key" in str(exc) else "")
        raise type(exc)(f"{where}: {exc}.{hint}") from None
    return bundle


def _upstream_files(recipe: dict, folder: Path | None) -> tuple[tuple[Path, str], ...]:
    """The upstream files a conversion recipe names, found in `folder` by name and checked by digest."""
    try:
        parsed = ConversionRecipe.from_json(recipe)
    except AssayError as exc:
        raise AssayError(f"the conversion recipe cannot be used: {exc}") from None
    if folder is None or not folder.is_dir():
        where = f" ({folder} is not a folder)" if folder is not None else ""
        raise AssayError(f"the recipe names {len(parsed.files)} upstream files{where}: pass their folder with --upstream DIR")
    found = []
    for f in parsed.files:
        p = folder / f.name
        if not p.is_file():
            raise AssayError(f"upstream file {f.name} is not in {folder}; the recipe names it ({f.digest})")
        got = digest_file(p)
        if got != f.digest:
            raise AssayError(f"upstream file {p} is {got}, not the recipe's {f.digest} (it changed since the conversion)")
        found.append((p, f.digest))
    return tuple(found)


def _recipe_input(wanted: str | None, given: Path | None, recorded: object, what: str, flag: str) -> Path | None:
    """The file a recipe names by digest (`wanted`): `given` on the command line, else where the
    toolchain recorded it; its digest must be the recipe's."""
    if wanted is None:
        if given is not None:
            raise AssayError(f"{flag} given but the recipe names no {what}")
        return None
    path = given or (Path(recorded) if isinstance(recorded, str) else None)
    if path is None or not path.is_file():
        where = f" ({path} does not exist)" if path is not None else ""
        raise AssayError(f"the recipe names the {what} {wanted}{where}: pass its file with {flag} FILE")
    got = digest_file(path)
    if got != wanted:
        raise AssayError(f"{what} {path} is {got}, not the recipe's {wanted}")
    return path


def _imatrix_file(recipe: dict | None, recipe_doc: dict, given: Path | None) -> Path | None:
    """The importance matrix the recipe names (--imatrix, else where `assay quantize` recorded it)."""
    wanted = recipe.get("imatrix") if isinstance(recipe, dict) else None
    return _recipe_input(wanted, given, recipe_doc.get("imatrix_file"), "importance matrix", "--imatrix")


def _calibration_file(recipe: dict | None, recipe_doc: dict, given: Path | None) -> Path | None:
    """The calibration text a recipe's `options.imatrix_source` names (--calibration, else where
    `assay imatrix` recorded it)."""
    options = recipe.get("options") if isinstance(recipe, dict) else None
    source = options.get("imatrix_source") if isinstance(options, dict) else None
    wanted = source.get("calibration") if isinstance(source, dict) else None
    return _recipe_input(wanted, given, recipe_doc.get("calibration_file"), "calibration text", "--calibration")


def next_version(client: RegistryClient, reference: str) -> int:
    try:
        return int(client.resolve(reference, any_status=True)["version"]) + 1
    except RegistryHTTPError as exc:
        if exc.status == 404:
            return 1
        raise


def publish(client: RegistryClient, plan: PublishPlan, signer, *, version: int | None = None, progress_factory=None) -> dict:
    model_signing = model_signing_for(plan, keys.as_signer(signer))  # before any upload: a wrong signature stops here
    if base := plan.base:
        base_bundle = client.resolve(base["name"], any_status=True)
        if base["digest"] is None:
            base["digest"] = base_bundle["file"]["digest"]
        elif base_bundle["file"]["digest"] != base["digest"]:
            raise AssayError(f"the recipe's base digest {base['digest']} is not {base['name']} ({base_bundle['file']['digest']})")
    uploads = [(p, d, p.stat().st_size) for p, d in plan.parts] or [(plan.path, plan.digest, plan.size)]
    if plan.imatrix is not None:
        uploads.append((plan.imatrix, plan.recipe["imatrix"], plan.imatrix.stat().st_size))
    if plan.calibration is not None:
        uploads.append((plan.calibration, plan.recipe["options"]["imatrix_source"]["calibration"], plan.calibration.stat().st_size))
    uploads += [(p, d, p.stat().st_size) for p, d in plan.upstream]
    for path, digest, size in uploads:
        if client.blob_exists(digest):  # one this account may already use
            continue
        progress = progress_factory(size, f"upload {path.name}") if progress_factory else None
        try:
            client.upload_blob(path, digest, progress.advance if progress else None)
        finally:
            if progress:
                progress.close()
    ns, model, tag = parse_reference(plan.reference)
    payload = statements.build_release_statement(
        subject_name=plan.path.name, subject_digest=plan.digest, namespace=ns, model=model, tag=tag,
        version=version or next_version(client, plan.reference), quantization=plan.quantization, base=plan.base,
        recipe=plan.recipe, model_card_digest=digest_bytes(plan.model_card.encode()) if plan.model_card else None,
        created=datetime.now(timezone.utc), parts=[(p.name, d) for p, d in plan.parts] or None,
        blake3=plan.blake3 or None,
    )
    envelope = dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)
    return client.create_release(envelope, plan.model_card, model_signing)
