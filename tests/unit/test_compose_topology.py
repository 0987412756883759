"""docker-compose.yml holds the topology of issue 13 (no Docker engine runs here, so this reads the
file; the same topology runs for real without Docker in tests/support/stack.py)."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_services_of_the_topology():
    assert {"nginx", "web", "registry-worker", "verifier", "verifier-gpu", "postgres", "redis", "seaweedfs"} <= set(COMPOSE["services"])
    assert COMPOSE["services"]["verifier-gpu"]["profiles"] == ["gpu"]
    assert "--appendonly" in COMPOSE["services"]["redis"]["command"]
    assert COMPOSE["services"]["nginx"]["ports"] == ["8000:80"] and "ports" not in COMPOSE["services"]["web"]


def test_verifiers_have_no_database_and_keys_of_their_own():
    for name in ("verifier", "verifier-gpu"):
        service = COMPOSE["services"][name]
        env = service["environment"]
        assert "DATABASE_URL" not in env and "ASSAY_KEY_DIR" not in env and env["ASSAY_VERIFIER_DIR"] == "/verifier"
        assert all(not v.startswith("assaydata") for v in service["volumes"])  # never the registry's volume
        assert "postgres" not in service["depends_on"]
    assert COMPOSE["services"]["web"]["environment"]["ASSAY_STORAGE"] == "s3"
