"""The DB-backed transparency log (registry/tlog.py) and its HTTP API.

Proofs from stored perfect-subtree nodes must equal the RFC 6962 reference computed over all
leaves, verify with assay.core.merkle's verifiers, and cost a bounded number of queries.
"""
from __future__ import annotations

import base64

import pytest
from django.db import transaction
from django.test import Client

from assay.core import checkpoint, merkle
from assay.core.canonical import canonical_json
from assay.core.errors import VerificationError
from registry import tlog
from registry.models import LogEntry, LogNode, LogState
from tests.support.factories import registry_dirs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_dirs")]


def envelope(i: int) -> dict:
    return {"payloadType": "test", "payload": base64.b64encode(f"entry {i}".encode()).decode(), "signatures": []}


def leaves(n: int) -> list[bytes]:
    return [canonical_json(envelope(i)) for i in range(n)]


def check_stored_nodes(data: list[bytes]) -> None:
    """Every stored node is the hash of its perfect subtree; exactly the complete ones exist."""
    hashes = [merkle.leaf_hash(d) for d in data]
    stored = {(n.level, n.index): bytes(n.hash) for n in LogNode.objects.all()}
    expected = {}
    level, row = 0, hashes
    while row:
        for i, h in enumerate(row):
            expected[(level, i)] = h
        row = [merkle.node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
    assert stored == expected


def test_log_of_sizes_1_to_64_matches_the_reference():
    data = leaves(64)
    for i in range(64):
        assert tlog.append("test", envelope(i)) == i
        size = i + 1
        assert tlog.size() == size
        assert tlog.root(size) == merkle.root_from_leaves(data[:size])
    check_stored_nodes(data)
    assert [bytes(e.data) for e in tlog.entries(0, 64)] == data
    assert tlog.root(0) == merkle.EMPTY_ROOT
    for size in range(1, 65):
        root = merkle.root_from_leaves(data[:size])
        assert tlog.root(size) == root
        for index in range(size):
            proof = tlog.inclusion_proof(index, size)
            assert proof == merkle.reference_inclusion_proof(index, data[:size])
            merkle.verify_inclusion(merkle.leaf_hash(data[index]), index, size, proof, root)
        for old in range(0, size + 1):
            proof = tlog.consistency_proof(old, size)
            assert proof == merkle.reference_consistency_proof(old, data[:size])
            merkle.verify_consistency(old, size, merkle.root_from_leaves(data[:old]), root, proof)


def test_append_many_equals_single_appends():
    data = leaves(45)
    for i in range(5):
        tlog.append("test", envelope(i))
    assert tlog.append_many([("test", envelope(i)) for i in range(5, 23)]) == list(range(5, 23))
    tlog.append("test", envelope(23))
    assert tlog.append_many([("test", envelope(i)) for i in range(24, 45)]) == list(range(24, 45))
    assert tlog.append_many([]) == []
    assert tlog.size() == 45
    check_stored_nodes(data)
    assert tlog.root(45) == merkle.root_from_leaves(data)


def test_queries_do_not_grow_with_the_log(django_assert_max_num_queries):
    tlog.append_many([("test", envelope(i)) for i in range(1023)])
    # Appending leaf 1023 completes 10 subtrees: still one read for all the siblings it needs.
    with django_assert_max_num_queries(7):  # savepoint, lock, siblings, nodes, entry, size, release
        assert tlog.append("test", envelope(1023)) == 1023
    with django_assert_max_num_queries(1):
        tlog.root(1024)
    with django_assert_max_num_queries(2):  # the tree size, then every node in one query
        tlog.inclusion_proof(517, 1000)
    with django_assert_max_num_queries(2):
        tlog.consistency_proof(333, 1021)
    with django_assert_max_num_queries(2):
        tlog.signed_checkpoint()


def test_append_rolls_back_with_its_transaction():
    tlog.append("test", envelope(0))
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            tlog.append("test", envelope(1))
            raise RuntimeError("the referencing row failed")
    assert tlog.size() == 1 and LogEntry.objects.count() == 1 and LogNode.objects.count() == 1
    assert tlog.append("test", envelope(1)) == 1
    check_stored_nodes(leaves(2))


def test_missing_state_row_is_recreated():
    LogState.objects.all().delete()  # as after a flush of the test database
    assert tlog.size() == 0
    assert tlog.append("test", envelope(0)) == 0
    assert tlog.size() == 1


def test_corrupt_store_is_an_error_not_a_wrong_proof():
    tlog.append_many([("test", envelope(i)) for i in range(8)])
    LogNode.objects.filter(level=2, index=1).delete()
    with pytest.raises(LookupError, match="incomplete or corrupt"):
        tlog.inclusion_proof(0, 8)


def test_tampered_entry_no_longer_proves_inclusion():
    data = leaves(11)
    tlog.append_many([("test", envelope(i)) for i in range(11)])
    root = tlog.root(11)
    LogEntry.objects.filter(index=4).update(data=canonical_json(envelope(99)))
    served = bytes(LogEntry.objects.get(index=4).data)
    with pytest.raises(VerificationError, match="inclusion proof for leaf 4 does not lead to the root"):
        merkle.verify_inclusion(merkle.leaf_hash(served), 4, 11, tlog.inclusion_proof(4, 11), root)
    replayed = [bytes(e.data) for e in tlog.entries(0, 11)]
    assert replayed != data and merkle.root_from_leaves(replayed) != root


# ---------------------------------------------------------------- HTTP API

@pytest.fixture
def api():
    return Client()


def vkey(api) -> str:
    return api.get("/api/v1/trust").json()["log"]["vkey"]


def test_checkpoint_verifies_with_the_served_log_key(api):
    empty = checkpoint.verify_checkpoint(api.get("/api/v1/log/checkpoint").content.decode(), vkey(api))
    assert (empty.size, empty.root) == (0, merkle.EMPTY_ROOT)
    tlog.append_many([("test", envelope(i)) for i in range(13)])
    response = api.get("/api/v1/log/checkpoint")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    cp = checkpoint.verify_checkpoint(response.content.decode(), vkey(api))
    assert cp.size == 13 and cp.root == merkle.root_from_leaves(leaves(13))
    with pytest.raises(VerificationError, match="not signed by the pinned log key"):
        from tests.support.bundles import _from_seed

        checkpoint.verify_checkpoint(response.content.decode(), checkpoint.verifier_key_string(cp.origin, _from_seed(7).public_key()))


def test_proofs_over_http(api):
    data = leaves(21)
    tlog.append_many([("test", envelope(i)) for i in range(21)])
    cp = checkpoint.verify_checkpoint(api.get("/api/v1/log/checkpoint").content.decode(), vkey(api))
    for index in (0, 7, 20):
        body = api.get("/api/v1/log/proof/inclusion", {"index": index, "size": 21}).json()
        assert (body["index"], body["tree_size"]) == (index, 21)
        merkle.verify_inclusion(merkle.leaf_hash(data[index]), index, cp.size, [bytes.fromhex(h) for h in body["proof"]], cp.root)
    for old in (0, 1, 8, 13, 21):
        body = api.get("/api/v1/log/proof/consistency", {"old": old, "new": 21}).json()
        assert (body["old_size"], body["new_size"]) == (old, 21)
        merkle.verify_consistency(old, 21, merkle.root_from_leaves(data[:old]), cp.root, [bytes.fromhex(h) for h in body["proof"]])


def test_entries_paging(api):
    data = leaves(1105)
    tlog.append_many([("test", envelope(i)) for i in range(1105)])

    def page(**params):
        response = api.get("/api/v1/log/entries", params)
        assert response.status_code == 200
        return response.json()["entries"]

    first = page()
    assert [e["index"] for e in first] == list(range(100))
    assert base64.b64decode(first[5]["data"]) == data[5] and first[5]["kind"] == "test"
    assert [e["index"] for e in page(start=50, end=53)] == [50, 51, 52]
    assert len(page(start=0, end=5000)) == 1000  # capped
    assert [e["index"] for e in page(start=1100, end=5000)] == list(range(1100, 1105))
    assert page(start=1105) == [] and page(start=7, end=7) == []
    replayed, start = [], 0
    while batch := page(start=start, end=start + 1000):
        replayed += [base64.b64decode(e["data"]) for e in batch]
        start += len(batch)
    assert merkle.root_from_leaves(replayed) == tlog.root(1105)


@pytest.mark.parametrize("path,params,message", [
    ("inclusion", {"size": 3}, "'index' is required"),
    ("inclusion", {"index": 0}, "'size' is required"),
    ("inclusion", {"index": "x", "size": 3}, "must be a non-negative integer"),
    ("inclusion", {"index": "-1", "size": 3}, "must be a non-negative integer"),
    ("inclusion", {"index": "1.0", "size": 3}, "must be a non-negative integer"),
    ("inclusion", {"index": " 1", "size": 3}, "must be a non-negative integer"),
    ("inclusion", {"index": 0, "size": "99999999999999999999999"}, "must be a non-negative integer"),
    ("inclusion", {"index": 0, "size": str(1 << 63)}, "below 2\\*\\*63"),
    ("inclusion", {"index": 3, "size": 3}, "leaf index 3 is not in a tree of size 3"),
    ("inclusion", {"index": 0, "size": 4}, "tree size 4 is outside the log"),
    ("inclusion", {"index": 0, "size": 0}, "leaf index 0 is not in a tree of size 0"),
    ("inclusion", {"index": 0, "size": str((1 << 63) - 1)}, "outside the log"),
    ("consistency", {"old": 2, "new": 1}, "cannot prove consistency from size 2 to 1"),
    ("consistency", {"old": 0, "new": 9}, "tree size 9 is outside the log"),
    ("consistency", {"new": 1}, "'old' is required"),
    ("entries", {"start": "-5"}, "must be a non-negative integer"),
    ("entries", {"start": 5, "end": 2}, "end must not be below start"),
    ("entries", {"start": "abc"}, "must be a non-negative integer"),
])
def test_bad_parameters_are_400_json(api, path, params, message):
    tlog.append_many([("test", envelope(i)) for i in range(3)])
    url = "/api/v1/log/entries" if path == "entries" else f"/api/v1/log/proof/{path}"
    response = api.get(url, params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    import re

    assert re.search(message, response.json()["error"]), response.json()


def test_huge_entries_range_is_not_a_server_error(api):
    max_index = str((1 << 63) - 1)
    assert api.get("/api/v1/log/entries", {"start": max_index}).json() == {"entries": []}
    assert api.get("/api/v1/log/entries", {"start": max_index, "end": max_index}).json() == {"entries": []}


def test_write_methods_are_refused(api):
    assert api.post("/api/v1/log/checkpoint").status_code == 405
    assert api.post("/api/v1/log/entries").status_code == 405


def test_batched_inclusion_proofs_equal_single_ones():
    tlog.append_many([("verdict", envelope(i)) for i in range(37)])
    for size in (1, 2, 17, 32, 37):
        wanted = list(range(0, size, 3)) + [size - 1]
        batched = tlog.inclusion_proofs(wanted, size)
        assert batched == {i: tlog.inclusion_proof(i, size) for i in wanted}
        assert all(p == merkle.reference_inclusion_proof(i, leaves(37)[:size]) for i, p in batched.items())
    assert tlog.inclusion_proofs([], 37) == {}


def test_key_events_are_listed_signed_and_proven():
    """GET /api/v1/log/key-events: the signed index lists exactly the key events in the range,
    bound to the root at its end; each served entry is proven under that root."""
    from assay.core import dsse, keyindex, keys, statements
    from registry.serverkeys import log_key

    signer = keys.Signer(keys.generate_private_key())
    reg = dsse.sign_envelope(statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key),
                                                        owner="alice"), statements.PAYLOAD_TYPE, signer)
    tlog.append_many([("verdict", envelope(0)), ("key-register", reg), ("verdict", envelope(1)), ("verdict", envelope(2))])
    answer = Client().get("/api/v1/log/key-events", {"start": 1, "end": 3}).json()
    index = keyindex.verify(answer["index"], log_key().public_key())
    assert (index.start, index.end, index.entries, index.root) == (1, 3, (1,), tlog.root(3))
    [entry] = answer["entries"]
    merkle.verify_inclusion(merkle.leaf_hash(base64.b64decode(entry["data"])), 1, 3, [bytes.fromhex(h) for h in entry["proof"]], tlog.root(3))
    assert Client().get("/api/v1/log/key-events", {"start": 2}).json()["entries"] == []  # end defaults to the size
    bad = Client().get("/api/v1/log/key-events", {"start": 3, "end": 99})
    assert bad.status_code == 400 and "outside the log" in bad.json()["error"]
