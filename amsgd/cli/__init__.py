"""The ``amsgd`` command line: one subcommand per module, sharing the problem options.

Each subcommand module exposes ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``.
Bad input raises :class:`~amsgd.errors.ProblemError`, printed here as one line with exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from amsgd.cli import derive, figures, integrate, simulate, sweep, validate
from amsgd.cli.options import ArgumentParser
from amsgd.errors import ProblemError

COMMANDS = {
    "derive": derive,
    "simulate": simulate,
    "integrate": integrate,
    "sweep": sweep,
    "validate": validate,
    "figures": figures,
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="amsgd",
        description="Diffusion-limit analysis of asynchronous momentum SGD on streaming PCA.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for name, module in COMMANDS.items():
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except ProblemError as exc:
        print(f"amsgd {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"amsgd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
