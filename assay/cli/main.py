"""The `assay` command line: publish, pull and verify signed GGUF releases."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from assay.core import keys, statements
from assay.client.http import RegistryClient
from assay.client.config import default_key_path, remove_login, resolve_registry, save_login
from assay.core.errors import AssayError, VerificationError
from assay.cli.ui import console, json_option, out, print_error, progress_factory, styled

EXIT_ERROR, EXIT_VERIFICATION = 1, 3
FINAL_STATUSES = ("verified", "rejected", "error")


def _client(registry: str | None) -> RegistryClient:
    url, token = resolve_registry(registry)
    return RegistryClient(url, token)


def _passphrase_for(path: Path) -> bytes | None:
    value = os.environ.get("ASSAY_KEY_PASSPHRASE")
    if value is not None:
        return value.encode()
    if keys.is_encrypted_key_file(path):
        if not sys.stdin.isatty():
            raise AssayError(f"{path} is encrypted: set ASSAY_KEY_PASSPHRASE or run interactively")
        return click.prompt(f"passphrase for {path}", hide_input=True).encode()
    return None


def load_signer(key_path: str | None) -> keys.Signer:
    path = Path(key_path) if key_path else default_key_path()
    if not path.exists():
        raise AssayError(f"no signing key at {path}: run `assay keygen` and `assay keys register`")
    return keys.Signer(keys.load_private_key(path, _passphrase_for(path)))


registry_option = click.option("--registry", "-r", envvar="ASSAY_REGISTRY", help="Registry URL (default: the one you logged in to).")


class _LazyGroup(click.Group):
    """The top-level group: the commands defined in other modules (LAZY_COMMANDS) are imported when
    a command line names them, or when --help lists them. `assay pull` then does not import the
    toolchain, the witness server or the log commands: every command starts about a quarter faster."""

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        if name not in self.commands and name in LAZY_COMMANDS:
            import importlib

            module, attribute = LAZY_COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


# name -> "module:attribute" of a command that _LazyGroup imports when it is named
LAZY_COMMANDS = {
    "trust": "assay.cli.trustlog:trust", "log": "assay.cli.trustlog:log_group", "policy": "assay.cli.policy:policy",
    "doctor": "assay.cli.doctor:doctor", "quantize": "assay.cli.quantize:quantize", "imatrix": "assay.cli.quantize:imatrix",
    "convert": "assay.cli.convert:convert", "run": "assay.cli.run:run", "witness": "assay.cli.witness:witness_group",
}


@click.group(cls=_LazyGroup)
@click.version_option(package_name="assay")
def cli():
    """Assay: verified, signed GGUF model releases."""
    from assay.client.config import config_dir
    from assay.toolchain import confine

    # The children that read models, checkpoints and templates (assay run, quantize, convert) are
    # kept out of the config folder: the signing key, tokens and trust store (assay/toolchain/confine).
    confine.protect(config_dir())


@cli.command()
@click.argument("url")
@click.option("--token", envvar="ASSAY_TOKEN", prompt=True, hide_input=True, help="Personal access token.")
@json_option
def login(url, token, as_json):
    """Save a registry URL and API token."""
    url = url.rstrip("/")
    with RegistryClient(url, token) as client:
        who = client.whoami()
    save_login(url, token)
    if as_json:
        out.print_json(data={"registry": url, "username": who["username"]})
        return
    out.print(f"logged in to {url} as {who['username']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@registry_option
def whoami(as_json, registry):
    """Show who the saved token (or $ASSAY_TOKEN) logs in as, and what it may do."""
    with _client(registry) as client:
        who = client.whoami()
        url = client.url
    if as_json:
        out.print_json(data={"registry": url, **who})
        return
    token = who.get("token") if isinstance(who.get("token"), dict) else {}
    scope = ", ".join(token.get("scopes") or []) or "session"
    where = ", ".join(token.get("namespaces") or []) or "all namespaces"
    out.print(f"{who['username']} on {url}\ntoken  {token.get('name', '?')} ({scope}; {where}; expires {token.get('expires_at') or 'never'})",
              markup=False, highlight=False)


@cli.command()
@json_option
@registry_option
def logout(as_json, registry):
    """Forget the token saved for the registry (the trust policy and keys stay)."""
    url, _ = resolve_registry(registry)
    removed = remove_login(url)
    if as_json:
        out.print_json(data={"registry": url, "logged_out": removed})
        return
    out.print(f"logged out of {url}" if removed else f"no saved login for {url}", markup=False, highlight=False)


@cli.command("list")
@click.argument("query", required=False, default="")
@click.option("--json", "as_json", is_flag=True)
@registry_option
def list_models(query, as_json, registry):
    """List the models you can read (QUERY filters by name or description), with the newest
    release of each tag and its verification level."""
    with _client(registry) as client:
        found = client.get_json("/api/v1/models", **({"q": query} if query else {}))
    models = found.get("models") if isinstance(found.get("models"), list) else []
    if as_json:
        out.print_json(data={"models": models})
        return
    if not models:
        out.print(f"no model matches {query!r}" if query else "no models", markup=False, highlight=False)
        return
    for model in models:
        for t in model.get("tags") or []:
            state = t.get("level") if t.get("status") == "verified" and t.get("level") else t.get("status")
            out.print(f"{model.get('name')}:{t.get('tag')}  v{t.get('version')}  {state}  {t.get('quantization')}  "
                      f"{_size(t.get('size'))}", markup=False, highlight=False)


cli.add_command(click.Command("search", callback=list_models.callback, params=list_models.params,
                              help="Search models by name or description (the same as `assay list QUERY`)."))


def _size(n) -> str:
    if not isinstance(n, int):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


@cli.command()
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Private key file (default ~/.config/assay/keys/default.key).")
@click.option("--algorithm", type=click.Choice(keys.ALGORITHMS), default=keys.ED25519, show_default=True,
              help="ecdsa-p256 also signs an OpenSSF model_signing signature with every release.")
@click.option("--import", "import_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take this PEM private key (Ed25519 or ECDSA P-256, e.g. the one you sign with model_signing) instead of making one.")
@click.option("--passphrase/--no-passphrase", default=False, help="Encrypt the private key (ASSAY_KEY_PASSPHRASE or a prompt).")
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@json_option
def keygen(out_path, algorithm, import_path, passphrase, force, as_json):
    """Make a signing key pair (Ed25519 by default; private key mode 0600), or import one."""
    path = Path(out_path) if out_path else default_key_path()
    keys.check_key_pair_paths(path, overwrite=force)  # before a key is made or a passphrase asked for
    if import_path is not None:
        private_key = keys.load_private_key(import_path, _passphrase_for(import_path))
    else:
        private_key = keys.generate_private_key(algorithm)
    secret = None
    if passphrase:
        secret = (os.environ.get("ASSAY_KEY_PASSPHRASE") or click.prompt("passphrase", hide_input=True, confirmation_prompt=True)).encode()
    public = keys.save_key_pair(path, private_key, secret, overwrite=force)
    keyid = keys.key_id(private_key.public_key())
    kind = keys.algorithm_of(private_key)
    if as_json:
        out.print_json(data={"keyid": keyid, "algorithm": kind, "private_key": str(path), "public_key": str(public)})
        return
    out.print(f"key id {keyid} ({kind})\nprivate key {path}\npublic key {public}")


@cli.group("keys")
def keys_group():
    """Register, list and revoke publisher keys."""


@keys_group.command("register")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default="", help="A label shown on your account page.")
@json_option
@registry_option
def keys_register(key_path, name, as_json, registry):
    """Upload your public key, proving you hold the private key."""
    signer = load_signer(key_path)
    with _client(registry) as client:
        username = client.whoami()["username"]
        payload = statements.build_key_event(
            "register", keyid=signer.keyid, public_key=keys.public_key_to_text(signer.public_key), owner=username, time=None,
        )
        from assay.core import dsse

        info = client.post_json("/api/v1/keys", {"envelope": dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, signer), "name": name})
    if as_json:
        out.print_json(data=info)
        return
    out.print(f"registered {info['keyid']} for {info['owner']} (log index {info['registration_log_index']})")


@keys_group.command("list")
@json_option
@registry_option
def keys_list(as_json, registry):
    with _client(registry) as client:
        found = client.get_json("/api/v1/keys")["keys"]
    if as_json:
        out.print_json(data={"keys": found})
        return
    for k in found:
        state = f"revoked {k['revoked_at']}" if k["revoked"] else "active"
        out.print(f"{k['keyid']}  {state}  {k['name']}", markup=False, highlight=False)


@keys_group.command("revoke")
@click.argument("keyid")
@click.option("--reason", default="")
@json_option
@registry_option
def keys_revoke(keyid, reason, as_json, registry):
    """Revoke a key: releases it signed stop verifying on clients."""
    with _client(registry) as client:
        info = client.post_json(f"/api/v1/keys/{keyid}/revoke", {"reason": reason})
    if as_json:
        out.print_json(data=info)
        return
    out.print(f"revoked {info['keyid']} at {info['revoked_at']} (log index {info['revocation_log_index']})")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("reference")
@click.option("--base", "base_ref", help="Base release (ns/model:tag) this quant was built from.")
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False, path_type=Path), help="Recipe JSON (default FILE.recipe.json).")
@click.option("--imatrix", "imatrix_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Importance matrix the recipe names (default: where `assay quantize --imatrix` recorded it).")
@click.option("--calibration", "calibration_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration text the matrix was computed from (default: where `assay imatrix` recorded it).")
@click.option("--upstream", "upstream_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the upstream checkpoint a conversion recipe names (default: where `assay convert` recorded it).")
@click.option("--model-card", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model-signing-sig", "model_signing_sig", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An OpenSSF model_signing signature of FILE made with your (ECDSA P-256) key, to publish with the release. "
                   "With an ECDSA P-256 key and no such file, publish makes one.")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--version", "version", type=int, help="Release version (default: one above the tag's highest).")
@click.option("--wait", is_flag=True, help="Wait until verification finishes.")
@json_option
@registry_option
def publish(file, reference, base_ref, recipe_path, imatrix_path, calibration_path, upstream_dir, model_card, model_signing_sig, key_path,
            version, wait, as_json, registry):
    """Upload FILE and publish it as REFERENCE (ns/model:tag), signed with your key."""
    from assay.client.publish import plan_publish, publish as do_publish

    bars = None if as_json else progress_factory
    plan = plan_publish(file, reference, base_ref=base_ref, recipe_path=recipe_path, model_card_path=model_card, progress_factory=bars,
                        imatrix_path=imatrix_path, calibration_path=calibration_path, upstream_dir=upstream_dir,
                        model_signing_sig=model_signing_sig)
    signer = load_signer(key_path)
    with _client(registry) as client:
        result = do_publish(client, plan, signer, version=version, progress_factory=bars)
        if not as_json:
            out.print(f"published {result['reference']} version {result['version']} ({result['digest']})")
            out.print(f"status: {client.url}{result['status_url']}")
        final = _wait(client, reference, quiet=as_json) if wait else None
    if as_json:
        out.print_json(data={**result, "status_url": client.url + result["status_url"], **({"final": final} if final else {})})
    if final:
        _final(final, reference)


def _wait(client: RegistryClient, reference: str, timeout_s: float = 3600, *, quiet: bool = False) -> dict:
    """Poll the release's status until it is final (3 s apart: never the server's keep-alive time,
    and a dropped connection is retried by the client)."""
    deadline = time.monotonic() + timeout_s
    shown: dict = {}
    while True:
        status = client.status(reference)
        if not quiet:
            _print_step_changes(status, shown)
        if status["status"] in FINAL_STATUSES or time.monotonic() > deadline:
            if not quiet:
                _print_status(status)
            return status
        time.sleep(3)


def _print_step_changes(status: dict, shown: dict) -> None:
    """While waiting: one line on stderr each time a verification step changes state."""
    for step in status.get("steps") or []:
        if not isinstance(step, dict):
            continue
        state = (step.get("status"), step.get("summary"))
        if shown.get(step.get("name")) != state and step.get("status") not in (None, "pending"):
            shown[step.get("name")] = state
            summary = f" {step.get('summary')}" if step.get("status") != "running" and step.get("summary") else ""
            console.print(f"  ... {step.get('name')} {step.get('status')}{summary[:200]}", soft_wrap=True)


def _final(status: dict, reference: str) -> None:
    """One outcome, one exit code, as for pull: rejected is a failed verification (3); error or
    still pending is an error (1)."""
    if status["status"] == "rejected":
        raise VerificationError(f"{reference} was rejected: {status.get('status_reason')}")
    if status["status"] != "verified":
        raise AssayError(f"{reference} is {status['status']}" + (f": {status['status_reason']}" if status.get("status_reason") else ""))


def _print_status(status: dict) -> None:
    """Print a release's status. Every field is the server's text: printed as is, never as markup.
    A verified release shows the level its verdict names (the registry's report; `pull` checks it)."""
    reason = status.get("status_reason")
    out.print(f"{status.get('reference')} version {status.get('version')}: {_status_text(status)}" + (f" ({reason})" if reason else ""),
              markup=False, highlight=False)
    level = status.get("level") if isinstance(status.get("level"), dict) else None
    if level:
        from assay.core.levels import Level

        try:
            out.print(f"  level      {level['name']}: {Level.from_dict(level).chain_text()}", markup=False, highlight=False)
        except AssayError:
            out.print(f"  level      {str(level.get('name'))[:40]} (malformed level from the registry)", markup=False, highlight=False)
    for step in status.get("steps") or []:
        out.print(f"  {step.get('name', '?'):<10} {step.get('status', '?'):<8} {step.get('summary') or ''}", markup=False, highlight=False)


def _status_text(status: dict) -> str:
    level = status.get("level") if isinstance(status.get("level"), dict) else {}
    if status.get("status") == "verified" and level.get("name"):
        return f"verified at level {level['name']}"
    return str(status.get("status"))


@cli.command()
@click.argument("reference")
@click.option("--wait", is_flag=True, help="Wait until verification finishes; exit 3 if rejected, 1 on error.")
@json_option
@registry_option
def status(reference, wait, as_json, registry):
    """Show each verification step of a release and its result."""
    with _client(registry) as client:
        result = _wait(client, reference, quiet=as_json) if wait else client.status(reference)
    if as_json:
        out.print_json(data=result)
    elif not wait:
        _print_status(result)
    if wait:
        _final(result, reference)


@cli.command()
@click.argument("reference")
@click.option("-o", "--output", "output", default=".", show_default=True, help="Target folder, or a file path ending in .gguf.")
@click.option("--json", "as_json", is_flag=True, help="Print the verified release, its level and chain as JSON.")
@click.option("--force", is_flag=True, help="Replace a different file already at the target.")
@click.option("--model-signing", "model_signing", is_flag=True,
              help="Also write the publisher's OpenSSF model_signing signature (FILE.sig) and public key (FILE.publisher.pem).")
@registry_option
def pull(reference, output, as_json, force, model_signing, registry):
    """Download a verified release; nothing lands at the target unless every check passes
    and the trust policy accepts its verification level."""
    from assay.client.pull import level_lines, model_signing_paths, summary
    from assay.client.pull import pull as do_pull

    with _client(registry) as client:
        target, verified = do_pull(client, reference, output, None if as_json else progress_factory, notice=console.print, force=force,
                                   model_signing=model_signing)
    signature, public_key = model_signing_paths(target)
    if as_json:
        out.print_json(data={**summary(verified, target),
                             **({"model_signing": {"signature": str(signature), "public_key": str(public_key)}} if model_signing else {})})
        return
    saved = [f"saved {target.with_name(name)}" for name, _ in verified.release.parts] if verified.release.is_split else [f"saved {target}"]
    if model_signing:
        model_path = target.parent if verified.release.is_split else target
        extra = " --ignore_unsigned_files" if verified.release.is_split else ""
        saved += [f"saved {signature} (OpenSSF model_signing) and {public_key}",
                  f"check with: model_signing verify key --public_key {public_key} --signature {signature}{extra} {model_path}"]
    out.print("\n".join([f"verified {verified.reference} version {verified.version} {verified.digest}", *level_lines(verified),
                         *saved]), markup=False, highlight=False)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--release", "reference", required=True, help="The release (ns/model:tag) the file should be.")
@json_option
@registry_option
def verify(file, reference, as_json, registry):
    """Re-check a file on disk against a release's signatures, verdict and log."""
    from assay.client.pull import level_lines, summary, verify_file

    with _client(registry) as client:
        verified = verify_file(client, file, reference)
    if as_json:
        out.print_json(data=summary(verified, file))
        return
    out.print("\n".join([f"OK: {file} is {verified.reference} version {verified.version} ({verified.digest})", *level_lines(verified)]),
              markup=False, highlight=False)


@cli.command()
@click.argument("reference")
@click.option("--full", is_flag=True, help="Print each statement's whole payload, and the verdict's evidence (checked against its digests).")
@json_option
@registry_option
def inspect(reference, full, as_json, registry):
    """Print a release's signed statements, summarized (or whole with --full), each with whether
    its signature and log inclusion verify against this client's pinned keys (exit 3 if any does not)."""
    from assay.client.pull import check_statements, load_policy

    with _client(registry) as client:
        bundle = client.resolve(reference, any_status=True)
        try:
            policy, untrusted = load_policy(client.url), None
        except VerificationError as exc:
            policy, untrusted = None, str(exc)
        checks = check_statements(bundle, reference, policy, client)
        evidence = _checked_evidence(client, reference, checks) if full else {}
    if as_json:
        out.print_json(data={"reference": reference, "statements": [
            {"name": c.name, "signed_by": c.signed_by, "signature_ok": c.signature_ok, "signature": c.signature, "log_ok": c.log_ok,
             "log": c.log, "statement": _json_or_none(c.payload)} for c in checks]})
    else:
        _print_level(checks)
    for check in [] if as_json else checks:
        out.print(styled((f"== {check.name} statement", "bold"), f" (signed by {', '.join(check.signed_by) or 'nobody'})"))
        out.print(styled("signature: ", (check.signature, "green" if check.signature_ok else "bold red")))
        out.print(styled("log:       ", (check.log, "green" if check.log_ok else "bold red")))
        if full:
            _print_payload(check.payload)
            if check.name == "verdict" and evidence:
                out.print(styled(("== evidence", "bold"), " (each document matches the digest the verdict signs)"))
                out.print_json(data=evidence)
        else:
            _print_summary(check.payload)
    if untrusted:
        raise VerificationError(f"signatures not checked: {untrusted}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise VerificationError(f"the {', '.join(failed)} statement(s) of {reference} did not verify")
    if not checks:
        raise VerificationError(f"{reference} has no signed statements")


def _checked_evidence(client, reference: str, checks) -> dict:
    """The verdict's evidence documents, each checked against the digest the verdict signs."""
    from assay.core.evidence import matching_evidence

    verdict = next((c for c in checks if c.name == "verdict" and c.payload is not None and c.signature_ok), None)
    if verdict is None:
        return {}
    served = client.get_json(f"/api/v1/releases/{reference}/evidence", any="1")
    return matching_evidence(statements.parse_verdict_statement(verdict.payload), served)


def _json_or_none(payload: bytes | None):
    try:
        return json.loads(payload) if payload is not None else None
    except ValueError:
        return None


def _print_level(checks) -> None:
    """The level the verdict signs, first: what `pull` would hold against the trust policy."""
    verdict = next((c for c in checks if c.name == "verdict" and c.payload is not None), None)
    if verdict is None:
        return
    try:
        level = statements.parse_verdict_statement(verdict.payload).level_or_unreproduced
    except AssayError:
        return
    from assay.core.levels import DESCRIPTIONS

    trusted = "" if verdict.signature_ok else " (NOT VERIFIED: the verdict's signature did not check out)"
    out.print(f"level: {level.name} ({DESCRIPTIONS[level.name]}){trusted}\nchain: {level.chain_text()}", markup=False, highlight=False)


def _print_summary(payload: bytes | None) -> None:
    """A few lines per statement: what it is about and what it says (all of it with --full)."""
    try:
        doc = json.loads(payload) if payload is not None else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("predicate"), dict):
        out.print("(no statement to summarize: see --full)", markup=False, highlight=False)
        return
    p, lines = doc["predicate"], [f"predicateType {doc.get('predicateType')}"]
    for subject in doc.get("subject") or []:
        if isinstance(subject, dict):
            lines.append(f"subject       {subject.get('name')}  sha256:{(subject.get('digest') or {}).get('sha256')}")
    if "namespace" in p:  # release
        base = p.get("base") if isinstance(p.get("base"), dict) else None
        lines.append(f"release       {p.get('namespace')}/{p.get('model')}:{p.get('tag')} version {p.get('version')}, {p.get('quantization')}")
        lines.append(f"base          {base.get('name')} {base.get('digest')}" if base else "base          none")
        if isinstance(p.get("recipe"), dict):
            imatrix = f", imatrix {p['recipe']['imatrix']}" if p["recipe"].get("imatrix") else ""
            lines.append(f"recipe        {p['recipe'].get('ftype')} with {p['recipe'].get('ggml_build')}{imatrix}")
    elif "verificationResult" in p:  # verdict
        level = p.get("assayLevel") if isinstance(p.get("assayLevel"), dict) else {}
        lines.append(f"result        {p.get('verificationResult')} at level {level.get('name', 'none')}, {p.get('timeVerified')}")
        for check in p.get("checks") or []:
            if isinstance(check, dict):
                lines.append(f"  {str(check.get('name')):<10} {str(check.get('result')):<8} {str(check.get('summary') or '')[:160]}")
    elif isinstance(p.get("buildDefinition"), dict):  # provenance
        bd = p["buildDefinition"]
        lines.append(f"buildType     {bd.get('buildType')}")
        lines.append("built from    " + ", ".join(f"{d['name'] + ' ' if isinstance(d.get('name'), str) else ''}"
                                                   f"sha256:{(d.get('digest') or {}).get('sha256')}"
                                                   for d in bd.get("resolvedDependencies") or [] if isinstance(d, dict)))
        lines.append(f"recipe        {(bd.get('externalParameters') or {}).get('ftype')}")
    out.print("\n".join(lines), markup=False, highlight=False)


def _print_payload(payload: bytes | None) -> None:
    if payload is None:
        out.print("(the envelope is malformed: no payload to show)")
        return
    try:
        out.print_json(data=json.loads(payload))
    except ValueError:
        out.print(payload.decode("utf-8", "replace"), markup=False, highlight=False)


def main() -> None:
    """Exit codes: 0 ok, 1 error, 2 usage error (click), 3 verification failed, 130 interrupted.
    Error messages (often the server's or a file's text) are printed verbatim, never as markup."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            console.print("interrupted")
            sys.exit(130)
        console.print("aborted")
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VerificationError as exc:
        print_error("verification failed", str(exc))
        sys.exit(EXIT_VERIFICATION)
    except AssayError as exc:
        print_error("error", str(exc))
        sys.exit(EXIT_ERROR)
    except OSError as exc:  # a file the command reads or writes; the commands name most cases themselves
        print_error("error", " ".join(str(exc).split()) or type(exc).__name__)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    if isinstance(code, int) and code:  # click's ctx.exit(n) (e.g. from --help) returns n here
        sys.exit(code)


if __name__ == "__main__":
    main()
