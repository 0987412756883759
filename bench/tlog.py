"""Transparency log throughput and proof cost on a fresh PostgreSQL database (created, migrated
and dropped like the test stack does), next to baselines measured in the same run.

    .venv/bin/python bench/tlog.py [--entries 100000] [--single 2000] [--batch 1000]

Prints:
  * single-append throughput (one transaction per append, the production path) next to one
    plain INSERT per transaction into a table of the same shape;
  * batched throughput (registry.tlog.append_many, --batch entries per transaction) up to --entries;
  * inclusion / consistency proof, root and signed checkpoint time at the full size (O(log n)
    node reads in one query), next to the same proof computed by the in-memory RFC 6962
    reference over all leaves, and to reading every leaf hash and folding them (what a log
    without stored subtree hashes would do).
"""
from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.stack import PG, psql  # noqa: E402


def envelope(i: int) -> dict:
    """The shape and size of a real DSSE envelope (its signature is not checked by the log)."""
    payload = base64.b64encode(f'{{"_type":"https://in-toto.io/Statement/v1","n":{i}}}'.encode() + bytes(200)).decode()
    return {"payloadType": "application/vnd.in-toto+json", "payload": payload,
            "signatures": [{"keyid": "sha256:" + "ab" * 32, "sig": base64.b64encode(i.to_bytes(8, "big") * 8).decode()}]}


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="log size for the proof timings")
    parser.add_argument("--single", type=int, default=2000, help="entries appended one transaction each")
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction for the bulk fill")
    parser.add_argument("--proofs", type=int, default=50, help="proofs timed (median)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()

    db = f"assay_e2e_bench_{uuid.uuid4().hex[:10]}"
    keydir = tempfile.mkdtemp(prefix="assay-bench-keys-")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
           "DJANGO_SETTINGS_MODULE": "registry.settings", "ASSAY_KEY_DIR": keydir,
           "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{db}"}
    psql(f'CREATE DATABASE "{db}"')
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
        os.environ.update(env)
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        else:
            print(f"kept database {db}")


def run(args) -> None:
    import django

    django.setup()
    from django.db import connection, transaction

    from assay.core import merkle
    from assay.core.canonical import canonical_json
    from registry import tlog
    from registry.models import LogEntry

    rng = random.Random(1)
    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, {os.cpu_count()} CPUs\n")

    # -- single appends, one transaction each, vs one plain INSERT per transaction ------------
    single = min(args.single, args.entries)
    prepared = [envelope(i) for i in range(single)]
    t = time.perf_counter()
    for env in prepared:
        with transaction.atomic():
            tlog.append("verdict", env)
    t_single = time.perf_counter() - t
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE bench_plain (id bigserial PRIMARY KEY, idx bigint UNIQUE, kind varchar(32), data bytea, leaf_hash bytea, created timestamptz)")
    rows = [canonical_json(e) for e in prepared]
    t = time.perf_counter()
    for i, data in enumerate(rows):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("INSERT INTO bench_plain (idx, kind, data, leaf_hash, created) VALUES (%s, %s, %s, %s, now())", [i, "verdict", data, merkle.leaf_hash(data)])
    t_plain = time.perf_counter() - t
    print(f"single append (1 txn each) : {single / t_single:9.0f} appends/s   ({single} in {t_single:.2f} s)")
    print(f"baseline: plain INSERT     : {single / t_plain:9.0f} rows/s      ({single} in {t_plain:.2f} s)")
    print(f"  ratio append / INSERT    : {t_single / t_plain:9.2f} x the time\n")

    # -- bulk fill up to --entries --------------------------------------------------------------
    done, t_bulk = single, 0.0
    while done < args.entries:
        n = min(args.batch, args.entries - done)
        items = [("verdict", envelope(i)) for i in range(done, done + n)]
        t = time.perf_counter()
        tlog.append_many(items)
        t_bulk += time.perf_counter() - t
        done += n
        if done % 20000 < args.batch:
            print(f"  ... {done} entries", flush=True)
    bulk = args.entries - single
    if bulk:
        print(f"batched append ({args.batch}/txn) : {bulk / t_bulk:9.0f} appends/s   ({bulk} in {t_bulk:.1f} s)\n")
    size = tlog.size()
    assert size == args.entries, size

    # -- proofs at full size --------------------------------------------------------------------
    t = time.perf_counter()
    leaf_hashes = [bytes(h) for h in LogEntry.objects.order_by("index").values_list("leaf_hash", flat=True).iterator(chunk_size=10000)]
    reference_root = merkle.root_from_leaves_hashes(leaf_hashes)
    t_replay = time.perf_counter() - t
    root = tlog.root(size)
    assert root == reference_root, "the stored tree's root differs from the reference root"

    indexes = [rng.randrange(size) for _ in range(args.proofs)]
    olds = [rng.randrange(1, size) for _ in range(args.proofs)]
    it, ct = iter(indexes * 2), iter(olds * 2)
    t_incl = median_time(lambda: tlog.inclusion_proof(next(it), size), args.proofs)
    t_cons = median_time(lambda: tlog.consistency_proof(next(ct), size), args.proofs)
    t_root = median_time(lambda: tlog.root(size), args.proofs)
    t_cp = median_time(lambda: tlog.signed_checkpoint(), args.proofs)
    for i in indexes[:10]:
        merkle.verify_inclusion(leaf_hashes[i], i, size, tlog.inclusion_proof(i, size), root)
    for old in olds[:10]:
        old_root = merkle.root_from_leaves_hashes(leaf_hashes[:old])
        merkle.verify_consistency(old, size, old_root, root, tlog.consistency_proof(old, size))

    from django.test import Client

    client = Client()
    it = iter(indexes * 2)
    t_http = median_time(lambda: client.get("/api/v1/log/proof/inclusion", {"index": next(it), "size": size}), args.proofs)

    # the in-memory RFC 6962 reference over all leaf data (assay.core.merkle), a few times
    leaves = [bytes(d) for d in LogEntry.objects.order_by("index").values_list("data", flat=True).iterator(chunk_size=10000)]
    k = 3
    t = time.perf_counter()
    for i in indexes[:k]:
        assert merkle.reference_inclusion_proof(i, leaves) == tlog.inclusion_proof(i, size)
    t_ref_incl = (time.perf_counter() - t) / k
    t = time.perf_counter()
    for old in olds[:k]:
        assert merkle.reference_consistency_proof(old, leaves) == tlog.consistency_proof(old, size)
    t_ref_cons = (time.perf_counter() - t) / k

    print(f"at size {size}:")
    print(f"  inclusion proof (DB)       : {ms(t_incl)}   reference over all leaves in memory: {ms(t_ref_incl)}  ratio {t_ref_incl / t_incl:7.0f}x faster")
    print(f"  consistency proof (DB)     : {ms(t_cons)}   reference over all leaves in memory: {ms(t_ref_cons)}  ratio {t_ref_cons / t_cons:7.0f}x faster")
    print(f"  root (DB)                  : {ms(t_root)}   read all leaf hashes + fold        : {ms(t_replay)}  ratio {t_replay / t_root:7.0f}x faster")
    print(f"  signed checkpoint          : {ms(t_cp)}")
    print(f"  inclusion proof over HTTP  : {ms(t_http)}   (Django test client, in process)")
    print(f"  one plain INSERT (txn)     : {ms(t_plain / single)}")


if __name__ == "__main__":
    main()
