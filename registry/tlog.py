"""The registry's transparency log: append envelopes, serve checkpoints and proofs.

Appends are serialized by locking the single LogState row (SELECT ... FOR UPDATE on PostgreSQL;
SQLite runs write transactions with BEGIN IMMEDIATE), inside the caller's transaction, so an
entry is committed together with the row that references its index, or not at all.

Each append stores the hashes of the perfect subtrees it completes (LogNode). The nodes an
append needs (left siblings on its path up) are read in ONE query; a root, an inclusion proof
or a consistency proof reads its O(log n) nodes in ONE query as well (assay.core.merkle says which).
"""
from __future__ import annotations

import base64
from collections import defaultdict
from typing import Iterable

from django.db import transaction
from django.db.models import Q

from assay.core import checkpoint as cp
from assay.core import merkle
from assay.core.canonical import canonical_json
from assay.core.keyindex import KINDS as KEY_EVENT_KINDS  # what the signed key-event index lists

from .errors import RegistryError
from .models import LogEntry, LogNode, LogState
from .serverkeys import log_key, log_key_name

MAX_INDEX = (1 << 63) - 1  # BigIntegerField


def _get_nodes(coords: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Stored node hashes for `coords`, in one query (one `index IN (...)` term per level)."""
    by_level: dict[int, set[int]] = defaultdict(set)
    for level, index in coords:
        by_level[level].add(index)
    if not by_level:
        return {}
    query = Q()
    for level, indexes in by_level.items():
        query |= Q(level=level, index__in=sorted(indexes))
    return {(level, index): bytes(h) for level, index, h in LogNode.objects.filter(query).values_list("level", "index", "hash")}


def _append_siblings(size_before: int) -> list[tuple[int, int]]:
    """The stored nodes merkle.nodes_completed_by_append reads when leaf `size_before` is added."""
    coords, index, level = [], size_before, 0
    while index & 1:
        coords.append((level, index - 1))
        index >>= 1
        level += 1
    return coords


def _locked_state() -> LogState:
    """The LogState row, locked until the end of the transaction (created if missing)."""
    try:
        return LogState.objects.select_for_update().get(pk=1)
    except LogState.DoesNotExist:
        # Normally made by migration 0002; a flushed test database lacks it. ON CONFLICT DO NOTHING
        # makes concurrent first appends safe.
        LogState.objects.bulk_create([LogState(pk=1, size=0)], ignore_conflicts=True)
        return LogState.objects.select_for_update().get(pk=1)


def _lookup(nodes: dict[tuple[int, int], bytes]):
    def get_node(level: int, index: int) -> bytes:
        try:
            return nodes[(level, index)]
        except KeyError:
            raise LookupError(f"the log store lacks node ({level}, {index}): it is incomplete or corrupt") from None

    return get_node


def append(kind: str, envelope: dict) -> int:
    """Append one envelope; returns its index. Joins the caller's transaction if there is one."""
    data = canonical_json(envelope)
    leaf = merkle.leaf_hash(data)
    with transaction.atomic():
        state = _locked_state()
        index = state.size
        siblings = _get_nodes(_append_siblings(index))
        new_nodes = merkle.nodes_completed_by_append(index, leaf, _lookup(siblings))
        LogNode.objects.bulk_create([LogNode(level=lv, index=ix, hash=h) for lv, ix, h in new_nodes])
        LogEntry.objects.create(index=index, kind=kind, data=data, leaf_hash=leaf)
        state.size = index + 1
        state.save(update_fields=["size"])
        _witness_after_commit()
    return index


def append_many(items: Iterable[tuple[str, dict]], *, batch_size: int = 1000) -> list[int]:
    """Append several (kind, envelope) pairs under one lock; returns their indices.

    The only stored nodes a run of appends starting at size s can need are the perfect subtrees
    of the tree of size s (its root's fold), read in one query; the rest are made in the run.
    """
    prepared = []
    for kind, envelope in items:
        data = canonical_json(envelope)
        prepared.append((kind, data, merkle.leaf_hash(data)))
    if not prepared:
        return []
    with transaction.atomic():
        state = _locked_state()
        start = state.size
        nodes = _get_nodes(merkle.required_nodes_for_root(start))
        get_node = _lookup(nodes)
        new_nodes: list[LogNode] = []
        new_entries: list[LogEntry] = []
        for offset, (kind, data, leaf) in enumerate(prepared):
            index = start + offset
            for lv, ix, h in merkle.nodes_completed_by_append(index, leaf, get_node):
                nodes[(lv, ix)] = h
                new_nodes.append(LogNode(level=lv, index=ix, hash=h))
            new_entries.append(LogEntry(index=index, kind=kind, data=data, leaf_hash=leaf))
        LogNode.objects.bulk_create(new_nodes, batch_size=batch_size)
        LogEntry.objects.bulk_create(new_entries, batch_size=batch_size)
        state.size = start + len(prepared)
        state.save(update_fields=["size"])
        _witness_after_commit()
    return list(range(start, start + len(prepared)))


def _witness_after_commit() -> None:
    from .witnessing import collect_after_commit  # witnessing uses this module

    collect_after_commit()


def size() -> int:
    state = LogState.objects.filter(pk=1).values_list("size", flat=True).first()
    return state or 0


def root(tree_size: int) -> bytes:
    return merkle.root(tree_size, _get_nodes)


def signed_checkpoint(tree_size: int | None = None) -> str:
    tree_size = size() if tree_size is None else tree_size
    return cp.sign_checkpoint(log_key_name(), tree_size, root(tree_size), log_key_name(), log_key())


def _check_size(tree_size: int) -> None:
    current = size()
    if tree_size < 0 or tree_size > current:
        raise RegistryError(400, f"tree size {tree_size} is outside the log (current size {current})")


def inclusion_proof(index: int, tree_size: int) -> list[bytes]:
    _check_size(tree_size)
    if not 0 <= index < tree_size:
        raise RegistryError(400, f"leaf index {index} is not in a tree of size {tree_size}")
    return merkle.inclusion_proof(index, tree_size, _get_nodes)


def inclusion_proofs(indices: list[int], tree_size: int) -> dict[int, list[bytes]]:
    """Inclusion proofs of many leaves in one tree, from one query for all their nodes."""
    _check_size(tree_size)
    if any(not 0 <= i < tree_size for i in indices):
        raise RegistryError(400, f"a leaf index is not in a tree of size {tree_size}")
    coords = {c for i in indices for c in merkle.required_nodes_for_inclusion(i, tree_size)}
    nodes = _get_nodes(coords)
    return {i: merkle.inclusion_proof(i, tree_size, lambda wanted: {c: nodes[c] for c in wanted if c in nodes}) for i in indices}


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise RegistryError(400, f"cannot prove consistency from size {old_size} to {new_size}")
    return merkle.consistency_proof(old_size, new_size, _get_nodes)


def entries(start: int, end: int) -> list[LogEntry]:
    return list(LogEntry.objects.filter(index__gte=start, index__lt=end).order_by("index"))


MAX_KEY_EVENTS = 10_000


def key_events(start: int, end: int) -> dict:
    """The key events logged in [start, end): a signed key-event index bound to the root at
    `end` (assay/core/keyindex.py) and each entry with its inclusion proof. A client's catch-up reads
    only these, so its cost follows what is new, not the size of the log."""
    from assay.core import keyindex

    _check_size(end)
    if not 0 <= start <= end:
        raise RegistryError(400, f"invalid key-event range [{start}, {end})")
    rows = list(LogEntry.objects.filter(index__gte=start, index__lt=end, kind__in=KEY_EVENT_KINDS)
                .order_by("index").values_list("index", "data")[: MAX_KEY_EVENTS + 1])
    if len(rows) > MAX_KEY_EVENTS:
        raise RegistryError(400, f"more than {MAX_KEY_EVENTS} key events in [{start}, {end}): ask for a smaller range")
    signed = keyindex.sign(log_key_name(), start, end, root(end), [i for i, _ in rows], log_key())
    proofs = inclusion_proofs([i for i, _ in rows], end)
    return {
        "index": signed,
        "entries": [{"index": i, "data": base64.b64encode(bytes(d)).decode(), "proof": [h.hex() for h in proofs[i]]}
                    for i, d in rows],
    }
