from django.urls import include, path, re_path

from .api import blobs, hf, keys, log, oci, releases, tokens, verifiers

REF = r"(?P<reference>[^/]+/[^/:]+:[^/]+)"
OCI_NAME = r"(?P<name>[^/]+/[^/]+)"

api_v1 = [
    path("uploads", blobs.upload_start),
    path("uploads/<str:upload_id>", blobs.upload_detail),
    path("uploads/<str:upload_id>/parts", blobs.upload_part),
    path("blobs/<str:digest>", blobs.blob_download),
    path("releases", releases.releases_collection),
    path("releases/statement", releases.release_statement),
    path("models", releases.model_search),
    re_path(rf"^releases/{REF}/status$", releases.release_status),
    re_path(rf"^releases/{REF}/evidence$", releases.release_evidence),
    re_path(rf"^releases/{REF}$", releases.release_resolve),
    path("keys", keys.key_list),
    path("keys/<str:keyid>", keys.key_detail),
    path("keys/<str:keyid>/revoke", keys.key_revoke),
    path("trust", keys.trust),
    path("log/checkpoint", log.log_checkpoint),
    path("log/entries", log.log_entries),
    path("log/key-events", log.log_key_events),
    path("log/proof/inclusion", log.log_inclusion),
    path("log/proof/consistency", log.log_consistency),
    path("tokens", tokens.token_list),
    path("tokens/<int:token_id>", tokens.token_detail),
    path("whoami", tokens.whoami),
    path("verifiers", verifiers.verifier_list),
    path("verifiers/<str:name>/revoke", verifiers.verifier_revoke),
    path("verifier/me", verifiers.verifier_me),
    path("verifier/jobs/<int:release_id>", verifiers.job_detail),
    path("verifier/jobs/<int:release_id>/claim", verifiers.job_claim),
    path("verifier/jobs/<int:release_id>/error", verifiers.job_error),
    path("verifier/jobs/<int:release_id>/verdict", verifiers.job_verdict),
    path("verifier/jobs/<int:release_id>/second-opinion", verifiers.job_second_opinion),
    path("verifier/jobs/<int:release_id>/steps/<str:name>", verifiers.step_finish),
    path("verifier/jobs/<int:release_id>/steps/<str:name>/begin", verifiers.step_begin),
    path("verifier/jobs/<int:release_id>/steps/<str:name>/reopen", verifiers.step_reopen),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    # Hugging Face Hub-compatible, read-only (registry/hfcompat.py): before the web pages' <ns>/<model>.
    path("api/models/<str:ns>/<str:model>", hf.model_info),
    path("api/models/<str:ns>/<str:model>/revision/<str:revision>", hf.model_info),
    path("api/models/<str:ns>/<str:model>/tree/<str:revision>", hf.model_tree),
    path("api/models/<str:ns>/<str:model>/tree/<str:revision>/<path:path>", hf.model_tree),
    path("<str:ns>/<str:model>/resolve/<str:revision>/<path:filename>", hf.resolve),
    # OCI distribution, read-only (registry/ocicompat.py); "v2" is a reserved namespace name.
    path("v2/", oci.base),
    re_path(rf"^v2/{OCI_NAME}/tags/list$", oci.tags),
    re_path(rf"^v2/{OCI_NAME}/manifests/(?P<reference>[A-Za-z0-9_.:-]+)$", oci.manifest),
    re_path(rf"^v2/{OCI_NAME}/blobs/(?P<digest>sha256:[0-9a-f]{{64}})$", oci.blob),
    re_path(rf"^v2/{OCI_NAME}/referrers/(?P<digest>sha256:[0-9a-f]{{64}})$", oci.referrers),
    path(".well-known/assay.json", keys.trust),
    path("", include("registry.web.urls")),
]
