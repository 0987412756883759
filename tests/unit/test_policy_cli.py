"""`assay policy` as a user runs it (the real console script): every change is validated first;
bad input is one line, exit 1, and policy.json stays as it was."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.core import checkpoint as cp
from assay.core import keys
from assay.core.cosignature import witness_vkey
from assay.client.trustpolicy import TrustPolicy

URL = "http://127.0.0.1:9"
SLUG = "127.0.0.1_9"
ASSAY = str(Path(sys.executable).parent / "assay")


@pytest.fixture
def home(tmp_path):
    vsk, lsk = keys.generate_private_key(), keys.generate_private_key()
    TrustPolicy.create(tmp_path / "config" / "registries" / SLUG, registry_url=URL,
                       verifier_keys={keys.key_id(vsk.public_key()): keys.public_key_to_text(vsk.public_key())},
                       log_vkey=cp.verifier_key_string("x.test/log", lsk.public_key())).save()
    return tmp_path


def assay(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}, "ASSAY_CONFIG_DIR": str(home / "config")}
    return subprocess.run([ASSAY, *args, "-r", URL], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


def policy_file(home: Path) -> Path:
    return home / "config" / "registries" / SLUG / "policy.json"


def test_show_set_allow_round_trip(home):
    shown = assay(home, "policy", "show")
    assert shown.returncode == 0 and "levels       converted, reproduced, original (default)" in shown.stdout
    assert "checks       static, probes, with a base or not" in shown.stdout  # the level carries what a quant must show
    assert assay(home, "policy", "allow", "lab", "unreproduced").returncode == 0
    assert assay(home, "policy", "set", "levels", "reproduced,converted", "--namespace", "prod").returncode == 0
    assert assay(home, "policy", "set", "publishers", "pinned", "--namespace", "prod").returncode == 0
    assert assay(home, "policy", "allow", "prod", "sha256:" + "ab" * 32).returncode == 0
    vkey = witness_vkey("w1.test", keys.generate_private_key().public_key())
    assert assay(home, "policy", "witness", "add", vkey).returncode == 0
    assert assay(home, "policy", "set", "witnesses", "1").returncode == 0
    assert assay(home, "policy", "set", "witness-max-age", "600").returncode == 0
    policy = json.loads(assay(home, "policy", "show", "--json").stdout)["policy"]
    assert policy["levels"]["namespaces"] == {"lab": ["converted", "reproduced", "original", "unreproduced"],
                                             "prod": ["reproduced", "converted"]}
    assert policy["publishers"]["namespaces"]["prod"] == {"mode": "pinned", "keys": ["sha256:" + "ab" * 32]}
    assert policy["witnesses"] == {"keys": {"w1.test": vkey}, "required": 1, "max_age_s": 600}


def test_changes_answer_in_json_with_the_saved_policy(home):
    for args in [("allow", "lab", "unreproduced"), ("set", "levels", "reproduced", "--namespace", "prod"),
                 ("set", "witness-max-age", "600")]:
        r = assay(home, "policy", *args, "--json")
        assert r.returncode == 0, r
        answer = json.loads(r.stdout)
        assert answer["policy"] == json.loads(policy_file(home).read_text()) and answer["result"], answer
    assert "witness cosignature counts for 600 s" in answer["result"]
    vkey = witness_vkey("w2.test", keys.generate_private_key().public_key())
    added = json.loads(assay(home, "policy", "witness", "add", vkey, "--json").stdout)
    assert "w2.test" in added["policy"]["witnesses"]["keys"]
    removed = json.loads(assay(home, "policy", "witness", "remove", "w2.test", "--json").stdout)
    assert removed["result"] == "witness w2.test removed" and "w2.test" not in removed["policy"]["witnesses"]["keys"]


@pytest.mark.parametrize("args, message", [
    (("policy", "set", "levels", "verified"), "unknown verification level 'verified'"),
    (("policy", "allow", "demo", "trusted"), "unknown verification level 'trusted'"),
    (("policy", "allow", "Bad NS", "original"), "namespace"),
    (("policy", "allow", "demo", "sha256:short"), "is not a key id"),
    (("policy", "set", "witnesses", "1"), "cannot require 1 witness cosignatures: this policy names 0 witness"),
    (("policy", "set", "witnesses", "many"), "must be a whole number"),
    (("policy", "set", "publishers", "tofu"), "unknown publisher mode 'tofu'"),
    (("policy", "witness", "add", "w1+00000000+AAAA"), "witness"),
    (("policy", "witness", "add", "not a key"), "witness"),
    (("policy", "witness", "remove", "nobody"), "no witness named 'nobody'"),
    (("policy", "set", "verifiers", "2"), "verifiers required must be from 1 to the 1 verifier key(s) this client pins"),
    (("policy", "set", "verifiers", "0"), "verifiers required must be from 1 to the 1 verifier key(s)"),
    (("policy", "set", "verifiers", "2", "--namespace", "demo"), "verifiers are required per registry"),
    (("policy", "verifier", "remove", "sha256:" + "cd" * 32), "is not pinned in this policy"),
])
def test_bad_input_is_one_line_exit_1_and_nothing_written(home, args, message):
    before = policy_file(home).read_bytes()
    result = assay(home, *args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert policy_file(home).read_bytes() == before


def test_a_malformed_policy_file_is_named(home):
    data = json.loads(policy_file(home).read_text())
    data["levels"]["default"] = ["origin"]
    policy_file(home).write_text(json.dumps(data))
    result = assay(home, "policy", "show")
    assert result.returncode == 1 and "invalid trust policy" in result.stderr and "unknown verification level 'origin'" in result.stderr
