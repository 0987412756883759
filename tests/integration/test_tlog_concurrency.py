"""Concurrent appends to the transparency log from several OS processes on real PostgreSQL.

Each process appends N entries through registry.tlog.append (some of its attempts roll back);
the log must end up with indices exactly 0..P*N-1, each entry once, and a tree whose every
stored node and root match the RFC 6962 reference over the leaves in index order.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from assay.core import merkle
from assay.core.canonical import canonical_json
from tests.support.stack import PG, REPO, psql

PROCESSES = 4
N = 50

WORKER = r"""
import sys, django
django.setup()
from django.db import transaction
from registry import tlog
worker, n = int(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # wait until every worker is ready
for seq in range(n):
    if seq % 10 == 3:  # an append whose referencing row then fails: it must leave no gap
        try:
            with transaction.atomic():
                tlog.append("test", {"worker": worker, "seq": seq, "rolled_back": True})
                raise RuntimeError
        except RuntimeError:
            pass
    with transaction.atomic():
        tlog.append("test", {"worker": worker, "seq": seq})
print("done", flush=True)
"""


def envelope(worker: int, seq: int) -> dict:
    return {"worker": worker, "seq": seq}


@pytest.fixture
def fresh_database():
    name = f"assay_e2e_tlog_{uuid.uuid4().hex[:10]}"
    url = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}, "DJANGO_SETTINGS_MODULE": "registry.settings", "DATABASE_URL": url}
    psql(f'CREATE DATABASE "{name}"')
    try:
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        yield url, env
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_appends_from_several_processes(fresh_database):
    import psycopg

    url, env = fresh_database
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(w), str(N)], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(PROCESSES)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:  # start them together
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0 and out.strip() == "done", err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

    with psycopg.connect(url) as conn:
        rows = conn.execute('SELECT "index", data, leaf_hash FROM registry_logentry ORDER BY "index"').fetchall()
        size = conn.execute("SELECT size FROM registry_logstate WHERE id = 1").fetchone()[0]
        nodes = {(level, index): bytes(h) for level, index, h in conn.execute('SELECT level, "index", hash FROM registry_lognode')}

    total = PROCESSES * N
    assert size == total
    assert [r[0] for r in rows] == list(range(total)), "indices must be exactly 0..size-1, without gaps or duplicates"
    data = [bytes(r[1]) for r in rows]
    assert all(bytes(r[2]) == merkle.leaf_hash(d) for r, d in zip(rows, data))
    # every worker's committed entries, once each, in its own order; no rolled-back entry
    expected = {canonical_json(envelope(w, s)) for w in range(PROCESSES) for s in range(N)}
    assert set(data) == expected and len(data) == len(expected)
    for w in range(PROCESSES):
        mine = [d for d in data if json.loads(d)["worker"] == w]
        assert mine == [canonical_json(envelope(w, s)) for s in range(N)]
    # every stored node is right, and exactly the complete perfect subtrees are stored
    hashes = [merkle.leaf_hash(d) for d in data]
    expected_nodes, level, row = {}, 0, hashes
    while row:
        expected_nodes.update({(level, i): h for i, h in enumerate(row)})
        row = [merkle.node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
    assert nodes == expected_nodes
    # the root from stored nodes equals the reference root over all leaves in index order
    assert merkle.root(total, lambda coords: {c: nodes[c] for c in coords if c in nodes}) == merkle.root_from_leaves(data)
