"""The verifier service's own commands (run on the verifier's host, with ASSAY_VERIFIER_DIR):

  python -m verifier key                              print this verifier's key id and public key
  python -m verifier register URL --name N --token T  register with a registry (T: a staff
                                                      member's admin token); keeps the verifier
                                                      token the registry issues in the folder
  python -m verifier status                           where this verifier is registered

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
