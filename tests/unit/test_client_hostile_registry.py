"""`assay pull` and `assay verify` against a registry that serves honest signed statements and other
bytes, or a verdict for other bytes: nothing is written at the target, the command refuses."""
from __future__ import annotations

import pytest

from assay.client import pull
from assay.client.http import RegistryClient
from assay.core.digest import digest_bytes
from assay.core.errors import VerificationError
from tests.support.bundles import World
from tests.unit.test_verifier_hostile_registry import _Server

DATA = b"GGUF the signed bytes" * 64
OTHER = b"GGUF other bytes ....." * 64
REF = "demo/m:q4"


class _Client(RegistryClient):
    """A client of the loopback registry, with the in-memory log as its source of proofs."""

    def __init__(self, url: str, world: World):
        super().__init__(url)
        self.world = world

    def consistency_proof(self, old, new):
        return self.world.consistency(old, new)

    def key_events(self, start, end):
        return self.world.key_events(start, end)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("assay.client.http.RETRY_DELAYS", (0.0,) * 5)
    server = _Server()
    yield server
    server.close()


def _pull(registry, world, bundle, tmp_path):
    with _Client(registry.url, world) as client:
        return pull._pull_verified(client, bundle, REF, world.policy(tmp_path / "policy"), tmp_path / "out", None, None,
                                   force=False, model_signing=False)


def test_other_bytes_under_the_signed_digest_are_refused_and_nothing_is_written(registry, tmp_path):
    world = World()
    bundle = world.release(DATA)
    registry.routes[f"/api/v1/blobs/{digest_bytes(DATA)}"] = (200, {}, OTHER[: len(DATA)])
    with pytest.raises(VerificationError, match="nothing was written"):
        _pull(registry, world, bundle, tmp_path)
    assert not (tmp_path / "out" / "m.gguf").exists()
    assert not list((tmp_path / "cache" / "partial").glob("*.part"))


def test_a_verdict_for_other_bytes_is_refused_before_a_byte_is_fetched(registry, tmp_path):
    world = World()
    bundle = world.release(DATA, verdict_digest=digest_bytes(OTHER))
    registry.routes[f"/api/v1/blobs/{digest_bytes(DATA)}"] = (200, {}, DATA)
    with pytest.raises(VerificationError, match="the verdict is for"):
        _pull(registry, world, bundle, tmp_path)
    assert registry.seen == [] and not (tmp_path / "out").exists()


def test_verify_refuses_a_file_that_is_not_the_signed_one(registry, tmp_path):
    world = World()
    bundle = world.release(DATA)
    on_disk = tmp_path / "m.gguf"
    on_disk.write_bytes(OTHER)
    policy = world.policy(tmp_path / "policy")
    from assay.client import bundle_verify

    with _Client(registry.url, world) as client:
        verified = bundle_verify.verify_bundle(bundle, REF, policy, client)
    with pytest.raises(VerificationError, match="is signed for"):
        pull._check_file_and_parts(on_disk, REF, verified)
