"""Predictions for any model from the random-coefficient theory at its minimum (docs/theory.md, the random-coefficient linearisation).

With the modes of :mod:`.model_point` (rates ``λ_i``, additive noise ``s_i``, coupling ``C`` among the
coupled modes), every mode follows the delayed momentum recursion of :mod:`.linear_recursion`, so:

* **mean stability** of mode i at a constant delay τ holds iff ``τ < τ_c(η λ_i, μ)``; the stiffest
  mode sets the largest stable delay ``τ*`` and the largest number of round-robin workers ``τ* + 1``;
* **mean-square stability** and the coupled modes' stationary variances come from
  :func:`.second_moments.stationary_variances` with the coupling (the variances of the entries of the
  per-example Hessian; their cross-covariances are left out, as for PCA); the other modes get
  additive noise only, ``v_i = G_i s_i``;
* the **loss floor**, the stationary excess loss ``E L(x) − L(x*) ≈ ½ Σ_i λ_i v_i`` over the curved
  modes (flat modes carry no loss);
* the **rate** of the loss near x*: ``−log ρ`` per iteration of the slowest *ranking* mode (the top
  modes and the flattest mode a budget of ``options.steps`` iterations resolves, see
  :meth:`ModelPredictions.ranking`); the best momentum for that budget is the stable μ with the
  fastest such rate. The relaxation time of the slowest curved mode says how many iterations a run
  needs before the floor is reached;
* per worker count M (τ = M − 1) the best momentum by rate and by floor (:func:`.tradeoff.tradeoff`);
* for a model with at most :data:`.full_moments.FULL_MOMENTS_MAX` parameters at a constant delay,
  the **full second moments** (:mod:`.full_moments`): the stationary covariance with every
  cross-covariance of the per-example Hessians kept, its loss floor and mean-square stability;
* the **divergence risk** of runs of ``options.steps`` iterations (:mod:`.model_divergence`): the
  kick along the stiffest mode that throws a run off, how likely a minibatch is to deliver it, and
  the fate where the theory calls the cell unstable.

Everything is exact for the linearisation at the point it uses (``point.source``); where the
Hessian changes along training (a network's sharpness grows), the prediction holds for runs near
that point, and :func:`sharpness_along` measures how far the top eigenvalue moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.full_moments import (
    DIAGONAL_THEORY,
    FULL_MOMENTS_MAX_DELAY,
    FULL_THEORY,
    FullMoments,
    Statistics,
    applies,
    curved_statistics,
    moments_over_cells,
)
from amsgd.diffusion.theory.linear_recursion import (
    DelayLaw,
    decay_rate,
    delay_law,
    spectral_radii,
    spectral_radius,
)
from amsgd.diffusion.theory.model_divergence import ModelDivergenceRisk, model_divergence_risk
from amsgd.diffusion.theory.model_point import FLAT, ModelPoint, find_minimum, model_point, top_eigenvalue
from amsgd.diffusion.theory.options import PredictOptions
from amsgd.diffusion.theory.second_moments import (
    Coefficients,
    gains,
    mean_square,
    search_capped,
    stationary_variances,
)
from amsgd.diffusion.theory.sections import MODEL_SECTIONS, build_sections
from amsgd.diffusion.theory.stability import critical_delay
from amsgd.diffusion.theory.tradeoff import TradeoffResult, Verdict, largest_stable_delay, tradeoff

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem


#: Models whose data gradient is bounded (the softmax's and tanh's): their runs' loss stays below the
#: linear floor as the delay nears the mean boundary τ_c, from :data:`SATURATION_SHARE` of it on.
BOUNDED_GRADIENT_MODELS = ("logistic", "mlp")
#: The share of τ_c from which the floor of such a model overstates the runs' loss by more than its 3%.
SATURATION_SHARE = 0.5


def saturation_note(model: str, delay_mean: float, tau_c: float) -> str | None:
    """Where the linear floor overstates the runs' loss: a model of :data:`BOUNDED_GRADIENT_MODELS` whose
    delay (its mean) is at least :data:`SATURATION_SHARE` of the mean boundary ``tau_c`` (the smallest
    critical delay, at its η and μ). Near τ_c the stiffest mode's gain grows without bound, while a
    bounded gradient caps the runs' excursions along it. Measured on logistic regression (three
    classes of blobs, 240 examples, batch 8, l2 0.01, 64 runs of 8000 iterations): at η 0.5, μ 0
    (τ_c 7.43) +3.8%, +12%, +39% and 5.5× at τ = 4, 5, 6, 7; at η 0.2, μ 0.7 (τ_c 4.47) −0.9%, +1.9%,
    +15% and 2.7× at τ = 1 to 4. None elsewhere."""
    share = saturated_share(model, delay_mean, tau_c)
    if share is None:
        return None
    return (f"the delay is {share:.2f} of the mean boundary tau_c = {tau_c:.3g}: {SATURATION_TEXT.format(model=model)}")


#: What :func:`saturation_note` says beyond the share (``model`` filled in).
SATURATION_TEXT = ("from half of tau_c on, the floor of a model whose data gradient is bounded ({model}) overstates "
                   "the runs' loss, which rises more slowly (logistic regression: +12% at 0.67 tau_c, +39% at 0.81, "
                   "5.5 times at 0.94)")


def saturated_share(model: str, delay_mean: float, tau_c: float) -> float | None:
    """``delay_mean/tau_c`` where :func:`saturation_note` applies (a bounded-gradient model, from
    :data:`SATURATION_SHARE` on); None elsewhere."""
    if model not in BOUNDED_GRADIENT_MODELS or not (math.isfinite(tau_c) and tau_c > 0):
        return None
    share = delay_mean / tau_c
    return share if share >= SATURATION_SHARE else None


@dataclass(frozen=True)
class LossFloor:
    """The stationary excess loss ``½ Σ λ_i v_i`` with its coupled-mode and other-mode parts."""

    value: float
    coupled: float
    rest: float
    additive_linear: float

    def to_dict(self) -> dict:
        return {"value": json_float(self.value), "parts": {"coupled_modes": json_float(self.coupled),
                "other_modes": json_float(self.rest), "additive_linear": json_float(self.additive_linear)}}  # fmt: skip


def loss_floor(point: ModelPoint, eta: float, mu: float, delay, rest_delay=None) -> LossFloor:
    """The loss floor at (η, μ, delay); ``inf`` when the point is not a minimum or not mean-square stable.
    ``rest_delay`` (default ``delay``) is the delay the additive-only modes are solved with."""
    rest_delay = delay if rest_delay is None else rest_delay
    lam, s = point.eigenvalues, point.additive
    if np.any(lam < -FLAT * lam[0]):
        return LossFloor(np.inf, np.inf, np.inf, np.inf)
    inner = point.coupled_modes()
    outer = np.flatnonzero(~point.flat())
    outer = outer[outer >= point.coupled]
    g = gains(lam[inner], eta, mu, delay)
    v = stationary_variances(point.coupled_coefficients(), eta, mu, delay, g)
    coupled = 0.5 * float(lam[inner] @ v)
    rest = 0.5 * float(lam[outer] @ _variances(gains(lam[outer], eta, mu, rest_delay), s[outer]))
    additive = 0.5 * float(lam[inner] @ _variances(g, s[inner])) + rest
    return LossFloor(coupled + rest, coupled, rest, additive)


def _variances(g: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``G_i s_i``, ``inf`` for a mode without a stationary law (``G_i = inf``) even where it has no noise."""
    out = np.full(g.shape, np.inf)
    stationary = np.isfinite(g)
    out[stationary] = g[stationary] * s[stationary]
    return out


@dataclass(frozen=True)
class CellPrediction:
    """One (η, μ, delay): mean-square stable, and the error's rate per iteration."""

    stable: bool
    rate: float


@dataclass(frozen=True, eq=False)
class ModelPredictions:
    """The theory's numbers for ``problem`` at ``point`` (computed on first use)."""

    problem: ModelProblem
    point: ModelPoint
    options: PredictOptions = PredictOptions()

    @cached_property
    def law(self) -> DelayLaw:
        """The delay law (an event-driven server as i.i.d. with its stationary staleness law)."""
        return delay_law(self.problem.delay, as_iid=True)

    @cached_property
    def critical(self) -> np.ndarray:
        """``τ_c`` of each top mode at the problem's η and μ; ``inf`` for a flat mode (``|λ| <= FLAT λ_max``,
        such as the shift of every class's intercept in logistic regression), which no delay destabilises:
        its rounding-level eigenvalue, of either sign, is not a curvature."""
        top = self.point.eigenvalues[: self.point.top]
        curved = ~self.point.flat()[: self.point.top]
        tau = np.full(top.size, np.inf)
        tau[curved] = critical_delay(top[curved], self.problem.eta, self.problem.mu)
        return tau

    @cached_property
    def mean_square(self):
        p = self.problem
        c = self.point.coupled_coefficients()
        return mean_square(c, p.eta, p.mu, self.law, critical_delay(c.rates, p.eta, p.mu))

    @cached_property
    def floor(self) -> LossFloor:
        p = self.problem
        return loss_floor(self.point, p.eta, p.mu, self.law)

    @cached_property
    def full_moments(self) -> FullMoments | None:
        """The full second moments at the problem's η, μ and delay (:mod:`.full_moments`); None when
        the model has more than :data:`~.full_moments.FULL_MOMENTS_MAX` parameters, the delay is not
        constant or longer than :data:`~.full_moments.FULL_MOMENTS_MAX_DELAY`, or the spectrum is not
        complete."""
        p = self.problem
        if not applies(self.point.x.size, self.law, self.point.full):
            return None
        return self.full_cells(p.eta, p.mu, self.law.constant)

    @cached_property
    def full_cells(self) -> Callable[[float, float, int], FullMoments] | None:
        """``(η, μ, τ) ↦`` the full second moments at the constant delay τ (cached; the fluctuation
        operator built once: :func:`.full_moments.moments_over_cells`); None where they do not apply
        to the model (too many parameters, or no full spectrum)."""
        if not applies(self.point.x.size, delay_law(0), self.point.full):
            return None
        return lru_cache(maxsize=None)(moments_over_cells(self.problem, self.point, self.example_statistics))

    def verdict(self, eta: float) -> Verdict | None:
        """``(μ, τ) ↦ (mean-square stable, excess-loss floor)`` by the full second moments at step η,
        None at a delay beyond their reach (:data:`.tradeoff.Verdict`); None where they do not apply."""
        cells = self.full_cells
        if cells is None:
            return None

        def decide(mu: float, tau: int) -> tuple[bool, float] | None:
            if tau > FULL_MOMENTS_MAX_DELAY:
                return None
            full = cells(float(eta), float(mu), int(tau))
            return full.stable, full.floor

        return decide

    @cached_property
    def second_moments_theory(self) -> str:
        """The theory that decides mean-square stability and the floor at the given cell."""
        return DIAGONAL_THEORY if self.full_moments is None else FULL_THEORY

    @cached_property
    def stationary_excess(self) -> float:
        """The stationary excess loss by :attr:`second_moments_theory` (``inf`` where not mean-square stable)."""
        return self.floor.value if self.full_moments is None else self.full_moments.floor

    @cached_property
    def mean_square_stable(self) -> bool:
        """Mean-square stability of the given cell by :attr:`second_moments_theory`."""
        return self.mean_square.stable if self.full_moments is None else self.full_moments.stable

    @cached_property
    def example_statistics(self) -> Statistics:
        """Every example's Hessian over the curved modes and the additive noise
        (:func:`.full_moments.curved_statistics`): computed once for the full second moments and the
        divergence risk between the two boundaries."""
        return curved_statistics(self.problem, self.point)

    @cached_property
    def divergence(self) -> ModelDivergenceRisk:
        """The divergence risk of runs of ``options.steps`` iterations (:mod:`.model_divergence`), with the
        mean-square verdict of the full second moments where they apply, else of the diagonal theory."""
        return model_divergence_risk(self.problem, self.point, self.law, self.options.steps, self.mean_square_stable,
                                     self.second_moments_theory, lambda: self.example_statistics)  # fmt: skip

    @cached_property
    def rate(self) -> float:
        """``−log ρ`` per iteration of the slowest ranking mode (:meth:`ranking`) at the problem's delay."""
        p = self.problem
        c, modes = self.ranking(p.eta)
        return float(-np.log(max(spectral_radius(c.rates[i], p.eta, p.mu, self.law) for i in modes)))

    def ranking(self, horizon_eta: float) -> tuple[Coefficients, np.ndarray]:
        """The coupled modes and the positions of the modes whose slowest rate ranks momenta.

        Those are the top modes (stiff: they oscillate or lose stability first as μ and τ grow) and
        the *horizon mode*: the flattest mode a run of ``options.steps`` iterations resolves, the
        smallest curvature with ``horizon_eta · λ · steps >= 1`` (for a constant step it is the slow
        end of what the budget can learn; it gains from momentum). Over the modes between them the
        rate has no lower minimum. The horizon mode is appended without coupling when it lies among
        the additive-only modes; without the full spectrum (Lanczos) only the top modes rank.
        """
        c = self.point.coupled_coefficients()
        top = np.arange(min(self.point.top, c.rates.size))
        lam = self.point.eigenvalues
        resolved = (~self.point.flat()) & (lam >= 1.0 / (horizon_eta * self.options.steps))
        if not self.point.full or not resolved.any():
            return c, top
        slow = int(np.flatnonzero(resolved)[-1])
        inner = self.point.coupled_modes()
        if slow in inner:
            return c, np.union1d(top, np.flatnonzero(inner == slow))
        n = c.rates.size
        coupling = np.zeros((n + 1, n + 1))
        coupling[:n, :n] = c.coupling
        extended = Coefficients(np.r_[c.rates, lam[slow]], coupling, np.r_[c.additive, self.point.additive[slow]], False)
        return extended, np.r_[top, n]

    @cached_property
    def relaxation_iterations(self) -> float:
        """``1/rate`` of the slowest curved mode: iterations before a run from x* reaches the floor;
        ``inf`` (JSON null) where there is no floor to reach (the cell is not mean-square stable) or
        that mode's mean does not decay."""
        p = self.problem
        if not self.mean_square_stable:
            return np.inf
        lam = self.point.eigenvalues[~self.point.flat()]
        slowest = float(lam[lam > 0].min()) if np.any(lam > 0) else np.nan
        rate = float(decay_rate(slowest, p.eta, p.mu, self.law))
        if np.isnan(rate):  # no curved mode
            return np.nan
        return 1.0 / rate if rate > 0 else np.inf

    def cell(self, eta: float, mu: float, delay, horizon_eta: float | None = None) -> CellPrediction:
        """Mean-square stability of the coupled modes and the rate of the slowest ranking mode at
        (η, μ, delay), for any constant or i.i.d. delay (an event-driven server as i.i.d. with its
        staleness law); ``horizon_eta`` (default η) sets the horizon mode (:meth:`ranking`). Refuses a step
        too small for double precision, as :func:`predict_model` does."""
        self.point.require_resolvable_step(eta, mu)
        law = delay_law(delay, as_iid=True)
        c, modes = self.ranking(eta if horizon_eta is None else horizon_eta)
        radii = [spectral_radius(r, eta, mu, law) for r in c.rates]
        rate = -np.log(max(radii[i] for i in modes))
        g = gains(c.rates, eta, mu, law, 1.0, radii)
        stable = bool(np.all(np.isfinite(stationary_variances(c, eta, mu, law, g))))
        return CellPrediction(stable, float(rate))

    def excess_after(self, steps: int, eta: float, mu: float, delay, offsets: np.ndarray, *,
                     floor: float | None = None) -> float:  # fmt: skip
        """The expected excess loss after ``steps`` iterations from a start with squared mode offsets
        ``offsets`` (:meth:`.ModelPoint.mean_square_offsets`), by the linear theory:

            E L(x_N) − L(x*) ≈ floor + ½ Σ_i λ_i E c_i² ρ_i^{2N},

        ρ_i the mean radius of mode i; ``floor`` the stationary excess of the theory that decides the
        cell (default: the diagonal one, :func:`loss_floor`; ``amsgd advise`` passes its grid's, the full
        second moments' where they apply). ``inf`` when not mean-square stable. The coupled (stiff) modes
        see the delay law exactly; for an i.i.d. delay the thousands of other, slow modes see its mean,
        rounded, as a constant delay (a slow mode hardly feels the spread; solving each with the
        whole law would cost a dense problem of the law's length per mode). Refuses a step too small for
        double precision, as :func:`predict_model` does."""
        self.point.require_resolvable_step(eta, mu)
        law = delay_law(delay, as_iid=True)
        tau = law.constant if law.constant is not None else int(round(law.mean))
        if floor is None:
            floor = loss_floor(self.point, eta, mu, law, rest_delay=tau).value
        if not np.isfinite(floor):
            return float("inf")
        lam = self.point.eigenvalues
        inner = self.point.coupled_modes()
        outer = np.flatnonzero(~self.point.flat())
        outer = outer[outer >= self.point.coupled]
        slow = spectral_radii(lam[outer], eta, mu, tau) if outer.size else np.zeros(0)
        radii = np.r_[[spectral_radius(r, eta, mu, law) for r in lam[inner]], slow]
        modes = np.r_[inner, outer]
        return float(floor + 0.5 * np.sum(lam[modes] * offsets[modes] * radii ** (2.0 * steps)))

    def tradeoff(self, mus: Sequence[float], workers: Sequence[int]) -> TradeoffResult:
        """Stability, rate and loss floor per (workers M, μ), τ = M − 1 (round-robin workers)."""
        c, modes = self.ranking(self.problem.eta)

        def floor(_c, eta, mu, tau):
            return loss_floor(self.point, eta, mu, tau).value

        return tradeoff(c, self.problem.eta, mus, workers, floor=floor, error_modes=modes, radial_mode=None,
                        verdict=self.verdict(self.problem.eta))  # fmt: skip

    @cached_property
    def mean_square_delay(self) -> tuple[int | None, bool]:
        """The largest mean-square-stable constant delay at the problem's η and μ (None: not even τ = 0)
        and whether it is only a lower bound (the search stopped at its cap), by :attr:`second_moments_theory`:
        the full second moments' bisection below the mean-dynamics τ* where they decide the cell, else
        the diagonal theory's."""
        p = self.problem
        verdict = self.verdict(p.eta)
        if self.full_moments is None or verdict is None:
            return self.mean_square.tau_max, self.mean_square.lower_bound
        c = self.point.coupled_coefficients()
        critical = critical_delay(c.rates, p.eta, p.mu)
        tau_max = largest_stable_delay(c, p.eta, p.mu, critical, verdict)
        return tau_max, search_capped(tau_max, critical)

    def _mean_square_dict(self) -> dict:
        """``stability.mean_square``: by the full second moments where they apply (their feedback radius,
        the largest stable constant delay by bisection, no single limiting mode), else by the diagonal
        theory (the Perron root of its feedback and the mode that limits it)."""
        ms, full = self.mean_square, self.full_moments
        tau_max, lower_bound = self.mean_square_delay
        out = {"theory": self.second_moments_theory, "tau_max": tau_max, "tau_max_is_lower_bound": lower_bound,
               "max_workers": 0 if tau_max is None else tau_max + 1,  # advise's max_workers (round robin)
               "stable": ms.stable, "radius": ms.radius, "limiting_mode": ms.limiting_mode}  # fmt: skip
        if full is not None:
            out.update(stable=full.stable, radius=json_float(full.radius), limiting_mode=None)
        return out

    def to_dict(self, sections: Sequence[str] | None = None) -> dict:
        """The JSON document of ``amsgd derive --model``; ``sections`` names the parts to compute
        (:data:`.sections.MODEL_SECTIONS`; all by default): the others are left out and their work not done
        (the tradeoff grid takes most of it)."""
        return build_sections({
            "problem": self.problem.to_dict,
            "point": self.point.to_dict,
            "stability": self._stability_dict,
            "stationary_loss": self._stationary_loss_dict,
            "full_second_moments": lambda: None if self.full_moments is None else self.full_moments.to_dict(),
            "rate_per_iteration": lambda: json_float(self.rate),
            "relaxation_iterations": lambda: json_float(self.relaxation_iterations),
            "tradeoff": lambda: self.tradeoff(self.options.tradeoff_mus, self.options.tradeoff_workers).to_dict(),
        }, sections, MODEL_SECTIONS)  # fmt: skip

    @property
    def floor_note(self) -> str | None:
        """:func:`saturation_note` at the problem's delay (None where the floor is not known to overstate)."""
        return saturation_note(self.problem.model, self.law.mean, float(self.critical.min()))

    def _stationary_loss_dict(self) -> dict:
        out = {"theory": self.second_moments_theory, "excess": self.floor.to_dict(),
               "loss_at_minimum": self.point.loss, "value": json_float(self.point.loss + self.stationary_excess)}
        return {**out, "note": note} if (note := self.floor_note) else out

    def _stability_dict(self) -> dict:
        """``stability``: τ* = ⌈min τ_c⌉ − 1 (None when no mode limits the delay, every top mode flat, or
        when not even τ = 0 is stable), its mode, the mean-square block and the divergence risk."""
        tau_star = float(self.critical.min())
        return {
            "tau_max": int(np.ceil(tau_star)) - 1 if np.isfinite(tau_star) and tau_star > 0 else None,
            "limiting_mode": int(np.argmin(self.critical)),
            "max_workers": int(np.ceil(tau_star)) if np.isfinite(tau_star) else None,
            "mean_square": self._mean_square_dict(),
            "divergence_risk": self.divergence.to_dict(),
        }


def predict_model(problem: ModelProblem, options: PredictOptions | None = None, *, start: np.ndarray | None = None,
                  top: int | None = None, seed: int = 0) -> ModelPredictions:  # fmt: skip
    """Find the minimum of ``problem`` (from ``start``, else the model's initialisation with ``seed``)
    and return the predictions there, using the ``top`` stiffest Hessian modes for stability and rates
    (default :data:`~.model_point.TOP_MODES`); refuses a step too small for double precision
    (:meth:`~.model_point.ModelPoint.require_resolvable_step`)."""
    point = minimum_point(problem, start=start, top=top, seed=seed)
    point.require_resolvable_step(problem.eta, problem.mu)
    return ModelPredictions(problem, point, options or PredictOptions())


def minimum_point(problem: ModelProblem, *, start: np.ndarray | None = None, top: int | None = None,
                  seed: int = 0) -> ModelPoint:  # fmt: skip
    """The model at the minimum of ``problem`` (:func:`predict_model`'s point): its Hessian and gradient
    noise there do not depend on the step, so one point serves every η of a sweep, each η's own
    resolvability checked where it is predicted."""
    from amsgd.core.errors import ProblemError
    from amsgd.core.models import ModelProblem
    from amsgd.simulate.models import check_start  # loaded for the run anyway

    if not isinstance(problem, ModelProblem):
        raise ProblemError(f"predict_model needs a ModelProblem (streaming PCA: predict), got {type(problem).__name__}")
    start = check_start(start, problem)
    return model_point(problem, find_minimum(problem, start, seed=seed), top=top)


def sharpness_along(problem: ModelProblem, points: np.ndarray) -> np.ndarray:
    """The top Hessian eigenvalue at each row of ``points`` (Lanczos on Hessian-vector products)."""
    return np.array([top_eigenvalue(problem, x) for x in points])
