"""``phalanx keys``: create, authorize, revoke and list the CURVE keys of a cluster.

Subcommands (all take ``--dir DIR``, the keys directory):

- ``init``: master keypair, worker keypair ``w1`` and an allow-list holding
  it; refuses to overwrite existing keys unless ``--force``.
- ``add-worker NAME``: a new worker keypair, authorized; prints its fingerprint.
- ``revoke NAME``: removes the worker from the allow-list (the master refuses
  its key at its next connection attempt).
- ``list``: the master's fingerprint and every worker with its status.

Errors (an existing key, a loose file mode, an unknown name) are one line on
stderr and exit code 2, raised as :class:`~phalanx.transport.KeyFileError`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from phalanx.transport import KeyDir

EPILOG = """\
files (in --dir):
  master.key           master secret key (0600): keep it on the master only
  master.key.pub       master public key: copy to every worker
  authorized_workers   allow-list of worker public keys, one per line
  workers/NAME.key     a worker's secret key (0600): copy to that worker only

example:
  phalanx keys init --dir keys/
  phalanx keys add-worker --dir keys/ w2
  phalanx keys revoke --dir keys/ w2
"""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "keys",
        help="create and manage the CURVE keys of master and workers",
        description="Create and manage the CURVE keys that encrypt and authenticate "
                    "master<->worker traffic.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text, allow_abbrev=False)
        sub.add_argument("--dir", required=True, type=Path, metavar="DIR",
                         help="the keys directory")
        return sub

    init = action("init", "create the master keypair, worker w1 and the allow-list")
    init.add_argument("--force", action="store_true",
                      help="replace existing keys (old workers must get new keys)")
    init.set_defaults(handler=_init)
    add = action("add-worker", "create a worker keypair and authorize it")
    add.add_argument("name", metavar="NAME", help="worker name (letters, digits, _ . -)")
    add.add_argument("--force", action="store_true", help="replace an existing worker's key")
    add.set_defaults(handler=_add_worker)
    revoke = action("revoke", "remove a worker from the allow-list")
    revoke.add_argument("name", metavar="NAME", help="worker name")
    revoke.set_defaults(handler=_revoke)
    listing = action("list", "show the master fingerprint and every worker")
    listing.set_defaults(handler=_list)


def _init(args: argparse.Namespace) -> int:
    keys = KeyDir(args.dir)
    master, worker = keys.init(force=args.force)
    print(f"created keys in {keys.root}")
    print(f"  master  {master}  {keys.master_key} (secret, master only), {keys.master_public}")
    print(f"  w1      {worker}  {keys.worker_key('w1')} (secret, worker w1 only)")
    print(f"  allow-list: {keys.allow_list}")
    return 0


def _add_worker(args: argparse.Namespace) -> int:
    keys = KeyDir(args.dir)
    print_ = keys.add_worker(args.name, force=args.force)
    print(f"worker {args.name} authorized, fingerprint {print_}")
    print(f"  give it {keys.worker_key(args.name)} and {keys.master_public}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    print_ = KeyDir(args.dir).revoke(args.name)
    print(f"worker {args.name} revoked (key {print_}); the master refuses it from its next "
          "connection attempt")
    return 0


def _list(args: argparse.Namespace) -> int:
    listing = KeyDir(args.dir).listing()
    print(f"master  {listing.master_fingerprint}")
    for worker in listing.workers:
        status = "authorized" if worker.authorized else "revoked"
        note = "" if worker.has_key_file else "  (no key file here)"
        print(f"worker  {worker.fingerprint}  {worker.name or '-'}  {status}{note}")
    for problem in listing.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
