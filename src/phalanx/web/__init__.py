"""The master's web UI and REST API, and the identities that may use them.

Map
---
::

    rbac.py       pure: Role (viewer < operator < admin), Permission, the
                  ROLE_PERMISSIONS table, allowed(role, permission); deny by default
    passwords.py  argon2id hashing (Passwords), the new-password policy, a dummy
                  verification for unknown users, password files
    accounts.py   the user store file (UserStore: users and API tokens, JSON,
                  0600, atomic writes), authentication, tokens, ensure_admin

Who may do what is decided only in :mod:`phalanx.web.rbac`; who someone is,
only in :mod:`phalanx.web.accounts`. The ``phalanx users`` and ``phalanx
tokens`` commands (:mod:`phalanx.cli.users`) edit the same store.
"""
