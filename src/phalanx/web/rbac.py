"""Roles and permissions: who may do what, in one table.

Pure: no I/O, no state. Roles are ordered ``viewer < operator < admin`` and
each role holds every permission of the roles below it (a test checks it).

=================  ======  ========  =====
permission         viewer  operator  admin
=================  ======  ========  =====
view_stats           yes     yes      yes
view_reports         yes     yes      yes
run_control           -      yes      yes
manage_users          -       -       yes
manage_tokens         -       -       yes
view_audit            -       -       yes
manage_settings       -       -       yes
=================  ======  ========  =====

``run_control`` covers starting, changing (user count, rate), stopping and
resetting a test. Invariant: deny by default. :func:`allowed` answers
``False`` for an anonymous caller (``role is None``), for a role or a
permission the table does not know, and for anything that is not a
:class:`Role` / :class:`Permission` at all; it never raises.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["ROLE_PERMISSIONS", "Permission", "Role", "allowed", "parse_role"]


class Role(enum.StrEnum):
    """A user's or token's role; compare privilege with :meth:`at_least`."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        """Whether this role holds at least the privilege of ``other``."""
        return self.rank >= other.rank


class Permission(enum.StrEnum):
    """Something a caller of the web UI or REST API may be allowed to do."""

    VIEW_STATS = "view_stats"
    VIEW_REPORTS = "view_reports"
    RUN_CONTROL = "run_control"
    MANAGE_USERS = "manage_users"
    MANAGE_TOKENS = "manage_tokens"
    VIEW_AUDIT = "view_audit"
    MANAGE_SETTINGS = "manage_settings"


_RANKS: Final[Mapping[Role, int]] = MappingProxyType(
    {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
)
_VIEWER: Final = frozenset({Permission.VIEW_STATS, Permission.VIEW_REPORTS})
_OPERATOR: Final = _VIEWER | {Permission.RUN_CONTROL}
_ADMIN: Final = _OPERATOR | {
    Permission.MANAGE_USERS,
    Permission.MANAGE_TOKENS,
    Permission.VIEW_AUDIT,
    Permission.MANAGE_SETTINGS,
}

ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = MappingProxyType(
    {Role.VIEWER: _VIEWER, Role.OPERATOR: _OPERATOR, Role.ADMIN: _ADMIN}
)
"""Every permission each role holds; read-only. Anything absent is denied."""


def allowed(role: Role | None, permission: Permission) -> bool:
    """Whether ``role`` may do ``permission``; ``None`` (anonymous) may do nothing."""
    if not isinstance(role, Role) or not isinstance(permission, Permission):
        return False
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def parse_role(text: str) -> Role:
    """The role named ``text`` (``viewer``, ``operator`` or ``admin``); ``ValueError`` if none."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {text!r} (choose one of: {choices})") from None
