"""Standard normals per second: the simulator's ziggurat against numba's own Generator, in one run.

The simulator draws its Gaussian data with a hand-written SFC64 + 256-layer ziggurat compiled by
numba (:mod:`amsgd.simulate.ziggurat`). It is kept only while it is faster than the generator numba
supports out of the box (``numpy.random.Generator`` passed into a compiled function, whose
``standard_normal`` numba implements with NumPy's own ziggurat). Both fill the same ``(rows, d)``
array inside compiled code; NumPy's ``Generator.standard_normal`` (vectorised, outside numba) is
printed for reference. Each time is the best of ``--repeats``. Criterion: the ziggurat stays while
numba's Generator takes at least as long (the printed ratio >= 1). Usage:
``python benchmarks/bench_normals.py [--normals N] [--repeats R]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from numba import njit
from ratios import emit  # benchmarks/ is on the path when a script runs
from timing import best_of

from amsgd.simulate.ziggurat import fill_scaled_normals, replicate_states


@njit(cache=True, nogil=True)
def fill_with_generator(rng, out):
    """``out`` filled with numba's ``Generator.standard_normal``, in the same row order."""
    rows, dim = out.shape
    for row in range(rows):
        for i in range(dim):
            out[row, i] = rng.standard_normal()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normals", type=int, default=20_000_000, help="normals per timing (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = np.empty((args.normals // 4, 4))
    seed = np.random.SeedSequence(2018)
    state = replicate_states(seed, 1)[0]
    scale = np.ones(4)
    generator = np.random.Generator(np.random.PCG64(seed))
    fill_scaled_normals(state, scale, out[:10])  # compile (or load) both before the clock
    fill_with_generator(generator, out[:10])
    ziggurat = best_of(args.repeats, lambda: fill_scaled_normals(state, scale, out))
    numba_generator = best_of(args.repeats, lambda: fill_with_generator(generator, out))
    numpy_generator = best_of(args.repeats, lambda: generator.standard_normal(out=out))
    per = 1e9 / out.size
    print(f"{out.size:,} normals, best of {args.repeats}:")
    print(f"  ziggurat (SFC64, compiled)            {per * ziggurat:6.2f} ns per normal")
    print(f"  numba Generator.standard_normal       {per * numba_generator:6.2f} ns per normal")
    print(f"  NumPy Generator.standard_normal       {per * numpy_generator:6.2f} ns per normal (vectorised)")
    print(f"numba Generator / ziggurat: {numba_generator / ziggurat:.2f}x (the ziggurat stays while this is >= 1)")
    ratio = numba_generator / ziggurat
    emit("normals: numba Generator / ziggurat", ratio, target=">= 1 (keep the ziggurat)", met=ratio >= 1.0)


if __name__ == "__main__":
    main()
