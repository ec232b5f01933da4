"""Divergence risk of a model's runs: the kick that throws a run off, how likely a minibatch is to
deliver it, and what happens where the theory calls the cell unstable.

The streaming-PCA counterpart is :mod:`.divergence`; here the dynamics is that of any model near its
minimum x*, reduced to the direction that loses stability first.

**The stiffest line.** The stiffest Hessian mode ``q_1`` (eigenvalue λ_1) is the first to lose mean
stability as η, μ or τ grow. Along the line ``x* + t q_1`` the objective is ``φ(t) = L(x* + t q_1)``,
and the noise-free recursion restricted to it,

    t_{k+1} = t_k + μ (t_k − t_{k−1}) − η φ'(t_{k−τ}),

is the mean dynamics of that mode: near x* ``φ'(t) ≈ λ_1 t`` (the linear theory), far out it grows
as the model's gradient does: linearly for least squares, at most like the ridge term ``l2 · t`` for
a classifier (the data part of a classifier's gradient is bounded). ``φ'`` is tabulated on a grid
geometric in ``|t|`` (:data:`LINE_POINTS` per side, from :data:`LINE_MIN` to :data:`BLOW_UP`) and
interpolated linearly; a run *blows up* when ``|t|`` leaves :data:`BLOW_UP`, the norm at which
``amsgd simulate`` declares a replicate diverged. A random delay enters through its mean, rounded.
The reduction to one line is an approximation: it leaves out how a far excursion along q_1 bends
the other modes.

**Critical impulse.** ``K*`` is the smallest impulse ``η K q_1``, given at one step to the line
recursion at rest at x*, after which it blows up (bisection over a geometric batch of impulses, as in
:mod:`.divergence`). An impulse that lands beyond :data:`BLOW_UP` blows up at once, so ``K*`` is at
most ``BLOW_UP / η``.

**Tail.** One step's kick along q_1 is ``η (ū_B − ū)``, ``u_n = q_1ᵀ ∇ℓ_n(x*)`` the directional
derivative of example n's loss, ``ū_B`` its mean over a minibatch of B examples drawn with
replacement and ``ū`` over the training set. ``p = P(|ū_B − ū| > K*)``: exactly 0 when K* exceeds
the largest ``|u_n − ū|`` (no mean of B examples goes further), a count over the training set for
B = 1, and otherwise the fraction of :data:`TAIL_DRAWS` minibatches drawn with a fixed seed. Over N
iterations the expected fraction of runs that blow up is ``1 − exp(−N p)`` (the noise between kicks
left out, as for streaming PCA).

**Where the theory calls the cell unstable.** Beyond the mean-dynamics boundary (the stiffest mode's
mean radius at or above 1) the line recursion from ``t = 10⁻³ λ_1^{-1/2}`` decides the fate: it
blows up (every run diverges) or settles on a bounded oscillation (runs *saturate* at a high loss:
the classifiers' bounded gradients do this). Between the mean-square and the mean boundary the mean
dynamics is stable but the second moments grow through the multiplicative noise of the per-example
Hessians: the fate is ``"mean-square unstable"`` and the fraction is not predicted (whether single
runs blow up there is decided by the top Lyapunov exponent of the random recursion, which this
theory does not give).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import DelayLaw, spectral_radius

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem
    from amsgd.diffusion.theory.model_point import ModelPoint

#: ``|t|`` (and ``‖x‖``) beyond which a run counts as blown up (``amsgd simulate``'s divergence norm).
BLOW_UP = 1e6
#: Smallest ``|t|`` of the tabulated line, relative to the curvature length ``λ_1^{-1/2}``.
LINE_MIN = 1e-8
#: Tabulated points of ``φ'`` on each side of x*.
LINE_POINTS = 600
#: Iterations of the line recursion after an impulse, and beyond the mean boundary.
IMPULSE_ITERATIONS = 4_000
FATE_ITERATIONS = 20_000
#: Impulses tried at once, and refinements of the bracket.
IMPULSE_BATCH = 48
IMPULSE_ROUNDS = 4
#: Minibatches drawn for the tail probability when B > 1 (fixed seed: reproducible numbers).
TAIL_DRAWS = 200_000
TAIL_SEED = 20181204

FATES = ("stable", "mean-square unstable", "saturates", "blows up")


@dataclass(frozen=True)
class ModelDivergenceRisk:
    """``K*`` along the stiffest mode, the probability per iteration of a kick beyond it, the expected
    fraction of runs of ``steps`` iterations that blow up, and the fate (:data:`FATES`)."""

    critical_impulse: float
    per_iteration: float
    steps: int
    fate: str

    @property
    def fraction(self) -> float | None:
        """The expected fraction of runs that blow up; None where it is not predicted."""
        if self.fate == "stable":
            return float(-np.expm1(-self.steps * self.per_iteration))
        if self.fate == "mean-square unstable":
            return None
        return 1.0 if self.fate == "blows up" else 0.0

    def to_dict(self) -> dict:
        fraction = self.fraction
        out = {"fraction": None if fraction is None else json_float(fraction),
               "per_iteration": json_float(self.per_iteration), "steps": self.steps,
               "critical_impulse": json_float(self.critical_impulse), "fate": self.fate,
               "direction": "the stiffest Hessian mode"}  # fmt: skip
        out["note"] = {
            "stable": (f"about {100 * fraction:.3g}% of runs of {self.steps} iterations are expected to blow up"
                       if fraction is not None and fraction > 0.01 else
                       f"no more than 1% of runs of {self.steps} iterations are expected to blow up"),
            "mean-square unstable": (
                "the mean dynamics is stable but the second moments grow (the multiplicative noise of the "
                "per-example Hessians): the loss spreads without bound over runs; whether single runs blow "
                "up is not predicted"),
            "saturates": ("beyond the stability boundary the noise-free dynamics along the stiffest mode "
                          "settles on a bounded oscillation: runs saturate at a high loss rather than blow up"),
            "blows up": ("beyond the stability boundary the noise-free dynamics along the stiffest mode blows "
                         "up: every run diverges"),
        }[self.fate]  # fmt: skip
        return out


@dataclass(frozen=True)
class StiffestLine:
    """``φ'(t)`` tabulated along ``x* + t q_1`` and the per-example directional derivatives ``u_n``."""

    t: np.ndarray
    slope: np.ndarray
    directional: np.ndarray

    def derivative(self, t: np.ndarray) -> np.ndarray:
        """``φ'(t)`` by linear interpolation of the table (``|t| <= BLOW_UP``)."""
        return np.interp(t, self.t, self.slope)


def stiffest_line(problem: ModelProblem, point: ModelPoint) -> StiffestLine:
    """Tabulate ``φ'(t) = q_1ᵀ ∇L(x* + t q_1)`` (module docstring) and ``u_n = q_1ᵀ ∇ℓ_n(x*)``."""
    import jax
    import jax.numpy as jnp

    from amsgd.simulate.models import model_functions

    length = 1.0 / np.sqrt(max(float(point.eigenvalues[0]), np.finfo(float).tiny))
    side = np.geomspace(LINE_MIN * length, BLOW_UP, LINE_POINTS)
    t = np.r_[-side[::-1], 0.0, side]
    with jax.enable_x64(True):
        f = model_functions(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        x, q = jnp.asarray(point.x), jnp.asarray(point.vectors[:, 0])

        def slope(s):
            return jax.jvp(lambda w: f.objective(w, z, y), (x + s * q,), (q,))[1]

        table = jax.jit(jax.vmap(slope))
        values = np.concatenate([np.asarray(table(jnp.asarray(chunk))) for chunk in np.array_split(t, 16)])
        directional = np.asarray(jax.jvp(lambda w: f.sample_losses(w, z, y), (x,), (q,))[1])
    return StiffestLine(t, values, directional)


def _blows_up(line: StiffestLine, eta: float, mu: float, tau: int, kick: np.ndarray, iterations: int) -> np.ndarray:
    """Run the line recursion for a batch of starts at rest at x* kicked by ``kick`` (a displacement
    ``η K``) at the first step; whether each left ``BLOW_UP``."""
    ring = [np.zeros_like(kick) for _ in range(tau + 1)] + [kick.copy()]
    blown = ~(np.abs(kick) < BLOW_UP)
    with np.errstate(all="ignore"):
        for _ in range(iterations):
            cur, prev, stale = ring[-1], ring[-2], ring[-1 - tau]
            new = cur + mu * (cur - prev) - eta * line.derivative(np.clip(stale, -BLOW_UP, BLOW_UP))
            blown |= ~(np.abs(new) < BLOW_UP)
            new[blown] = 0.0  # frozen at x*: a fixed point
            ring.append(new)
            ring.pop(0)
    return blown


def critical_impulse(line: StiffestLine, eta: float, mu: float, tau: int) -> float:
    """``K*``: the smallest impulse ``η K q_1`` after which the line recursion blows up."""
    low, high = 1e-12 * BLOW_UP / eta, BLOW_UP / eta
    for _ in range(IMPULSE_ROUNDS):
        trial = np.geomspace(low, high, IMPULSE_BATCH)
        blown = _blows_up(line, eta, mu, tau, eta * trial, IMPULSE_ITERATIONS)
        first = int(np.argmax(blown))  # the largest trial lands beyond BLOW_UP: one always blows up
        if first == 0:
            return float(trial[0])
        low, high = trial[first - 1], trial[first]
    return float(high)


def kick_probability(line: StiffestLine, batch: int, impulse: float) -> float:
    """``P(|ū_B − ū| > K*)`` for one step's minibatch of ``batch`` examples (module docstring)."""
    deviation = line.directional - line.directional.mean()
    if impulse >= np.max(np.abs(deviation)):
        return 0.0
    if batch == 1:
        return float(np.mean(np.abs(deviation) > impulse))
    rng = np.random.default_rng(TAIL_SEED)
    means = np.empty(TAIL_DRAWS)
    block = max(1, 4_000_000 // batch)
    for start in range(0, TAIL_DRAWS, block):
        n = min(block, TAIL_DRAWS - start)
        means[start : start + n] = deviation[rng.integers(0, deviation.size, size=(n, batch))].mean(axis=1)
    return float(np.mean(np.abs(means) > impulse))


def line_fate(line: StiffestLine, eta: float, mu: float, tau: int, lam: float) -> str:
    """Beyond the mean boundary: whether the line recursion from a small displacement blows up."""
    start = np.array([1e-3 / np.sqrt(max(lam, np.finfo(float).tiny))])
    return "blows up" if _blows_up(line, eta, mu, tau, start, FATE_ITERATIONS)[0] else "saturates"


def model_divergence_risk(problem: ModelProblem, point: ModelPoint, law: DelayLaw, steps: int,
                          mean_square_stable: bool) -> ModelDivergenceRisk:  # fmt: skip
    """The divergence risk of runs of ``steps`` iterations at the problem's η, μ and delay law, given
    the theory's mean-square verdict (the full second moments' where they apply)."""
    eta, mu = problem.eta, problem.mu
    lam = float(point.eigenvalues[0])
    tau = law.constant if law.constant is not None else int(round(law.mean))
    line = stiffest_line(problem, point)
    if spectral_radius(lam, eta, mu, law) >= 1.0:
        return ModelDivergenceRisk(float("nan"), float("nan"), int(steps), line_fate(line, eta, mu, tau, lam))
    if not mean_square_stable:
        return ModelDivergenceRisk(float("nan"), float("nan"), int(steps), "mean-square unstable")
    impulse = critical_impulse(line, eta, mu, tau)
    return ModelDivergenceRisk(impulse, kick_probability(line, problem.batch, impulse), int(steps), "stable")
