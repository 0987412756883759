"""The registry behind Debian's nginx, as `ASSAY_NGINX=1 make up` runs it: a tiny real model is
published, verified by the verifier service and pulled; the bytes come from nginx (X-Accel-Redirect
from Django, which only decides who may read them), with Range resume and the digest header, and
nginx's internal blob location cannot be reached from outside."""
from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.support.stack import Stack
from tests.support.tiny_gguf import write_tiny_llama

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory):
    stack = Stack(nginx=True).start()
    try:
        yield stack
    finally:
        stack.stop()


def test_pull_through_nginx_gets_the_bytes_from_nginx(behind_nginx, tmp_path):
    stack = behind_nginx
    home = stack.client_home(tmp_path / "home")
    model = write_tiny_llama(tmp_path / "tiny.gguf")
    stack.assay(home, "publish", str(model), "demo/tiny:f16", "--wait")
    out = stack.assay(home, "pull", "demo/tiny:f16", "-o", str(tmp_path / "got") + "/").stdout
    assert "verified demo/tiny:f16" in out
    pulled = tmp_path / "got" / model.name
    assert pulled.read_bytes() == model.read_bytes()

    digest = "sha256:" + hashlib.sha256(model.read_bytes()).hexdigest()
    headers = {"Authorization": f"Bearer {stack.token}"}
    whole = httpx.get(f"{stack.url}/api/v1/blobs/{digest}", headers=headers)
    assert whole.status_code == 200 and whole.content == model.read_bytes()
    assert whole.headers["docker-content-digest"] == digest and "x-accel-redirect" not in whole.headers
    part = httpx.get(f"{stack.url}/api/v1/blobs/{digest}", headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == model.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{model.stat().st_size}"
    # nginx sent the bytes: its access log has the whole file for that request; gunicorn sent none
    access = (stack.root / "nginx" / "access.log").read_text()
    assert f'"GET /api/v1/blobs/{digest} HTTP/1.1" 200 {model.stat().st_size} ' in access
    # the internal location is not reachable from outside, and Django still refuses strangers
    hexd = digest.split(":")[1]
    assert httpx.get(f"{stack.url}/_assay_blobs/sha256/{hexd[:2]}/{hexd}").status_code == 404
    assert httpx.get(f"{stack.url}/api/v1/blobs/{'sha256:' + '0' * 64}", headers=headers).status_code == 404
