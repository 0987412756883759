"""Registry data model: namespaces, models, releases, blobs, keys, tokens, verification steps, log."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from assay.core.statements import CHECK_STEPS, STEP_NAMES


class Organization(models.Model):
    name = models.CharField(max_length=64, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    OWNER, PUBLISHER, READER = "owner", "publisher", "reader"
    ROLES = [(OWNER, "owner"), (PUBLISHER, "publisher"), (READER, "reader")]
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")]


class Namespace(models.Model):
    """Owned by exactly one user or one organization."""

    name = models.CharField(max_length=64, unique=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="namespace")
    organization = models.OneToOneField(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="namespace")
    private = models.BooleanField(default=False)
    # A private namespace's role events are blinded with the last of these keys (registry/roles.py),
    # oldest first: one is added each time a member leaves. Readers get them in release bundles.
    # Empty for a public namespace.
    role_blinding_keys = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, organization__isnull=True) | models.Q(user__isnull=True, organization__isnull=False)),
                name="namespace_single_owner",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def role_blinding_key(self) -> str:
        """The key this namespace's role events are blinded with now ("" if they are not)."""
        return self.role_blinding_keys[-1] if self.role_blinding_keys else ""


class RegistryModel(models.Model):
    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="uniq_model_name")]

    @property
    def full_name(self) -> str:
        return f"{self.namespace.name}/{self.name}"

    def __str__(self) -> str:
        return self.full_name


class Blob(models.Model):
    digest = models.CharField(max_length=71, primary_key=True)
    size = models.BigIntegerField()
    created = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)  # the first uploader
    # Everyone who uploaded these bytes (proved they have them); only they may reference the blob
    # in a release until it is the file of a release they can read.
    uploaders = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="uploaded_blobs")
    # The tokens limited to some namespaces that uploaded these bytes: such a token may use only
    # what a token limited to the same namespaces (or fewer) uploaded (registry/downloads.py).
    upload_tokens = models.ManyToManyField("ApiToken", blank=True, related_name="uploaded_blobs")

    @classmethod
    def record_upload(cls, digest: str, size: int, user, token=None) -> "Blob":
        """The Blob row for freshly stored bytes, with `user` recorded as one of its uploaders
        (and `token`, when it is limited to some namespaces)."""
        blob, _ = cls.objects.get_or_create(digest=digest, defaults={"size": size, "uploaded_by": user})
        if user is not None:
            blob.uploaders.add(user)
        if token is not None and token.namespaces:
            blob.upload_tokens.add(token)
        return blob

    def was_uploaded_by(self, user) -> bool:
        if user is None or not user.is_authenticated:
            return False
        return self.uploaded_by_id == user.id or self.uploaders.filter(pk=user.pk).exists()


class Upload(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now)


class PublisherKey(models.Model):
    keyid = models.CharField(max_length=71, unique=True)
    public_key = models.CharField(max_length=200)  # assay/core/keys.py text form: Ed25519 (44) or ECDSA P-256 (124)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="publisher_keys")
    name = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=300, blank=True)
    registration_log_index = models.BigIntegerField(null=True)
    revocation_log_index = models.BigIntegerField(null=True)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiToken(models.Model):
    READ, PUBLISH, ADMIN = "read", "publish", "admin"
    SCOPES = (READ, PUBLISH, ADMIN)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)  # sha256 hex of the secret token
    scopes = models.JSONField(default=list)  # subset of SCOPES
    namespaces = models.JSONField(default=list)  # names the token may act on; [] = all the user's
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)


class Verifier(models.Model):
    """A verifier service registered with this registry: its own key (the private half never
    leaves the verifier's host), a token to take jobs and report results, and what it can run."""

    name = models.CharField(max_length=64, unique=True)
    keyid = models.CharField(max_length=71, unique=True)
    public_key = models.CharField(max_length=200)  # assay/core/keys.py text form: Ed25519 (44) or ECDSA P-256 (124)
    token_hash = models.CharField(max_length=64, unique=True)  # sha256 hex of the secret token
    capabilities = models.JSONField(default=dict)  # what it advertised last (llama.cpp build, CPU, GPU, RAM)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=300, blank=True)
    registration_log_index = models.BigIntegerField(null=True)
    revocation_log_index = models.BigIntegerField(null=True)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Release(models.Model):
    UPLOADED, QUEUED, VERIFYING = "uploaded", "queued", "verifying"
    VERIFIED, REJECTED, ERROR = "verified", "rejected", "error"
    STATUSES = [(s, s) for s in (UPLOADED, QUEUED, VERIFYING, VERIFIED, REJECTED, ERROR)]

    model = models.ForeignKey(RegistryModel, on_delete=models.CASCADE, related_name="releases")
    tag = models.CharField(max_length=128)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=STATUSES, default=UPLOADED, db_index=True)
    status_reason = models.TextField(blank=True)
    file_name = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="releases")
    quantization = models.CharField(max_length=48)  # as the statement allows (statements._ReleasePredicate)
    base_digest = models.CharField(max_length=71, blank=True)
    base_name = models.CharField(max_length=300, blank=True)
    recipe = models.JSONField(null=True, blank=True)
    model_card = models.TextField(blank=True)
    statement_digest = models.CharField(max_length=71)
    envelope = models.JSONField()  # publisher's DSSE envelope over the release statement
    publisher_key = models.ForeignKey(PublisherKey, on_delete=models.PROTECT, related_name="releases")
    publisher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="releases")
    verdict_envelope = models.JSONField(null=True, blank=True)
    provenance_envelope = models.JSONField(null=True, blank=True)
    # The publisher's OpenSSF model_signing signature over the release's files (a Sigstore bundle,
    # assay/core/ossf_signature.py), checked at creation against the key that signed the statement.
    model_signing = models.JSONField(null=True, blank=True)
    release_log_index = models.BigIntegerField(null=True)
    verdict_log_index = models.BigIntegerField(null=True)
    provenance_log_index = models.BigIntegerField(null=True)
    # The verification level the verifier signed in its verdict (assay/core/levels.py): name, chain, reason.
    level = models.CharField(max_length=16, blank=True, db_index=True)
    level_detail = models.JSONField(null=True, blank=True)
    # Salts of the sealed log entries standing for this release's statements when its namespace
    # is private (registry/sealing.py): {"release"|"verdict"|"provenance": 64 hex}.
    seal_salts = models.JSONField(default=dict, blank=True)
    # The verifier that took this release's job (claimed at its first step; cleared on requeue).
    verifier = models.ForeignKey(Verifier, null=True, blank=True, on_delete=models.SET_NULL, related_name="releases")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "tag", "version"], name="uniq_release_version")]
        ordering = ["-created"]

    @property
    def reference(self) -> str:
        return f"{self.model.namespace.name}/{self.model.name}:{self.tag}"

    def named_base(self) -> models.QuerySet:
        """The releases this one names as its base: the signed base name's namespace, model and tag,
        holding the signed base digest (every version that does; none for an original or a name
        that does not parse)."""
        from assay.core.errors import AssayError
        from assay.core.names import parse_reference

        if not self.base_digest or not self.base_name:
            return Release.objects.none()
        try:
            ns, model, tag = parse_reference(self.base_name)
        except AssayError:
            return Release.objects.none()
        return Release.objects.filter(model__namespace__name=ns, model__name=model, tag=tag, blob_id=self.base_digest)

    def split_parts(self) -> list[dict]:
        """The second and later parts of a split GGUF release, in order ([] for a single file)."""
        return [{"name": i.name, "digest": i.blob_id, "size": i.blob.size}
                for i in self.inputs.filter(role="part").select_related("blob").order_by("name")]


class ReleaseInput(models.Model):
    """A file a release was made from besides its base, named in the signed recipe by digest
    (the importance matrix of an imatrix quant and its calibration text; the upstream files of a
    conversion, one row each; the second and later parts of a split GGUF, whose first part is the
    release's own file). Uploaded with the release; the verifier fetches it to rebuild the
    release (and computes the matrix again from its calibration text, where the recipe names one)."""

    IMATRIX = "imatrix"
    CALIBRATION = "calibration"
    UPSTREAM = "upstream"
    PART = "part"
    ROLES = [(IMATRIX, "importance matrix"), (CALIBRATION, "calibration text of the importance matrix"),
             (UPSTREAM, "upstream checkpoint file of a conversion"), (PART, "further part of a split GGUF")]

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="inputs")
    role = models.CharField(max_length=32, choices=ROLES)
    name = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="input_of")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "role", "name"], name="uniq_release_input_role_name")]


class VerifierVerdict(models.Model):
    """One verifier's signed verdict on a release: the verifier that took the release's job
    (its verdict decides the release's status), and each further verifier the registry asked for
    a second opinion (ASSAY_VERIFIERS_PER_RELEASE), which verifies the same bytes on its own. A
    row without an envelope is a job given and not yet answered."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="verdicts")
    verifier = models.ForeignKey(Verifier, on_delete=models.PROTECT, related_name="verdicts")
    envelope = models.JSONField(null=True, blank=True)
    log_index = models.BigIntegerField(null=True)
    provenance_envelope = models.JSONField(null=True, blank=True)
    provenance_log_index = models.BigIntegerField(null=True)
    steps = models.JSONField(default=list)  # the verifier's signed step results (their evidence is served from here)
    seal_salts = models.JSONField(default=dict, blank=True)  # as Release.seal_salts, for this verdict and provenance
    passed = models.BooleanField(null=True)
    level = models.CharField(max_length=16, blank=True)
    requested = models.DateTimeField(default=timezone.now)
    signed = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "verifier"], name="uniq_verdict_per_verifier")]


class VerificationStep(models.Model):
    PENDING, RUNNING, PASSED, FAILED, SKIPPED, ERROR = "pending", "running", "passed", "failed", "skipped", "error"
    CHECKS = CHECK_STEPS  # assay/core/statements.py: the one list of the steps
    NAMES = STEP_NAMES
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=32)
    status = models.CharField(max_length=16, default=PENDING)
    summary = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    envelope = models.JSONField(null=True, blank=True)  # the verifier's signed step result (statements.StepResult)
    attempts = models.PositiveIntegerField(default=0)
    started = models.DateTimeField(null=True)
    finished = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "name"], name="uniq_step")]


class LogEntry(models.Model):
    """One leaf of the transparency log: the canonical bytes of a signed envelope."""

    index = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=32)  # one of assay.client.logaudit.KINDS
    data = models.BinaryField()
    leaf_hash = models.BinaryField(max_length=32)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["kind", "index"], name="logentry_kind_index")]


class LogNode(models.Model):
    """Hash of the perfect subtree covering leaves [index*2^level, (index+1)*2^level)."""

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="uniq_log_node")]


class LogState(models.Model):
    """Single row holding the tree size; locked FOR UPDATE to serialize appends."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)


class WitnessState(models.Model):
    """The tree size a witness last cosigned for this log (what `old` must be in its next request)."""

    url = models.CharField(max_length=500, primary_key=True)
    size = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)


class CosignedCheckpoint(models.Model):
    """A signed checkpoint with the witness cosignatures collected for it (C2SP signed note)."""

    size = models.BigIntegerField(primary_key=True)
    text = models.TextField()
    witnesses = models.JSONField(default=list)  # URLs of the witnesses that cosigned it
    created = models.DateTimeField(default=timezone.now)
