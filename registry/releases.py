"""Release creation and resolution: the server-side checks of a signed release statement."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max

from assay.core import dsse, keys, ossf_signature, statements
from assay.core.digest import digest_bytes
from assay.core.errors import AssayError
from assay.core.names import parse_reference
from assay.core.conversion import ConversionRecipe, is_conversion
from assay.core.recipe import Recipe

from .sealing import log_statement
from .errors import RegistryError, not_found
from .models import ApiToken, Blob, Namespace, PublisherKey, RegistryModel, Release, ReleaseInput, VerificationStep
from .permissions import can_publish, can_read, token_allows
from .queueing import enqueue_verification
from .quotas import check_release_fits
from .status_reason import with_standing_reason

log = logging.getLogger(__name__)


def _signing_key(user, envelope: dict) -> PublisherKey:
    """The registered key of `user` that signed the envelope, or a 403 saying why none did."""
    try:
        keyids = list(dict.fromkeys(keyid for keyid, _ in dsse.parse_envelope(envelope).signatures))
    except AssayError as exc:
        raise RegistryError(400, f"release refused: {exc}") from None
    if not keyids:
        raise RegistryError(400, "release refused: the envelope has no signatures")
    candidates = {k.keyid: k for k in PublisherKey.objects.filter(keyid__in=[k for k in keyids if isinstance(k, str)])}
    reasons = []
    for keyid in keyids:
        key = candidates.get(keyid)
        if key is None:
            reasons.append(f"key {keyid} is not registered")
        elif key.user_id != user.id:
            reasons.append(f"key {keyid} belongs to another account")
        elif key.revoked:
            reasons.append(f"key {keyid} was revoked on {key.revoked_at:%Y-%m-%d}")
        else:
            try:
                dsse.verify_envelope(envelope, {key.keyid: keys.public_key_from_text(key.public_key)})
            except AssayError as exc:
                reasons.append(str(exc))
                continue
            return key
    raise RegistryError(403, "release refused: " + "; ".join(reasons))


def _namespace_for_publish(user, token, name: str) -> Namespace:
    ns = Namespace.objects.filter(name=name).first()
    if ns is None or not can_read(user, ns):
        raise not_found(f"namespace {name!r}")
    if not can_publish(user, ns):
        raise RegistryError(403, f"release refused: {user.username} may not publish in namespace {name!r}")
    if not token_allows(token, ApiToken.PUBLISH, name):
        raise RegistryError(403, f"release refused: this token may not publish in namespace {name!r}")
    return ns


def _checked_model_signing(signature: object, key: PublisherKey, stmt: statements.ReleaseStatement) -> dict | None:
    """The publisher's model_signing signature, if one was sent: made with the key that signed the
    statement and naming exactly the statement's files (assay/core/ossf_signature.py)."""
    if signature is None:
        return None
    try:
        signed = ossf_signature.verify(signature, keys.public_key_from_text(key.public_key))
        ossf_signature.check_covers(signed, stmt.parts)
        if len(ossf_signature.dumps(signature)) > ossf_signature.MAX_BUNDLE_BYTES:
            raise AssayError(f"larger than {ossf_signature.MAX_BUNDLE_BYTES // 1024} KiB")
    except AssayError as exc:
        raise RegistryError(400, f"release refused: model_signing signature: {exc}") from None
    return signature


def create_release(user, token, envelope: dict, model_card: str = "", model_signing: object = None) -> Release:
    key = _signing_key(user, envelope)
    try:
        payload = dsse.verify_envelope(envelope, {key.keyid: keys.public_key_from_text(key.public_key)}).payload
        stmt = statements.parse_release_statement(payload)
    except AssayError as exc:
        raise RegistryError(400, f"release refused: {exc}") from None
    ns = _namespace_for_publish(user, token, stmt.namespace)
    model_signing = _checked_model_signing(model_signing, key, stmt)
    blob = _usable_blob(user, token, stmt.subject_digest)
    if stmt.model_card_digest:
        if digest_bytes(model_card.encode()) != stmt.model_card_digest:
            raise RegistryError(400, "release refused: the model card does not match the statement's model_card_digest")
    elif model_card:
        raise RegistryError(400, "release refused: a model card was sent but the statement does not sign its digest")
    if stmt.base is not None:
        _check_base(user, token, stmt.base, ns)
    inputs = _recipe_inputs(user, token, stmt.recipe)
    # The other parts of a split GGUF: each uploaded like the first, kept as inputs of the release.
    inputs += [(ReleaseInput.PART, name, _usable_blob(user, token, digest)) for name, digest in stmt.parts[1:]]
    check_release_fits(ns, [blob, *(b for _, _, b in inputs)])
    try:
        with transaction.atomic():
            model, _ = RegistryModel.objects.get_or_create(namespace=ns, name=stmt.model)
            highest = _highest_version(Release.objects.select_for_update().filter(model=model, tag=stmt.tag))
            if stmt.version <= highest:
                raise RegistryError(409, f"release refused: {stmt.namespace}/{stmt.model}:{stmt.tag} is already at version {highest}; sign version {highest + 1} or higher")
            release = Release.objects.create(
                model=model, tag=stmt.tag, version=stmt.version, file_name=stmt.subject_name, blob=blob,
                quantization=stmt.quantization, base_digest=stmt.base.digest if stmt.base else "",
                base_name=stmt.base.name if stmt.base else "", recipe=stmt.recipe, model_card=model_card,
                statement_digest=digest_bytes(payload), envelope=envelope, publisher_key=key, publisher=user,
                model_signing=model_signing,
            )
            ReleaseInput.objects.bulk_create([ReleaseInput(release=release, role=role, name=name, blob=blob)
                                              for role, name, blob in inputs])
            VerificationStep.objects.bulk_create([VerificationStep(release=release, name=n) for n in VerificationStep.NAMES])
            release.release_log_index, salt = log_statement("release", envelope, ns.private)
            release.seal_salts = {"release": salt} if salt else {}
            release.save(update_fields=["release_log_index", "seal_salts"])
            # Runs when the outermost transaction commits: at the end of this block in a request,
            # so the answer can say whether the release was queued. (Tests that wrap everything in
            # one transaction never commit, so nothing is queued there.)
            transaction.on_commit(lambda: setattr(release, "queue_warning", queue_verification(release.pk)))
    except IntegrityError:
        raise RegistryError(409, f"release refused: {stmt.namespace}/{stmt.model}:{stmt.tag} version {stmt.version} already exists") from None
    return release


QUEUE_FAILED = "verification could not be queued yet (the task queue is unreachable); the release stays 'uploaded' until the registry's operator runs `manage.py requeue`"


def queue_verification(release_id: int) -> str | None:
    """Queue a release's verification; if the broker is unreachable, leave the release
    `uploaded` (where `manage.py requeue` picks it up) and return a warning instead of failing."""
    try:
        enqueue_verification(release_id)
    except Exception:  # noqa: BLE001 - any broker failure; the release itself is committed and fine
        log.exception("could not queue verification of release %s", release_id)
        current = Release.objects.filter(pk=release_id).values_list("status_reason", flat=True).first() or ""
        Release.objects.filter(pk=release_id, status__in=[Release.UPLOADED, Release.QUEUED]).update(
            status=Release.UPLOADED, status_reason=with_standing_reason(current, QUEUE_FAILED))
        return QUEUE_FAILED
    return None


def visible_releases(user, namespace: Namespace, releases):
    """The one visibility rule of releases, for a queryset of one namespace's releases: readers
    see verified releases only, those who may publish there see every status. (Whether the
    namespace itself may be read is the caller's check.)"""
    return releases if can_publish(user, namespace) else releases.filter(status=Release.VERIFIED)


def release_visible(user, token, release: Release) -> bool:
    """visible_releases for one release, with the namespace's read access and the token's scope."""
    ns = release.model.namespace
    if not can_read(user, ns) or not token_allows(token, ApiToken.READ, ns.name):
        return False
    return release.status == Release.VERIFIED or can_publish(user, ns)


def _usable_blob(user, token, digest: str) -> Blob:
    """The blob a new release may use: one the caller uploaded, or the file of a release the
    caller can read. Knowing a digest is not enough; the answer does not tell whether a blob
    the caller may not use exists."""
    from .downloads import uploaded_by_caller

    blob = Blob.objects.filter(digest=digest).first()
    if blob is not None:
        if uploaded_by_caller(user, token, blob):
            return blob
        if any(release_visible(user, token, r) for r in blob.releases.select_related("model__namespace")):
            return blob
    raise RegistryError(400, f"release refused: the statement's subject {digest} was not uploaded by {user.username}; upload the file first")


def _recipe_inputs(user, token, recipe: dict | None) -> list[tuple[str, str, Blob]]:
    """The files a recipe names besides the base, each uploaded by the caller or readable by it
    (the file or input of a release it can read): [(role, name, blob)]."""
    from .downloads import blob_readable

    if is_conversion(recipe):
        try:
            conversion = ConversionRecipe.from_json(recipe)
        except AssayError as exc:
            raise RegistryError(400, f"release refused: {exc}") from None
        wanted = [(ReleaseInput.UPSTREAM, f.name, f.digest, "upstream file", "--upstream") for f in conversion.files]
    elif not recipe or not recipe.get("imatrix"):
        return []
    else:
        try:
            parsed = Recipe.from_json(recipe)
        except AssayError as exc:
            raise RegistryError(400, f"release refused: {exc}") from None
        wanted = [(ReleaseInput.IMATRIX, parsed.imatrix_name, parsed.imatrix, "importance matrix", "--imatrix")]
        if parsed.imatrix_source is not None:
            src = parsed.imatrix_source
            wanted.append((ReleaseInput.CALIBRATION, src["calibration_name"], src["calibration"], "calibration text", "--calibration"))
    found = []
    for role, name, digest, what, flag in wanted:
        blob = Blob.objects.filter(digest=digest).first()
        if blob is None or not blob_readable(user, token, digest)[0]:
            raise RegistryError(400, f"release refused: the recipe's {what} {digest} ({name}) was not uploaded by "
                                     f"{user.username}; upload it first (`assay publish` does, from the recipe file or {flag})")
        found.append((role, name, blob))
    return found


def _check_base(user, token, base, ns: Namespace) -> None:
    """A quant's base must be a release (not rejected) the caller can read, under the name the
    statement gives, with the digest the statement gives (any version of that tag), and not a
    private base of another namespace (_refuse_private_base)."""
    ns_name, model_name, tag = parse_reference(base.name)
    candidates = Release.objects.filter(model__namespace__name=ns_name, model__name=model_name, tag=tag).exclude(status=Release.REJECTED)
    readable = [r for r in candidates.select_related("model__namespace").order_by("-version") if release_visible(user, token, r)]
    if not readable:
        raise RegistryError(400, f"release refused: base {base.name} ({base.digest}) is not a release in this registry that you can read")
    _refuse_private_base(ns, readable[0], base.name)
    if base.digest not in {r.blob_id for r in readable}:
        latest = readable[0]
        raise RegistryError(
            400,
            f"release refused: the statement's base digest {base.digest} is not the file of {base.name} "
            f"(version {latest.version} of {base.name} is {latest.blob_id})",
        )


def _refuse_private_base(ns: Namespace, base: Release, base_name: str) -> None:
    """A release may name a base in a private namespace only in that same namespace: a release in
    public namespace `ns` would show the private model's name, digest and outputs (its clear log
    entry, page and verdict), for good; one in another private namespace would show them to that
    namespace's readers, who need not be members of the base's."""
    base_ns = base.model.namespace
    if not base_ns.private or base_ns.pk == ns.pk:
        return
    if not ns.private:
        raise RegistryError(400, f"release refused: {ns.name} is public and its base {base_name} is in a private namespace; "
                                 f"a public release would show the private base's name, digest and outputs in the public log. "
                                 f"Publish it in a private namespace, or publish the base publicly first")
    raise RegistryError(400, f"release refused: its base {base_name} is in another private namespace; {ns.name}'s readers "
                             f"would see the base's name, digest and outputs without being members of {base_ns.name}. "
                             f"Publish it in {base_ns.name}, or publish the base in {ns.name} first")


def find_release(user, token, reference: str, *, verified_only: bool) -> Release:
    """The release a reference names: the highest version of the tag (verified only, for pulls)."""
    try:
        ns_name, model_name, tag = parse_reference(reference)
    except AssayError as exc:
        raise RegistryError(400, str(exc)) from None
    ns = Namespace.objects.filter(name=ns_name).first()
    if ns is None or not can_read(user, ns) or not token_allows(token, ApiToken.READ, ns_name):
        raise not_found(f"release {reference}")
    releases = Release.objects.filter(model__namespace=ns, model__name=model_name, tag=tag).select_related("model__namespace", "blob", "publisher_key__user")
    latest = releases.order_by("-version").first()
    if latest is None:
        raise not_found(f"release {reference}")
    if not verified_only:
        return latest
    verified = releases.filter(status=Release.VERIFIED).order_by("-version").first()
    if verified is None:
        if not can_publish(user, ns):
            # As on the web pages: releases that are not verified are invisible to non-publishers.
            raise not_found(f"release {reference}")
        reason = f": {latest.status_reason}" if latest.status_reason else ""
        raise RegistryError(409, f"{reference} is not verified (version {latest.version} is {latest.status}{reason}); it cannot be pulled", release_status=latest.status)
    return verified


def requeue_stalled(older_than_s: float) -> list[int]:
    """Queue again the releases left uploaded, queued or verifying for longer than `older_than_s`
    (more than a task can stay invisible in the broker: its message is gone). Steps already
    finished are not run again; a release whose broker is still down stays as it is."""
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stalled = list(Release.objects.filter(status__in=[Release.UPLOADED, Release.QUEUED, Release.VERIFYING], updated__lt=cutoff)
                   .values_list("pk", flat=True))
    queued = []
    for release_id in stalled:
        Release.objects.filter(pk=release_id, status=Release.VERIFYING).update(status=Release.QUEUED)
        if queue_verification(release_id) is None:
            queued.append(release_id)
    if stalled:
        log.warning("requeued %d stalled release(s): %s", len(queued), queued)
    return queued


def releases_of_file(user, token, digest: str, limit: int = 20) -> list[Release]:
    """The releases this caller may see whose (first) file has `digest`, newest first: how the
    publish page names a quant's base from the base digest in its recipe."""
    found = (Release.objects.filter(blob_id=digest).select_related("model__namespace")
             .order_by("-created"))
    return [r for r in found[:200] if release_visible(user, token, r)][:limit]


def _highest_version(releases) -> int:
    """The highest version among `releases` (one model's tag), 0 when there is none."""
    return releases.aggregate(v=Max("version"))["v"] or 0


def draft_statement(user, token, *, file_name: str, digest: str, reference: str, quantization: str, base_ref: str | None,
                    recipe: dict | None, recipe_base_digest: str | None, model_card: str, blake3: str | None = None) -> bytes:
    """The release statement for these fields, built by the one builder (assay/core/statements.py) for
    the web page to sign in the browser (the private key never leaves it). Nothing is stored:
    create_release checks the signed statement as it checks one from the CLI. `blake3`: the file's
    BLAKE3 as the page computed it, declared beside its SHA-256 (the verifier checks it against the
    bytes before any client relies on it)."""
    from datetime import datetime, timezone

    try:
        ns_name, model_name, tag = parse_reference(reference)
    except AssayError as exc:
        raise RegistryError(400, str(exc)) from None
    ns = _namespace_for_publish(user, token, ns_name)
    base = None
    if base_ref:
        found = find_release(user, token, base_ref, verified_only=False)
        if not release_visible(user, token, found):
            raise not_found(f"release {base_ref}")
        _refuse_private_base(ns, found, base_ref)
        if recipe_base_digest and recipe_base_digest != found.blob_id:
            raise RegistryError(400, f"the recipe's base digest {recipe_base_digest} is not {base_ref} ({found.blob_id})")
        base = {"name": base_ref, "digest": found.blob_id}
    highest = _highest_version(Release.objects.filter(model__namespace__name=ns_name, model__name=model_name, tag=tag))
    try:
        return statements.build_release_statement(
            subject_name=file_name, subject_digest=digest, namespace=ns_name, model=model_name, tag=tag, version=highest + 1,
            quantization=quantization, base=base, recipe=recipe, model_card_digest=digest_bytes(model_card.encode()) if model_card else None,
            created=datetime.now(timezone.utc), blake3={digest: blake3} if blake3 else None,
        )
    except AssayError as exc:
        raise RegistryError(400, f"statement refused: {exc}") from None
