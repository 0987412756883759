"""Who may do what in a namespace. The single place for role and visibility rules."""
from __future__ import annotations

from .models import ApiToken, Membership, Namespace

ROLE_RANK = {Membership.READER: 1, Membership.PUBLISHER: 2, Membership.OWNER: 3}


def namespace_role(user, namespace: Namespace) -> str | None:
    """The user's role in a namespace: owner, publisher, reader, or None."""
    if user is None or not user.is_authenticated:
        return None
    if namespace.user_id is not None:
        return Membership.OWNER if namespace.user_id == user.id else None
    membership = Membership.objects.filter(organization_id=namespace.organization_id, user=user).first()
    return membership.role if membership else None


def has_role(user, namespace: Namespace, minimum: str) -> bool:
    role = namespace_role(user, namespace)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def can_read(user, namespace: Namespace) -> bool:
    return not namespace.private or namespace_role(user, namespace) is not None


def can_publish(user, namespace: Namespace) -> bool:
    return has_role(user, namespace, Membership.PUBLISHER)


def can_admin(user, namespace: Namespace) -> bool:
    return has_role(user, namespace, Membership.OWNER)


SCOPE_RANK = {ApiToken.READ: 1, ApiToken.PUBLISH: 2, ApiToken.ADMIN: 3}


def token_allows(token: ApiToken | None, action: str, namespace_name: str | None) -> bool:
    """A session (no token) is limited only by roles; a token also by its scopes and namespaces.

    Scopes nest: admin includes publish, publish includes read.
    """
    if token is None:
        return True
    granted = max((SCOPE_RANK.get(s, 0) for s in token.scopes), default=0)
    if granted < SCOPE_RANK[action]:
        return False
    return namespace_name is None or not token.namespaces or namespace_name in token.namespaces


def token_is_account_wide(token: ApiToken | None) -> bool:
    """A session, or a token not limited to namespaces: it may act on the account itself
    (its publisher keys, its tokens). A token limited to some namespaces may not."""
    return token is None or not token.namespaces


def visible_namespaces(user):
    """Query set of namespaces the user may see."""
    from django.db.models import Q

    if user is None or not user.is_authenticated:
        return Namespace.objects.filter(private=False)
    return Namespace.objects.filter(
        Q(private=False) | Q(user=user) | Q(organization__memberships__user=user)
    ).distinct()
