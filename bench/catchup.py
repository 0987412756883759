"""Log catch-up in `assay pull` (issue 11's goal: on a 100,000-entry log with 1,000 new entries
since the last pull, under 50 ms of client time and under 1 MB transferred).

    .venv/bin/python bench/catchup.py [--entries 100000] [--new 1000] [--key-event-every 100] [--rounds 7]

Runs a real registry (gunicorn on a fresh PostgreSQL database, tests/support/stack.py), fills
its log with verdict-sized entries and, every --key-event-every entries, a real key event (a
self-signed key registration or a namespace role signed by the log key; one revocation among the
new ones). A client caught up to size entries-new then catches up to the end, as `pull` does:
the signed checkpoint, the consistency proof from its own, and the signed key-event index with
the new key events and their inclusion proofs (assay/client/catchup.py). Measured per round: the
client's CPU time (the server runs in other processes), wall time and bytes received.

Baseline, same run: fetching the same new entries themselves (GET /api/v1/log/entries, what a
replay of the new range reads) and verifying its key events, with the same consistency check.
Prints medians and the ratios.
"""
from __future__ import annotations

import argparse
import base64
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.stack import Stack  # noqa: E402


def filler(i: int) -> dict:
    """A verdict-shaped envelope of realistic size (the log does not check its signature)."""
    payload = base64.b64encode(f'{{"_type":"https://in-toto.io/Statement/v1","n":{i}}}'.encode() + bytes(900)).decode()
    return {"payloadType": "application/vnd.in-toto+json", "payload": payload,
            "signatures": [{"keyid": "sha256:" + "ab" * 32, "sig": base64.b64encode(i.to_bytes(8, "big") * 8).decode()}]}


def key_event(i: int, keys_made: list) -> tuple[str, dict]:
    from django.utils import timezone

    from assay.core import dsse, keys, statements
    from registry.serverkeys import log_key

    if i % 2:  # a namespace role, signed by the log key
        payload = statements.build_role_event(namespace=f"org{i % 50}", member=f"user{i}", role="publisher", time=timezone.now())
        return "namespace-role", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key())
    signer = keys.Signer(keys.generate_private_key())
    keys_made.append(signer)
    payload = statements.build_key_event("register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key),
                                         owner=f"user{i}", time=timezone.now())
    return "key-register", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer)


def fill(start: int, count: int, every: int, keys_made: list, revoke: bool = False) -> int:
    """Append `count` entries from index `start`; returns how many were key events."""
    from assay.core import dsse, keys, statements
    from registry import tlog
    from registry.serverkeys import log_key

    items, events = [], 0
    for i in range(start, start + count):
        if i % every == 0:
            items.append(key_event(i, keys_made))
            events += 1
        else:
            items.append(("verdict", filler(i)))
        if len(items) == 1000:
            tlog.append_many(items)
            items = []
    if revoke and keys_made:
        signer = keys_made[0]
        payload = statements.build_key_event("revoke", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key),
                                             owner="user0", reason="bench")
        items[-1:] = [("key-revoke", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key()))]
        events += 1
    if items:
        tlog.append_many(items)
    return events


class Counting:
    """Wraps a RegistryClient's HTTP client to count the bytes of every response body."""

    def __init__(self, client):
        self.bytes = 0
        client.http.event_hooks["response"].append(self._count)

    def _count(self, response):
        response.read()
        self.bytes += len(response.content)


def measure(policy_dir: Path, state: dict, url: str, how: str) -> tuple[float, float, int]:
    """(client CPU s, wall s, bytes) of one catch-up from `state` to the registry's checkpoint."""
    from assay.core import checkpoint as cp
    from assay.core import merkle
    from assay.client.bundle_verify import verify_consistency
    from assay.client.catchup import catch_up
    from assay.client.http import RegistryClient
    from assay.client.logaudit import LogAuditor
    from assay.client.trustpolicy import TrustPolicy

    policy = TrustPolicy(policy_dir, TrustPolicy.load(policy_dir).policy, copy.deepcopy(state))
    with RegistryClient(url) as client:
        counter = Counting(client)
        cpu, wall = time.process_time(), time.perf_counter()
        checkpoint = cp.verify_checkpoint(client.checkpoint(), policy.log_vkey())
        verify_consistency(policy.newest_checkpoint(), checkpoint, client.consistency_proof, policy)
        if how == "catch-up":
            catch_up(policy, client, checkpoint)
        else:  # baseline: the new entries themselves, hashed, key events verified
            auditor, index, leaves = LogAuditor(policy, keys=policy.key_state), policy.key_state.through, []
            while index < checkpoint.size:
                for entry in client.log_entries(index, min(checkpoint.size, index + 1000)):
                    data = base64.b64decode(entry["data"])
                    leaves.append(merkle.leaf_hash(data))
                    if entry["kind"] in ("key-register", "key-revoke", "namespace-role"):
                        auditor.check(index, data, entry["kind"])
                    index += 1
        return time.process_time() - cpu, time.perf_counter() - wall, counter.bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--key-event-every", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    stack = Stack()
    try:
        stack.start()
        os.environ.update(stack.env)
        import django

        django.setup()
        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)  # the registry's settings log every request
        from assay.client.catchup import catch_up
        from assay.core.checkpoint import verify_checkpoint
        from assay.client.http import RegistryClient
        from assay.client.trustpolicy import TrustPolicy

        keys_made: list = []
        t = time.perf_counter()
        base = stack_size()
        old_events = fill(base, args.entries - args.new - base, args.key_event_every, keys_made)
        print(f"filled {args.entries - args.new} entries ({old_events} key events) in {time.perf_counter() - t:.1f} s")

        policy_dir = Path(tempfile.mkdtemp(prefix="assay-bench-catchup-"))
        with RegistryClient(stack.url) as client:
            info = client.trust()
            policy = TrustPolicy.create(policy_dir, registry_url=stack.url,
                                        verifier_keys={k["keyid"]: k["public_key"] for k in info["verifier_keys"]},
                                        log_vkey=info["log"]["vkey"])
            text = client.checkpoint()
            checkpoint = verify_checkpoint(text, policy.log_vkey())
            counter = Counting(client)
            t, cpu = time.perf_counter(), time.process_time()
            catch_up(policy, client, checkpoint)
            fresh = (time.process_time() - cpu, time.perf_counter() - t, counter.bytes)
            policy.record_checkpoint(text, checkpoint.size)
            policy.save()
        state = copy.deepcopy(policy.state)
        state["keys"] = policy.key_state.to_dict()
        new_events = fill(stack_size(), args.new, args.key_event_every, keys_made, revoke=True)
        print(f"then {args.new} new entries ({new_events} key events, one revocation); log size {stack_size()}")
        print(f"a fresh client's first catch-up (all {old_events} key events from 0): "
              f"CPU {fresh[0] * 1000:.1f} ms, wall {fresh[1] * 1000:.1f} ms, {fresh[2] / 1024:.0f} KiB")

        results = {"catch-up": [], "baseline": []}
        for _ in range(args.rounds):
            for how in ("catch-up", "baseline"):
                results[how].append(measure(policy_dir, state, stack.url, how))
        med = {how: [statistics.median(r[i] for r in rs) for i in range(3)] for how, rs in results.items()}
        c, b = med["catch-up"], med["baseline"]
        print(f"\n{'':28}{'client CPU':>12}{'wall':>12}{'received':>12}")
        for how, (cpu, wall, size) in med.items():
            print(f"{how + ' (median of ' + str(args.rounds) + ')':28}{cpu * 1000:10.1f} ms{wall * 1000:10.1f} ms{size / 1024:9.1f} KiB")
        print(f"{'ratio catch-up / baseline':28}{c[0] / b[0]:12.3f}{c[1] / b[1]:12.3f}{c[2] / b[2]:12.3f}")
        print(f"goal: client time < 50 ms: {'met' if c[0] < 0.05 else 'NOT met'} (CPU {c[0] * 1000:.1f} ms, wall {c[1] * 1000:.1f} ms); "
              f"transfer < 1 MB: {'met' if c[2] < 1_000_000 else 'NOT met'} ({c[2] / 1024:.1f} KiB)")
    finally:
        from django.db import connections

        connections.close_all()
        stack.stop()


def stack_size() -> int:
    from registry import tlog

    return tlog.size()


if __name__ == "__main__":
    main()
