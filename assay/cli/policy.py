"""`assay policy`: what this client accepts from a registry, edited by command, never by hand.

    assay policy show [--json]
    assay policy set levels reproduced,original [--namespace NS]   # accepted verification levels
    assay policy set publishers log|pinned [--namespace NS]        # whose keys may publish
    assay policy set witnesses K                                   # cosignatures a checkpoint needs
    assay policy set witness-max-age SECONDS                       # how recent a cosignature must be
    assay policy set verifiers K                                   # verifiers that must each pass a release
    assay policy verifier add NAME [--yes] | remove KEYID          # pin a verifier the registry lists
    assay policy allow NS unreproduced                             # also accept a level in NS
    assay policy allow NS sha256:<key id>                          # only listed keys publish in NS
    assay policy witness add VKEY | remove NAME

Every change is validated before anything is written: a bad value prints one line, exits 1
and leaves policy.json as it was.
"""
from __future__ import annotations

import click

from assay.core import levels
from assay.client.config import registry_dir, resolve_registry
from assay.core.errors import AssayError, FormatError
from assay.core.names import validate_name
from assay.core.numbers import whole_number
from assay.client.trustpolicy import TrustPolicy
from assay.cli.ui import json_option, out

registry_option = click.option("--registry", "-r", envvar="ASSAY_REGISTRY", help="Registry URL (default: the one you logged in to).")
namespace_option = click.option("--namespace", "-n", default=None, help="Change it for this namespace only.")


def _load(registry: str | None) -> TrustPolicy:
    url, _ = resolve_registry(registry)
    directory = registry_dir(url)
    if not (directory / "policy.json").exists():
        raise AssayError(f"{url} is not trusted yet: run `assay trust add {url}`")
    return TrustPolicy.load(directory)


def _said(p: TrustPolicy, said: str, as_json: bool) -> None:
    """Save the changed policy, then print what the change did: one line, or (--json) that line
    with the whole policy as saved."""
    p.save()
    if as_json:
        out.print_json(data={"result": said, "policy": p.policy})
    else:
        out.print(said, markup=False, highlight=False)


def _namespace(ns: str | None) -> str | None:
    if ns is not None:
        validate_name(ns, "namespace")
    return ns


@click.group()
def policy():
    """Show and change what this client accepts: levels, publishers, witnesses."""


@policy.command("show")
@json_option
@registry_option
def policy_show(as_json, registry):
    """Print the trust policy and what the client learned from the log."""
    p = _load(registry)
    if as_json:
        out.print_json(data={"policy": p.policy, "learned": {"log_size": p.key_state.through,
                                                            "revoked_keys": p.state.get("revoked_keys", {})}})
        return
    pol = p.policy
    lines = [f"registry     {pol['registry']}",
             f"log key      {p.log_vkey()}",
             f"verifiers    {p.verifiers_required()} of {len(pol['verifier_keys'])} required: {', '.join(pol['verifier_keys'])}",
             f"levels       {', '.join(p.accepted_levels())} (default)"]
    lines += [f"             {', '.join(names)} in namespace {ns}" for ns, names in sorted(pol["levels"].get("namespaces", {}).items())]
    pubs = pol["publishers"]
    lines.append(f"publishers   {pubs['default']} (default: {'keys the log says a publishing member registered' if pubs['default'] == 'log' else 'listed keys only'})")
    for ns, entry in sorted(pubs.get("namespaces", {}).items()):
        lines.append(f"             {entry.get('mode', pubs['default'])} in namespace {ns}: {', '.join(entry.get('keys', [])) or 'no keys listed'}")
    w = pol.get("witnesses", {"keys": {}, "required": 0})
    lines.append(f"witnesses    {w['required']} of {len(w['keys'])} required, cosigned within {p.witness_max_age_s()} s" + "".join(f"\n             {vkey}" for vkey in w["keys"].values()))
    plain, with_base = p.required_checks(False), p.required_checks(True)
    extra = [c for c in with_base if c not in plain]  # the level decides what a quant must show (reproduced: rebuilt)
    lines.append(f"checks       {', '.join(plain)}" + (f"; for a release with a base also {', '.join(extra)}" if extra else ", with a base or not"))
    lines.append(f"learned      key events up to log size {p.key_state.through}; {len(p.state.get('revoked_keys', {}))} revoked key(s)")
    out.print("\n".join(lines), markup=False, highlight=False)


@policy.command("set")
@click.argument("setting", type=click.Choice(["levels", "publishers", "witnesses", "witness-max-age", "verifiers"]))
@click.argument("value")
@namespace_option
@json_option
@registry_option
def policy_set(setting, value, namespace, as_json, registry):
    """Set accepted LEVELS (comma-separated), PUBLISHERS (log or pinned), the number of WITNESSES
    required, WITNESS-MAX-AGE (seconds a cosignature counts), or the number of pinned VERIFIERS
    that must each have passed a release."""
    p = _load(registry)
    namespace = _namespace(namespace)
    if setting == "levels":
        p.set_levels(levels.parse_level_list(value), namespace)
        said = f"accepted levels{' in ' + namespace if namespace else ''}: {', '.join(p.accepted_levels(namespace))}"
    elif setting == "publishers":
        p.set_publisher_mode(value, namespace)
        said = f"publishers{' in ' + namespace if namespace else ''}: {value}"
    else:
        if namespace:
            raise FormatError(f"{setting} are required per registry, not per namespace: drop --namespace")
        number = whole_number(value, max_digits=18)
        if number is None:
            raise FormatError(f"{setting} must be a whole number, not {value[:40]!r}")
        if setting == "verifiers":
            p.set_verifiers_required(number)
            said = f"verifiers that must each pass a release: {value} of {len(p.verifier_keys())}"
        elif setting == "witnesses":
            p.set_witnesses_required(number)
            said = f"witness cosignatures required: {value}"
        else:
            p.set_witness_max_age(number)
            said = f"a witness cosignature counts for {value} s"
    _said(p, said, as_json)


@policy.command("allow")
@click.argument("namespace")
@click.argument("item")
@json_option
@registry_option
def policy_allow(namespace, item, as_json, registry):
    """In NAMESPACE, also accept the level ITEM, or allow the publisher key ITEM (sha256:...)."""
    p = _load(registry)
    _namespace(namespace)
    if item.startswith("sha256:"):
        p.allow_publisher(namespace, item)
        said = f"namespace {namespace}: publisher keys allowed: {', '.join(p.policy['publishers']['namespaces'][namespace]['keys'])}"
    else:
        p.allow_level(namespace, item)
        said = f"namespace {namespace}: accepted levels: {', '.join(p.accepted_levels(namespace))}"
    _said(p, said, as_json)


@policy.group("witness")
def witness_group():
    """Witnesses whose cosignatures a checkpoint may need (see `assay policy set witnesses K`)."""


@witness_group.command("add")
@click.argument("vkey")
@json_option
@registry_option
def witness_add(vkey, as_json, registry):
    """Trust a witness by its verifier key (NAME+KEYID+BASE64, as `assay witness init` prints it)."""
    p = _load(registry)
    name = p.add_witness(vkey)
    _said(p, f"witness {name} added; {p.witnesses_required()} of {len(p.witness_keys())} required "
             f"(assay policy set witnesses K to change)", as_json)


@witness_group.command("remove")
@click.argument("name")
@json_option
@registry_option
def witness_remove(name, as_json, registry):
    p = _load(registry)
    p.remove_witness(name)
    _said(p, f"witness {name} removed", as_json)


@policy.group("verifier")
def verifier_group():
    """Verifiers whose verdicts this client takes (see `assay policy set verifiers K`)."""


@verifier_group.command("add")
@click.argument("name")
@click.option("--yes", is_flag=True, help="pin without asking (compare the key id out of band first)")
@json_option
@registry_option
def verifier_add(name, yes, as_json, registry):
    """Pin the key of the verifier NAME, as the registry lists it (GET /api/v1/verifiers)."""
    from assay.client.http import RegistryClient

    p = _load(registry)
    with RegistryClient(p.policy["registry"]) as client:
        listed = client.get_json("/api/v1/verifiers").get("verifiers") or []
    found = next((v for v in listed if isinstance(v, dict) and v.get("name") == name), None)
    if found is None:
        raise AssayError(f"the registry lists no active verifier named {name!r} "
                         f"(it lists: {', '.join(str(v.get('name')) for v in listed if isinstance(v, dict)) or 'none'})")
    if as_json and not yes:
        raise AssayError("--json cannot ask before pinning: compare the key id out of band, then pass --yes")
    if not as_json:
        out.print(f"verifier {name}: key {found.get('keyid')}, registered in log entry {found.get('registration_log_index')}",
                  markup=False, highlight=False)
    if not yes and not click.confirm("pin this verifier key?"):
        raise click.Abort()
    p.pin_verifier(str(found.get("keyid")), str(found.get("public_key")))
    _said(p, f"pinned verifier {name} (key {found.get('keyid')}); {p.verifiers_required()} of {len(p.verifier_keys())} verifiers required "
             f"(assay policy set verifiers K to change)", as_json)


@verifier_group.command("remove")
@click.argument("keyid")
@json_option
@registry_option
def verifier_remove(keyid, as_json, registry):
    p = _load(registry)
    p.unpin_verifier(keyid)
    _said(p, f"verifier key {keyid} removed; {p.verifiers_required()} of {len(p.verifier_keys())} required", as_json)
