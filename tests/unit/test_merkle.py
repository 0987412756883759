"""RFC 6962 / 9162 Merkle tree: published CT vectors, the reference definitions, stored-node proofs."""
import pytest

from assay.core import merkle as m
from assay.core.errors import VerificationError

h = bytes.fromhex
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
# Published roots for sizes 0..8 (certificate-transparency / trillian test data).
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based index, tree size, proof) from trillian merkle/log_verifier_test.go
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (3, 8, ["0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7", "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7", "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
]


class Store:
    """Stored perfect-subtree nodes, counting batch lookups like the server's one-query _get_nodes."""

    def __init__(self, leaves):
        self.nodes, self.calls, self.reads = {}, 0, 0
        for i, data in enumerate(leaves):
            for level, index, value in m.nodes_completed_by_append(i, m.leaf_hash(data), lambda lv, ix: self.nodes[(lv, ix)]):
                assert (level, index) not in self.nodes
                self.nodes[(level, index)] = value

    def get_nodes(self, coords):
        self.calls += 1
        self.reads += len(coords)
        return {c: self.nodes[c] for c in coords if c in self.nodes}


LEAVES = [b"leaf %d" % i for i in range(70)]
STORE = Store(LEAVES)


def test_ct_roots():
    for n, expected in enumerate(CT_ROOTS):
        assert m.root_from_leaves(CT_LEAVES[:n]).hex() == expected
        assert m.root_from_leaves_hashes(m.leaf_hash(x) for x in CT_LEAVES[:n]).hex() == expected
        assert m.root(n, Store(CT_LEAVES).get_nodes).hex() == expected


@pytest.mark.parametrize("index, size, proof", CT_INCLUSION)
def test_ct_inclusion_vectors(index, size, proof):
    assert [p.hex() for p in m.reference_inclusion_proof(index, CT_LEAVES[:size])] == proof
    assert [p.hex() for p in m.inclusion_proof(index, size, Store(CT_LEAVES).get_nodes)] == proof
    m.verify_inclusion(m.leaf_hash(CT_LEAVES[index]), index, size, [h(p) for p in proof], h(CT_ROOTS[size]))


@pytest.mark.parametrize("old, new, proof", CT_CONSISTENCY)
def test_ct_consistency_vectors(old, new, proof):
    assert [p.hex() for p in m.reference_consistency_proof(old, CT_LEAVES[:new])] == proof
    assert [p.hex() for p in m.consistency_proof(old, new, Store(CT_LEAVES).get_nodes)] == proof
    m.verify_consistency(old, new, h(CT_ROOTS[old]), h(CT_ROOTS[new]), [h(p) for p in proof])


def test_every_size_index_and_old_size_up_to_64():
    for size in range(0, 65):
        root = m.root_from_leaves(LEAVES[:size])
        before = STORE.calls
        assert m.root(size, STORE.get_nodes) == root
        assert m.root_from_leaves_hashes(m.leaf_hash(x) for x in LEAVES[:size]) == root
        for index in range(size):
            proof = m.inclusion_proof(index, size, STORE.get_nodes)
            assert proof == m.reference_inclusion_proof(index, LEAVES[:size])
            m.verify_inclusion(m.leaf_hash(LEAVES[index]), index, size, proof, root)
        for old in range(0, size + 1):
            proof = m.consistency_proof(old, size, STORE.get_nodes)
            assert proof == m.reference_consistency_proof(old, LEAVES[:size])
            m.verify_consistency(old, size, m.root_from_leaves(LEAVES[:old]), root, proof)
        # one batch lookup per root / proof (none for trivial consistency proofs)
        assert STORE.calls - before <= 1 + size + size + 1


def test_node_reads_are_logarithmic():
    for size in (1, 2, 3, 1000, 1023, 1024, 1025, 10**6, 2**40 + 12345):
        bound = 2 * size.bit_length() + 2
        assert len(m.required_nodes_for_root(size)) <= size.bit_length()
        for index in {0, size // 3, size // 2, size - 1}:
            assert len(m.required_nodes_for_inclusion(index, size)) <= bound
        for old in {1, size // 3, size // 2, size - 1} - {0}:
            assert len(m.required_nodes_for_consistency(old, size)) <= bound


def test_nodes_completed_by_append():
    stored = {}
    for i in range(8):
        new = m.nodes_completed_by_append(i, m.leaf_hash(CT_LEAVES[i]), lambda lv, ix: stored[(lv, ix)])
        stored.update({(lv, ix): v for lv, ix, v in new})
        assert [(lv, ix) for lv, ix, _ in new] == [(lv, i >> lv) for lv in range(len(new))]
    assert len(new) == 4 and new[-1][2].hex() == CT_ROOTS[8]  # leaf 7 completes levels 0..3


def test_missing_node_is_an_error():
    with pytest.raises(LookupError):
        m.root(5, lambda coords: {})


def test_invalid_proof_requests():
    for bad in ((5, 5), (-1, 5), (0, 0)):
        with pytest.raises(ValueError):
            m.inclusion_proof(*bad, STORE.get_nodes)
    with pytest.raises(ValueError):
        m.consistency_proof(6, 5, STORE.get_nodes)


# ---------------------------------------------------------------- negative verification (after trillian's checks)

def inclusion_variants(index, size, proof, root, leaf):
    yield index - 1, size, proof, root, leaf
    yield index + 1, size, proof, root, leaf
    yield index ^ 2, size, proof, root, leaf
    yield index, size * 2, proof, root, leaf
    yield index, size // 2, proof, root, leaf
    yield index, size, proof, root, m.leaf_hash(b"WrongLeaf")
    yield index, size, proof, m.EMPTY_ROOT, leaf
    for i in range(len(proof)):
        yield index, size, proof[:i] + [m.EMPTY_ROOT] + proof[i + 1:], root, leaf
    yield index, size, proof + [m.EMPTY_ROOT], root, leaf
    yield index, size, proof + [root], root, leaf
    if proof:
        yield index, size, proof[:-1], root, leaf
    yield index, size, [root] + proof, root, leaf
    yield index, size, [b""] + proof, root, leaf
    yield index, size, proof, root[:31], leaf


@pytest.mark.parametrize("index, size, proof", CT_INCLUSION[:4] + [(13, 37, None), (63, 64, None)])
def test_inclusion_rejects_mutations(index, size, proof):
    leaves = CT_LEAVES if proof is not None else LEAVES
    proof = [h(p) for p in proof] if proof is not None else m.reference_inclusion_proof(index, leaves[:size])
    root, leaf = m.root_from_leaves(leaves[:size]), m.leaf_hash(leaves[index])
    m.verify_inclusion(leaf, index, size, proof, root)
    for args in inclusion_variants(index, size, proof, root, leaf):
        with pytest.raises(VerificationError):
            m.verify_inclusion(args[4], args[0], args[1], args[2], args[3])


@pytest.mark.parametrize("old, new", [(1, 8), (6, 8), (2, 5), (3, 8), (4, 8), (7, 64), (32, 33), (17, 50)])
def test_consistency_rejects_mutations(old, new):
    proof = m.reference_consistency_proof(old, LEAVES[:new])
    r1, r2 = m.root_from_leaves(LEAVES[:old]), m.root_from_leaves(LEAVES[:new])
    m.verify_consistency(old, new, r1, r2, proof)
    bad = [
        (old - 1, new, r1, r2, proof), (old + 1, new, r1, r2, proof), (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof), (old, new // 2, r1, r2, proof), (old, new, m.EMPTY_ROOT, r2, proof),
        (old, new, r1, m.EMPTY_ROOT, proof), (old, new, r2, r1, proof), (old, new, r1, r2, []),
        (old, new, r1, r2, proof + [m.EMPTY_ROOT]), (old, new, r1, r2, proof + [r1]), (old, new, r1, r2, proof[:-1]),
        (old, new, r1, r2, [proof[0]] + proof), (old, new, r1, r2, [b""] + proof),
    ] + [(old, new, r1, r2, proof[:i] + [m.EMPTY_ROOT] + proof[i + 1:]) for i in range(len(proof))]
    for args in bad:
        if args[0] == new and args[1] == new:
            continue
        with pytest.raises(VerificationError):
            m.verify_consistency(*args)


def test_trivial_consistency_cases():
    r = m.root_from_leaves(LEAVES[:3])
    m.verify_consistency(0, 0, m.EMPTY_ROOT, m.EMPTY_ROOT, [])
    m.verify_consistency(0, 3, m.EMPTY_ROOT, r, [])
    m.verify_consistency(3, 3, r, r, [])
    with pytest.raises(VerificationError, match="shrink"):
        m.verify_consistency(3, 2, r, r, [])
    with pytest.raises(VerificationError, match="different roots"):
        m.verify_consistency(3, 3, r, m.EMPTY_ROOT, [])
    with pytest.raises(VerificationError):
        m.verify_consistency(3, 3, r, r, [r])
    with pytest.raises(VerificationError):
        m.verify_consistency(0, 3, m.EMPTY_ROOT, r, [r])
    with pytest.raises(VerificationError):
        m.verify_consistency(1, 2, r, r, [])
