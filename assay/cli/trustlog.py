"""`assay trust` (pin a registry's verifier and log keys) and `assay log` (audit the log)."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import click

from assay.core import checkpoint as cp
from assay.core import keys, merkle
from assay.client.bundle_verify import verify_consistency
from assay.core.canonical import canonical_json
from assay.client.catchup import key_event_entries
from assay.client.http import RegistryClient
from assay.client.config import registry_dir, resolve_registry
from assay.core.errors import AssayError, VerificationError
from assay.client.logaudit import LogAuditor
from assay.client.trustpolicy import TrustPolicy, _read_json
from assay.cli.ui import json_option, out


@click.group()
def trust():
    """Pin a registry's verifier and log keys; show the trust policy."""


@trust.command("add")
@click.argument("url")
@click.option("--verifier-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Verifier public key (PEM) to pin instead of asking.")
@click.option("--log-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Log public key (PEM) to pin instead of asking.")
@click.option("--publishers", type=click.Choice(["log", "pinned"]), default="log", show_default=True,
              help="Default publisher key trust: keys the log says a namespace's publishing members registered, or only keys you list.")
@click.option("--yes", is_flag=True, help="Pin the fingerprints shown without asking.")
@json_option
def trust_add(url, verifier_key, log_key, publishers, yes, as_json):
    """Show URL's key fingerprints and pin them."""
    url = url.rstrip("/")
    with RegistryClient(url) as client:
        info = client.trust()
    served_verifier = {k["keyid"]: k["public_key"] for k in info["verifier_keys"]}
    if not served_verifier:  # a new registry (docker-compose before its verifier started): nothing to pin yet
        raise AssayError(f"{url} has no registered verifier yet, so there is no verifier key to pin; start a verifier "
                         f"(it registers itself with the registry), then run `assay trust add {url}` again")
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
    if as_json and not (yes or (verifier_key and log_key)):
        raise AssayError("--json pins nothing without --yes (or --verifier-key and --log-key): there is no prompt to answer")
    if not as_json:
        for kid in served_verifier:
            out.print(f"verifier key  {kid}")
        out.print(f"log key       {served_log['keyid']}  ({served_log['origin']})")
    if not (yes or (verifier_key and log_key)) and not click.confirm("pin these keys for " + url + "?"):
        raise click.Abort()
    policy = TrustPolicy.create(registry_dir(url), registry_url=url, verifier_keys=served_verifier, log_vkey=served_log["vkey"], publisher_mode=publishers)
    policy.save()
    if as_json:
        out.print_json(data={"registry": url, "verifier_keys": sorted(served_verifier), "log_key": served_log["keyid"],
                             "log_origin": served_log["origin"], "policy": str(registry_dir(url) / "policy.json")})
        return
    out.print(f"trusted {url}; policy in {registry_dir(url) / 'policy.json'}")


@trust.command("show")
@click.option("--registry", "-r", envvar="ASSAY_REGISTRY")
@json_option
def trust_show(registry, as_json):
    """Print the trust policy file of a registry (it is JSON already; --json prints it compact-checked)."""
    url, _ = resolve_registry(registry)
    path = registry_dir(url) / "policy.json"
    if not path.exists():
        raise AssayError(f"{url} is not trusted: run `assay trust add {url}`")
    policy = _read_json(path)  # a damaged file is a FormatError naming it, not a traceback
    if as_json:
        out.print_json(data=policy)
        return
    out.print(path.read_text(encoding="utf-8"))


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
@json_option
def log_verify(start, end, registry, as_json):
    """Replay the log: check every entry's signer and the root of the signed checkpoint.

    An entry's kind comes from its signed statement (never from the registry's label); a
    release must be signed by a key registered earlier in the log, not revoked before it, by an
    owner with a publishing role in its namespace at that point. Each revocation found is saved
    (once, at the end, even when a later entry fails), so later pulls refuse it. A full replay also checks that
    the registry's signed key-event index (what pulls catch up from) lists exactly the key events
    of the log. With --start above 0, the key events before it come from that signed index, with
    inclusion proofs; only a replay from 0 proves none was hidden."""
    url, token = resolve_registry(registry)
    policy = _policy(url)
    with RegistryClient(url, token) as client, policy.remembering():
        text = client.checkpoint()
        checkpoint = cp.verify_checkpoint(text, policy.log_vkey())
        end = checkpoint.size if end is None else min(end, checkpoint.size)
        if start < 0 or start > end:
            raise AssayError(f"--start {start} is outside the log of size {checkpoint.size} (up to --end {end})")
        full = start == 0 and end == checkpoint.size
        verify_consistency(policy.newest_checkpoint(), checkpoint, client.consistency_proof, policy)

        auditor = LogAuditor(policy)
        if start > 0:  # the key events before --start, proven complete by the signed index of [0, size)
            for index, envelope in key_event_entries(client, policy, checkpoint, 0):
                if index < start:
                    auditor.check(index, canonical_json(envelope))
        leaves: list[bytes] = []
        index = start
        while index < end:
            batch = client.log_entries(index, min(end, index + 1000))
            if not batch:
                raise VerificationError(f"the registry returned no entries at index {index}, below its tree size {checkpoint.size}")
            for entry in batch[: end - index]:
                data = _entry_bytes(index, entry)
                if not full:
                    _check_inclusion(client, index, data, checkpoint)
                auditor.check(index, data, entry.get("kind"))
                leaves.append(merkle.leaf_hash(data))
                index += 1
        if full and merkle.root_from_leaves_hashes(leaves) != checkpoint.root:
            raise VerificationError(f"replaying the {checkpoint.size} entries gives a different root than the signed checkpoint: an entry was tampered with, removed or reordered")
        if full:
            listed = [i for i, _ in key_event_entries(client, policy, checkpoint, 0)]
            if listed != auditor.key_event_indices:
                missing = sorted(set(auditor.key_event_indices) - set(listed))
                raise VerificationError(f"the registry's signed key-event index does not list the key events at log entries "
                                        f"{missing[:10] or sorted(set(listed) - set(auditor.key_event_indices))[:10]}: "
                                        "it hides them from clients that catch up")
            policy.key_state.merge(auditor.keys)
        policy.record_checkpoint(text, checkpoint.size)
    revoked = auditor.revocations()
    if as_json:
        out.print_json(data={"ok": True, "start": start, "end": end, "checkpoint_size": checkpoint.size, "full_replay": full,
                             "revoked_keys": sorted(revoked)})
        return
    out.print(f"OK: entries {start}..{end - 1} verified against checkpoint of size {checkpoint.size}"
              + (f"; {len(revoked)} revoked publisher key(s) remembered" if revoked else ""))


def _entry_bytes(index: int, entry) -> bytes:
    try:
        got, data = entry["index"], base64.b64decode(entry["data"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise VerificationError(f"log entry {index} is malformed or missing") from None
    if got != index:
        raise VerificationError(f"log entry {index} is missing (the registry sent entry {got} in its place)")
    return data


def _check_inclusion(client: RegistryClient, index: int, data: bytes, checkpoint) -> None:
    answer = client.get_json("/api/v1/log/proof/inclusion", index=index, size=checkpoint.size)
    try:
        proof = answer["proof"]
        merkle.verify_inclusion(merkle.leaf_hash(data), index, checkpoint.size, [bytes.fromhex(h) for h in proof], checkpoint.root)
    except (ValueError, TypeError, KeyError) as exc:
        raise VerificationError(f"malformed inclusion proof for log entry {index}: {exc!s}") from None
    except VerificationError:
        raise VerificationError(f"log entry {index} as served is not in the signed checkpoint of size {checkpoint.size}: the entry or the log was tampered with") from None


@log_group.command("watch")
@click.option("--interval", type=float, default=30.0, show_default=True)
@click.option("--count", type=int, default=0, help="Stop after N checks (0 = forever).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check, one per line.")
@click.option("--registry", "-r", envvar="ASSAY_REGISTRY")
def log_watch(interval, count, as_json, registry):
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
            if as_json:
                out.file.write(json.dumps({"consistent": True, "tree_size": checkpoint.size, "root": checkpoint.root.hex()}) + "\n")
                out.file.flush()
            else:
                out.print(f"consistent: tree size {checkpoint.size}, root {checkpoint.root.hex()}")
            checks += 1
            if count and checks >= count:
                return
            time.sleep(interval)
