"""Cost of the theory under long geometric delay laws: ``amsgd derive --delay ps:M`` as M grows.

The event-driven server's staleness law is geometric with mean M − 1; its table, cut where the tail
falls below 1e-12, has about 27.6 (M − 1) lags, up to the 20 000 the theory takes (``ps:724``). Each run
is a fresh interpreter with the derivations stored by a first run; its peak memory is the child's
maximum resident set (runs go in order of growing M, so the running maximum is the last run's). Targets:
``ps:724`` within 5 times the time of ``ps:8`` and under 4 GB. Beside them, the delay's spread κ at
2000 lags by FFT (``lyapunov.delay_spread``) against the dense quadratic form it replaces, one call each,
best of ``--repeats``, and their difference. Usage: ``python benchmarks/bench_long_delays.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile

import numpy as np
from bench_derive import wall  # benchmarks/ is on the path when a script runs
from ratios import emit
from timing import best_of_interleaved

from amsgd.diffusion.theory.lyapunov import delay_spread

WORKERS = (8, 72, 262, 724)


def dense_spread(gamma: np.ndarray, pmf: np.ndarray) -> float:
    """κ as the quadratic form over the (L + 1)-square Toeplitz matrix of γ (λ = 1)."""
    k = np.arange(pmf.size)
    m = gamma[np.abs(k[:, None] - k[None, :])]
    return float(pmf @ np.diag(m) - pmf @ m @ pmf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="calls of each spread (default: %(default)s)")
    args = parser.parse_args()
    seconds, memory = {}, {}
    with tempfile.TemporaryDirectory() as store:
        wall([sys.executable, "-m", "amsgd", "derive", "-q"], store=store)  # derive and store once
        for m in WORKERS:
            seconds[m] = wall([sys.executable, "-m", "amsgd", "derive", "-q", "--delay", f"ps:{m}"], store=store)
            memory[m] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # KiB -> GB
            print(f"derive --delay ps:{m:<4d} {seconds[m]:6.2f} s, peak memory {memory[m]:.2f} GB")
    ratio = seconds[724] / seconds[8]
    print(f"ps:724 / ps:8: {ratio:.2f} (target <= 5)")
    emit("derive --delay ps:724 (20 000 lags) / ps:8", ratio, target="<= 5", met=ratio <= 5)
    emit("derive --delay ps:724: peak memory", memory[724], unit="GB", target="< 4 GB", met=memory[724] < 4)

    lags = np.arange(2001)
    pmf = 0.999 ** lags / np.sum(0.999**lags)
    gamma = 0.995**lags * np.cos(0.05 * lags)
    (dense, fast), (t_dense, t_fft) = best_of_interleaved(args.repeats, lambda: dense_spread(gamma, pmf),
                                                          lambda: delay_spread(gamma, pmf, 1.0))  # fmt: skip
    print(f"delay spread at 2000 lags: dense {1e3 * t_dense:.1f} ms, FFT {1e3 * t_fft:.2f} ms, "
          f"relative difference {abs(fast / dense - 1):.1e}")  # fmt: skip
    emit("delay spread at 2000 lags: dense quadratic form / FFT", t_dense / t_fft,
         note=f"relative difference {abs(fast / dense - 1):.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
