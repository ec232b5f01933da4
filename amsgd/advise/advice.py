"""``advise``: with M asynchronous workers and a step size, which momentum is stable, and which is best?

For each worker count M (round-robin workers: every gradient is M − 1 updates stale) and each
momentum μ of a grid, the exact theory of the linearisation at the optimum (streaming PCA: at e_1;
any other model: at its minimum x*) gives mean-square stability of every mode, the local rate of
the error's slowest mode and the stationary error (the floor). Per M the advice is

* ``largest_stable_mu``: the largest μ of the grid that is mean-square stable, and
  ``largest_stable_mu_mean``, the exact supremum of μ at which the mean dynamics is stable;
* ``best_mu_rate``: the stable μ whose error decays fastest, with that rate and floor;
* ``best_mu_floor``: the stable μ with the lowest floor.

Momentum shortens the time scale (rate ≈ η λ/(1 − μ) for the slow modes) until the stiff modes turn
oscillatory (rate ``−log √μ`` once μ passes ``(1 − √(η λ))²``) or unstable (τ* ≈ π (1 − μ)/(2 η λ_max)),
so the best momentum falls as workers are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem, model_momentum
from amsgd.core.problem import Problem
from amsgd.core.progress import stage

if TYPE_CHECKING:
    from amsgd.diffusion.theory.tradeoff import TradeoffResult

# The defaults are importable without SciPy or JAX (the command line's --help shows them).
DEFAULT_MUS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
DEFAULT_WORKERS = (1, 2, 4, 8, 16, 32)
#: The run length a model's momenta are ranked for (the same default as the divergence risk's).
DEFAULT_STEPS = 10_000
#: Start points (the model's initialisation with seed 0) averaged for the predicted loss after the budget.
START_SAMPLES = 8


@dataclass(frozen=True, eq=False)
class Advice:
    """The advice per worker count (see the module docstring) and the grid it comes from.

    ``rates`` are the modes' rates used (the top Hessian eigenvalues for a model, the mean-drift
    rates ``λ_1 − λ_i`` and the radial rate for PCA); ``point`` says where the theory linearises.
    For a model, ``loss_after[m, u]`` is the predicted excess training loss after ``steps`` iterations
    from the model's initialisation (``inf`` where not mean-square stable; None for PCA).
    """

    problem: Problem | ModelProblem
    grid: TradeoffResult
    rates: np.ndarray
    largest_stable_mu_mean: np.ndarray
    point: str
    steps: int = DEFAULT_STEPS
    loss_after: np.ndarray | None = None

    def best_mu_loss(self, m: int) -> float | None:
        """The stable μ with the lowest predicted loss after the budget at worker count index m (models)."""
        if self.loss_after is None or not np.isfinite(self.loss_after[m]).any():
            return None
        return float(self.grid.mus[int(np.argmin(self.loss_after[m]))])

    def rows(self) -> list[dict]:
        from amsgd.core.estimates import json_float

        g = self.grid
        out = []
        for m, workers in enumerate(g.workers):
            stable = g.mus[g.stable[m]]
            best = g.best_mu_rate[m]
            u = int(np.argmin(np.abs(g.mus - best))) if np.isfinite(best) else None
            out.append({
                "workers": int(workers),
                "largest_stable_mu": json_float(float(stable.max())) if stable.size else None,
                "largest_stable_mu_mean": json_float(float(self.largest_stable_mu_mean[m])),
                "best_mu_rate": json_float(float(best)),
                "rate_per_iteration": None if u is None else json_float(float(g.error_rate[m, u])),
                "floor": None if u is None else json_float(float(g.floor[m, u])),
                "best_mu_floor": json_float(float(g.best_mu_floor[m])),
            })  # fmt: skip
            if self.loss_after is not None:
                out[-1]["best_mu_loss"] = self.best_mu_loss(m)
                out[-1]["loss_after_steps"] = [json_float(float(v)) for v in self.loss_after[m]]
        return out

    def to_dict(self) -> dict:
        """The JSON document: the rates under ``hessian_top`` for a model (its top Hessian eigenvalues,
        largest first) and under ``mode_rates`` for streaming PCA (the radial mode's 2λ_1 first, then the
        tangent modes' λ_1 − λ_i, which are no Hessian's eigenvalues). The problem's μ and delay are
        null (the grid ranges over them), as is ``steps`` for streaming PCA (no run length enters)."""
        rates = "hessian_top" if isinstance(self.problem, ModelProblem) else "mode_rates"
        problem = {**self.problem.to_dict(), "mu": None, "delay": None}  # the grid's momenta and worker counts
        steps = self.steps if self.loss_after is not None else None  # streaming PCA ranks for any length
        note = self.floor_note
        return {"problem": problem, "point": self.point, rates: self.rates.tolist(), "steps": steps,
                "advice": self.rows(), "grid": self.grid.to_dict(), **({"floor_note": note} if note else {})}  # fmt: skip

    def table(self) -> str:
        """The advice as a fixed-width text table."""
        loss = self.loss_after is not None
        head = (f"{'workers':>7}  {'largest stable mu':>17}  {'best mu (rate)':>14}  {'its rate/iter':>13}  {'its floor':>10}  "
                f"{'best mu (floor)':>15}" + (f"  {f'best mu (loss after {self.steps})':>26}" if loss else ""))  # fmt: skip
        lines = [f"# {self.point}; eta = {self.problem.eta:g}; delay = workers - 1", head]
        for r in self.rows():
            lines.append(
                f"{r['workers']:>7}  {_fmt(r['largest_stable_mu']):>17}  {_fmt(r['best_mu_rate']):>14}  "
                f"{_fmt(r['rate_per_iteration'], '.4g'):>13}  {_fmt(r['floor'], '.4g'):>10}  {_fmt(r['best_mu_floor']):>15}"
                + (f"  {_fmt(r['best_mu_loss']):>26}" if loss else "")
            )
        lost = [str(r["workers"]) for r in self.rows() if r["largest_stable_mu"] is None]
        if lost:
            mus = self.grid.mus
            lines.append(f"# none: no momentum of the grid (mu {mus.min():g} to {mus.max():g}) is mean-square stable with "
                         f"{', '.join(lost)} workers: the linear theory gives no floor or rate there (runs may "
                         "still settle at a higher error, or blow up: amsgd derive --delay workers:M --mu MU says "
                         "which); lower eta")  # fmt: skip
        if note := self.floor_note:
            lines.append(f"# {note}")
        return "\n".join(lines) + "\n"

    @cached_property
    def floor_note(self) -> str | None:
        """What the floors leave out (:func:`~amsgd.diffusion.theory.tradeoff.tradeoff_floor_note`); for a
        model, the rows whose floor lies where a bounded gradient keeps the runs' loss below it
        (:func:`~amsgd.diffusion.theory.model_predictions.saturation_note`); None where nothing is left out."""
        from amsgd.diffusion.theory.tradeoff import tradeoff_floor_note

        if not isinstance(self.problem, ModelProblem):
            return tradeoff_floor_note(self.problem.distribution)
        from amsgd.diffusion.theory.model_predictions import SATURATION_TEXT, saturated_share
        from amsgd.diffusion.theory.stability import critical_delay

        curved = self.rates[self.rates > 0]
        flagged = []
        for row in self.rows() if curved.size else ():
            if row["floor"] is None or row["best_mu_rate"] is None:
                continue
            tau_c = float(np.min(critical_delay(curved, self.grid.eta, row["best_mu_rate"])))
            share = saturated_share(self.problem.model, row["workers"] - 1, tau_c)
            if share is not None:
                flagged.append(f"{row['workers']} ({share:.2f} tau_c)")
        if not flagged:
            return None
        return f"the floors at {', '.join(flagged)} workers: {SATURATION_TEXT.format(model=self.problem.model)}"


def _fmt(value: float | None, spec: str = "g") -> str:
    return "none" if value is None else format(value, spec)


def advise(problem: Problem | ModelProblem, workers: Sequence[int] = DEFAULT_WORKERS,
           mus: Sequence[float] = DEFAULT_MUS, *, steps: int = DEFAULT_STEPS,
           start: np.ndarray | None = None) -> Advice:  # fmt: skip
    """The advice for ``problem`` at its η over ``workers`` × ``mus`` (its own μ and delay are ignored).

    A model is linearised at the minimum reached from ``start`` (default: its initialisation); its
    momenta are ranked for a budget of ``steps`` iterations (the flattest mode that budget resolves
    ranks them beside the stiff ones, :meth:`~amsgd.diffusion.theory.model_predictions.ModelPredictions.ranking`)."""
    steps = checks.positive_int("steps (the run length momenta are ranked for)", steps)
    workers, mus = np.atleast_1d(workers), np.atleast_1d(checks.real_array("mus (the momenta)", mus))  # one value: a list of one
    if mus.ndim != 1:
        raise ProblemError(f"mus (the momenta) must be a list of numbers, got an array of shape {mus.shape}")
    if isinstance(problem, ModelProblem):
        for mu in mus:  # in the model's range before the minimum is sought (and its step checked at each)
            model_momentum(mu)
        from amsgd.diffusion.theory.model_predictions import ModelPredictions, minimum_point
        from amsgd.diffusion.theory.options import PredictOptions
        from amsgd.simulate.model_engine import start_points

        with stage("the minimum"):
            minimum = minimum_point(problem, start=start)
        for mu in mus:  # the grid's momenta, not the problem's own, which advise does not use
            minimum.require_resolvable_step(problem.eta, float(mu))
        prediction = ModelPredictions(problem, minimum, PredictOptions(steps=steps))
        grid = prediction.tradeoff(mus, workers)
        rates = prediction.point.eigenvalues[: prediction.point.top]
        point = f"linearised at the minimum x* (loss {prediction.point.loss:.6g}, top {rates.size} Hessian modes)"
        with stage(f"the loss after {steps} steps"):
            offsets = prediction.point.mean_square_offsets(start_points(problem, START_SAMPLES, rng=0))
            loss_after = np.array([[prediction.excess_after(steps, problem.eta, mu, int(w) - 1, offsets,
                                                            floor=grid.floor[m, u])
                                    if grid.stable[m, u] else np.inf for u, mu in enumerate(grid.mus)]
                                   for m, w in enumerate(grid.workers)])  # fmt: skip
        mean_mu = np.array([_sup_stable_mu(rates, problem.eta, int(w) - 1, negative=True) for w in grid.workers])
        return Advice(problem, grid, np.asarray(rates, dtype=float), mean_mu, point, steps, loss_after)
    elif isinstance(problem, Problem):
        from amsgd.diffusion.theory.predictions import predict
        from amsgd.diffusion.theory.tradeoff import tradeoff

        problem.require_resolvable_momenta(mus, "mus (--mus)")  # and Problem's range: negative momentum is for models
        prediction = predict(problem)
        grid = tradeoff(prediction.coefficients, problem.eta, mus, np.asarray(workers))
        rates = prediction.coefficients.rates
        point = "linearised at the optimum e_1 (streaming PCA)"
    else:
        raise ProblemError(f"advise needs a Problem or a ModelProblem, got {type(problem).__name__}")
    mean_mu = np.array([_sup_stable_mu(rates, problem.eta, int(w) - 1) for w in grid.workers])
    return Advice(problem, grid, np.asarray(rates, dtype=float), mean_mu, point)


def _sup_stable_mu(rates: np.ndarray, eta: float, tau: int, negative: bool = False) -> float:
    """The supremum of μ with a stable mean at delay τ; where μ = 0 is not stable, the supremum of the
    stable μ < 0 when ``negative`` (a model) and NaN otherwise or where none is."""
    from amsgd.diffusion.theory.stability import max_stable_momentum, max_stable_negative_momentum

    curved = rates[rates > 0]
    try:
        return max_stable_momentum(curved, eta, tau).value
    except ProblemError:
        below = max_stable_negative_momentum(curved, eta, tau) if negative else None
        return float("nan") if below is None else below
