"""The ``amsgd`` command line: one subcommand per module, sharing the problem options.

Each subcommand module exposes ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``;
it parses, calls the API and prints. Only the ground layer and argparse are imported here, so
``--help`` and bad input return before SymPy, numba, Dask, xarray or matplotlib load. Bad input
raises :class:`~amsgd.core.errors.ProblemError`, printed here as one line with exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from amsgd.cli import advise, derive, figures, integrate, simulate, sweep, validate
from amsgd.cli.options import ArgumentParser
from amsgd.core.errors import ProblemError

COMMANDS = {
    "derive": derive,
    "simulate": simulate,
    "integrate": integrate,
    "sweep": sweep,
    "validate": validate,
    "figures": figures,
    "advise": advise,
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="amsgd",
        description="Diffusion-limit analysis of asynchronous momentum SGD on streaming PCA and any model: "
        "derive, predict, simulate, integrate, validate, advise.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, module in COMMANDS.items():
        # argparse %-formats a subcommand's help, not its description
        module.configure(sub.add_parser(name, help=module.HELP.replace("%", "%%"), description=module.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
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
