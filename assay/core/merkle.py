"""RFC 6962 / RFC 9162 Merkle tree: hashing, proofs from stored subtree hashes, verification.

Stored nodes: node (level, index) is the hash of the perfect subtree over leaves
[index * 2**level, (index + 1) * 2**level); level 0 is the leaf hash. Every range that RFC 6962
hashes (MTH of D[a:b] inside a tree) splits into at most log2(n) such nodes, so a root or proof
needs O(log n) node reads, fetched with ONE `get_nodes(coords) -> {coord: hash}` call.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

from assay.core.errors import VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Coord = tuple[int, int]
GetNodes = Callable[[list[Coord]], dict[Coord, bytes]]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# ---------------------------------------------------------------- RFC 6962 §2.1 reference

def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw leaf data, by the recursive definition (reference; O(n))."""
    return _mth([leaf_hash(d) for d in leaves])


def _mth(hashes: Sequence[bytes]) -> bytes:
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def reference_inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1 over raw leaf data."""
    def path(m: int, hs: Sequence[bytes]) -> list[bytes]:
        n = len(hs)
        if n <= 1:
            return []
        k = _split(n)
        if m < k:
            return path(m, hs[:k]) + [_mth(hs[k:])]
        return path(m - k, hs[k:]) + [_mth(hs[:k])]

    if not 0 <= index < len(leaves):
        raise ValueError("index out of range")
    return path(index, [leaf_hash(d) for d in leaves])


def reference_consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 §2.1.2 over raw leaf data (empty for m == 0 or m == n)."""
    def subproof(m: int, hs: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(hs)
        if m == n:
            return [] if complete else [_mth(hs)]
        k = _split(n)
        if m <= k:
            return subproof(m, hs[:k], complete) + [_mth(hs[k:])]
        return subproof(m - k, hs[k:], False) + [_mth(hs[:k])]

    if not 0 <= old_size <= len(leaves):
        raise ValueError("old size out of range")
    if old_size in (0, len(leaves)):
        return []
    return subproof(old_size, [leaf_hash(d) for d in leaves], True)


def root_from_leaves_hashes(hashes: Iterable[bytes]) -> bytes:
    """MTH from leaf hashes in one pass with O(log n) memory (for replaying a whole log)."""
    stack: list[tuple[int, bytes]] = []  # (level, hash) of completed perfect subtrees
    for h in hashes:
        level = 0
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
    if not stack:
        return EMPTY_ROOT
    root = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        root = node_hash(h, root)
    return root


# ---------------------------------------------------------------- stored perfect subtrees

def nodes_completed_by_append(size_before: int, new_leaf_hash: bytes, get_node: Callable[[int, int], bytes]) -> list[tuple[int, int, bytes]]:
    """Nodes to store when leaf number `size_before` is appended: (0, i, leaf) and every
    perfect subtree it completes. `get_node(level, index)` returns a stored hash."""
    index, level, h = size_before, 0, new_leaf_hash
    out = [(0, index, h)]
    while index & 1:
        h = node_hash(get_node(level, index - 1), h)
        index >>= 1
        level += 1
        out.append((level, index, h))
    return out


def _range_nodes(start: int, end: int) -> list[Coord]:
    """The perfect nodes, left to right, whose right fold is MTH(D[start:end])."""
    out = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    ranges, start, end = [], 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]  # the proof lists the deepest sibling first


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    ranges, start, end, complete = [], 0, new, True
    m = old
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    return ranges[::-1]


def _check_sizes(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def required_nodes_for_root(size: int) -> list[Coord]:
    return _range_nodes(0, size)


def required_nodes_for_inclusion(index: int, size: int) -> list[Coord]:
    _check_sizes(0 <= index < size, f"leaf index {index} is not in a tree of size {size}")
    return [c for r in _inclusion_ranges(index, size) for c in _range_nodes(*r)]


def required_nodes_for_consistency(old_size: int, new_size: int) -> list[Coord]:
    _check_sizes(0 <= old_size <= new_size, f"cannot prove consistency from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    return [c for r in _consistency_ranges(old_size, new_size) for c in _range_nodes(*r)]


def _fetch(coords: list[Coord], get_nodes: GetNodes) -> dict[Coord, bytes]:
    wanted = list(dict.fromkeys(coords))
    found = get_nodes(wanted) if wanted else {}
    missing = [c for c in wanted if c not in found]
    if missing:
        raise LookupError(f"the log store lacks node(s) {missing[:4]}: it is incomplete or corrupt")
    return found


def _fold(start: int, end: int, nodes: dict[Coord, bytes]) -> bytes:
    hashes = [nodes[c] for c in _range_nodes(start, end)]
    if not hashes:
        return EMPTY_ROOT
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def root(size: int, get_nodes: GetNodes) -> bytes:
    """Root of the first `size` leaves, from stored nodes (one get_nodes call)."""
    _check_sizes(size >= 0, f"invalid tree size {size}")
    return _fold(0, size, _fetch(required_nodes_for_root(size), get_nodes))


def inclusion_proof(index: int, size: int, get_nodes: GetNodes) -> list[bytes]:
    nodes = _fetch(required_nodes_for_inclusion(index, size), get_nodes)
    return [_fold(a, b, nodes) for a, b in _inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, get_nodes: GetNodes) -> list[bytes]:
    nodes = _fetch(required_nodes_for_consistency(old_size, new_size), get_nodes)
    if old_size in (0, new_size):
        return []
    return [_fold(a, b, nodes) for a, b in _consistency_ranges(old_size, new_size)]


# ---------------------------------------------------------------- RFC 9162 verification

def _check_hashes(proof: Sequence[bytes], *roots: bytes) -> None:
    for h in (*proof, *roots):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise VerificationError("malformed Merkle proof: every hash must be 32 bytes")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root implied by an inclusion proof (VerificationError if malformed)."""
    _check_hashes(proof, leaf)
    if not 0 <= index < size:
        raise VerificationError(f"inclusion proof: leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Raise VerificationError unless `proof` shows leaf hash `leaf` at `index` in the tree `root_hash`."""
    _check_hashes((), root_hash)
    if root_from_inclusion_proof(leaf, index, size, proof) != root_hash:
        raise VerificationError(f"inclusion proof for leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise VerificationError unless tree `new_root` extends tree `old_root`."""
    _check_hashes(proof, old_root, new_root)
    if not 0 <= old_size <= new_size:
        raise VerificationError(f"consistency proof: the log cannot shrink from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof:
            raise VerificationError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise VerificationError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise VerificationError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise VerificationError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is a node of the new tree
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if fr != old_root:
        raise VerificationError(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise VerificationError(f"consistency proof does not lead to the new root (size {new_size})")
