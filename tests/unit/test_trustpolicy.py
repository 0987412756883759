"""Client trust policy and state: pinning, TOFU, required checks, rollback, atomic saves."""
import json
import os
import stat

import pytest

from assay import checkpoint as cp, keys
from assay.errors import AssayError, FormatError, VerificationError
from assay.trustpolicy import TrustPolicy

VSK = keys.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
LSK = keys.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
VKID = keys.key_id(VSK.public_key())
K1, K2 = "sha256:" + "a1" * 32, "sha256:" + "b2" * 32
PASS = [{"name": n, "result": "passed", "summary": "", "evidence": {}} for n in ("static", "reproduce", "probes")]


def make(tmp_path, **kw):
    return TrustPolicy.create(
        tmp_path / "reg", registry_url="http://localhost:8000",
        verifier_keys={VKID: keys.public_key_to_text(VSK.public_key())},
        log_vkey=cp.verifier_key_string("localhost/log", LSK.public_key()), **kw,
    )


def test_create_save_load(tmp_path):
    p = make(tmp_path)
    p.save()
    for name in ("policy.json", "state.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "reg" / name).st_mode) == 0o600
    q = TrustPolicy.load(tmp_path / "reg")
    assert list(q.verifier_keys()) == [VKID]
    assert q.log_keyid() == keys.key_id(LSK.public_key()) and q.log_name() == "localhost/log"
    assert q.log_vkey() == cp.verifier_key_string("localhost/log", LSK.public_key())
    assert keys.key_id(q.log_public_key()) == q.log_keyid()
    assert not [f for f in os.listdir(tmp_path / "reg") if f.endswith(".tmp")]


def test_load_missing_or_broken(tmp_path):
    with pytest.raises(AssayError, match="trust add"):
        TrustPolicy.load(tmp_path / "nothing")
    d = tmp_path / "broken"
    d.mkdir()
    (d / "policy.json").write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        TrustPolicy.load(d)


@pytest.mark.parametrize("edit", [
    lambda p: p["verifier_keys"].update({K1: keys.public_key_to_text(VSK.public_key())}),  # id does not match key
    lambda p: p.update(verifier_keys={}),
    lambda p: p["verifier_keys"].update({VKID: "AAAA"}),
    lambda p: p["log"].update(vkey="garbage"),
    lambda p: p["publishers"].update(default="sometimes"),
    lambda p: p["publishers"]["namespaces"].update({"Bad NS": {"mode": "tofu"}}),
    lambda p: p["publishers"]["namespaces"].update({"demo": {"mode": "pinned", "keys": "sha256:x"}}),
    lambda p: p["checks"].update(required="static"),
    lambda p: p["checks"].update(allow_originals="yes"),
    lambda p: p.update(format=99),
])
def test_invalid_policy_files(tmp_path, edit):
    make(tmp_path).save()
    path = tmp_path / "reg" / "policy.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match="invalid trust policy"):
        TrustPolicy.load(tmp_path / "reg")


def test_invalid_state_file(tmp_path):
    make(tmp_path).save()
    (tmp_path / "reg" / "state.json").write_text(json.dumps({"versions": {"demo/m:t": "2"}}))
    with pytest.raises(FormatError, match="invalid client state"):
        TrustPolicy.load(tmp_path / "reg")


def test_tofu_pins_first_key(tmp_path):
    p = make(tmp_path)
    ok, reason = p.publisher_key_allowed("demo", K1)
    assert ok and "first use" in reason
    assert p.publisher_key_allowed("demo", K1)[0]
    ok, reason = p.publisher_key_allowed("demo", K2)
    assert not ok and K1 in reason and K2 in reason and "policy.json" in reason and "trusts" in reason
    assert p.publisher_key_allowed("other", K2)[0]  # per namespace
    p.save()
    q = TrustPolicy.load(tmp_path / "reg")
    assert not q.publisher_key_allowed("demo", K2)[0]
    q.pin_publisher_key("demo", K2)  # an expected key rotation, accepted by the user
    assert q.publisher_key_allowed("demo", K2)[0] and q.publisher_key_allowed("demo", K1)[0]


def test_tofu_not_persisted_without_save(tmp_path):
    p = make(tmp_path)
    p.save()
    p.publisher_key_allowed("demo", K1)  # e.g. the rest of the verification then failed
    assert TrustPolicy.load(tmp_path / "reg").publisher_key_allowed("demo", K2)[0]


def test_pinned_mode(tmp_path):
    p = make(tmp_path, publisher_mode="pinned")
    ok, reason = p.publisher_key_allowed("demo", K1)
    assert not ok and "not pinned for namespace 'demo'" in reason
    p.pin_publisher_key("demo", K1)
    assert p.publisher_key_allowed("demo", K1)[0] and not p.publisher_key_allowed("demo", K2)[0]
    p.pin_publisher_key("tofu-ns", K2, mode="tofu")
    assert p.publisher_key_allowed("tofu-ns", K2)[0] and p.publisher_key_allowed("tofu-ns", K1)[0] is False
    with pytest.raises(AssayError):
        p.pin_publisher_key("demo", K1, mode="maybe")


def test_required_checks(tmp_path):
    p = make(tmp_path)
    assert p.required_checks_satisfied(PASS, has_base=True)[0]
    original = [c for c in PASS if c["name"] != "reproduce"]
    assert p.required_checks_satisfied(original, has_base=False)[0]
    ok, reason = p.required_checks_satisfied(original, has_base=True)
    assert not ok and "no 'reproduce' check" in reason
    skipped = [dict(c, result="skipped", summary="no base") if c["name"] == "reproduce" else c for c in PASS]
    ok, reason = p.required_checks_satisfied(skipped, has_base=True)
    assert not ok and "'reproduce' did not pass (skipped): no base" in reason
    failed = [dict(c, result="failed", summary="KL too high") if c["name"] == "probes" else c for c in PASS]
    assert not p.required_checks_satisfied(failed, has_base=False)[0]


def test_originals_can_be_refused_and_aliases(tmp_path):
    p = make(tmp_path, allow_originals=False, required_checks=["static", "probes"], required_with_base=["reproduced"])
    ok, reason = p.required_checks_satisfied(PASS, has_base=False)
    assert not ok and "original" in reason
    assert p.required_checks(True) == ["static", "probes", "reproduce"]


def test_rollback(tmp_path):
    p = make(tmp_path)
    p.check_version_not_rolled_back("demo/smollm2:q4_1", 1)
    p.record_version("demo/smollm2:q4_1", 2)
    p.check_version_not_rolled_back("demo/smollm2:q4_1", 2)
    p.check_version_not_rolled_back("demo/smollm2:q4_1", 3)
    with pytest.raises(VerificationError) as exc:
        p.check_version_not_rolled_back("demo/smollm2:q4_1", 1)
    assert str(exc.value) == "rollback: demo/smollm2:q4_1 is at version 2 here, the registry now serves version 1"
    with pytest.raises(VerificationError):
        p.record_version("demo/smollm2:q4_1", 1)
    p.check_version_not_rolled_back("demo/smollm2:f16", 1)  # per tag
    with pytest.raises(FormatError):
        p.check_version_not_rolled_back("not a reference", 1)
    p.save()
    with pytest.raises(VerificationError, match="rollback"):
        TrustPolicy.load(tmp_path / "reg").check_version_not_rolled_back("demo/smollm2:q4_1", 1)


def test_checkpoint_state(tmp_path):
    p = make(tmp_path)
    assert p.newest_checkpoint() is None
    p.record_checkpoint("cp5", 5)
    p.record_checkpoint("cp3", 3)  # older: ignored
    assert p.newest_checkpoint() == "cp5" and p.newest_checkpoint_size() == 5
    p.record_checkpoint("cp9", 9)
    p.save()
    assert TrustPolicy.load(tmp_path / "reg").newest_checkpoint() == "cp9"


def test_concurrent_saves_merge(tmp_path):
    make(tmp_path).save()
    a = TrustPolicy.load(tmp_path / "reg")
    b = TrustPolicy.load(tmp_path / "reg")
    a.record_version("demo/m:a", 4)
    a.record_checkpoint("cp10", 10)
    a.publisher_key_allowed("demo", K1)
    a.save()
    b.record_version("demo/m:b", 2)
    b.record_version("demo/m:a", 1)  # b never saw a's version 4
    b.record_checkpoint("cp7", 7)
    b.publisher_key_allowed("demo", K2)
    b.save()
    c = TrustPolicy.load(tmp_path / "reg")
    assert c.highest_version("demo/m:a") == 4 and c.highest_version("demo/m:b") == 2
    assert c.newest_checkpoint() == "cp10"
    assert c.state["tofu"]["demo"][0] == K1  # the earliest pin stays first


def test_trust_add_again_keeps_state_but_drops_checkpoint_of_another_log_key(tmp_path):
    p = make(tmp_path)
    p.record_version("demo/m:t", 3)
    p.record_checkpoint("cp", 4)
    p.save()
    again = make(tmp_path)
    assert again.highest_version("demo/m:t") == 3 and again.newest_checkpoint() == "cp"
    other = TrustPolicy.create(tmp_path / "reg", registry_url="x", verifier_keys={VKID: keys.public_key_to_text(VSK.public_key())},
                               log_vkey=cp.verifier_key_string("localhost/log", VSK.public_key()))
    assert other.highest_version("demo/m:t") == 3 and other.newest_checkpoint() is None
