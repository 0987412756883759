"""The verifier service's own commands (run on the verifier's host, with ASSAY_VERIFIER_DIR):

  python -m verifier key                              print this verifier's key id and public key
  python -m verifier register URL --name N --token T  register with a registry (T: a staff
                                                      member's admin token); keeps the verifier
                                                      token the registry issues in the folder
  python -m verifier status                           where this verifier is registered
  python -m verifier template review FILE --name N    accept a chat template (from a GGUF file or a
                                                      .jinja file) after reading its findings
  python -m verifier template list | remove N         the templates this operator accepted

Then run the worker: celery -A verifier.celery_app worker
"""
from __future__ import annotations

import sys

import click

from assay.core import keys
from assay.client.http import RegistryClient, RegistryHTTPError
from assay.core.errors import AssayError

from .registry_api import VerifierClient
from .identity import Registration, load_registration, registration_envelope, save_registration, signing_key, verifier_dir


@click.group()
def main() -> None:
    """Assay verifier service."""


@main.command()
def key() -> None:
    """Print this verifier's key id and public key (the key is made on first use)."""
    public = signing_key().public_key()
    click.echo(f"keyid:      {keys.key_id(public)}\npublic key: {keys.public_key_to_text(public)}\nfolder:     {verifier_dir()}")


@main.command()
@click.argument("url")
@click.option("--name", required=True, help="this verifier's name at the registry (letters, digits, - _ .)")
@click.option("--token", envvar="ASSAY_ADMIN_TOKEN", help="an admin token of a registry staff member (or ASSAY_ADMIN_TOKEN)")
@click.option("--if-needed", is_flag=True, help="do nothing when this verifier's registration at URL still works")
def register(url: str, name: str, token: str | None, if_needed: bool) -> None:
    """Register this verifier's key with a registry (logged there) and keep its verifier token."""
    if if_needed and _registered_at(url):
        click.echo(f"verifier already registered with {url}")
        return
    if not token:
        raise click.UsageError("registering needs a registry staff member's admin token: pass --token or set ASSAY_ADMIN_TOKEN")
    with RegistryClient(url, token) as client:
        answer = client.post_json("/api/v1/verifiers", {"name": name, "envelope": registration_envelope(name)})
    path = save_registration(Registration(url.rstrip("/"), name, answer["token"]))
    click.echo(f"registered verifier {name!r} ({answer['keyid']}) with {url}, log index {answer['registration_log_index']}\n"
               f"registration kept in {path}")


def _registered_at(url: str) -> bool:
    try:
        registration = load_registration()
    except AssayError:
        return False
    if registration.registry != url.rstrip("/"):
        return False
    try:
        with VerifierClient(registration.registry, registration.token) as client:
            return client.get_json("/api/v1/verifier/me").get("keyid") == keys.key_id(signing_key().public_key())
    except RegistryHTTPError:
        return False  # the registry no longer knows this token (a new database, a revocation)


@main.command()
def status() -> None:
    """Where this verifier is registered."""
    registration = load_registration()
    with VerifierClient(registration.registry, registration.token) as client:
        info = client.get_json("/api/v1/verifier/me")
    click.echo(f"verifier {info['name']!r} at {registration.registry}, key {info['keyid']}, "
               f"registered in log entry {info['registration_log_index']}")


@main.group()
def template() -> None:
    """Chat templates this verifier's operator reviewed (ASSAY_VERIFIER_DIR/reviewed_templates.json).

    A template that is not a built-in known one is read as a stranger's program: fixed text in it
    that reads as an instruction to the model rejects the release. An honest vendor's template can
    carry such text (tool-call rules); after reading it, accept that exact template here."""


@template.command("review")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--name", required=True, help="a name for the template (letters, digits, . _ -), shown in verdicts")
@click.option("--key", default="tokenizer.chat_template", show_default=True,
              help="the metadata key to read from a GGUF file (a named template: tokenizer.chat_template.tool_use)")
@click.option("--note", default="", help="why it was accepted, kept with it")
@click.option("--yes", is_flag=True, help="accept without asking")
def template_review(file: str, name: str, key: str, note: str, yes: bool) -> None:
    """Show a chat template's findings, then accept that exact template."""
    from .reviewed_templates import add_reviewed, reviewed_path
    from .template_checks import check_chat_template

    source = _template_source(file, key)
    findings = check_chat_template(source)
    for f in findings:
        click.echo(f"  {f.severity:7} {f.message}")
    errors = sum(f.severity == "error" for f in findings)
    click.echo(f"{len(source)} characters, {errors} error(s), {len(findings) - errors} other finding(s)")
    if not yes and not click.confirm(f"accept this template as {name!r} for this verifier's verdicts?"):
        raise click.ClickException("not accepted")
    entry = add_reviewed(name, source, note)
    click.echo(f"accepted chat template {name!r} ({entry['sha256']}) in {reviewed_path()}; it counts as known from the next verification "
               "(a release it rejected earlier: `python manage.py reverify NS/MODEL:TAG --reason ...` on the registry's host)")


@template.command("list")
def template_list() -> None:
    """The chat templates this verifier's operator accepted."""
    from .reviewed_templates import load_reviewed, reviewed_path

    table = load_reviewed()
    for name, entry in sorted(table.items()):
        click.echo(f"{name}\t{entry['sha256']}\t{entry.get('reviewed', '')}\t{entry.get('note', '')}")
    if not table:
        click.echo(f"no reviewed chat templates in {reviewed_path()}")


@template.command("remove")
@click.argument("name")
def template_remove(name: str) -> None:
    """Stop accepting a reviewed chat template (from the next verification)."""
    from .reviewed_templates import remove_reviewed

    remove_reviewed(name)
    click.echo(f"removed reviewed chat template {name!r}")


def _template_source(file: str, key: str) -> str:
    """The chat template in a GGUF file (under `key`), or a text file's whole text."""
    from assay.core.ggufparse import parse_gguf

    try:
        with open(file, "rb") as f:
            is_gguf = f.read(4) == b"GGUF"
        if is_gguf:
            value = parse_gguf(file).metadata.get(key)
            if not isinstance(value, str):
                raise AssayError(f"{file} has no string {key}" + ("" if value is None else f" (it is a {type(value).__name__})"))
            return value
        return open(file, encoding="utf-8").read()
    except UnicodeDecodeError as exc:
        raise AssayError(f"{file} is neither a GGUF file nor UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise AssayError(f"cannot read {file}: {exc.strerror or exc}") from None


if __name__ == "__main__":
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AssayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
