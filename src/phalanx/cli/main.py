"""``phalanx`` entry point: dispatches to one module per subcommand.

Every user error (bad flag, config, script) ends with one clear line on
stderr and exit code 2, never a traceback. An unexpected internal error
prints a short message plus the traceback (it is a bug to report) and exits 3.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from phalanx.cli.environment import take_secrets
from phalanx.core.errors import PhalanxError

EXIT_INTERNAL = 3


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("phalanx")
    except PackageNotFoundError:
        return "0.0.0"


class _VersionAction(argparse.Action):
    """``--version``: the version and the build (compiled or pure Python), then exit.

    The build is only looked up when asked: it imports the hot-path modules.
    """

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show the version and the build (compiled or pure Python)")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from phalanx.core.build import build_kind

        print(f"phalanx {version()} ({build_kind()})")
        parser.exit()


class Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and one-line errors that point to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser() -> Parser:
    from phalanx.cli import audit as audit_command
    from phalanx.cli import certs as certs_command
    from phalanx.cli import keys as keys_command
    from phalanx.cli import master as master_command
    from phalanx.cli import run as run_command
    from phalanx.cli import users as users_command
    from phalanx.cli import worker as worker_command

    parser = Parser(
        prog="phalanx",
        description="phalanx: fast, secure-by-default load testing with async Python users.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run_command.add_parser(commands)
    master_command.add_parser(commands)
    worker_command.add_parser(commands)
    keys_command.add_parser(commands)
    audit_command.add_parser(commands)
    certs_command.add_parser(commands)
    users_command.add_users_parser(commands)
    users_command.add_tokens_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    take_secrets()
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.handler(args)
    except PhalanxError as exc:
        print(f"phalanx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("phalanx: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: say so plainly, keep the traceback for the report
        print("phalanx: internal error (a bug in phalanx; please report it with this "
              "traceback):", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
