"""Namespace roles in the transparency log: who may publish where, as clients learn it.

Every change of an account's role in a namespace is a `namespace-role` event signed by the
registry's log key and logged in the same transaction as the change: a user namespace's owner
when the account is made, an organization's members as they are added, changed and removed
("none"). Clients take a namespace's publisher keys from these events and the key
registrations (assay/client/keystate.py) instead of pinning the first key they see.
"""
from __future__ import annotations

import json

from django.db import transaction
from django.utils import timezone

from assay.core import dsse, statements

from . import tlog
from .models import LogEntry, Membership, Namespace
from .serverkeys import log_key


def log_role(namespace: str, member: str, role: str) -> int:
    """Sign and log `member`'s role in `namespace` ("none" when removed); returns the log index."""
    payload = statements.build_role_event(namespace=namespace, member=member, role=role, time=timezone.now())
    return tlog.append("namespace-role", dsse.sign_envelope(payload, statements.PAYLOAD_TYPE, log_key()))


def current_roles() -> dict[tuple[str, str], str]:
    """(namespace, member) -> role, as the registry's database has it now."""
    roles = {}
    for ns in Namespace.objects.select_related("user", "organization"):
        if ns.user_id:
            roles[(ns.name, ns.user.username)] = Membership.OWNER
        else:
            for m in Membership.objects.filter(organization_id=ns.organization_id).select_related("user"):
                roles[(ns.name, m.user.username)] = m.role
    return roles


def logged_roles() -> dict[tuple[str, str], str]:
    """(namespace, member) -> the role the log says last."""
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
    changes = [(ns, member, role) for (ns, member), role in sorted(current.items()) if logged.get((ns, member)) != role]
    changes += [(ns, member, "none") for (ns, member), role in sorted(logged.items()) if role != "none" and (ns, member) not in current]
    for ns, member, role in changes:
        log_role(ns, member, role)
    return changes
