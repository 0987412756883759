"""Namespace roles in the transparency log: who may publish where, as clients learn it.

Every change of an account's role in a namespace is a `namespace-role` event signed by the
registry's log key and logged in the same transaction as the change: a user namespace's owner
when the account is made, an organization's members as they are added, changed and removed
("none"). Clients take a namespace's publisher keys from these events and the key registrations
(assay/client/keystate.py) instead of pinning the first key they see.

In a private namespace the event names neither the namespace nor the member: both are blinded
with the namespace's role-blinding key (assay/core/statements.py blind_namespace), which its
readers get in the bundles of its releases. When a member leaves, the key is replaced (rekey).
"""
from __future__ import annotations

import json
import secrets

from django.db import transaction
from django.utils import timezone

from assay.core import dsse, statements

from . import tlog
from .models import LogEntry, Membership, Namespace
from .serverkeys import log_key


def role_names(ns: Namespace, member: str) -> tuple[str, str]:
    """What a role event says for `member` of `ns`: their names, or, in a private namespace, the
    names blinded with its role-blinding key."""
    key = ns.role_blinding_key
    if not key:
        return ns.name, member
    return statements.blind_namespace(key, ns.name), statements.blind_member(key, ns.name, member)


def log_role(namespace: str, member: str, role: str) -> int:
    """Sign and log `member`'s role in `namespace` ("none" when removed); returns the log index."""
    return _log_role_event(*role_names(Namespace.objects.get(name=namespace), member), role)


def _log_role_event(namespace: str, member: str, role: str) -> int:
    payload = statements.build_role_event(namespace=namespace, member=member, role=role, time=timezone.now())
    return tlog.append("namespace-role", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key()))


def rekey(ns: Namespace) -> None:
    """Blind `ns`'s role events with a new key from now on (a member left, who knew the old one):
    a "rekeyed" event blinded with the old key links it to the new, then every current role is
    logged again under the new key, so that its history stands on its own. Readers get both keys
    in the bundles; one who left holds only the old and sees nothing more."""
    old, new = ns.role_blinding_key, secrets.token_hex(32)
    _log_role_event(statements.blind_namespace(old, ns.name), statements.blind_rekey(old, ns.name, new), statements.REKEYED)
    ns.role_blinding_keys = [*ns.role_blinding_keys, new]
    ns.save(update_fields=["role_blinding_keys"])
    for (ns_name, member), role in sorted(_roles_of(ns).items()):
        _log_role_event(ns_name, member, role)


def _roles_of(ns: Namespace) -> dict[tuple[str, str], str]:
    if ns.user_id:
        return {role_names(ns, ns.user.username): Membership.OWNER}
    return {role_names(ns, m.user.username): m.role
            for m in Membership.objects.filter(organization_id=ns.organization_id).select_related("user")}


def current_roles() -> dict[tuple[str, str], str]:
    """(namespace, member) -> role, as the registry's database has it now, named as the log names
    them (blinded for a private namespace)."""
    roles = {}
    for ns in Namespace.objects.select_related("user", "organization"):
        roles.update(_roles_of(ns))
    return roles


def logged_roles() -> dict[tuple[str, str], str]:
    """(namespace, member) -> the role the log says last (blinded names as logged)."""
    roles = {}
    for data in LogEntry.objects.filter(kind="namespace-role").order_by("index").values_list("data", flat=True):
        event = statements.parse_role_event(dsse.parse_envelope(json.loads(bytes(data))).payload)
        roles[(event.namespace, event.member)] = event.role
    return roles


@transaction.atomic
def sync_roles() -> list[tuple[str, str, str]]:
    """Log every role the database has and the log does not say (a database made before roles were
    logged, or restored from a backup); returns what it logged."""
    logged, current = logged_roles(), current_roles()
    # Events under a name no longer used stay as they are (clients read them together with the
    # current ones, in log order): a private namespace's named events from before roles were
    # blinded, and those under its earlier keys (and the "rekeyed" links).
    retired = set()
    for ns in Namespace.objects.exclude(role_blinding_keys=[]):
        retired |= {ns.name, *(statements.blind_namespace(key, ns.name) for key in ns.role_blinding_keys[:-1])}
    changes = [(ns, member, role) for (ns, member), role in sorted(current.items()) if logged.get((ns, member)) != role]
    changes += [(ns, member, "none") for (ns, member), role in sorted(logged.items())
                if role != "none" and (ns, member) not in current and ns not in retired]
    for ns, member, role in changes:
        _log_role_event(ns, member, role)
    return changes
