"""Command-line flags from the one option table, shared by every subcommand.

Each subcommand names the options it takes, in titled sections; the flags,
help texts and value parsing all come from
:data:`phalanx.config.settings.OPTIONS`, so ``run``, ``master`` and ``worker``
spell a shared option the same way. Values stay raw strings here (argparse
does no conversion) and are validated by ``build_settings`` with the flag
named in the message.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from phalanx.config.settings import OPTIONS, OPTIONS_BY_NAME

Sections = Sequence[tuple[str, Sequence[str]]]


def add_option_arguments(parser: argparse.ArgumentParser, sections: Sections) -> None:
    """Add the flags of the options named in ``sections`` (plus ``--config``)."""
    for title, names in sections:
        group = parser.add_argument_group(title)
        for name in names:
            option = OPTIONS_BY_NAME[name]
            if option.positional:
                group.add_argument(
                    name, nargs="*", metavar=option.metavar, help=option.help,
                    default=argparse.SUPPRESS,
                )
            elif option.switch:
                group.add_argument(
                    *option.flags, dest=name, help=option.help, default=argparse.SUPPRESS,
                    action="store_const", const="true",
                )
            else:
                group.add_argument(
                    *option.flags, dest=name, metavar=option.metavar, help=option.help,
                    default=argparse.SUPPRESS, action="append" if option.repeatable else "store",
                )
    parser.add_argument(
        "--config", metavar="FILE", default=None,
        help="read settings from this TOML file (also PHALANX_CONFIG)",
    )


def cli_values(args: argparse.Namespace) -> dict[str, object]:
    """The options given on the command line, by name (raw values)."""
    names = {option.name for option in OPTIONS}
    values = {key: value for key, value in vars(args).items() if key in names}
    if values.get("user_classes") == []:
        del values["user_classes"]
    return values
