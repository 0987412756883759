"""Client trust policy and state: levels, publishers from the log, witnesses, required checks,
rollback, atomic saves, format-1 migration."""
import json
import os
import stat

import pytest

from assay.core import checkpoint as cp, keys, levels, statements
from assay.core.cosignature import witness_vkey
from assay.core.errors import AssayError, FormatError, VerificationError
from assay.client.trustpolicy import TrustPolicy

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
    lambda p: p["publishers"]["namespaces"].update({"Bad NS": {"mode": "log"}}),
    lambda p: p["publishers"]["namespaces"].update({"demo": {"mode": "tofu"}}),
    lambda p: p["levels"].update(default=["verified"]),
    lambda p: p["levels"].update(default=[]),
    lambda p: p["levels"]["namespaces"].update({"demo": "original"}),
    lambda p: p.update(witnesses={"keys": {}, "required": 1}),
    lambda p: p.update(witnesses={"keys": {"w1": "w1+00000000+AAAA"}, "required": 0}),
    lambda p: p["publishers"]["namespaces"].update({"demo": {"mode": "pinned", "keys": "sha256:x"}}),
    lambda p: p["checks"].update(required="static"),
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


def _learn(p, events):
    """Apply (index, kind, args) key events to the policy's key state, as a catch-up would."""
    for index, kind, args in events:
        if kind == "register":
            p.key_state.register(index, statements.KeyEvent("register", args[0], "", args[1], "2026-11-26T00:00:00Z", None))
        else:
            p.key_state.set_role(index, statements.RoleEvent(args[0], args[1], kind, "2026-11-26T00:00:00Z"))
    p.key_state.through = max(i for i, _, _ in events) + 1


def test_publishers_come_from_the_log(tmp_path):
    p = make(tmp_path)
    _learn(p, [(0, "owner", ("demo", "alice")), (1, "register", (K1, "alice")), (2, "register", (K2, "bob"))])
    ok, reason = p.publisher_key_allowed("demo", K1, 5)
    assert ok and "alice" in reason
    ok, reason = p.publisher_key_allowed("demo", K2, 5)
    assert not ok and "bob has no publishing role" in reason
    _learn(p, [(6, "publisher", ("demo", "bob"))])
    assert p.publisher_key_allowed("demo", K2, 7)[0] and not p.publisher_key_allowed("demo", K2, 5)[0]
    _learn(p, [(8, "none", ("demo", "bob"))])
    ok, reason = p.publisher_key_allowed("demo", K2, 9)
    assert not ok and "removed from it in log entry 8" in reason
    assert not p.publisher_key_allowed("demo", K1, 1)[0]  # a release logged before the key's registration
    p.save()
    q = TrustPolicy.load(tmp_path / "reg")
    assert q.publisher_key_allowed("demo", K2, 7)[0] and q.key_state.through == 9


def test_pinned_namespace(tmp_path):
    p = make(tmp_path, publisher_mode="pinned")
    _learn(p, [(0, "owner", ("demo", "alice")), (1, "register", (K1, "alice")), (2, "register", (K2, "alice"))])
    ok, reason = p.publisher_key_allowed("demo", K1, 5)
    assert not ok and f"assay policy allow demo {K1}" in reason
    p.allow_publisher("demo", K1)
    assert p.publisher_key_allowed("demo", K1, 5)[0] and not p.publisher_key_allowed("demo", K2, 5)[0]
    p.set_publisher_mode("log", "other")
    with pytest.raises(FormatError):
        p.set_publisher_mode("maybe")
    with pytest.raises(FormatError):
        p.allow_publisher("demo", "sha256:short")


def test_levels_by_namespace(tmp_path):
    p = make(tmp_path)
    unrep = levels.Level(levels.UNREPRODUCED, (), "a quantized file published without a base")
    ok, reason = p.level_allowed("demo", unrep)
    assert not ok and "'unreproduced'" in reason and "assay policy allow demo unreproduced" in reason
    p.allow_level("demo", "unreproduced")
    assert p.level_allowed("demo", unrep)[0] and not p.level_allowed("other", unrep)[0]
    p.set_levels(["converted", "reproduced"])
    quant_of_original = levels.Level(levels.REPRODUCED, (levels.ChainLink("demo/b:f16", 1, "sha256:" + "0" * 64, "original"),))
    ok, reason = p.level_allowed("other", quant_of_original)
    assert not ok and "chain starts at a release of level 'original'" in reason and "assay policy allow other original" in reason
    with pytest.raises(FormatError, match="unknown verification level 'verified'"):
        p.set_levels(["verified"])
    with pytest.raises(FormatError):
        p.allow_level("demo", "nope")


def test_witnesses(tmp_path):
    p = make(tmp_path)
    vkey = witness_vkey("w1", VSK.public_key())
    with pytest.raises(FormatError, match="cannot require 1 witness"):
        p.set_witnesses_required(1)
    assert p.add_witness(vkey) == "w1"
    p.set_witnesses_required(1)
    p.save()
    q = TrustPolicy.load(tmp_path / "reg")
    assert q.witness_keys() == {"w1": vkey} and q.witnesses_required() == 1
    with pytest.raises(FormatError):
        q.add_witness("w2+1234abcd+notbase64")
    q.remove_witness("w1")
    assert q.witnesses_required() == 0


def test_format_1_policy_is_migrated(tmp_path):
    make(tmp_path).save()
    path = tmp_path / "reg" / "policy.json"
    data = json.loads(path.read_text())
    data.update(format=1, publishers={"default": "tofu", "namespaces": {"demo": {"mode": "tofu", "keys": [K1]}}})
    data.pop("levels"), data.pop("witnesses")
    data["checks"]["allow_originals"] = False
    path.write_text(json.dumps(data))
    state = tmp_path / "reg" / "state.json"
    state.write_text(json.dumps({"format": 1, "versions": {}, "tofu": {"demo": [K1]}, "checkpoint": None, "revoked_keys": {}}))
    p = TrustPolicy.load(tmp_path / "reg")
    assert p.policy["publishers"]["default"] == "log" and p.accepted_levels() == ["converted", "reproduced"]
    p.save()
    assert json.loads(path.read_text())["format"] == 2 and "tofu" not in json.loads(state.read_text())


def test_required_checks(tmp_path):
    assert make(tmp_path / "default").required_checks(True) == ["static", "probes"]  # a rebuild is the level's business
    p = make(tmp_path, required_with_base=["reproduce"])
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


def test_check_aliases(tmp_path):
    p = make(tmp_path, required_checks=["static", "probes"], required_with_base=["reproduced"])
    assert p.required_checks(True) == ["static", "probes", "reproduce"]


def test_a_check_no_verifier_runs_is_refused(tmp_path):
    with pytest.raises(FormatError, match="names 'prboes'; the checks are static, reproduce, probes"):
        make(tmp_path, required_checks=["static", "prboes"])


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
    _learn(a, [(0, "owner", ("demo", "alice")), (1, "register", (K1, "alice")), (9, "register", (K2, "bob"))])
    a.save()
    b.record_version("demo/m:b", 2)
    b.record_version("demo/m:a", 1)  # b never saw a's version 4
    b.record_checkpoint("cp7", 7)
    _learn(b, [(0, "owner", ("demo", "alice")), (1, "register", (K1, "alice"))])
    b.record_revocation(K1, 5, "2026-11-26T00:00:00Z", "lost")
    b.save()
    c = TrustPolicy.load(tmp_path / "reg")
    assert c.highest_version("demo/m:a") == 4 and c.highest_version("demo/m:b") == 2
    assert c.newest_checkpoint() == "cp10"
    assert c.key_state.through == 10 and K2 in c.key_state.keys  # the state that reaches furthest
    assert c.known_revocation(K1)["index"] == 5 and c.key_state.keys[K1]["revoked"] == 5  # and every revocation


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


def test_saving_in_the_middle_of_a_catch_up_keeps_what_it_learned(tmp_path):
    """A revocation is saved the moment it verifies, while a catch-up is still applying events:
    that save must not drop the roles learned so far, nor replace the state the catch-up holds."""
    p = make(tmp_path)
    p.save()
    state = p.key_state
    _learn(p, [(0, "owner", ("demo", "alice")), (1, "register", (K1, "alice"))])
    p.key_state.through = 0  # still catching up
    p.record_revocation(K1, 2, "2026-11-26T00:00:00Z", "lost")
    p.save()
    assert p.key_state is state and p.key_state.role_at("demo", "alice", 5) == "owner"
    assert TrustPolicy.load(tmp_path / "reg").key_state.role_at("demo", "alice", 5) == "owner"
