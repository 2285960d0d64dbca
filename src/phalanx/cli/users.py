"""``phalanx users`` and ``phalanx tokens``: the accounts of the web UI and REST API.

``phalanx users ACTION``: ``add NAME --role R``, ``list``, ``remove NAME``,
``reset-password NAME``, ``set-role NAME --role R``, ``disable NAME``,
``enable NAME``. ``phalanx tokens ACTION``: ``create --role R --expires 30d``,
``list``, ``revoke ID``. Every action takes ``--store FILE`` (default
``$PHALANX_USER_STORE``, else ``./phalanx-users.json``; see
:mod:`phalanx.web.accounts`); ``users add`` and ``tokens create`` create the
file (mode 0600) when it is missing, the others require it.

A new password comes from a terminal prompt (typed twice, not echoed),
``--password-file FILE`` (a private file, ``chmod 600``), ``--password-stdin``,
or ``--generate`` (a random one, printed once). There is deliberately no way
to give a password as an argument: it would show in ``ps`` and shell history.
``tokens create`` prints the token alone on stdout (for ``TOKEN=$(...)``), and
the details and a store-it-now warning on stderr: it is shown only once.

Errors (a weak password, an unknown user, an unsafe store file) are one line
on stderr and exit code 2. The store has one writer at a time: change
accounts while a master runs only through its web UI, or expect a "changed by
another process" refusal.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phalanx.core.clock import SystemClock
from phalanx.web import accounts
from phalanx.web.accounts import UserStore
from phalanx.web.passwords import (
    MAX_PASSWORD_FILE_BYTES,
    PasswordError,
    Passwords,
    decode_password,
    generate_password,
    read_password_file,
)
from phalanx.web.rbac import Role

ROLES = [role.value for role in Role]
TOKEN_ROLES = sorted(role.value for role in accounts.TOKEN_ROLES)

USERS_EPILOG = """\
the store:
  --store FILE, else $PHALANX_USER_STORE, else ./phalanx-users.json (mode 0600;
  it holds argon2id hashes only, but keep it out of version control)

example:
  phalanx users add alice --role operator            (asks for the password twice)
  phalanx users add ci-viewer --role viewer --password-file pw.txt
  printf '%s' "$PW" | phalanx users reset-password alice --password-stdin
  phalanx users list
"""

TOKENS_EPILOG = """\
tokens are for scripts and CI: send 'Authorization: Bearer <token>'. A token is
shown once (on stdout), stored only as a SHA-256 digest, expires (30d by
default, 366d at most) and holds the viewer or operator role, never admin.

example:
  TOKEN=$(phalanx tokens create --role operator --expires 30d --label ci)
  phalanx tokens list
  phalanx tokens revoke 3f9a0c1b2d4e
"""


def add_users_parser(commands: Any) -> None:
    """Register ``phalanx users`` on an argparse subparsers object."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "users",
        help="manage the users of the web UI",
        description="Add, list, remove and change the users who may sign in to the web UI.",
        epilog=USERS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    actions = parser.add_subparsers(dest="users_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    add = _action(actions, "add", "add a user (the password is asked for, never an argument)")
    add.add_argument("name", metavar="NAME", help="user name: 1-64 of a-z 0-9 _ . -")
    add.add_argument("--role", choices=ROLES, default=Role.VIEWER.value,
                     help="viewer (default): look; operator: also start/stop tests; "
                          "admin: also manage users and tokens")
    _password_source(add)
    add.set_defaults(handler=_users_add)
    listing = _action(actions, "list", "list the users (never their password hashes)")
    listing.set_defaults(handler=_users_list)
    remove = _action(actions, "remove", "remove a user (ends the user's sessions)")
    remove.add_argument("name", metavar="NAME", help="user name")
    remove.set_defaults(handler=_users_remove)
    reset = _action(actions, "reset-password", "set a new password (ends the user's sessions)")
    reset.add_argument("name", metavar="NAME", help="user name")
    _password_source(reset)
    reset.set_defaults(handler=_users_reset_password)
    set_role = _action(actions, "set-role", "change a user's role (ends the user's sessions)")
    set_role.add_argument("name", metavar="NAME", help="user name")
    set_role.add_argument("--role", choices=ROLES, required=True, help="the new role")
    set_role.set_defaults(handler=_users_set_role)
    disable = _action(actions, "disable", "stop a user from signing in (ends the sessions)")
    disable.add_argument("name", metavar="NAME", help="user name")
    disable.set_defaults(handler=_users_disable, disabled=True)
    enable = _action(actions, "enable", "let a disabled user sign in again")
    enable.add_argument("name", metavar="NAME", help="user name")
    enable.set_defaults(handler=_users_disable, disabled=False)


def add_tokens_parser(commands: Any) -> None:
    """Register ``phalanx tokens`` on an argparse subparsers object."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "tokens",
        help="manage API tokens for scripts and CI",
        description="Create, list and revoke the API tokens of the REST API.",
        epilog=TOKENS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    actions = parser.add_subparsers(dest="tokens_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    create = _action(actions, "create", "create a token; it is printed once")
    create.add_argument("--role", choices=TOKEN_ROLES, required=True, help="the token's role")
    create.add_argument("--expires", default="30d", metavar="DURATION",
                        help="lifetime such as 12h, 30d (default 30d, at most 366d)")
    create.add_argument("--label", default="", metavar="TEXT",
                        help="what the token is for (shown in 'tokens list')")
    create.set_defaults(handler=_tokens_create)
    listing = _action(actions, "list", "list the tokens (never their secrets)")
    listing.set_defaults(handler=_tokens_list)
    revoke = _action(actions, "revoke", "revoke a token by id")
    revoke.add_argument("token_id", metavar="ID", help="the token's id (see 'tokens list')")
    revoke.set_defaults(handler=_tokens_revoke)


def _action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = actions.add_parser(
        name, help=help_text, description=help_text, allow_abbrev=False)
    sub.add_argument("--store", type=Path, metavar="FILE", default=None,
                     help="the user store (default: $PHALANX_USER_STORE, "
                          "else ./phalanx-users.json)")
    return sub


def _password_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-file", type=Path, metavar="FILE",
                        help="read the password from FILE (mode 0600; one trailing newline "
                             "is removed)")
    source.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    source.add_argument("--generate", action="store_true",
                        help="generate a random password and print it once")


# ---------------------------------------------------------------- users


def _users_add(args: argparse.Namespace) -> int:
    store = _open(args, create=True)
    created_file = not store.exists
    password, generated = _new_password(args, args.name)
    user = accounts.add_user(store, args.name, Role(args.role), password,
                             passwords=Passwords(), now=SystemClock().wall())
    if created_file:
        print(f"created the user store {store.path} (mode 0600)")
    print(f"user {user.name} added with role {user.role.value}")
    _show_generated(user.name, generated)
    if not any(u.role is Role.ADMIN and not u.disabled for u in store.users()):
        print("note: the store has no enabled admin: nobody can manage users in the web UI "
              "(add one with --role admin)", file=sys.stderr)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    store = _open(args, create=False)
    users = store.users()
    if not users:
        print(f"no users in {store.path}")
        return 0
    rows = [(user.name, user.role.value, _when(user.created), "yes" if user.disabled else "no")
            for user in users]
    _table(("NAME", "ROLE", "CREATED", "DISABLED"), rows)
    return 0


def _users_remove(args: argparse.Namespace) -> int:
    user = _open(args, create=False).remove_user(args.name)
    print(f"user {user.name} removed; their sessions end")
    return 0


def _users_reset_password(args: argparse.Namespace) -> int:
    store = _open(args, create=False)
    if store.user(args.name) is None:  # before asking for a password in vain
        raise accounts.AccountError(f"no user {args.name!r} in {store.path}")
    password, generated = _new_password(args, args.name)
    accounts.reset_password(store, args.name, password, passwords=Passwords(),
                            now=SystemClock().wall())
    print(f"password of {args.name} changed; their sessions end")
    _show_generated(args.name, generated)
    return 0


def _users_set_role(args: argparse.Namespace) -> int:
    user = _open(args, create=False).set_role(args.name, Role(args.role))
    print(f"user {user.name} now has role {user.role.value}")
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    user = _open(args, create=False).set_disabled(args.name, bool(args.disabled))
    state = "disabled; their sessions end" if user.disabled else "enabled"
    print(f"user {user.name} {state}")
    return 0


# ---------------------------------------------------------------- tokens


def _tokens_create(args: argparse.Namespace) -> int:
    lifetime = accounts.parse_token_lifetime(args.expires)
    store = _open(args, create=True)
    now = SystemClock().wall()
    token_id, token = accounts.create_token(store, Role(args.role), lifetime, args.label, now)
    label = f", label {args.label!r}" if args.label else ""
    print(f"token {token_id} created: role {args.role}, expires {_when(now + lifetime)}{label}",
          file=sys.stderr)
    print("warning: this is the only time the token is shown; put it in your CI's secret "
          "store now", file=sys.stderr)
    print(token)
    return 0


def _tokens_list(args: argparse.Namespace) -> int:
    store = _open(args, create=False)
    tokens = store.tokens()
    if not tokens:
        print(f"no tokens in {store.path}")
        return 0
    now = SystemClock().wall()
    rows = [
        (info.token_id, info.role.value, info.label or "-", _when(info.created),
         _when(info.expires), "never" if info.last_used is None else _when(info.last_used),
         "expired" if info.expired(now) else "active")
        for info in tokens
    ]
    _table(("ID", "ROLE", "LABEL", "CREATED", "EXPIRES", "LAST USED", "STATUS"), rows)
    return 0


def _tokens_revoke(args: argparse.Namespace) -> int:
    info = accounts.revoke_token(_open(args, create=False), args.token_id)
    print(f"token {info.token_id} revoked")
    return 0


# ---------------------------------------------------------------- helpers


def _open(args: argparse.Namespace, *, create: bool) -> UserStore:
    return UserStore.open(accounts.resolve_store_path(args.store, os.environ), create=create)


def _new_password(args: argparse.Namespace, name: str) -> tuple[str, str | None]:
    """The new password and, when generated, the same string to show once."""
    if args.generate:
        password = generate_password()
        return password, password
    if args.password_file is not None:
        return read_password_file(args.password_file), None
    if args.password_stdin:
        data = sys.stdin.buffer.read(MAX_PASSWORD_FILE_BYTES + 1)
        if len(data) > MAX_PASSWORD_FILE_BYTES:
            raise PasswordError(f"standard input: more than {MAX_PASSWORD_FILE_BYTES} bytes")
        return decode_password(data, source="standard input"), None
    if not sys.stdin.isatty():
        raise PasswordError("no terminal to ask for the password: use --password-file FILE, "
                            "--password-stdin or --generate")
    first = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise PasswordError("the two passwords differ; nothing was changed")
    return first, None


def _show_generated(name: str, generated: str | None) -> None:
    if generated is not None:
        print(f"password of {name} (shown only now; store it safely): {generated}")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
