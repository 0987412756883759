"""The verifier's only way to the registry: its HTTP API, with the verifier's own token. Blobs are
fetched by digest into the verifier's folder and checked against the digest before use."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

from assay.client import fastget
from assay.client.http import RETRY_DELAYS, RETRY_STATUSES, RegistryClient, RegistryHTTPError, _error_body, _one_line
from assay.core import storage_address
from assay.core.digest import digest_file
from assay.core.errors import AssayError
from assay.core.nul import visible_nul


class RegistryUnavailable(ConnectionError):
    """The registry could not be reached or answered 5xx: worth another try later."""


class VerifierClient(RegistryClient):
    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        # Every verifier request is safe to repeat: claims, step begins and error reports are
        # idempotent, and a result or verdict the registry already took is answered 409.
        for attempt in range(len(RETRY_DELAYS) + 1):
            last = attempt == len(RETRY_DELAYS)
            try:
                response = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if last:
                    raise RegistryUnavailable(f"cannot reach the registry at {self.url}: {_one_line(exc)}") from None
                time.sleep(RETRY_DELAYS[attempt])
                continue
            if response.status_code in RETRY_STATUSES and not last:
                time.sleep(RETRY_DELAYS[attempt])
                continue
            break
        if response.status_code >= 500:
            raise RegistryUnavailable(f"the registry answered {response.status_code}: {_error_body(response)[1]}")
        if response.status_code >= 400:
            body, message = _error_body(response)
            raise RegistryHTTPError(response.status_code, f"registry answered {response.status_code}: {message}", body)
        return response

    def post_json(self, path: str, data: dict) -> dict:
        # Error reasons, tracebacks and capabilities may quote a file's text: the registry refuses
        # a NUL, so it goes as "␀" (signed envelopes carry theirs so already: attestation.sign_step).
        return super().post_json(path, visible_nul(data))

    # -- jobs --------------------------------------------------------------------------------
    def claim(self, release_id: int, capabilities: dict) -> dict:
        return self.post_json(f"/api/v1/verifier/jobs/{release_id}/claim", {"capabilities": capabilities})

    def job(self, release_id: int) -> dict:
        return self.get_json(f"/api/v1/verifier/jobs/{release_id}")

    def begin_step(self, release_id: int, name: str) -> dict:
        return self.post_json(f"/api/v1/verifier/jobs/{release_id}/steps/{name}/begin", {})

    def finish_step(self, release_id: int, name: str, envelope: dict) -> dict:
        return self.post_json(f"/api/v1/verifier/jobs/{release_id}/steps/{name}", {"envelope": envelope})

    def reopen_step(self, release_id: int, name: str, reason: str) -> None:
        self.post_json(f"/api/v1/verifier/jobs/{release_id}/steps/{name}/reopen", {"reason": reason[:2000]})

    def report_error(self, release_id: int, reason: str, step: str | None = None, detail: str = "") -> None:
        self.post_json(f"/api/v1/verifier/jobs/{release_id}/error", {"reason": reason[:2000], "step": step, "detail": detail[-4000:]})

    def post_verdict(self, release_id: int, verdict: dict, provenance: dict | None) -> dict:
        return self.post_json(f"/api/v1/verifier/jobs/{release_id}/verdict", {"verdict": verdict, "provenance": provenance})

    def post_second_opinion(self, release_id: int, verdict: dict, provenance: dict | None, steps: list[dict]) -> dict:
        return self.post_json(f"/api/v1/verifier/jobs/{release_id}/second-opinion",
                              {"verdict": verdict, "provenance": provenance, "steps": steps})

    def verifiers(self) -> list[dict]:
        return list(self.get_json("/api/v1/verifiers").get("verifiers") or [])

    def _open_download(self, digest: str, headers: dict):
        """The blob's GET response, as a client's; but a download the registry redirected to another
        host (a pre-signed URL on its object storage) that fails there is told by its status only. A
        failed fetch goes back to the registry (report_error): the error page, or the first line of
        whatever answers that is no web server, of an address on the verifier's own network that the
        registry named would be the registry's to read."""
        try:
            response = super()._open_download(digest, headers)
        except fastget.TransportFailure as exc:
            if exc.elsewhere is None:
                raise
            raise fastget.TransportFailure(f"the download failed at {exc.elsewhere}, where the registry sent it "
                                           f"({storage_address.UNREACHABLE_HINT})") from None
        if getattr(response, "elsewhere", None) and response.status >= 400:
            response.read_error_body = lambda: f"(the answer of {response.elsewhere}, where the registry sent the download)".encode()
        return response

    def fetch_blob(self, digest: str, size: int, into: Path) -> Path:
        """The blob `digest` as a file in `into` (downloaded, resumed if cut, checked)."""
        into.mkdir(parents=True, exist_ok=True)
        final = into / digest.replace(":", "-")
        if final.exists():
            if final.stat().st_size == size and digest_file(final) == digest:
                return final  # fetched by an earlier try of this job
            final.unlink()
        partial = into / (final.name + ".partial")
        try:
            got = self.download_blob(digest, partial, expected_size=size)
        except AssayError as exc:
            raise AssayError(f"blob {digest} could not be fetched from the registry: {exc}") from None
        if got != digest:
            partial.unlink(missing_ok=True)
            raise AssayError(f"the registry sent bytes hashing to {got} for blob {digest}")
        shutil.move(partial, final)
        return final


def registered_client() -> VerifierClient:
    """A client for the registry this verifier is registered with (ASSAY_VERIFIER_DIR)."""
    from .identity import load_registration

    registration = load_registration()
    return VerifierClient(registration.registry, registration.token)
