"""``amsgd figures``: the standard pictures of a problem as PNG files in ``--out DIR``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from amsgd.cli.options import (
    LIST_HELP,
    add_problem_options,
    float_list,
    problem_from_args,
    require_pca,
    whole,
)
from amsgd.core import checks, progress
from amsgd.core.files import check_input_file, check_output_dir, made_folder
from amsgd.validation.budget import Budget

HELP = "draw the standard figures (trajectories, histograms, escape, error vs delay, stability diagram) as PNG"
SUMMARY = "the standard figures as PNG (and those of a sweep)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser, models=False)  # streaming PCA only: --model is refused in words
    group = parser.add_argument_group("figures")
    group.add_argument("--out", required=True, metavar="DIR", help="directory for the PNG files (created)")
    group.add_argument(
        "--mus", type=float_list, default=(0.7, 0.8, 0.9),
        help=f"momenta of the error-vs-delay curves: {LIST_HELP} (default: 0.7,0.8,0.9)",
    )  # fmt: skip
    group.add_argument("--replicates", type=whole, default=256, help="runs per simulation (default: %(default)s)")
    group.add_argument("--steps", type=whole, default=10_000,
                       help="iterations of the stationary runs, longer (up to 10 times) where the problem's slowest "
                       "mode needs them to settle (default: %(default)s)")  # fmt: skip
    group.add_argument("--seed", type=whole, default=2018, help="seed of every run (default: %(default)s)")
    group.add_argument("--threads", type=whole, default=2, help="simulation threads (default: %(default)s)")
    group.add_argument("--sweep", metavar="FILE.nc", help="also draw the figures of a sweep file written by amsgd sweep")


def run(args: argparse.Namespace) -> int:
    problem = require_pca(problem_from_args(args), "figures")
    for option, value in (("--replicates", args.replicates), ("--steps", args.steps), ("--threads", args.threads)):
        checks.positive_int(option, value)
    budget = Budget.uniform(args.replicates, args.steps, seed=args.seed, threads=args.threads)
    out = check_output_dir(args.out)
    sweep = None
    if args.sweep is not None:  # read first: a bad file fails before the simulations (a missing one before any heavy import)
        check_input_file(args.sweep, "--sweep")
        from amsgd.figures.sweep import check_drawable
        from amsgd.sweep.dataset import read_dataset

        sweep = check_drawable(read_dataset(args.sweep))
    from amsgd.figures.standard import FIGURE_SETS, standard_figures

    progress.plan(FIGURE_SETS + (sweep is not None), "figure sets")
    with made_folder(out), _say_what_was_kept(out):
        paths = standard_figures(problem, out, mus=args.mus, budget=budget)
        if sweep is not None:
            from amsgd.figures.sweep import sweep_figures

            with progress.stage("sweep figures"):
                paths += sweep_figures(sweep, out)
    for path in paths:
        print(path)
    from amsgd.validation.report import figures_not_drawn

    if stale := figures_not_drawn(out, paths):
        print(f"amsgd figures: note: {out} also holds {', '.join(stale)}, not drawn by this run (left by an "
              "earlier run into this folder, perhaps of another problem)", file=sys.stderr)  # fmt: skip
    return 0


@contextlib.contextmanager
def _say_what_was_kept(out: Path) -> Iterator[None]:
    """On Ctrl-C, one line naming the figures this run drew in ``out`` (new, or rewritten since it began),
    those an earlier run left there, and how to draw them all."""
    before = _pngs(out)
    try:
        yield
    except KeyboardInterrupt:
        now = _pngs(out)
        drawn = sorted(name for name, stamp in now.items() if before.get(name) != stamp)
        earlier = sorted(name for name in now if name not in drawn)
        kept = f"the figures drawn so far are kept in {out}/ ({', '.join(drawn)})" if drawn else "no figure was drawn"
        left = f"; {', '.join(earlier)} there are an earlier run's" if earlier else ""
        print(f"amsgd figures: {kept}{left}; rerun the same command to draw them all", file=sys.stderr)
        raise


def _pngs(out: Path) -> dict[str, tuple[int, int]]:
    """The PNGs in ``out`` with their modification time and size (none if it does not exist yet)."""
    stats = {path.name: path.stat() for path in out.glob("*.png")}
    return {name: (stat.st_mtime_ns, stat.st_size) for name, stat in stats.items()}
