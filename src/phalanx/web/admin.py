"""Admin pages and their JSON API: users, API tokens and the audit log, in the browser.

What this module adds to :mod:`phalanx.web.app`
-----------------------------------------------
:func:`admin_routes` returns :class:`~phalanx.web.app.RouteSpec` entries whose
handlers close over one :class:`AccountAdmin`; the app serves them behind
the same pipeline as every other route (authentication, the route's
permission, CSRF token and Origin on every POST)::

    GET  /admin                      page: users and tokens        manage_users
    GET  /admin/audit                page: the audit log           view_audit
    GET  /api/v1/users                  {"users": [...], "you"}       manage_users
    POST /api/v1/users/add              {name, role, password}        manage_users
    POST /api/v1/users/reset-password   {name, password}              manage_users
    POST /api/v1/users/set-role         {name, role}                  manage_users
    POST /api/v1/users/disable          {name}                        manage_users
    POST /api/v1/users/enable           {name}                        manage_users
    POST /api/v1/users/remove           {name}                        manage_users
    GET  /api/v1/tokens                 {"tokens": [...]}             manage_tokens
    POST /api/v1/tokens/create          {role, expires?, label?}      manage_tokens
    POST /api/v1/tokens/revoke          {token_id}                    manage_tokens

The audit page reads the existing ``GET /api/v1/audit``.

Invariants
----------
- No response carries a password, a password hash, a token digest or a
  session epoch. A token's secret appears exactly once: in the answer to
  the request that created it.
- Bodies are JSON objects with known fields only (anything else is a 400),
  every field type-checked and length-bounded before it reaches the store.
  :class:`~phalanx.web.accounts.AccountError` and
  :class:`~phalanx.web.passwords.PasswordError` become a 400 with their
  message (they never hold a password; the store's file path is replaced by
  "the user store"). Policy (password rules, name syntax, the last enabled
  admin, token roles and lifetimes) is enforced by
  :mod:`phalanx.web.accounts`, not here.
- Every successful change is audited (``user_add``, ``user_remove``,
  ``user_password``, ``settings_change`` for a role or disabled/enabled,
  ``token_create``, ``token_revoke``) with the admin as actor and the client
  address as source; details never hold a password or a token secret.
- :class:`AccountAdmin` re-reads the store file for every operation and
  performs it in a worker thread (argon2id hashing and the fsync-ed atomic
  write block), one change at a time (an :class:`asyncio.Lock`), so two
  admin requests never race each other into a "changed by another process"
  refusal, and a change made meanwhile with ``phalanx users`` is never lost.
  The running server's :class:`~phalanx.web.auth.StoreAuthenticator` sees
  each change through its own re-read of the file: a reset, role change,
  disable or removal ends the user's sessions, a revoked token stops
  working (within the authenticator's recheck interval, 1 s by default).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from phalanx.web.accounts import (
    MAX_LABEL_LENGTH,
    AccountError,
    TokenInfo,
    User,
    UserStore,
    add_user,
    create_token,
    parse_token_lifetime,
    reset_password,
    revoke_token,
)
from phalanx.web.app import (
    HttpError,
    Identity,
    RouteSpec,
    WebContext,
    _audit,
    _client,
    _json_body,
    _page,
)
from phalanx.web.passwords import MAX_PASSWORD_LENGTH, PasswordError, Passwords
from phalanx.web.rbac import Permission, Role, allowed

__all__ = ["AccountAdmin", "admin_routes"]

MAX_NAME_LENGTH: Final = 64
MAX_EXPIRES_LENGTH: Final = 16
MAX_ERROR_LENGTH: Final = 300
DEFAULT_TOKEN_EXPIRES: Final = "30d"  # noqa: S105 - a lifetime, not a credential
_TOKEN_ID: Final = re.compile(r"[0-9a-f]{12}\Z")

_T = TypeVar("_T")


class AccountAdmin:
    """The account operations of the admin pages, over one store file.

    Every method is a coroutine that runs the blocking work (reading the
    store, argon2id hashing, the atomic write) in a worker thread. Changes
    run one at a time; each opens the store afresh, so the file is the only
    state. ``clock`` gives wall-clock epoch seconds (creation and expiry
    times are dates). Errors are :class:`AccountError` or
    :class:`PasswordError` with messages safe to show to the admin.
    """

    __slots__ = ("_clock", "_lock", "_passwords", "_path")

    def __init__(self, path: Path, passwords: Passwords,
                 clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._passwords = passwords
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        """The store file."""
        return self._path

    def now(self) -> float:
        """The current wall-clock time, epoch seconds."""
        return self._clock()

    # ---- reads

    async def users(self) -> tuple[User, ...]:
        """Every user, by name."""
        return await asyncio.to_thread(lambda: self._open().users())

    async def tokens(self) -> tuple[TokenInfo, ...]:
        """Every token (expired ones too), oldest first; never a secret or digest."""
        return await asyncio.to_thread(lambda: self._open().tokens())

    # ---- users

    async def add_user(self, name: str, role: Role, password: str) -> User:
        """Add a user with ``password`` (policy-checked, hashed with argon2id)."""
        return await self._change(lambda store: add_user(
            store, name, role, password, passwords=self._passwords, now=self._clock()))

    async def reset_password(self, name: str, password: str) -> User:
        """Give ``name`` a new password; the user's sessions end."""
        return await self._change(lambda store: reset_password(
            store, name, password, passwords=self._passwords, now=self._clock()))

    async def set_role(self, name: str, role: Role) -> User:
        """Change a user's role (its sessions end); never the last enabled admin's."""
        return await self._change(lambda store: store.set_role(name, role))

    async def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable (sessions end, no login) or enable a user; never the last enabled admin."""
        return await self._change(lambda store: store.set_disabled(name, disabled))

    async def remove_user(self, name: str) -> User:
        """Remove a user (its sessions end); never the last enabled admin."""
        return await self._change(lambda store: store.remove_user(name))

    # ---- tokens

    async def create_token(self, role: Role, expires_in: float, label: str
                           ) -> tuple[TokenInfo, str]:
        """A new token: its info and the token itself (to be shown once, never stored)."""
        def create(store: UserStore) -> tuple[TokenInfo, str]:
            token_id, token = create_token(store, role, expires_in, label, self._clock())
            info = store.token(token_id)
            if info is None:  # pragma: no cover - create_token has just stored it
                raise AccountError("the new token was not stored")
            return info, token

        return await self._change(create)

    async def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by id; it stops working."""
        return await self._change(lambda store: revoke_token(store, token_id))

    # ---- internals

    def _open(self) -> UserStore:
        try:
            return UserStore.open(self._path)
        except AccountError as exc:
            raise AccountError(self._safe(str(exc))) from None

    async def _change(self, change: Callable[[UserStore], _T]) -> _T:
        def apply() -> _T:
            store = self._open()
            try:
                return change(store)
            except AccountError as exc:
                raise AccountError(self._safe(str(exc))) from None

        async with self._lock:
            return await asyncio.to_thread(apply)

    def _safe(self, message: str) -> str:
        """``message`` without the store's file path (the admin need not learn the layout)."""
        return message.replace(str(self._path), "the user store")


# --- JSON shapes -------------------------------------------------------------------------


def _user_json(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "disabled": user.disabled,
            "created": user.created, "password_changed": user.password_changed}


def _token_json(info: TokenInfo, now: float) -> dict[str, Any]:
    return {"token_id": info.token_id, "role": info.role.value, "label": info.label,
            "created": info.created, "expires": info.expires, "last_used": info.last_used,
            "expired": info.expired(now)}


# --- validation --------------------------------------------------------------------------


async def _body(request: Request, required: frozenset[str],
                optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    body = await _json_body(request)
    unknown = sorted(set(body) - required - optional)
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)[:200]}")
    missing = sorted(required - set(body))
    if missing:
        raise HttpError(400, f"missing field(s): {', '.join(missing)}")
    return body


def _text(body: Mapping[str, Any], field: str, max_length: int, *, min_length: int = 1) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise HttpError(400, f"{field}: expected text of {min_length} to {max_length} "
                             "characters")
    return value


def _role(body: Mapping[str, Any]) -> Role:
    value = body.get("role")
    if isinstance(value, str):
        for role in Role:
            if role.value == value:
                return role
    choices = ", ".join(role.value for role in Role)
    raise HttpError(400, f"role: choose one of {choices}")


def _token_id(body: Mapping[str, Any]) -> str:
    value = body.get("token_id")
    if not isinstance(value, str) or not _TOKEN_ID.match(value):
        raise HttpError(400, "token_id: expected 12 hexadecimal digits")
    return value


async def _run(operation: Callable[[], Awaitable[_T]]) -> _T:
    """Await ``operation()``; an account or password refusal becomes a 400 with its message."""
    try:
        return await operation()
    except (AccountError, PasswordError) as exc:
        raise HttpError(400, str(exc)[:MAX_ERROR_LENGTH]) from None


def _actor(who: Identity | None) -> str:
    if who is None:  # pragma: no cover - every admin route requires a permission
        raise HttpError(401, "sign in first")
    return who.user


_NAME: Final = frozenset({"name"})


# --- handlers ----------------------------------------------------------------------------


class _AdminHandlers:
    """The route handlers, bound to one :class:`AccountAdmin`."""

    __slots__ = ("_accounts",)

    def __init__(self, accounts: AccountAdmin) -> None:
        self._accounts = accounts

    async def accounts_page(self, request: Request, ctx: WebContext, who: Identity | None
                            ) -> Response:
        return _admin_page("accounts", who)

    async def audit_page(self, request: Request, ctx: WebContext, who: Identity | None
                         ) -> Response:
        return _admin_page("audit", who)

    async def list_users(self, request: Request, ctx: WebContext, who: Identity | None
                         ) -> Response:
        users = await _run(self._accounts.users)
        return JSONResponse({"users": [_user_json(user) for user in users],
                             "you": _actor(who)})

    async def add_user(self, request: Request, ctx: WebContext, who: Identity | None
                       ) -> Response:
        body = await _body(request, frozenset({"name", "role", "password"}))
        name = _text(body, "name", MAX_NAME_LENGTH)
        role = _role(body)
        password = _text(body, "password", MAX_PASSWORD_LENGTH)
        user = await _run(lambda: self._accounts.add_user(name, role, password))
        _audit(ctx, _actor(who), _client(request), "user_add",
               {"user": user.name, "role": user.role.value})
        return JSONResponse({"ok": True, "user": _user_json(user)})

    async def reset_password(self, request: Request, ctx: WebContext, who: Identity | None
                             ) -> Response:
        body = await _body(request, frozenset({"name", "password"}))
        name = _text(body, "name", MAX_NAME_LENGTH)
        password = _text(body, "password", MAX_PASSWORD_LENGTH)
        user = await _run(lambda: self._accounts.reset_password(name, password))
        _audit(ctx, _actor(who), _client(request), "user_password", {"user": user.name})
        return JSONResponse({"ok": True, "user": _user_json(user)})

    async def set_role(self, request: Request, ctx: WebContext, who: Identity | None
                       ) -> Response:
        body = await _body(request, frozenset({"name", "role"}))
        name = _text(body, "name", MAX_NAME_LENGTH)
        role = _role(body)
        user = await _run(lambda: self._accounts.set_role(name, role))
        _audit(ctx, _actor(who), _client(request), "settings_change",
               {"setting": "role", "user": user.name, "role": user.role.value})
        return JSONResponse({"ok": True, "user": _user_json(user)})

    async def disable(self, request: Request, ctx: WebContext, who: Identity | None
                      ) -> Response:
        return await self._set_disabled(request, ctx, who, disabled=True)

    async def enable(self, request: Request, ctx: WebContext, who: Identity | None
                     ) -> Response:
        return await self._set_disabled(request, ctx, who, disabled=False)

    async def _set_disabled(self, request: Request, ctx: WebContext, who: Identity | None, *,
                            disabled: bool) -> Response:
        body = await _body(request, _NAME)
        name = _text(body, "name", MAX_NAME_LENGTH)
        user = await _run(lambda: self._accounts.set_disabled(name, disabled))
        _audit(ctx, _actor(who), _client(request), "settings_change",
               {"setting": "disabled", "user": user.name, "disabled": user.disabled})
        return JSONResponse({"ok": True, "user": _user_json(user)})

    async def remove_user(self, request: Request, ctx: WebContext, who: Identity | None
                          ) -> Response:
        body = await _body(request, _NAME)
        name = _text(body, "name", MAX_NAME_LENGTH)
        user = await _run(lambda: self._accounts.remove_user(name))
        _audit(ctx, _actor(who), _client(request), "user_remove",
               {"user": user.name, "role": user.role.value})
        return JSONResponse({"ok": True, "name": user.name})

    async def list_tokens(self, request: Request, ctx: WebContext, who: Identity | None
                          ) -> Response:
        tokens = await _run(self._accounts.tokens)
        now = self._accounts.now()
        return JSONResponse({"tokens": [_token_json(info, now) for info in tokens]})

    async def create_token(self, request: Request, ctx: WebContext, who: Identity | None
                           ) -> Response:
        body = await _body(request, frozenset({"role"}), frozenset({"expires", "label"}))
        role = _role(body)
        expires = (_text(body, "expires", MAX_EXPIRES_LENGTH) if "expires" in body
                   else DEFAULT_TOKEN_EXPIRES)
        label = (_text(body, "label", MAX_LABEL_LENGTH, min_length=0) if "label" in body
                 else "")
        try:
            lifetime = parse_token_lifetime(expires)
        except AccountError as exc:
            raise HttpError(400, str(exc)[:MAX_ERROR_LENGTH]) from None
        info, token = await _run(lambda: self._accounts.create_token(role, lifetime, label))
        _audit(ctx, _actor(who), _client(request), "token_create",
               {"token_id": info.token_id, "role": info.role.value, "label": info.label,
                "expires": round(info.expires)})
        # The one and only time the secret leaves the server (responses are no-store).
        return JSONResponse({"ok": True, "token": token,
                             **_token_json(info, self._accounts.now())})

    async def revoke_token(self, request: Request, ctx: WebContext, who: Identity | None
                           ) -> Response:
        body = await _body(request, frozenset({"token_id"}))
        token_id = _token_id(body)
        info = await _run(lambda: self._accounts.revoke_token(token_id))
        _audit(ctx, _actor(who), _client(request), "token_revoke",
               {"token_id": info.token_id, "label": info.label})
        return JSONResponse({"ok": True, "token_id": info.token_id})


def _admin_page(page: str, who: Identity | None) -> Response:
    if who is None:  # pragma: no cover - both pages require a permission
        raise HttpError(401, "sign in first")
    return _page("admin.html", page=page, user=who.user, role=who.role.value,
                 csrf=who.session.csrf if who.session else "",
                 can_users=allowed(who.role, Permission.MANAGE_USERS),
                 can_tokens=allowed(who.role, Permission.MANAGE_TOKENS),
                 can_audit=allowed(who.role, Permission.VIEW_AUDIT),
                 roles=[role.value for role in Role],
                 token_roles=[Role.VIEWER.value, Role.OPERATOR.value])


def admin_routes(accounts: AccountAdmin) -> tuple[RouteSpec, ...]:
    """The admin pages and API over ``accounts`` (see the module docstring for the table)."""
    h = _AdminHandlers(accounts)
    users, tokens = Permission.MANAGE_USERS, Permission.MANAGE_TOKENS
    return (
        RouteSpec("GET", "/admin", users, h.accounts_page),
        RouteSpec("GET", "/admin/audit", Permission.VIEW_AUDIT, h.audit_page),
        RouteSpec("GET", "/api/v1/users", users, h.list_users),
        RouteSpec("POST", "/api/v1/users/add", users, h.add_user),
        RouteSpec("POST", "/api/v1/users/reset-password", users, h.reset_password),
        RouteSpec("POST", "/api/v1/users/set-role", users, h.set_role),
        RouteSpec("POST", "/api/v1/users/disable", users, h.disable),
        RouteSpec("POST", "/api/v1/users/enable", users, h.enable),
        RouteSpec("POST", "/api/v1/users/remove", users, h.remove_user),
        RouteSpec("GET", "/api/v1/tokens", tokens, h.list_tokens),
        RouteSpec("POST", "/api/v1/tokens/create", tokens, h.create_token),
        RouteSpec("POST", "/api/v1/tokens/revoke", tokens, h.revoke_token),
    )
