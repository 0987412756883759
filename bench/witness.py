"""Witness throughput: checkpoints cosigned per second over HTTP, next to the in-process
Witness.add_checkpoint rate measured in the same run (the baseline: same checks, same fsync'd state
writes, no HTTP).

    .venv/bin/python bench/witness.py [--checkpoints 1000] [--max-growth 16] [--fresh-connections 200]

Every checkpoint is a real extension of the previous one: the log tree grows by 1..--max-growth
leaves, the checkpoint is signed by the log key and sent with its RFC 6962 consistency proof from
the previous size (built from stored subtree hashes, as the registry's log does). The requests are
prepared before the clock starts; each run starts from an empty witness state folder.
Prints:
  * in-process add_checkpoint (parse, log signature, consistency proof, flock, state write +
    fsync, cosignature) per second;
  * the same checkpoints POSTed to a witness server on 127.0.0.1 from one client over one
    keep-alive connection (request_cosignature with a shared httpx.Client), and the ratio;
  * the first --fresh-connections checkpoints with a new connection per request.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from assay.core import checkpoint as cp  # noqa: E402
from assay.core import merkle  # noqa: E402
from assay.core.cosignature import add_cosignatures, verify_cosignatures  # noqa: E402
from assay.core.keys import Ed25519PrivateKey  # noqa: E402
from assay.client.witness import Witness, build_add_checkpoint_body, make_server, request_cosignature  # noqa: E402

ORIGIN = "bench.example/log"
LOG_SK = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


class Tree:
    """An append-only Merkle tree keeping every perfect-subtree hash, for O(log n) proofs."""

    def __init__(self):
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def get_nodes(self, coords):
        return {c: self.nodes[c] for c in coords if c in self.nodes}

    def append(self, data: bytes) -> None:
        for level, index, h in merkle.nodes_completed_by_append(self.size, merkle.leaf_hash(data), lambda lv, i: self.nodes[(lv, i)]):
            self.nodes[(level, index)] = h
        self.size += 1


def prepare(count: int, max_growth: int, seed: int = 1) -> list[tuple[int, list[bytes], str]]:
    """(old size, consistency proof, signed checkpoint) for `count` growing checkpoints."""
    rng, tree, out, old = random.Random(seed), Tree(), [], 0
    for _ in range(count):
        for _ in range(rng.randint(1, max_growth)):
            tree.append(f"entry {tree.size}".encode() + bytes(200))
        proof = merkle.consistency_proof(old, tree.size, tree.get_nodes)
        note = cp.sign_checkpoint(ORIGIN, tree.size, merkle.root(tree.size, tree.get_nodes), ORIGIN, LOG_SK)
        out.append((old, proof, note))
        old = tree.size
    return out


def new_witness(parent: Path, label: str) -> Witness:
    witness = Witness.init(parent / label, f"bench.example/{label}")
    witness.add_log(cp.verifier_key_string(ORIGIN, LOG_SK.public_key()))
    return witness


def timed(requests, send) -> float:
    t = time.perf_counter()
    for old, proof, note in requests:
        status, text = send(old, proof, note)
        if status != 200:
            raise SystemExit(f"witness refused size {old} -> {cp.parse_checkpoint(note).size}: {status} {text.strip()}")
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=1000, help="growing checkpoints cosigned per run")
    parser.add_argument("--max-growth", type=int, default=16, help="most leaves added between two checkpoints")
    parser.add_argument("--fresh-connections", type=int, default=200, help="checkpoints sent with a new connection each")
    args = parser.parse_args()

    t = time.perf_counter()
    requests = prepare(args.checkpoints, args.max_growth)
    bodies = [build_add_checkpoint_body(*r) for r in requests]
    final_size = cp.parse_checkpoint(requests[-1][2]).size
    print(f"{os.cpu_count()} CPUs; {args.checkpoints} checkpoints up to size {final_size}, "
          f"proofs of up to {max(len(p) for _, p, _ in requests)} hashes, prepared in {time.perf_counter() - t:.1f} s\n")

    with tempfile.TemporaryDirectory(prefix="assay-bench-witness-") as tmp:
        parent = Path(tmp)
        local = new_witness(parent, "local")
        body_of = dict(zip((r[2] for r in requests), bodies))

        def in_process(old, proof, note):
            status, _, body = local.add_checkpoint(body_of[note])
            return status, body.decode()

        t_local = timed(requests, in_process)

        remote = new_witness(parent, "http")
        server = make_server(remote, "127.0.0.1", 0, quiet=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with httpx.Client() as client:
                t_http = timed(requests, lambda old, proof, note: request_cosignature(server.url, old, proof, note, client=client))
            fresh_witness = new_witness(parent, "fresh")
            server.witness = fresh_witness
            fresh = requests[: args.fresh_connections]
            t_fresh = timed(fresh, lambda old, proof, note: request_cosignature(server.url, old, proof, note)) if fresh else 0.0
        finally:
            server.shutdown()
            server.server_close()

        last = remote.latest_checkpoint(ORIGIN)
        assert remote.latest()[ORIGIN][0] == final_size and remote.name in verify_cosignatures(last, [remote.vkey])
        assert local.name in verify_cosignatures(add_cosignatures(requests[-1][2], [local.latest_checkpoint(ORIGIN).split("\n")[-2]]), [local.vkey])

    n = args.checkpoints
    print(f"in-process add_checkpoint      : {n / t_local:8.0f} checkpoints/s   ({n} in {t_local:.2f} s, {t_local / n * 1000:.3f} ms each)")
    print(f"HTTP, one keep-alive connection: {n / t_http:8.0f} checkpoints/s   ({n} in {t_http:.2f} s, {t_http / n * 1000:.3f} ms each)")
    print(f"  ratio HTTP / in-process      : {t_http / t_local:8.2f} x the time")
    if fresh:
        k = len(fresh)
        print(f"HTTP, new connection each      : {k / t_fresh:8.0f} checkpoints/s   ({k} in {t_fresh:.2f} s, {t_fresh / k * 1000:.3f} ms each)")


if __name__ == "__main__":
    main()
