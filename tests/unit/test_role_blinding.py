"""Blinded role events: a private namespace's roles in the public log name neither the namespace
nor the member, and a client holding the namespace's role-blinding key reads them together with
the events that name them, in log order; the first key it sees for a namespace is pinned."""
from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

import pytest

from assay.client.bundle_verify import learn_role_blinding
from assay.client.keystate import KeyState
from assay.core import statements as st
from assay.core.errors import FormatError, VerificationError

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "statements.json").read_text())
KEY = "0f" * 32
OTHER = "1e" * 32


def _hmac(key: str, message: bytes) -> str:
    return "blind:" + hmac.new(bytes.fromhex(key), message, hashlib.sha256).hexdigest()


def test_the_blinded_vector_is_built_again_byte_for_byte_and_its_names_are_hmacs():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
    from make_vectors import fixed_blinded_role_payload

    assert fixed_blinded_role_payload().decode() == VECTORS["blinded_role_payload"]
    event = st.parse_role_event(VECTORS["blinded_role_payload"].encode())
    # Computed here independently of the builder: HMAC-SHA256 over labelled, NUL-separated names.
    assert event.namespace == _hmac(KEY, b"assay-role-namespace\x00vault")
    assert event.member == _hmac(KEY, b"assay-role-member\x00vault\x00carol")
    assert event.role == "publisher"
    assert "vault" not in VECTORS["blinded_role_payload"] and "carol" not in VECTORS["blinded_role_payload"]


def test_blinding_depends_on_the_key_and_the_namespace():
    assert st.blind_namespace(KEY, "vault") != st.blind_namespace(OTHER, "vault")
    assert st.blind_namespace(KEY, "vault") != st.blind_namespace(KEY, "vault2")
    assert st.blind_member(KEY, "vault", "carol") != st.blind_member(KEY, "other", "carol")
    with pytest.raises(FormatError, match="64 lowercase hex"):
        st.blind_namespace("xyz", "vault")


@pytest.mark.parametrize("namespace, member", [
    ("vault", st.blind_member(KEY, "vault", "carol")),
    (st.blind_namespace(KEY, "vault"), "carol"),
])
def test_a_role_event_is_blinded_whole_or_not_at_all(namespace, member):
    with pytest.raises(FormatError, match="blinded exactly when"):
        st.build_role_event(namespace=namespace, member=member, role="owner", time="2025-01-30T00:00:00Z")


def test_a_malformed_blinded_name_is_refused():
    with pytest.raises(FormatError, match="blind:<64 hex digits>"):
        st.build_role_event(namespace="blind:" + "G" * 64, member="blind:" + "0" * 64, role="owner")


def _event(ns: str, member: str, role: str, key: str | None = None) -> st.RoleEvent:
    if key:
        ns, member = st.blind_namespace(key, ns), st.blind_member(key, ns, member)
    return st.RoleEvent(ns, member, role, "2025-01-30T00:00:00Z")


def _state() -> KeyState:
    """carol: publisher of vault by name at 3 (before the namespace's roles were blinded),
    then removed at 9 and made publisher again at 15, blinded; dave: publisher at 5, blinded."""
    state = KeyState()
    state.register(1, st.KeyEvent("register", "sha256:" + "aa" * 32, "", "carol", "2025-01-30T00:00:00Z", None))
    state.set_role(3, _event("vault", "carol", "publisher"))
    state.set_role(5, _event("vault", "dave", "publisher", KEY))
    state.set_role(9, _event("vault", "carol", "none", KEY))
    state.set_role(15, _event("vault", "carol", "publisher", KEY))
    return state


def test_without_the_key_a_client_sees_only_the_named_history():
    state = _state()
    assert [state.role_at("vault", "carol", i) for i in (2, 4, 10, 16)] == ["none", "publisher", "publisher", "publisher"]
    assert state.role_at("vault", "dave", 6) == "none"


def test_with_the_key_the_named_and_blinded_histories_are_read_in_log_order():
    state = _state()
    state.pin_blinding("vault", [KEY])
    assert [state.role_at("vault", "carol", i) for i in (2, 4, 10, 16)] == ["none", "publisher", "none", "publisher"]
    assert state.role_at("vault", "dave", 6) == "publisher"
    decision = state.may_sign("sha256:" + "aa" * 32, "vault", 12)
    assert not decision.allowed and "removed from it in log entry 9" in decision.reason
    assert state.may_sign("sha256:" + "aa" * 32, "vault", 16).allowed
    # The pin survives the client's state file, and a merge keeps the first pin.
    again = KeyState(json.loads(json.dumps(state.to_dict())))
    assert again.blinds == {"vault": [KEY]} and again.role_at("vault", "carol", 10) == "none"
    other = KeyState()
    other.blinds["vault"] = [OTHER]
    again.merge(other)
    assert again.blinds == {"vault": [KEY]}


def test_a_second_key_for_a_pinned_namespace_is_refused():
    state = _state()
    state.pin_blinding("vault", [KEY])
    state.pin_blinding("vault", [KEY])  # the same key again: fine
    with pytest.raises(FormatError, match="second, hidden history"):
        state.pin_blinding("vault", [OTHER])
    assert state.blinds == {"vault": [KEY]}


class _Policy:
    def __init__(self):
        self.key_state = KeyState()


def test_the_bundle_gives_the_key_for_its_own_namespace_only():
    policy = _Policy()
    learn_role_blinding({}, "vault", policy)  # a public namespace's bundle carries none
    assert policy.key_state.blinds == {}
    with pytest.raises(VerificationError, match="for namespace 'other', not 'vault'"):
        learn_role_blinding({"role_blinding": {"namespace": "other", "keys": [KEY]}}, "vault", policy)
    learn_role_blinding({"role_blinding": {"namespace": "vault", "keys": [KEY]}}, "vault", policy)
    assert policy.key_state.blinds == {"vault": [KEY]}
    with pytest.raises(VerificationError, match="do not continue the ones this client pinned"):
        learn_role_blinding({"role_blinding": {"namespace": "vault", "keys": [OTHER]}}, "vault", policy)


def _rekeyed_state() -> KeyState:
    """vault's roles under KEY, then carol leaves (9), the key is replaced by OTHER (10, linked),
    and dave is made publisher under OTHER (11)."""
    state = KeyState()
    state.set_role(3, _event("vault", "carol", "reader", KEY))
    state.set_role(9, _event("vault", "carol", "none", KEY))
    state.set_role(10, st.RoleEvent(st.blind_namespace(KEY, "vault"), st.blind_rekey(KEY, "vault", OTHER), st.REKEYED, "2025-01-30T00:00:00Z"))
    state.set_role(11, _event("vault", "dave", "publisher", OTHER))
    return state


def test_a_new_key_is_taken_only_when_the_log_links_it_to_the_pinned_one():
    state = _rekeyed_state()
    state.pin_blinding("vault", [KEY])
    assert state.role_at("vault", "dave", 12) == "none"  # what carol, who holds only KEY, sees
    state.pin_blinding("vault", [KEY, OTHER])
    assert state.role_at("vault", "dave", 12) == "publisher" and state.role_at("vault", "carol", 12) == "none"
    with pytest.raises(FormatError, match="do not continue"):
        state.pin_blinding("vault", [KEY])  # a registry going back to the old key alone
    third = "2d" * 32
    with pytest.raises(FormatError, match="key 3 of namespace 'vault' has no logged 'rekeyed' event"):
        state.pin_blinding("vault", [KEY, OTHER, third])  # no link logged
    assert state.blinds == {"vault": [KEY, OTHER]}


def test_a_first_sight_takes_the_whole_chain_but_only_with_its_links():
    state = _rekeyed_state()
    state.pin_blinding("vault", [KEY, OTHER])
    assert state.role_at("vault", "carol", 5) == "reader" and state.role_at("vault", "dave", 12) == "publisher"
    unlinked = KeyState()
    with pytest.raises(FormatError, match="key 2 of namespace 'vault' has no logged 'rekeyed' event"):
        unlinked.pin_blinding("vault", [KEY, OTHER])


def test_a_merge_keeps_the_longer_chain_that_continues_the_pinned_one():
    a, b = KeyState(), KeyState()
    a.blinds["vault"] = [KEY]
    b.blinds["vault"] = [KEY, OTHER]
    a.merge(b)
    assert a.blinds["vault"] == [KEY, OTHER]
    c = KeyState()
    c.blinds["vault"] = ["2d" * 32, OTHER, KEY]
    a.merge(c)
    assert a.blinds["vault"] == [KEY, OTHER]


def test_rekeyed_is_only_a_blinded_event():
    with pytest.raises(FormatError, match="'rekeyed' only in a blinded event"):
        st.build_role_event(namespace="vault", member="carol", role="rekeyed", time="2025-01-30T00:00:00Z")
