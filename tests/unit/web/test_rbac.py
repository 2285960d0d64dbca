"""RBAC: every (role, permission) pair against a table written out by hand; deny by default."""

from __future__ import annotations

import itertools

import pytest

from phalanx.web.rbac import ROLE_PERMISSIONS, Permission, Role, allowed, parse_role

# The expected table, written out in full on purpose: a change to the RBAC table
# must change this test too.
EXPECTED: dict[tuple[Role | None, Permission], bool] = {
    (None, Permission.VIEW_STATS): False,
    (None, Permission.VIEW_REPORTS): False,
    (None, Permission.RUN_CONTROL): False,
    (None, Permission.MANAGE_USERS): False,
    (None, Permission.MANAGE_TOKENS): False,
    (None, Permission.VIEW_AUDIT): False,
    (None, Permission.MANAGE_SETTINGS): False,
    (Role.VIEWER, Permission.VIEW_STATS): True,
    (Role.VIEWER, Permission.VIEW_REPORTS): True,
    (Role.VIEWER, Permission.RUN_CONTROL): False,
    (Role.VIEWER, Permission.MANAGE_USERS): False,
    (Role.VIEWER, Permission.MANAGE_TOKENS): False,
    (Role.VIEWER, Permission.VIEW_AUDIT): False,
    (Role.VIEWER, Permission.MANAGE_SETTINGS): False,
    (Role.OPERATOR, Permission.VIEW_STATS): True,
    (Role.OPERATOR, Permission.VIEW_REPORTS): True,
    (Role.OPERATOR, Permission.RUN_CONTROL): True,
    (Role.OPERATOR, Permission.MANAGE_USERS): False,
    (Role.OPERATOR, Permission.MANAGE_TOKENS): False,
    (Role.OPERATOR, Permission.VIEW_AUDIT): False,
    (Role.OPERATOR, Permission.MANAGE_SETTINGS): False,
    (Role.ADMIN, Permission.VIEW_STATS): True,
    (Role.ADMIN, Permission.VIEW_REPORTS): True,
    (Role.ADMIN, Permission.RUN_CONTROL): True,
    (Role.ADMIN, Permission.MANAGE_USERS): True,
    (Role.ADMIN, Permission.MANAGE_TOKENS): True,
    (Role.ADMIN, Permission.VIEW_AUDIT): True,
    (Role.ADMIN, Permission.MANAGE_SETTINGS): True,
}


def test_expected_table_covers_every_role_and_permission() -> None:
    roles: list[Role | None] = [None, *Role]
    assert set(EXPECTED) == {(role, permission) for role in roles for permission in Permission}


@pytest.mark.parametrize(("role", "permission"), list(EXPECTED))
def test_allowed_matches_the_expected_table(role: Role | None, permission: Permission) -> None:
    assert allowed(role, permission) is EXPECTED[(role, permission)]


def test_role_permissions_table_is_the_expected_table() -> None:
    for role in Role:
        granted = {permission for permission in Permission if EXPECTED[(role, permission)]}
        assert ROLE_PERMISSIONS[role] == granted


def test_each_role_holds_every_permission_of_the_roles_below_it() -> None:
    ordered = sorted(Role, key=lambda role: role.rank)
    assert ordered == [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
    for lower, higher in itertools.pairwise(ordered):
        assert ROLE_PERMISSIONS[lower] < ROLE_PERMISSIONS[higher]
        assert higher.at_least(lower)
        assert not lower.at_least(higher)


def test_anything_that_is_not_a_role_or_permission_is_denied() -> None:
    assert not allowed("admin", Permission.VIEW_STATS)  # type: ignore[arg-type]
    assert not allowed(Role.ADMIN, "view_stats")  # type: ignore[arg-type]
    assert not allowed(2, Permission.VIEW_STATS)  # type: ignore[arg-type]
    assert not allowed(Role.ADMIN, None)  # type: ignore[arg-type]


def test_role_permissions_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        ROLE_PERMISSIONS[Role.VIEWER] = frozenset(Permission)  # type: ignore[index]


@pytest.mark.parametrize(("text", "role"), [
    ("viewer", Role.VIEWER), ("operator", Role.OPERATOR), ("admin", Role.ADMIN),
    (" Admin ", Role.ADMIN),
])
def test_parse_role_accepts_the_three_role_names(text: str, role: Role) -> None:
    assert parse_role(text) is role


@pytest.mark.parametrize("text", ["", "root", "superuser", "admins"])
def test_parse_role_refuses_other_names_and_lists_the_choices(text: str) -> None:
    with pytest.raises(ValueError, match="viewer, operator, admin"):
        parse_role(text)
