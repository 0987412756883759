"""End to end, as a user: publish the real SmolLM2 GGUF, a real Celery worker verifies it by
running it, and `assay pull` fetches it after checking signatures, verdict and log."""
from __future__ import annotations

import filecmp

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def published(published_smollm2):
    return published_smollm2


def test_published_release_is_verified_by_the_worker(published):
    _, status = published
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["static"]["status"] == "passed"
    assert steps["reproduce"]["status"] == "skipped"  # an original has no base
    assert steps["probes"]["status"] == "passed"
    assert steps["attest"]["status"] == "passed"


def test_status_command_shows_each_step(stack, published):
    home, _ = published
    out = stack.assay(home, "status", "demo/smollm2:q4_1").stdout
    assert "verified" in out
    for name in ("static", "reproduce", "probes", "attest"):
        assert name in out


def test_pull_verifies_and_writes_identical_bytes(stack, published, smollm2, user_home):
    target = user_home / "models"
    out = stack.assay(user_home, "pull", "demo/smollm2:q4_1", "-o", str(target) + "/").stdout
    pulled = target / smollm2.name
    assert "verified demo/smollm2:q4_1 version 1" in out
    assert filecmp.cmp(pulled, smollm2, shallow=False)
    assert not list((user_home / "cache").glob("partial/*"))  # the partial file was moved into place
    verify = stack.assay(user_home, "verify", str(pulled), "--release", "demo/smollm2:q4_1").stdout
    assert verify.startswith("OK:")


def test_verify_refuses_a_flipped_bit(stack, published, smollm2, user_home, tmp_path):
    copy = tmp_path / smollm2.name
    data = bytearray(smollm2.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    result = stack.assay(user_home, "verify", str(copy), "--release", "demo/smollm2:q4_1", check=False)
    assert result.returncode == 3
    assert "hashes to" in result.stderr


def test_log_verify_replays_the_whole_log(stack, published, user_home):
    out = stack.assay(user_home, "log", "verify").stdout
    assert out.startswith("OK: entries 0..")


def test_bundle_of_the_135m_release_is_small(stack, published):
    """Evidence is served apart (the verdict signs its digest): the bundle stays under 8 KB."""
    import httpx

    headers = {"Authorization": f"Bearer {stack.token}"}
    bundle = httpx.get(f"{stack.url}/api/v1/releases/demo/smollm2:q4_1", headers=headers)
    assert bundle.status_code == 200 and len(bundle.content) < 8 * 1024, len(bundle.content)
    evidence = httpx.get(f"{stack.url}/api/v1/releases/demo/smollm2:q4_1/evidence", headers=headers).json()
    assert {c["name"] for c in evidence["verifiers"][0]["checks"]} == {"static", "reproduce", "probes"}
    home, _ = published
    full = stack.assay(home, "inspect", "demo/smollm2:q4_1", "--full").stdout
    assert "== evidence" in full and "each document matches the digest the verdict signs" in full
