"""Divergence risk: how large a single gradient must be to throw a run off, how likely one step is to
deliver it, and what happens beyond the mean-dynamics boundary.

**Critical impulse.** Near e_1 a sample's gradient is ``g = s (Y − s v) ≈ Y_1 Y_⊥`` (orthogonal to e_1,
of size ``K = |Y_1| ‖Y_⊥‖``). One large gradient displaces v sideways, the norm of v grows, and the
radial restoring rate grows with it (``3 λ_1 ‖v‖² − λ_1`` along e_1, ``2 λ_1`` on the sphere): past some
size the delayed momentum dynamics of the norm is unstable and the run blows up. ``K*`` is the
smallest impulse ``η K e_2`` given at one step to the *noise-free* recursion of the mean map,
``v_{k+1} = v_k + μ (v_k − v_{k−1}) + η ḡ(v_{k−τ})`` started at e_1, after which that recursion blows up
(bisection on a batch of impulses, exact for this deterministic map at the problem's η, μ, τ and
spectrum; a random delay law enters through its mean, an approximation).

**Tail.** A step is dangerous when ``|Y_1| ‖Y_⊥‖ > K*``. Its probability ``p`` follows from the data law:
for Student-t data (``Y = sqrt((ν − 2)/w) Λ^{1/2} z``, ``w ~ χ²_ν``) ``P(K > k) =
E_z[F_{χ²_ν}((ν − 2) sqrt(λ_1 z_1² Σ λ_i z_i²)/k)]``, the χ² tail exact and the Gaussian part averaged
over a fixed set of draws; for Gaussian data ``P(λ_1 z_1² Q > k²)`` with the z_1 tail exact;
Rademacher data have K fixed; a user sampler uses its moment samples. Over N iterations the expected
fraction of runs that blow up is ``1 − exp(−N p)``. The noise between impulses is left out; the
prediction is checked against simulated diverged fractions.

**Beyond the mean-dynamics boundary** (τ > τ*): the same noise-free recursion from a small
perturbation of e_1 either grows without bound (runs blow up) or settles on an oscillation of
bounded amplitude (runs saturate at a high error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from amsgd.core.distributions import Gaussian, Rademacher, SampledDistribution, StudentT
from amsgd.core.estimates import json_float
from amsgd.core.problem import Problem
from amsgd.diffusion.theory.linear_recursion import DelayLaw

#: Gaussian draws averaged over for the tail probability (fixed seed: reproducible numbers).
TAIL_DRAWS = 200_000
TAIL_SEED = 20181204
_TAIL_BLOCK = 4_000_000  # normals drawn at once
#: Iterations of the noise-free recursion, and the norm beyond which it counts as blown up.
FATE_ITERATIONS = 20_000
IMPULSE_ITERATIONS = 4_000
FATE_NORM = 1e3
#: Impulses tried at once, and refinements of the bracket.
IMPULSE_BATCH = 48
IMPULSE_ROUNDS = 4


#: What the fraction leaves out, in words (docs/linear-theory.md section 7 has the measurements).
LOWER_BOUND_NOTE = (
    "the fraction counts runs thrown off by one gradient beyond the critical impulse, not those that several "
    "smaller ones carry off: a lower bound, close at small steps (Student-t 6, eta 5e-4, mu 0.9: 11-13% low) "
    "and far below where eta/(1-mu) is large (Sigma = diag(3, 2, 1), eta 0.01, mu 0.5: 1.5 to 18 times low)"
)


@dataclass(frozen=True)
class DivergenceRisk:
    """The threshold norm, the probability per iteration of a kick beyond it, the expected fraction
    of runs of ``steps`` iterations that blow up, and the fate beyond the mean-dynamics boundary."""

    critical_impulse: float  # K*
    per_iteration: float
    steps: int
    fate: str  # "stable", "mean-square unstable", or beyond the mean boundary "saturates" or "blows up"

    @property
    def fraction(self) -> float:
        if self.fate == "mean-square unstable":
            return float("nan")  # not predicted (see the note)
        if self.fate != "stable":
            return 1.0 if self.fate == "blows up" else 0.0
        return float(-np.expm1(-self.steps * self.per_iteration))

    def to_dict(self) -> dict:
        out = {
            "fraction": json_float(self.fraction),
            "per_iteration": json_float(self.per_iteration),
            "steps": self.steps,
            "critical_impulse": json_float(self.critical_impulse),
            "fate": self.fate,
        }
        if self.fate == "blows up":
            out["note"] = "beyond the stability boundary the noise-free recursion blows up: every run diverges"
        elif self.fate == "mean-square unstable":
            out["note"] = (
                "the mean dynamics is stable but the second moments of the linearisation grow (mean-square "
                "unstable): runs fluctuate ever further from e_1 and may blow up; no fraction is predicted, since "
                "whether single runs blow up depends on the top Lyapunov exponent of the random recursion"
            )
        elif self.fate == "saturates":
            out["note"] = (
                "beyond the stability boundary the noise-free recursion settles on a bounded oscillation: runs "
                "saturate at a high error rather than blow up"
            )
        elif self.per_iteration > 0:
            expected = (f"about {100 * self.fraction:.1f}% of runs of {self.steps} iterations are expected to blow up: "
                        "one large gradient (heavy-tailed data, a large step or a long delay) can throw the delayed "
                        "dynamics past its stability boundary; " if self.fraction > 0.01 else "")  # fmt: skip
            out["note"] = expected + LOWER_BOUND_NOTE
        return out


def _noise_free(lam: np.ndarray, eta: float, mu: float, tau: int, start: np.ndarray, velocity: np.ndarray,
                iterations: int) -> np.ndarray:  # fmt: skip
    """Run the noise-free recursion of the mean map in eigen-coordinates (eigenvalues ``lam``) for a
    batch of starts ``(B, d)`` (history at e_1, then the start, then one extra step ``velocity``);
    returns whether each blew up (norm beyond FATE_NORM): :func:`.noise_free.noise_free_blowups`."""
    from amsgd.diffusion.theory.noise_free import noise_free_blowups  # compiled: imported where first needed

    start = np.ascontiguousarray(start, dtype=float)
    velocity = np.ascontiguousarray(np.broadcast_to(velocity, start.shape), dtype=float)
    lam = np.ascontiguousarray(lam, dtype=float)
    return noise_free_blowups(lam, float(eta), float(mu), int(tau), start, velocity, int(iterations), float(FATE_NORM))


def critical_impulse(problem: Problem, tau: int) -> float:
    """``K*``: the smallest gradient impulse ``η K e_2`` after which the noise-free recursion blows up.

    The mean map acts coordinate-wise in eigen-coordinates (``v_i`` is multiplied by terms in ``λ_i``
    and the scalar ``vᵀΛv``), so a coordinate that starts at zero stays zero: from e_1 kicked along e_2
    the recursion lives in the first two coordinates, and runs there at any d (the same numbers: the
    zeros it leaves out add nothing to ``vᵀΛv`` or the norm).
    """
    plane = np.asarray(problem.eigenvalues, dtype=float)[:2]

    def blows_up(trial: np.ndarray) -> np.ndarray:
        kick = np.zeros((trial.size, 2))
        kick[:, 1] = problem.eta * trial
        e1 = np.broadcast_to(np.eye(2)[0], (trial.size, 2))
        return _noise_free(plane, problem.eta, problem.mu, tau, e1, kick, IMPULSE_ITERATIONS)

    return smallest_blowing_impulse(blows_up, 1e-2, 1e7)


def smallest_blowing_impulse(blows_up: Callable[[np.ndarray], np.ndarray], low: float, high: float) -> float:
    """The smallest impulse in ``[low, high]`` for which ``blows_up`` (whether a noise-free recursion
    kicked by each impulse of a batch blows up) is true: :data:`IMPULSE_BATCH` geometric trials,
    refined :data:`IMPULSE_ROUNDS` times around the first that blows up; ``inf`` when none does, the
    lowest trial when all do."""
    for _ in range(IMPULSE_ROUNDS):
        trial = np.geomspace(low, high, IMPULSE_BATCH)
        blown = blows_up(trial)
        if not blown.any():
            return float("inf")
        first = int(np.argmax(blown))
        if first == 0:
            return float(trial[0])
        low, high = trial[first - 1], trial[first]
    return float(high)


def impulse_probability(problem: Problem, impulse: float) -> float:
    """``P(|Y_1| ‖Y_⊥‖ > K*)`` for one sample of the data law (module docstring)."""
    if not np.isfinite(impulse):
        return 0.0
    t = impulse**2  # on Y_1² ‖Y_⊥‖²
    lam = np.asarray(problem.eigenvalues, dtype=float)
    dist = problem.distribution
    if isinstance(dist, Rademacher):
        return float(lam[0] * lam[1:].sum() > t)
    if isinstance(dist, SampledDistribution):
        y = dist.moment_samples_for(problem.eigenvalues, problem.basis)
        return float(np.mean(y[:, 0] ** 2 * np.sum(y[:, 1:] ** 2, axis=1) > t))
    z_first, q = _gaussian_parts(lam)
    if isinstance(dist, Gaussian):
        return float(np.mean(special.erfc(np.sqrt(t / (2.0 * lam[0] * q)))))
    if isinstance(dist, StudentT):
        w_limit = (dist.nu - 2.0) * np.sqrt(lam[0] * z_first**2 * q / t)
        return float(np.mean(special.chdtr(dist.nu, w_limit)))  # the χ²_ν distribution function
    raise TypeError(f"no tail for distribution {dist.spec}")


def _gaussian_parts(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``z_1`` and ``Σ_{i>1} λ_i z_i²`` of :data:`TAIL_DRAWS` standard normal vectors z (seed
    :data:`TAIL_SEED`), drawn a block of rows at a time: the same numbers as one ``(draws, d)`` array,
    in memory of order ``draws`` rather than ``draws × d``."""
    rng = np.random.default_rng(TAIL_SEED)
    rows = max(1, _TAIL_BLOCK // lam.size)
    z_first, q = np.empty(TAIL_DRAWS), np.empty(TAIL_DRAWS)
    for start in range(0, TAIL_DRAWS, rows):
        z = rng.standard_normal((min(rows, TAIL_DRAWS - start), lam.size))
        z_first[start : start + z.shape[0]] = z[:, 0]
        q[start : start + z.shape[0]] = np.sum(lam[1:] * z[:, 1:] ** 2, axis=1)  # ‖Y_⊥‖² of the Gaussian part
    return z_first, q


def noise_free_fate(problem: Problem, tau: int, stable: bool) -> str:
    """``"stable"`` when the mean dynamics is, else whether the noise-free recursion of the mean map from
    ``e_1 + 10⁻³`` (in every coordinate) blows up or stays bounded."""
    if stable:
        return "stable"
    start = (np.full(problem.dim, 1e-3) + np.eye(problem.dim)[0])[None, :]
    blown = _noise_free(problem.eigenvalues, problem.eta, problem.mu, tau, start, np.zeros_like(start), FATE_ITERATIONS)
    return "blows up" if blown[0] else "saturates"


def divergence_risk(problem: Problem, law: DelayLaw, steps: int, mean_stable: bool,
                    mean_square_stable: bool = True) -> DivergenceRisk:  # fmt: skip
    """The divergence risk of runs of ``steps`` iterations at the problem's η, μ and delay law: beyond
    the mean boundary the noise-free recursion's fate; between the mean and the mean-square boundaries
    none (``"mean-square unstable"``); inside both, the chance of one kick beyond ``K*``."""
    tau = law.constant if law.constant is not None else int(round(law.mean))
    fate = noise_free_fate(problem, tau, mean_stable)
    if fate != "stable":
        return DivergenceRisk(0.0, float("nan"), int(steps), fate)
    if not mean_square_stable:
        return DivergenceRisk(float("nan"), float("nan"), int(steps), "mean-square unstable")
    impulse = critical_impulse(problem, tau)
    return DivergenceRisk(impulse, impulse_probability(problem, impulse), int(steps), fate)
