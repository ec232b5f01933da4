"""The heavy-tail factor against the dynamics it models: which part of the dynamics it holds for.

:func:`~amsgd.diffusion.theory.heavy_tails.heavy_tail_factor` is ``E[S/(1 + S)]`` of Gaussian ratios
mixed by ``m = g² ζ_1²/E[g² ζ_1²]`` under Student-t data over the same under Gaussian data, ``g =
(ν − 2)/w``, ``w ~ χ²_ν`` (the tangent modes' *additive* noise ``Y_1 Y_i = g ζ_1 ζ_i sqrt(λ_1 λ_i)``).
Here it is measured, paired, in two dynamics driven by exactly that noise and by Gaussian data's
``sqrt(E g²) ζ_1 ζ_i sqrt(λ_1 λ_i)`` (the same ζ, the same variance), which differ only in the
mixing:

* ``linear``: the tangent modes' additive recursion ``h_i ← h_i + μ (h_i − h_i^−) − η (λ_1 − λ_i) h_i
  + η Y_1 Y_i``, the error ``S/(1 + S)``, ``S = Σ h_i²`` (the model the factor is exact for);
* ``nonlinear``: the algorithm's projected step with the same noise and no multiplicative part,
  ``v ← v + μ (v − v^−) + η (I − v vᵀ)(Σ v + n)``, ``n = (0, Y_1 Y_2, ..)``, the error ``sin²``.

R runs from e_1 (from 0 in the linear recursion) for 80 relaxation times ``(1 − μ)/(η (λ_1 − λ_2))``,
each run's error averaged over the second half; the ratio of the Student-t arm's mean to the Gaussian
arm's with the delta method's 95% interval over the pairs. The prediction is the factor at the
additive recursion's variances ``v_i = G_i E[Y_1² Y_i²]`` (its own model's), the toolkit's factor at
the finite-η variances beside it. Written to ``benchmarks/mixing_factor.json``; about 6 minutes with
the default R = 16384. Usage: ``python benchmarks/mixing_factor.py [--replicates R] [--predict-only]
[--out PATH]``; ``--predict-only`` keeps the stored runs and recomputes the factors.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amsgd import Problem
from amsgd.core.distributions import parse_distribution
from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.heavy_tails import heavy_tail_factor
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.second_moments import finite_eta_floor, gains

OUT = Path(__file__).resolve().parent / "mixing_factor.json"
SPECTRUM = np.array([4.0, 3.0, 2.0, 1.0])
#: (η, μ, ν) of the cases: the misses of floor_accuracy.py at ν = 9 and 10 and their ν = 6 neighbour.
CASES = ((5e-4, 0.95, 6.0), (5e-4, 0.95, 9.0), (5e-4, 0.95, 10.0), (1.5e-3, 0.7, 6.0), (1.5e-3, 0.7, 10.0))
DYNAMICS = ("linear", "nonlinear")
RELAXATIONS = 80
#: Runs advanced together (memory: a few arrays of CHUNK × d doubles per arm).
CHUNK = 8192
SEED = 20181203


@dataclass(frozen=True)
class Paired:
    """Per run, the time-averaged error of the Student-t arm and of the Gaussian arm (the same ζ)."""

    heavy: np.ndarray
    light: np.ndarray

    def ratio(self) -> tuple[float, float]:
        """The ratio of the means and its 95% half-width (delta method over the pairs)."""
        x, y = self.heavy, self.light
        ratio = x.mean() / y.mean()
        return float(ratio), float(1.96 * np.std(x - ratio * y, ddof=1) / (y.mean() * np.sqrt(x.size)))


def steps_for(eta: float, mu: float) -> int:
    return int(RELAXATIONS * (1.0 - mu) / (eta * (SPECTRUM[0] - SPECTRUM[1])))


def simulate(dynamics: str, eta: float, mu: float, nu: float, replicates: int, seed: int) -> Paired:
    """``replicates`` paired runs of ``dynamics`` (module docstring) in chunks of :data:`CHUNK`."""
    rng = np.random.default_rng(seed)
    heavy, light = [], []
    for start in range(0, replicates, CHUNK):
        h, ell = _chunk(dynamics, eta, mu, nu, min(CHUNK, replicates - start), rng)
        heavy.append(h)
        light.append(ell)
    return Paired(np.concatenate(heavy), np.concatenate(light))


def _chunk(dynamics: str, eta: float, mu: float, nu: float, runs: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    d, steps = SPECTRUM.size, steps_for(eta, mu)
    scale = np.sqrt(SPECTRUM * SPECTRUM[0])
    scale[0] = 0.0  # the radial coordinate gets no noise: it is projected out at e_1
    light_scale = np.sqrt((nu - 2.0) / (nu - 4.0))  # sqrt(E g²)
    state = [np.zeros((runs, d)) for _ in range(4)]  # (current, previous) per arm
    if dynamics == "nonlinear":
        for s in state:
            s[:, 0] = 1.0
    sums = [np.zeros(runs), np.zeros(runs)]
    for k in range(steps):
        z = rng.standard_normal((runs, d))
        product = z * z[:, :1] * scale
        g = (nu - 2.0) / rng.chisquare(nu, runs)
        for arm, noise in enumerate((product * g[:, None], product * light_scale)):
            now, before = state[2 * arm], state[2 * arm + 1]
            new = now + mu * (now - before) + eta * _drift(dynamics, now, noise)
            state[2 * arm], state[2 * arm + 1] = new, now
            if k >= steps // 2:
                sums[arm] += _error(dynamics, new)
    count = steps - steps // 2
    return sums[0] / count, sums[1] / count


def _drift(dynamics: str, v: np.ndarray, noise: np.ndarray) -> np.ndarray:
    if dynamics == "linear":
        return -(SPECTRUM[0] - SPECTRUM) * v + noise  # coordinate 0 stays 0
    step = SPECTRUM * v + noise
    return step - v * np.einsum("ij,ij->i", v, step)[:, None]


def _error(dynamics: str, v: np.ndarray) -> np.ndarray:
    if dynamics == "linear":
        s = np.einsum("ij,ij->i", v, v)
        return s / (1.0 + s)
    return 1.0 - v[:, 0] ** 2 / np.einsum("ij,ij->i", v, v)


def predicted(eta: float, mu: float, nu: float) -> dict:
    """The factor at the additive recursion's variances and at the finite-η ones (``predict``'s)."""
    distribution = parse_distribution(f"student-t:{nu:g}")
    problem = Problem.from_spectrum(tuple(SPECTRUM), eta=eta, mu=mu, distribution=distribution)
    c = coefficients_for(problem)
    rates, law = c.rates[c.tangent], delay_law(0)
    additive = gains(rates, eta, mu, law) * SPECTRUM[0] * SPECTRUM[1:] * (nu - 2.0) / (nu - 4.0)
    finite = finite_eta_floor(c, eta, mu, problem.delay).variances
    return {"additive": heavy_tail_factor(distribution, rates, additive, eta, mu, law),
            "finite_eta": heavy_tail_factor(distribution, rates, finite, eta, mu, law)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--predict-only", action="store_true",
                        help="recompute the factors of the cases stored in --out, keeping their runs")
    args = parser.parse_args()
    if args.predict_only:
        record = json.loads(args.out.read_text())
        for row in record["cases"]:
            row["factor"] = predicted(row["eta"], row["mu"], row["nu"])
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        return
    began, rows = time.perf_counter(), []
    for n, (eta, mu, nu) in enumerate(CASES):
        factor = predicted(eta, mu, nu)
        row = {"eta": eta, "mu": mu, "nu": nu, "factor": factor}
        for j, dynamics in enumerate(DYNAMICS):
            runs = simulate(dynamics, eta, mu, nu, args.replicates, SEED + 10 * n + j)
            ratio, half = runs.ratio()
            row[dynamics] = {"ratio": ratio, "half_width": half, "heavy": float(runs.heavy.mean()),
                             "light": float(runs.light.mean())}  # fmt: skip
        rows.append(row)
        print(f"η {eta:g} μ {mu:g} ν {nu:g}: factor {factor['additive']:.4f} (finite-η {factor['finite_eta']:.4f}); "
              + "; ".join(f"{k} {row[k]['ratio']:.4f} ± {row[k]['half_width']:.4f}" for k in DYNAMICS), flush=True)  # fmt: skip
    record = {"seconds": time.perf_counter() - began, "replicates": args.replicates, "cases": rows}
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
