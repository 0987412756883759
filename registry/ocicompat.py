"""A read-only OCI distribution view (`/v2/`) of verified releases, for OCI clients such as ORAS.

A model `ns/model` is the repository `ns/model`; each tag with a verified release is an OCI tag
whose manifest is an artifact (artifactType application/vnd.assay.gguf.v1) with one layer per
file (the GGUF, or every part of a split GGUF, titled with its signed name) and the empty config.
The release's signed DSSE envelopes (the publisher's release statement, the verifier's verdict
and, where there is one, its provenance) are attached as referrers: artifacts whose subject is
that manifest and whose one layer is the envelope. Manifests are canonical JSON, so a release's
manifest digest is stable. Releases that are not verified, and namespaces the caller may not
read, do not exist here (the distribution spec's NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from assay.core.canonical import canonical_json

from .hfcompat import HubError, newest_verified, readable_model, release_files
from .models import Release

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BYTES = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_BYTES).hexdigest()
ARTIFACT = "application/vnd.assay.gguf.v1"
GGUF_LAYER = "application/vnd.assay.gguf.layer.v1"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
ENVELOPE_TYPES = {"release": "application/vnd.assay.release-statement.v1+json",
                  "verdict": "application/vnd.assay.verdict.v1+json",
                  "provenance": "application/vnd.assay.provenance.v1+json"}


class OciError(HubError):
    """The distribution spec's error for a request: `code` is its error code (NAME_UNKNOWN, ...)."""


@dataclass(frozen=True)
class Document:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


def _doc(media_type: str, obj: dict) -> Document:
    return Document(media_type, json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def verified_tags(user, token, name: str) -> dict[str, Release]:
    """The newest verified release of each tag of repository `name` ("ns/model")."""
    ns, _, model_name = name.partition("/")
    try:
        model = readable_model(user, token, ns, model_name)
    except HubError:
        raise OciError(401 if not getattr(user, "is_authenticated", False) else 404, "NAME_UNKNOWN",
                       f"repository {name} is not known to the registry (or needs a token with read access)") from None
    return newest_verified(model)


def manifest(release: Release) -> Document:
    return _doc(MANIFEST, {
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": ARTIFACT,
        "config": {"mediaType": EMPTY, "digest": EMPTY_DIGEST, "size": len(EMPTY_BYTES)},
        "layers": [{"mediaType": GGUF_LAYER, "digest": f.digest, "size": f.size,
                    "annotations": {"org.opencontainers.image.title": f.name}} for f in release_files(release)],
        "annotations": {"org.opencontainers.image.version": str(release.version),
                        "org.opencontainers.image.created": release.created.isoformat().replace("+00:00", "Z"),
                        "dev.assay.reference": release.reference, "dev.assay.level": str((release.level_detail or {}).get("name") or "")},
    })


def envelopes(release: Release) -> list[tuple[str, Document]]:
    out = [("release", release.envelope), ("verdict", release.verdict_envelope), ("provenance", release.provenance_envelope)]
    return [(kind, Document(DSSE_LAYER, canonical_json(env))) for kind, env in out if env]


def referrers(release: Release) -> list[Document]:
    """The signed envelopes of a release as artifacts whose subject is its manifest."""
    subject = manifest(release)
    return [_doc(MANIFEST, {
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": ENVELOPE_TYPES[kind],
        "config": {"mediaType": EMPTY, "digest": EMPTY_DIGEST, "size": len(EMPTY_BYTES)},
        "layers": [env.descriptor(annotations={"org.opencontainers.image.title": f"{kind}.dsse.json"})],
        "subject": subject.descriptor(),
    }) for kind, env in envelopes(release)]


def find_manifest(user, token, name: str, reference: str) -> Document:
    tags = verified_tags(user, token, name)
    if not reference.startswith("sha256:"):
        if reference not in tags:
            raise OciError(404, "MANIFEST_UNKNOWN", f"{name}:{reference} is not a tag with a verified release")
        return manifest(tags[reference])
    for release in tags.values():
        for doc in [manifest(release), *referrers(release)]:
            if doc.digest == reference:
                return doc
    raise OciError(404, "MANIFEST_UNKNOWN", f"manifest {reference} is not in {name}")


def referrer_index(user, token, name: str, digest: str, artifact_type: str | None = None) -> Document:
    tags = verified_tags(user, token, name)
    found = []
    for release in tags.values():
        if manifest(release).digest == digest:
            for doc in referrers(release):
                artifact = json.loads(doc.data)["artifactType"]
                if artifact_type in (None, artifact):
                    found.append(doc.descriptor(artifactType=artifact))
    return _doc(INDEX, {"schemaVersion": 2, "mediaType": INDEX, "manifests": found})


def find_blob(user, token, name: str, digest: str) -> tuple[str, Document | None]:
    """("stored", None) for a release file the blob endpoint serves, ("document", doc) for the
    empty config or a signed envelope."""
    if digest == EMPTY_DIGEST:
        return "document", Document(EMPTY, EMPTY_BYTES)
    for release in verified_tags(user, token, name).values():
        if any(f.digest == digest for f in release_files(release)):
            return "stored", None
        for _, env in envelopes(release):
            if env.digest == digest:
                return "document", env
    raise OciError(404, "BLOB_UNKNOWN", f"blob {digest} is not in {name}")
