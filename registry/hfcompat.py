"""A Hugging Face Hub-compatible, read-only view of verified releases: the subset of the Hub's API
that `huggingface_hub` (hf_hub_download, snapshot_download, HfFileSystem) and llama-cpp-python's
`Llama.from_pretrained` use, with `endpoint=` (or HF_ENDPOINT) set to the registry's URL.

A model `ns/model` is the repository `ns/model`. Its revisions:
  main       the files of the newest *verified* release of every tag (a file name two tags share
             is the newer release's);
  <tag>      the files of that tag's newest verified release;
  <commit>   the 40-hex commit id of either, which the Hub's clients pin after resolving a name:
             SHA-1 over the revision's sorted "name digest" lines, so it names exactly those bytes.
A release's files are its file and, for a split GGUF, every later part. Releases that are not
verified, and namespaces the caller may not read, do not exist here (the Hub's own errors:
RepoNotFound, RevisionNotFound, EntryNotFound). Bytes are served by the blob endpoint (its access
check, Range, nginx or pre-signed storage) after a redirect that carries the Hub's metadata headers.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from .models import ApiToken, Namespace, RegistryModel, Release
from .permissions import can_read, token_allows
from .releases import visible_releases

MAIN = "main"


class HubError(Exception):
    """The Hub's error for a request: `code` is its X-Error-Code (RepoNotFound, RevisionNotFound,
    EntryNotFound)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class HubFile:
    name: str
    digest: str
    size: int

    @property
    def sha256(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass
class HubRevision:
    repo_id: str
    name: str
    files: list[HubFile] = field(default_factory=list)
    last_modified: datetime | None = None
    private: bool = False

    @property
    def commit(self) -> str:
        lines = "".join(f"{f.name} {f.digest}\n" for f in sorted(self.files, key=lambda f: f.name))
        return hashlib.sha1(f"{self.repo_id}\n{lines}".encode()).hexdigest()

    def file(self, name: str) -> HubFile:
        for f in self.files:
            if f.name == name:
                return f
        raise HubError(404, "EntryNotFound", f"{name} is not a file of {self.repo_id} at revision {self.name}")


def release_files(release: Release) -> list[HubFile]:
    return [HubFile(release.file_name, release.blob_id, release.blob.size)] + [
        HubFile(p["name"], p["digest"], p["size"]) for p in release.split_parts()]


def readable_model(user, token, ns_name: str, model_name: str) -> RegistryModel:
    """The model, if the caller may read its namespace and see one of its releases (as on the web
    pages: a reader does not learn that a model with no verified release exists)."""
    repo_id = f"{ns_name}/{model_name}"
    ns = Namespace.objects.filter(name=ns_name).first()
    model = RegistryModel.objects.filter(namespace=ns, name=model_name).first() if ns is not None else None
    if (model is None or not can_read(user, ns) or not token_allows(token, ApiToken.READ, ns_name)
            or not visible_releases(user, ns, model.releases.all()).exists()):
        # Not found and not readable look the same, as on the Hub (401 when no token was sent).
        raise HubError(401 if not getattr(user, "is_authenticated", False) else 404, "RepoNotFound",
                       f"Repository Not Found for url: {repo_id}. Please make sure you specified the correct repo_id and that "
                       "you have access (a private namespace needs a token with read access).")
    return model


def newest_verified(model: RegistryModel) -> dict[str, Release]:
    """The newest verified release of each tag of a model."""
    newest: dict[str, Release] = {}
    for r in model.releases.filter(status=Release.VERIFIED).select_related("blob").order_by("tag", "-version"):
        newest.setdefault(r.tag, r)
    return newest


def revisions(user, token, ns_name: str, model_name: str) -> dict[str, HubRevision]:
    """Every revision of a repository: main and each tag with a verified release."""
    model = readable_model(user, token, ns_name, model_name)
    repo_id = f"{ns_name}/{model_name}"
    newest = newest_verified(model)
    private = bool(model.namespace.private)
    out = {MAIN: HubRevision(repo_id, MAIN, private=private)}
    by_name: dict[str, tuple[Release, HubFile]] = {}
    for tag, release in sorted(newest.items()):
        files = release_files(release)
        out[tag] = HubRevision(repo_id, tag, files, release.created, private)
        for f in files:
            if f.name not in by_name or by_name[f.name][0].created < release.created:
                by_name[f.name] = (release, f)
    out[MAIN].files = [f for _, f in sorted(by_name.values(), key=lambda rf: rf[1].name)]
    out[MAIN].last_modified = max((r.created for r in newest.values()), default=None)
    return out


def revision(user, token, ns_name: str, model_name: str, name: str | None) -> HubRevision:
    """A revision by name (main, a tag) or by the commit id of one; main when `name` is None."""
    found = revisions(user, token, ns_name, model_name)
    name = name or MAIN
    if name in found:
        return found[name]
    for rev in found.values():
        if rev.commit == name:
            return rev
    raise HubError(404, "RevisionNotFound", f"Invalid rev id: {name} (a revision of {ns_name}/{model_name} is main, "
                                            f"a tag with a verified release ({', '.join(sorted(set(found) - {MAIN})) or 'none yet'}) "
                                            "or the commit id of one)")


def model_info(rev: HubRevision) -> dict:
    """The Hub's model info (GET /api/models/<repo>[/revision/<rev>])."""
    return {
        "_id": rev.commit[:24], "id": rev.repo_id, "modelId": rev.repo_id, "sha": rev.commit, "private": rev.private,
        "gated": False, "disabled": False, "downloads": 0, "likes": 0, "library_name": "gguf", "tags": ["gguf", "assay-verified"],
        "lastModified": rev.last_modified.isoformat().replace("+00:00", "Z") if rev.last_modified else None,
        "siblings": [{"rfilename": f.name, "size": f.size, "blobId": f.sha256[:40],
                      "lfs": {"sha256": f.sha256, "size": f.size, "pointerSize": 134}} for f in rev.files],
    }


def tree(rev: HubRevision, path: str = "") -> list[dict]:
    """The Hub's tree listing (GET /api/models/<repo>/tree/<rev>[/<path>]): the files are at the top level."""
    path = path.strip("/")
    if path:
        if any(f.name == path for f in rev.files):
            raise HubError(404, "EntryNotFound", f"{path} is a file, not a folder, of {rev.repo_id}")
        raise HubError(404, "EntryNotFound", f"{rev.repo_id} has no folder {path}")
    return [{"type": "file", "oid": f.sha256[:40], "size": f.size, "path": f.name,
             "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134}} for f in rev.files]
