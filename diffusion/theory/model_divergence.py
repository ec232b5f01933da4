"""Divergence risk of a model's runs: the kick that throws a run off, how likely a minibatch is to
deliver it, and what happens where the theory calls the cell unstable.

The streaming-PCA counterpart is :mod:`.divergence`; here the dynamics is that of any model near its
minimum x*, reduced to the direction that loses stability first.

**The stiffest line.** The stiffest Hessian mode ``q_1`` (eigenvalue λ_1) is the first to lose mean
stability as η, μ or τ grow. Along the line ``x* + t q_1`` the objective is ``φ(t) = L(x* + t q_1)``,
and the noise-free recursion restricted to it, with the delay law ``p_j = P(τ = j)`` entering as the
expected force,

    t_{k+1} = t_k + μ (t_k − t_{k−1}) − η Σ_j p_j φ'(t_{k−j}),

is the mean dynamics of that mode: near x* ``φ'(t) ≈ λ_1 t`` and its linearisation has the taps of
:func:`.linear_recursion.ar_coefficients`, so it is mean-stable exactly when the mode is; far out it
grows as the model's gradient does (linearly for least squares and a ReLU network; for logistic
regression and a tanh network the data part is bounded and only the ridge term ``l2 · t`` grows).
``φ'`` is tabulated on a grid geometric in ``|t|`` (:data:`LINE_POINTS` per side, from
:data:`LINE_MIN` to the divergence length) and interpolated linearly; a run *blows up* when ``|t|``
leaves the divergence length, :data:`BLOW_UP` times the targets' standard deviation for least squares
(1 for classifiers): the radius of the ball outside which ``amsgd simulate`` declares a replicate
diverged (:func:`~amsgd.simulate.models.divergence_ball`). The reduction to
one line is an approximation: it leaves out how a far excursion along q_1 bends the other modes.

**Critical impulse.** ``K*`` is the smallest impulse ``η K q_1`` (either sign; the two thresholds
differ where φ' is not odd), given at one step to the line recursion at rest at x*, after which it
blows up (bisection over a geometric batch of impulses, as in :mod:`.divergence`). Impulses are
searched up to a displacement of :data:`KICK_FRACTION` of the divergence length: a kick that lands
near the divergence norm blows up by its momentum overshoot alone, whatever the model, so ``K*`` is
``inf`` (JSON null) when the line returns from every kick up to that size (a linear line always does).

**Tail.** One step's displacement along q_1 is ``−η (ū_B − ū)``, ``u_n = q_1ᵀ ∇ℓ_n(x*)`` the
directional derivative of example n's loss, ``ū_B`` its mean over a minibatch of B examples drawn with
replacement and ``ū`` over the training set. ``p = P(ū − ū_B > K*_+) + P(ū_B − ū > K*_−)``: exactly 0
when both thresholds exceed the largest ``|u_n − ū|`` (no mean of B examples goes further), a count
over the training set for B = 1, and otherwise the fraction of :data:`TAIL_DRAWS` minibatches drawn
with a fixed seed, with the Clopper–Pearson 95% interval of that count (no minibatch beyond the
thresholds still allows p up to about 3.7/TAIL_DRAWS). Over N iterations the expected fraction of runs
that blow up is ``1 − exp(−N p)`` (the noise between kicks left out, as for streaming PCA), its interval
that of p carried through; the note says "no more than 1%" only where the interval's upper end is.

**Where the theory calls the cell unstable.** Beyond the mean-dynamics boundary (the stiffest mode's
mean radius ρ at or above 1) the line recursion from ``t = 10⁻³ λ_1^{-1/2}`` decides the fate, run
long enough for the linear growth ρ^k to carry it to the norm twice over (at most
:data:`FATE_MAX_ITERATIONS`): it blows up (every run diverges) or settles on a bounded oscillation
(runs *saturate* at a high loss: the bounded gradients of logistic regression and a tanh network do
this). Between the mean-square and the mean boundary the mean dynamics is stable but the second
moments grow through the multiplicative noise of the per-example Hessians: the fate is
``"mean-square unstable"``. Whether single runs blow up there is decided by the top Lyapunov exponent
γ of the random recursion (:mod:`.random_growth`). For least squares, whose recursion is exactly
linear, with its whole spectrum and at most :data:`~.full_moments.FULL_MOMENTS_MAX` parameters, γ is
estimated and the fraction of runs of N iterations that reach the divergence length is
:func:`.random_growth.blow_up_fraction` from the noise scale ``r_0 = (Σ_i G_i s_i)^{1/2}`` (the
stationary spread the additive noise alone would give through the modes' mean recursions), with the
norm's tail exponent κ where runs return, and again at the ends of γ's 95% interval; elsewhere the
fraction is not predicted (the quadratic approximation's exponent does not decide the far dynamics of
a classifier).
Without a positive curvature at the point there is no local dynamics to speak of: ``"not predicted"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from amsgd.core.estimates import json_float, proportion_interval
from amsgd.diffusion.theory.divergence import (
    FATE_ITERATIONS,
    IMPULSE_ITERATIONS,
    TAIL_SEED,
    smallest_blowing_impulse,
)
from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX, Statistics, curved_statistics
from amsgd.diffusion.theory.linear_recursion import DelayLaw, ar_coefficients, spectral_radius
from amsgd.diffusion.theory.random_growth import Growth, blow_up_fraction, growth_exponent

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem
    from amsgd.diffusion.theory.model_point import ModelPoint

#: ``|t|`` beyond which a run counts as blown up, in the targets' standard deviation for least squares
#: (``amsgd simulate``'s divergence norm).
BLOW_UP = 1e6
#: The largest displacement ``η K`` of the impulses searched, as a fraction of the divergence length.
KICK_FRACTION = 1e-3
#: Smallest ``|t|`` of the tabulated line, relative to the curvature length ``λ_1^{-1/2}``.
LINE_MIN = 1e-8
#: Tabulated points of ``φ'`` on each side of x*.
LINE_POINTS = 600
#: Vectorised evaluations the line is tabulated in (each point evaluates the objective over the whole data).
LINE_CHUNKS = 16
#: The most iterations of the line recursion beyond the mean boundary (the fewest, and those after an
#: impulse, are streaming PCA's: :data:`.divergence.FATE_ITERATIONS`, :data:`.divergence.IMPULSE_ITERATIONS`).
FATE_MAX_ITERATIONS = 200_000
#: Minibatches drawn for the tail probability when B > 1 (fixed seed: reproducible numbers).
TAIL_DRAWS = 200_000

FATES = ("stable", "mean-square unstable", "saturates", "blows up", "not predicted")
_NOTES = {
    "mean-square unstable": (
        "the mean dynamics is stable but the second moments grow (the multiplicative noise of the per-example "
        "Hessians): the loss spreads without bound over runs; whether single runs blow up is predicted for "
        f"least squares only, with its whole spectrum and at most {FULL_MOMENTS_MAX} parameters"),
    "saturates": ("beyond the stability boundary the noise-free dynamics along the stiffest mode settles on a "
                  "bounded oscillation: runs saturate at a high loss rather than blow up"),
    "blows up": ("beyond the stability boundary the noise-free dynamics along the stiffest mode blows up: every "
                 "run diverges"),
    "not predicted": "the point has no positive curvature: no local dynamics to predict from",
}  # fmt: skip


@dataclass(frozen=True)
class ModelDivergenceRisk:
    """``K*`` along the stiffest mode (the smaller of the two signs), the probability per iteration of
    a kick beyond it, the expected fraction of runs of ``steps`` iterations that blow up, the fate
    (:data:`FATES`) and the theory whose mean-square verdict was used."""

    critical_impulse: float
    per_iteration: float
    steps: int
    fate: str
    mean_square_theory: str
    kick_max: float = KICK_FRACTION * BLOW_UP  # the largest kick searched (parameter units)
    growth: Growth | None = None  # the random recursion's top exponent, between the two boundaries
    growth_fraction: float | None = None  # the fraction of runs it carries to the divergence length
    growth_interval: tuple[float, float] | None = None  # the fraction at γ ∓ 1.96 standard errors
    per_iteration_interval: tuple[float, float] | None = None  # the kick probability's 95% interval (stable)

    @property
    def fraction(self) -> float | None:
        """The expected fraction of runs that blow up; None where it is not predicted."""
        if self.fate == "stable":
            return float(-np.expm1(-self.steps * self.per_iteration))
        if self.fate == "mean-square unstable":
            return self.growth_fraction
        if self.fate == "not predicted":
            return None
        return 1.0 if self.fate == "blows up" else 0.0

    @property
    def interval(self) -> tuple[float, float] | None:
        """The fraction's 95% interval: from the kick probability's where it is stable, from the top
        exponent's between the two boundaries; None elsewhere."""
        if self.fate == "stable" and self.per_iteration_interval is not None:
            low, high = self.per_iteration_interval
            return float(-np.expm1(-self.steps * low)), float(-np.expm1(-self.steps * high))
        return self.growth_interval

    def to_dict(self) -> dict:
        fraction, interval = self.fraction, self.interval
        if self.fate == "mean-square unstable" and self.growth is not None:
            note = _growth_note(self.growth, fraction, self.growth_interval, self.steps)
        elif self.fate != "stable":
            note = _NOTES[self.fate]
        elif fraction is not None and fraction > 0.01:
            note = f"about {100 * fraction:.3g}% of runs of {self.steps} iterations are expected to blow up"
        elif interval is not None and interval[1] > 0.01:
            note = (f"up to {100 * interval[1]:.3g}% of runs of {self.steps} iterations may blow up (the upper end "
                    f"of the 95% interval of the chance per iteration of a kick beyond K*, counted over {TAIL_DRAWS} "
                    f"minibatches; the count itself gives {100 * fraction:.3g}%)")  # fmt: skip
        else:
            note = f"no more than 1% of runs of {self.steps} iterations are expected to blow up"
            if math.isinf(self.critical_impulse):
                note += (f" (the noise-free dynamics along the stiffest mode returns from every kick of up to "
                         f"{self.kick_max:g} in the parameters)")  # fmt: skip
        interval = None if interval is None else [json_float(x) for x in interval]
        return {"fraction": None if fraction is None else json_float(fraction), "interval": interval,
                "per_iteration": json_float(self.per_iteration), "steps": self.steps,
                "critical_impulse": json_float(self.critical_impulse), "fate": self.fate,
                "direction": "the stiffest Hessian mode", "mean_square_theory": self.mean_square_theory,
                "growth": None if self.growth is None else self.growth.to_dict(), "note": note}  # fmt: skip


def _growth_note(growth: Growth, fraction: float, interval: tuple[float, float], steps: int) -> str:
    """The words for a least-squares cell between the two boundaries, given its top exponent."""
    trend = "grow"
    if growth.exponent <= 0:
        tail = growth.tail_exponent
        unsure = "" if growth.tail_converged else ", the last estimate of a root search that did not converge"
        trend = (f"return, with a heavy-tailed law (P(‖x − x*‖ > r) falling as r^-{tail:.3g}{unsure}),"
                 if math.isfinite(tail) else "return")  # fmt: skip
    return (f"the mean dynamics is stable but the second moments grow (the multiplicative noise of the per-example "
            f"Hessians); single runs {trend} at the rate {growth.exponent:.3g} ± {1.96 * growth.standard_error:.2g} "
            f"per iteration (the top Lyapunov exponent of the random recursion): about {100 * fraction:.3g}% of runs "
            f"of {steps} iterations are expected to blow up ({100 * interval[0]:.3g}% to {100 * interval[1]:.3g}% "
            f"over the rate's 95% interval)")  # fmt: skip


@dataclass(frozen=True)
class StiffestLine:
    """``φ'(t)`` tabulated along ``x* + t q_1``, the per-example directional derivatives ``u_n`` and
    the divergence length ``blow_up`` (module docstring)."""

    t: np.ndarray
    slope: np.ndarray
    directional: np.ndarray
    blow_up: float = BLOW_UP

    @property
    def kick_max(self) -> float:
        """The largest displacement ``η K`` of the impulses searched."""
        return KICK_FRACTION * self.blow_up

    def derivative(self, t: np.ndarray) -> np.ndarray:
        """``φ'(t)`` by linear interpolation of the table (``|t| <= blow_up``)."""
        return np.interp(t, self.t, self.slope)


def stiffest_line(problem: ModelProblem, point: ModelPoint) -> StiffestLine:
    """Tabulate ``φ'(t) = q_1ᵀ ∇L(x* + t q_1)`` (module docstring) and ``u_n = q_1ᵀ ∇ℓ_n(x*)``;
    the point's top eigenvalue must be positive."""
    import jax
    import jax.numpy as jnp

    from amsgd.diffusion.theory.model_point import padded_chunks
    from amsgd.simulate.models import model_derivatives, model_functions

    blow_up = BLOW_UP * problem.data.target_scale
    side = np.geomspace(LINE_MIN / math.sqrt(float(point.eigenvalues[0])), blow_up, LINE_POINTS)
    t = np.r_[-side[::-1], 0.0, side]
    with jax.enable_x64(True):
        f, d = model_functions(problem), model_derivatives(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        x, q = jnp.asarray(point.x), jnp.asarray(point.vectors[:, 0])
        values = np.concatenate([np.asarray(d.line_slopes(x, q, jnp.asarray(t[rows]), z, y))[:n]
                                 for rows, n in padded_chunks(t.size, -(-t.size // LINE_CHUNKS))])  # fmt: skip
        directional = np.asarray(jax.jvp(lambda w: f.sample_losses(w, z, y), (x,), (q,))[1])
    return StiffestLine(t, values, directional, blow_up)


def _blows_up(line: StiffestLine, eta: float, mu: float, pmf: np.ndarray, kick: np.ndarray,
              iterations: int) -> np.ndarray:  # fmt: skip
    """Run the line recursion (module docstring) for a batch of starts at rest at x*, displaced by
    ``kick`` (``η K``, either sign) at the first step; whether each left the divergence length."""
    lags, far = pmf.size, line.blow_up
    # a ring of forces: column (k mod lags) holds φ'(t_k); the history at x* (φ'(0) ≈ 0). The weight of
    # column i at step k is pmf[(k − i) mod lags]: the law's weights rotated, not the forces moved.
    forces = np.empty((kick.size, lags))
    forces[:, :] = line.derivative(np.zeros(1))
    weights = np.roll(pmf[::-1], 1)  # weights[i] = pmf[(−i) mod lags], rotated by k below
    cur, prev = kick.astype(float), np.zeros(kick.size)
    forces[:, 0] = line.derivative(np.clip(cur, -far, far))
    blown = ~(np.abs(cur) < far)
    with np.errstate(all="ignore"):
        for k in range(iterations):
            new = cur + mu * (cur - prev) - eta * (forces @ np.roll(weights, k % lags))
            blown |= ~(np.abs(new) < far)
            new[blown] = 0.0  # frozen at x*: a fixed point
            prev, cur = cur, new
            forces[:, (k + 1) % lags] = line.derivative(np.clip(cur, -far, far))
    return blown


def critical_impulses(line: StiffestLine, eta: float, mu: float, pmf: np.ndarray) -> tuple[float, float]:
    """``(K*_+, K*_−)``: the smallest impulses ``η K`` in the direction ``+q_1`` and ``−q_1`` after
    which the line recursion blows up (``inf`` when none up to ``line.kick_max``)."""

    def search(sign: float) -> float:
        def blows_up(trial: np.ndarray) -> np.ndarray:
            return _blows_up(line, eta, mu, pmf, sign * eta * trial, IMPULSE_ITERATIONS)

        return smallest_blowing_impulse(blows_up, 1e-12 * line.kick_max / eta, line.kick_max / eta)

    return search(1.0), search(-1.0)


class KickTail(NamedTuple):
    """``P(|kick| beyond K*)`` per iteration and its 95% interval: exact (the interval a point) for one
    example a step, whose law is the data's; otherwise counted over :data:`TAIL_DRAWS` minibatches, with
    the Clopper–Pearson interval of that count (no draw beyond K* is a probability up to 3.7/TAIL_DRAWS)."""

    p: float
    low: float
    high: float


def kick_probability(line: StiffestLine, batch: int, positive: float, negative: float | None = None) -> KickTail:
    """``P(ū − ū_B > K*_+) + P(ū_B − ū > K*_−)`` for one step's minibatch of ``batch`` examples (module
    docstring) with its interval (:class:`KickTail`); ``negative`` defaults to ``positive`` (a symmetric
    threshold)."""
    negative = positive if negative is None else negative
    deviation = line.directional - line.directional.mean()
    if positive >= np.max(-deviation) and negative >= np.max(deviation):
        return KickTail(0.0, 0.0, 0.0)  # no mean of examples goes beyond the largest one
    if batch == 1:
        p = float(np.mean(-deviation > positive) + np.mean(deviation > negative))
        return KickTail(p, p, p)
    rng = np.random.default_rng(TAIL_SEED)
    means = np.empty(TAIL_DRAWS)
    block = max(1, 4_000_000 // batch)
    for start in range(0, TAIL_DRAWS, block):
        n = min(block, TAIL_DRAWS - start)
        means[start : start + n] = deviation[rng.integers(0, deviation.size, size=(n, batch))].mean(axis=1)
    count = proportion_interval(int(np.sum(-means > positive) + np.sum(means > negative)), TAIL_DRAWS)
    return KickTail(count.mean, count.ci_low, count.ci_high)


def line_fate(line: StiffestLine, eta: float, mu: float, law: DelayLaw, lam: float) -> str:
    """Beyond the mean boundary: whether the line recursion from a small displacement blows up within
    the iterations its linear growth needs to reach the norm twice over (module docstring)."""
    start = 1e-3 / math.sqrt(lam)
    growth = math.log(spectral_radius(lam, eta, mu, law))
    reach = 2 * math.log(line.blow_up / start) / growth if growth > 0 else math.inf
    iterations = math.ceil(min(FATE_MAX_ITERATIONS, max(FATE_ITERATIONS, reach)))  # no growth: the longest run
    return "blows up" if _blows_up(line, eta, mu, law.pmf, np.array([start]), iterations)[0] else "saturates"


def model_divergence_risk(problem: ModelProblem, point: ModelPoint, law: DelayLaw, steps: int,
                          mean_square_stable: bool, mean_square_theory: str,
                          statistics: Callable[[], Statistics] | None = None) -> ModelDivergenceRisk:  # fmt: skip
    """The divergence risk of runs of ``steps`` iterations at the problem's η, μ and delay law, given
    the theory's mean-square verdict and its name (the full second moments' where they apply);
    ``statistics`` returns :func:`.full_moments.curved_statistics` when they are at hand (asked for
    only between the two boundaries)."""
    eta, mu = problem.eta, problem.mu
    lam = float(point.eigenvalues[0])
    nan = float("nan")
    if not lam > 0:
        return ModelDivergenceRisk(nan, nan, int(steps), "not predicted", mean_square_theory)
    if spectral_radius(lam, eta, mu, law) >= 1.0:
        fate = line_fate(stiffest_line(problem, point), eta, mu, law, lam)
        return ModelDivergenceRisk(nan, nan, int(steps), fate, mean_square_theory)
    if not mean_square_stable:
        growth, fraction, interval = between_boundaries(problem, point, law, int(steps), statistics)
        return ModelDivergenceRisk(nan, nan, int(steps), "mean-square unstable", mean_square_theory, growth=growth,
                                   growth_fraction=fraction, growth_interval=interval)  # fmt: skip
    line = stiffest_line(problem, point)
    positive, negative = critical_impulses(line, eta, mu, law.pmf)
    tail = kick_probability(line, problem.batch, positive, negative)
    return ModelDivergenceRisk(min(positive, negative), tail.p, int(steps), "stable", mean_square_theory, line.kick_max,
                               per_iteration_interval=(tail.low, tail.high))  # fmt: skip


def between_boundaries(problem: ModelProblem, point: ModelPoint, law: DelayLaw, steps: int,
                       statistics: Callable[[], Statistics] | None = None,
                       ) -> tuple[Growth | None, float | None, tuple[float, float] | None]:  # fmt: skip
    """Least squares between the mean-square and the mean boundary: the top exponent of its random
    recursion, the fraction of runs of ``steps`` iterations that reach the divergence length (module
    docstring) and that fraction at the ends of the exponent's 95% interval (the walk's variance held);
    ``(None, None, None)`` for other models, an incomplete spectrum or more than
    :data:`~.full_moments.FULL_MOMENTS_MAX` parameters. ``statistics`` as for :func:`model_divergence_risk`."""
    if problem.model != "least-squares" or not point.full or point.x.size > FULL_MOMENTS_MAX:
        return None, None, None
    lam = point.eigenvalues[~point.flat()]
    hessians, _ = curved_statistics(problem, point) if statistics is None else statistics()
    shared = np.diag(lam) - hessians.mean(axis=0)  # what every minibatch's Hessian has beside its examples': the ridge
    growth = growth_exponent(shared, hessians, problem.eta, problem.mu, law, problem.batch)
    level = divergence_distance(problem, point, law)
    low, mid, high = (blow_up_fraction(growth.exponent + z * growth.standard_error, growth.walk_variance, level, steps)
                      for z in (-1.96, 0.0, 1.96))  # fmt: skip
    return growth, mid, (low, high)


def divergence_distance(problem: ModelProblem, point: ModelPoint, law: DelayLaw) -> float:
    """``log(D/r_0)``: how far, in the log of ``‖x − x*‖``, the divergence length D lies above the spread
    ``r_0 = (Σ_i G_i s_i)^{1/2}`` the additive noise alone keeps over the curved modes (module docstring),
    ``G_i = η² γ_i(0)`` the stationary variance per unit noise of mode i's mean recursion: a random
    delay's spread, which multiplies the state as the Hessians' noise does, belongs to the exponent,
    and the gains that include it grow without bound before the mean boundary."""
    from amsgd.diffusion.theory.lyapunov import step_down_variance

    modes = np.flatnonzero(~point.flat())
    rows = np.array([ar_coefficients(rate, problem.eta, problem.mu, law) for rate in point.eigenvalues[modes]])
    spread = float(problem.eta**2 * step_down_variance(rows) @ point.additive[modes])  # inf where one is unstable
    # without additive noise (every example's gradient zero at x*) the rounding of the iterate seeds the growth
    floor = np.finfo(float).eps * max(float(np.linalg.norm(point.x)), problem.data.target_scale)
    scale = max(math.sqrt(spread), floor) if math.isfinite(spread) else floor
    return math.log(BLOW_UP * problem.data.target_scale / scale)
