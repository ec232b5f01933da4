"""``amsgd derive``: the symbolic derivation of the diffusion limits and its numbers."""

HELP = "derive the ODE/SDE limits, phases and rates symbolically"


def configure(parser):
    from amsgd.cli.options import add_problem_options

    add_problem_options(parser)


def run(args) -> int:
    from amsgd.cli.options import problem_from_args

    print(problem_from_args(args).to_dict())
    return 0
