"""Accounts, organizations and namespaces: the one place that creates them consistently."""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from assay.core.errors import AssayError
from assay.core.names import validate_name

from .errors import RegistryError
from .models import Membership, Namespace, Organization
from .roles import log_role, rekey


# Top-level URL segments of the web UI: a namespace with one of these names would be unreachable.
RESERVED_NAMES = {"api", "static", "login", "logout", "signup", "settings", "publish", "trust", "orgs", "v2", "log"}


def _check_free(name: str) -> None:
    if name in RESERVED_NAMES:
        raise RegistryError(400, f"the name {name!r} is reserved")
    try:
        validate_name(name, "namespace")
    except AssayError as exc:
        raise RegistryError(400, str(exc)) from None
    if Namespace.objects.filter(name=name).exists():
        raise RegistryError(409, f"the name {name!r} is taken")


@transaction.atomic
def create_user(username: str, password: str | None, email: str = "", is_staff: bool = False):
    _check_free(username)
    user = get_user_model().objects.create_user(username=username, password=password, email=email, is_staff=is_staff, is_superuser=is_staff)
    Namespace.objects.create(name=username, user=user)
    log_role(username, username, Membership.OWNER)
    return user


@transaction.atomic
def create_organization(owner, name: str, display_name: str = "", private: bool = False) -> Organization:
    _check_free(name)
    org = Organization.objects.create(name=name, display_name=display_name)
    Membership.objects.create(organization=org, user=owner, role=Membership.OWNER)
    Namespace.objects.create(name=name, organization=org, private=private, role_blinding_keys=[secrets.token_hex(32)] if private else [])
    log_role(name, owner.username, Membership.OWNER)
    return org


def _keeps_an_owner(org: Organization, user) -> bool:
    """Would the organization still have an owner without `user` as one?"""
    return Membership.objects.filter(organization=org, role=Membership.OWNER).exclude(user=user).exists()


@transaction.atomic
def set_member(org: Organization, user, role: str) -> Membership:
    """Add `user` to `org` with `role`, or change their role. The last owner cannot step down."""
    if role not in dict(Membership.ROLES):
        raise RegistryError(400, f"invalid role {role!r}: choose owner, publisher or reader")
    Organization.objects.select_for_update().get(pk=org.pk)  # serializes owner changes of one organization
    current = Membership.objects.filter(organization=org, user=user).first()
    if current is not None and current.role == Membership.OWNER and role != Membership.OWNER and not _keeps_an_owner(org, user):
        raise RegistryError(409, f"{user.username} is the last owner of {org.name}: make someone else owner first")
    membership, _ = Membership.objects.update_or_create(organization=org, user=user, defaults={"role": role})
    if current is None or current.role != role:
        log_role(org.name, user.username, role)
    return membership


@transaction.atomic
def remove_member(org: Organization, user) -> None:
    """Remove `user` from `org`. The last owner cannot be removed."""
    Organization.objects.select_for_update().get(pk=org.pk)
    current = Membership.objects.filter(organization=org, user=user).first()
    if current is None:
        raise RegistryError(404, f"{user.username} is not a member of {org.name}")
    if current.role == Membership.OWNER and not _keeps_an_owner(org, user):
        raise RegistryError(409, f"{user.username} is the last owner of {org.name}: make someone else owner first")
    current.delete()
    log_role(org.name, user.username, "none")
    if org.namespace.role_blinding_keys:  # they knew the key: what follows is blinded with a new one
        rekey(org.namespace)
