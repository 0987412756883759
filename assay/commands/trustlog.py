"""`assay trust` (pin a registry's verifier and log keys) and `assay log` (audit the log)."""
from __future__ import annotations

import base64
import time
from pathlib import Path

import click

from .. import checkpoint as cp
from .. import dsse, keys, merkle
from ..bundle_verify import verify_consistency
from ..client import RegistryClient
from ..config import registry_dir, resolve_registry
from ..errors import AssayError, VerificationError
from ..trustpolicy import TrustPolicy
from ..ui import out


@click.group()
def trust():
    """Pin a registry's verifier and log keys; show the trust policy."""


@trust.command("add")
@click.argument("url")
@click.option("--verifier-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Verifier public key (PEM) to pin instead of asking.")
@click.option("--log-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Log public key (PEM) to pin instead of asking.")
@click.option("--publishers", type=click.Choice(["tofu", "pinned"]), default="tofu", show_default=True, help="Default publisher key trust.")
@click.option("--yes", is_flag=True, help="Pin the fingerprints shown without asking.")
def trust_add(url, verifier_key, log_key, publishers, yes):
    """Show URL's key fingerprints and pin them."""
    url = url.rstrip("/")
    with RegistryClient(url) as client:
        info = client.trust()
    served_verifier = {k["keyid"]: k["public_key"] for k in info["verifier_keys"]}
    served_log = info["log"]
    if verifier_key:
        pk = keys.load_public_key(verifier_key)
        kid = keys.key_id(pk)
        if kid not in served_verifier:
            raise VerificationError(f"the registry does not serve the verifier key {kid} given with --verifier-key")
        served_verifier = {kid: keys.public_key_to_text(pk)}
    if log_key:
        pk = keys.load_public_key(log_key)
        if keys.key_id(pk) != served_log["keyid"]:
            raise VerificationError(f"the registry's log key is {served_log['keyid']}, not {keys.key_id(pk)} given with --log-key")
    for kid in served_verifier:
        out.print(f"verifier key  {kid}")
    out.print(f"log key       {served_log['keyid']}  ({served_log['origin']})")
    if not (yes or verifier_key) and not click.confirm("pin these keys for " + url + "?"):
        raise click.Abort()
    policy = TrustPolicy.create(registry_dir(url), registry_url=url, verifier_keys=served_verifier, log_vkey=served_log["vkey"], publisher_mode=publishers)
    policy.save()
    out.print(f"trusted {url}; policy in {registry_dir(url) / 'policy.json'}")


@trust.command("show")
@click.option("--registry", "-r", envvar="ASSAY_REGISTRY")
def trust_show(registry):
    url, _ = resolve_registry(registry)
    path = registry_dir(url) / "policy.json"
    if not path.exists():
        raise AssayError(f"{url} is not trusted: run `assay trust add {url}`")
    out.print(path.read_text())


@click.group("log")
def log_group():
    """Audit the registry's transparency log."""


def _policy(url: str) -> TrustPolicy:
    if not (registry_dir(url) / "policy.json").exists():
        raise AssayError(f"{url} is not trusted: run `assay trust add {url}`")
    return TrustPolicy.load(registry_dir(url))


@log_group.command("verify")
@click.option("--start", type=int, default=0)
@click.option("--end", type=int, default=None, help="Exclusive end (default: the current tree size).")
@click.option("--registry", "-r", envvar="ASSAY_REGISTRY")
def log_verify(start, end, registry):
    """Replay the log: check every entry's signature and the root of the signed checkpoint."""
    url, token = resolve_registry(registry)
    policy = _policy(url)
    with RegistryClient(url, token) as client:
        text = client.checkpoint()
        checkpoint = cp.verify_checkpoint(text, policy.log_vkey())
        end = checkpoint.size if end is None else min(end, checkpoint.size)
        if start < 0 or start > end:
            raise AssayError(f"--start {start} is outside the log of size {checkpoint.size} (up to --end {end})")
        leaves: list[bytes] = []
        full = start == 0 and end == checkpoint.size
        publisher_keys: dict[str, object] = {}
        index = start
        while index < end:
            batch = client.log_entries(index, min(end, index + 1000))
            if not batch:
                raise VerificationError(f"the registry returned no entries at index {index}, below its tree size {checkpoint.size}")
            for entry in batch[: end - index]:
                try:
                    got, kind, data = entry["index"], entry["kind"], base64.b64decode(entry["data"], validate=True)
                except (KeyError, TypeError, ValueError):
                    raise VerificationError(f"log entry {index} is malformed") from None
                if got != index:
                    raise VerificationError(f"log entry {index} is missing (the registry sent entry {got} in its place)")
                _check_entry_signature(index, kind, data, policy, client, publisher_keys)
                leaves.append(merkle.leaf_hash(data))
                if not full:
                    proof = client.get_json("/api/v1/log/proof/inclusion", index=index, size=checkpoint.size)["proof"]
                    try:
                        merkle.verify_inclusion(leaves[-1], index, checkpoint.size, [bytes.fromhex(h) for h in proof], checkpoint.root)
                    except (ValueError, TypeError) as exc:
                        raise VerificationError(f"malformed inclusion proof for log entry {index}: {exc}") from None
                    except VerificationError:
                        raise VerificationError(f"log entry {index} as served is not in the signed checkpoint of size {checkpoint.size}: the entry or the log was tampered with") from None
                index += 1
        if full and merkle.root_from_leaves_hashes(leaves) != checkpoint.root:
            raise VerificationError(f"replaying the {checkpoint.size} entries gives a different root than the signed checkpoint: an entry was tampered with, removed or reordered")
        verify_consistency(policy.newest_checkpoint(), checkpoint, client.consistency_proof, policy)
        policy.record_checkpoint(text, checkpoint.size)
        policy.save()
    out.print(f"OK: entries {start}..{end - 1} verified against checkpoint of size {checkpoint.size}")


def _check_entry_signature(index: int, kind: str, data: bytes, policy: TrustPolicy, client: RegistryClient, publisher_keys: dict) -> None:
    import json

    try:
        envelope = json.loads(data)
        if kind == "verdict" or kind == "provenance":
            dsse.verify_envelope(envelope, policy.verifier_keys())
        elif kind == "key-revoke":
            dsse.verify_envelope(envelope, {policy.log_keyid(): policy.log_public_key()})
        else:  # release and key-register envelopes are signed by a publisher key
            keyid = envelope["signatures"][0]["keyid"]
            if keyid not in publisher_keys:
                public_key = keys.public_key_from_text(client.get_json(f"/api/v1/keys/{keyid}")["public_key"])
                if keys.key_id(public_key) != keyid:  # the key ID is the key's hash: the registry cannot swap keys
                    raise VerificationError(f"the registry served another key for key ID {keyid}")
                publisher_keys[keyid] = public_key
            dsse.verify_envelope(envelope, {keyid: publisher_keys[keyid]})
    except (AssayError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise VerificationError(f"log entry {index} ({kind}) does not verify: {exc}") from None


@log_group.command("watch")
@click.option("--interval", type=float, default=30.0, show_default=True)
@click.option("--count", type=int, default=0, help="Stop after N checks (0 = forever).")
@click.option("--registry", "-r", envvar="ASSAY_REGISTRY")
def log_watch(interval, count, registry):
    """Monitor: check that each new checkpoint is consistent with the previous one."""
    url, token = resolve_registry(registry)
    policy = _policy(url)
    checks = 0
    with RegistryClient(url, token) as client:
        while True:
            text = client.checkpoint()
            checkpoint = cp.verify_checkpoint(text, policy.log_vkey())
            verify_consistency(policy.newest_checkpoint(), checkpoint, client.consistency_proof, policy)
            policy.record_checkpoint(text, checkpoint.size)
            policy.save()
            out.print(f"consistent: tree size {checkpoint.size}, root {checkpoint.root.hex()}")
            checks += 1
            if count and checks >= count:
                return
            time.sleep(interval)
