"""``phalanx audit``: check and read an audit log file.

- ``verify FILE [--expect-head HASH] [--min-entries N]``: prints ``OK: N
  entries, head <hash>`` (exit 0) or ``TAMPERED: line K: <reason> (<why>)``
  (exit 1). ``--expect-head`` takes a head hash recorded earlier (shown by
  the UI or by an earlier ``verify``): the file must still contain that entry,
  which exposes entries removed from the end or a chain rewritten before it.
- ``show FILE [--last N]``: verifies, then prints the last N entries, one a
  line; a damaged file prints the entries before the damage, then the
  ``TAMPERED`` line (exit 1).

An unreadable file (missing, a directory, a symbolic link, no permission) is
one line on stderr and exit code 2 (:class:`~phalanx.security.audit.AuditError`).
Printed strings have their control and invisible characters escaped, so a
crafted user name cannot move the cursor or reorder text on the terminal.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from phalanx.security.audit import read_log
from phalanx.security.audit_chain import AuditEntry, VerifyResult, is_hash

EXIT_TAMPERED = 1
MAX_SHOW = 100_000

EPILOG = """\
exit codes: 0 intact, 1 tampered (edited, removed, reordered or cut), 2 cannot read

example:
  phalanx audit verify audit.log
  phalanx audit verify audit.log --expect-head HEAD   (64 hex digits recorded earlier)
  phalanx audit show audit.log --last 20

Removing the last entries leaves a valid shorter chain: record the head hash
somewhere else and pass it as --expect-head to detect it.
"""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "audit",
        help="verify and read an audit log (hash-chained JSON lines)",
        description="Verify the hash chain of an audit log file, or print its last entries.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    verify = actions.add_parser(
        "verify", help="check that no entry was edited, removed or reordered",
        description="Check that no entry was edited, removed or reordered.", allow_abbrev=False)
    verify.add_argument("file", type=Path, metavar="FILE", help="the audit log file")
    verify.add_argument("--expect-head", type=_hash_arg, metavar="HASH",
                        help="a head hash recorded earlier: the file must still contain it")
    verify.add_argument("--min-entries", type=_count_arg, metavar="N",
                        help="the file must hold at least N entries")
    verify.set_defaults(handler=_verify)
    show = actions.add_parser(
        "show", help="verify, then print the last entries",
        description="Verify the log, then print its last entries.", allow_abbrev=False)
    show.add_argument("file", type=Path, metavar="FILE", help="the audit log file")
    show.add_argument("--last", type=_show_arg, default=50, metavar="N",
                      help="how many entries to print (default 50)")
    show.set_defaults(handler=_show)


def format_entry(entry: AuditEntry) -> str:
    """One readable line: ``#seq time actor@source action key=value ...``."""
    details = " ".join(f"{key}={_value(value)}" for key, value in sorted(entry.details.items()))
    text = (f"#{entry.seq} {entry.time} {_text(entry.actor)}@{_text(entry.source)} "
            f"{entry.action}")
    return f"{text} {details}" if details else text


def _verify(args: argparse.Namespace) -> int:
    result = read_log(args.file, expect_head=args.expect_head, min_entries=args.min_entries)
    if not result.ok:
        print(_tampered(result))
        return EXIT_TAMPERED
    anchor = ""
    if args.expect_head is not None:
        anchor = f"; contains the expected head (entry {result.anchor_seq})"
    print(f"OK: {result.entries} entries, head {result.head}{anchor}")
    return 0


def _show(args: argparse.Namespace) -> int:
    result = read_log(args.file, keep_last=args.last)
    for entry in result.tail:
        print(format_entry(entry))
    if not result.ok:
        print(_tampered(result))
        return EXIT_TAMPERED
    print(f"OK: {result.entries} entries, head {result.head}")
    return 0


def _tampered(result: VerifyResult) -> str:
    where = f"line {result.first_bad_line}: " if result.first_bad_line is not None else ""
    return f"TAMPERED: {where}{result.reason} ({result.detail})"


def _text(value: str) -> str:
    """``value`` as is when plain, else JSON-quoted with every control,
    format (bidi) and separator character escaped."""
    if value and value.isprintable() and not any(c in value for c in ' "=@\\'):
        return value
    quoted = json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else _escape(c) for c in quoted)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _value(value: object) -> str:
    if isinstance(value, str):
        return _text(value)
    return json.dumps(value)


def _hash_arg(text: str) -> str:
    value = text.strip().lower()
    if not is_hash(value):
        raise argparse.ArgumentTypeError("a head hash is 64 hex digits")
    return value


def _count_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _show_arg(text: str) -> int:
    value = _count_arg(text)
    if not 1 <= value <= MAX_SHOW:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_SHOW}")
    return value
