"""The paper's deep-network experiment on a small network: the best momentum against the number of
asynchronous workers, predicted from the Hessian before the runs, then measured.

Liu et al. (2018) trained a wide residual network on CIFAR-100 with 1, 2, 4 and 8 asynchronous
workers and found the best momentum falling (0.9, 0.7, 0.7, 0.5), with 0.9 the worst at 8 workers.
Here an MLP (64-32-10, tanh, ridge 1e-3) learns scikit-learn's bundled digits with minibatches of
32 under round-robin workers (τ = M − 1) and an event-driven server with M workers (exponential
compute times), for a fixed budget of gradient steps, under two protocols:

* ``fixed-eta``: the same η for every μ (what the paper seems to do);
* ``fixed-effective``: η(μ) = η_eff (1 − μ), the same effective step η/(1 − μ) for every μ.

Every μ of one worker count runs on the same seed, so the replicates are paired (the same
minibatch stream and start). The prediction comes first, from the random-coefficient theory
(:class:`~amsgd.diffusion.theory.model_predictions.ModelPredictions`) at the minimum x* of the
training loss: mean-square stability per cell, and the linear theory's excess loss after the budget
(the floor plus the transient of every Hessian mode from the runs' start points,
:meth:`ModelPredictions.excess_after`). The predicted best μ is the stable μ with the lowest
predicted loss; the rate of the slowest ranking mode is reported beside it. Because a network's
sharpness changes along training, stability is also evaluated at the end of one plain-SGD run
(μ = 0, one worker) of the same budget and reported beside the prediction, not used by it. The
measured best μ is the μ with the lowest mean training loss at the end of the budget; its 95%
interval comes from a paired bootstrap over replicates (the μ that wins in 95% of resamples, by
percentiles of the winning μ). The momenta the runs cannot tell from it are those whose paired excess
loss over it is not significantly positive (one-sided, from the same paired bootstrap, at 5%
Bonferroni-corrected over the other momenta of the grid); a check passes when the predicted best μ is
among them.

Every cell is predicted before any runs; the runs then go to Dask as one task per cell
(:mod:`.paper_dnn_runs`), stored as they finish, so that an interrupted validation continues where it
stopped and a finished one is reused.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from amsgd.core.models import ModelProblem, load_data
from amsgd.sweep.cluster import CONNECT_TIMEOUT, dask_client
from amsgd.sweep.run import run_sweep
from amsgd.validation.checks import Check
from amsgd.validation.paper_dnn_runs import DELAYS, PROTOCOLS, DnnRuns, DnnSetup, delay_law

__all__ = ["DELAYS", "POSTER_BEST", "PROTOCOLS", "Cell", "DnnReport", "DnnSetup", "best_table", "run_paper_dnn"]

#: The poster's best momentum per worker count (Liu et al. 2018, the deep-network figure).
POSTER_BEST = {1: 0.9, 2: 0.7, 4: 0.7, 8: 0.5}
#: Bootstrap resamples for the range of the best momentum.
BOOTSTRAP = 2000
#: Random sign patterns of the paired sign-flip test by which a μ is significantly worse than another.
SIGN_FLIPS = 4000
#: The level of that one-sided test (Bonferroni-corrected over the other momenta of the grid), and so
#: one minus the confidence of the set of best momenta.
LEVEL = 0.05


@dataclass(frozen=True, eq=False)
class Cell:
    """One (protocol, delay kind, M, μ): the prediction and the measured end-of-budget numbers per replicate."""

    protocol: str
    delay: str
    workers: int
    mu: float
    eta: float
    stable: bool  # mean-square stable at x*
    stable_trained: bool  # mean-square stable at the end of the plain-SGD run
    rate: float
    excess: float  # predicted excess loss after the budget (inf: predicted unstable)
    train_loss: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    diverged_fraction: float


@dataclass(frozen=True, eq=False)
class DnnReport:
    setup: DnnSetup
    loss_at_minimum: float
    hessian_top: np.ndarray
    sharpness: dict
    cells: list[Cell]
    elapsed: float
    runs: dict = field(default_factory=dict)  # the runs file, its cells, and how many were computed and reused
    checks: list[Check] = field(default_factory=list)
    _best: dict = field(default_factory=dict, repr=False)

    def group(self, protocol: str, delay: str) -> list[Cell]:
        return [c for c in self.cells if c.protocol == protocol and c.delay == delay]

    def best(self, protocol: str, delay: str) -> list[dict]:
        """:func:`best_table` of one group, bootstrapped once and kept for the report, checks and figure."""
        key = (protocol, delay)
        if key not in self._best:
            self._best[key] = best_table(self.group(protocol, delay))
        return self._best[key]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {
            "preset": "paper-dnn",
            "setup": self.setup.__dict__,
            "loss_at_minimum": self.loss_at_minimum,
            "hessian_top": self.hessian_top.tolist(),
            "sharpness": self.sharpness,
            "elapsed_seconds": round(self.elapsed, 1),
            "runs": self.runs,
            "best": {f"{p}/{d}": self.best(p, d) for p in self.setup.protocols for d in self.setup.delays},
            "cells": [_cell_dict(c) for c in self.cells],
            "passed": self.passed,
            "checks_passed": sum(c.passed for c in self.checks),
            "checks_total": len(self.checks),
        }


def _cell_dict(c: Cell) -> dict:
    from amsgd.core.estimates import json_float, t_interval

    return {"protocol": c.protocol, "delay": c.delay, "workers": c.workers, "mu": c.mu, "eta": c.eta,
            "predicted_stable": c.stable, "stable_at_end_of_plain_sgd": c.stable_trained, "predicted_rate": json_float(c.rate), "predicted_excess": json_float(c.excess),
            "train_loss": t_interval(c.train_loss).to_dict(), "validation_loss": t_interval(c.val_loss).to_dict(),
            "validation_accuracy": t_interval(c.val_accuracy).to_dict(), "diverged_fraction": c.diverged_fraction}  # fmt: skip


def best_table(cells: list[Cell]) -> list[dict]:
    """Per worker count: the predicted best μ and the measured one with its bootstrap interval, for the
    training loss, the validation loss and the validation accuracy."""
    rows = []
    for m in sorted({c.workers for c in cells}):
        row = sorted((c for c in cells if c.workers == m), key=lambda c: c.mu)
        mus = np.array([c.mu for c in row])
        excess = np.array([c.excess if c.stable else np.inf for c in row])
        predicted = float(mus[int(np.argmin(excess))]) if np.isfinite(excess).any() else None
        out = {"workers": m, "predicted_best_mu": predicted,
               "predicted_stable_mus": [float(c.mu) for c in row if c.stable],
               "stable_mus_at_end_of_plain_sgd": [float(c.mu) for c in row if c.stable_trained]}  # fmt: skip
        for name, attr, sign in (("train_loss", "train_loss", 1.0), ("validation_loss", "val_loss", 1.0),
                                 ("validation_accuracy", "val_accuracy", -1.0)):  # fmt: skip
            values = np.stack([_finite(sign * getattr(c, attr)) for c in row])  # (mus, replicates)
            out[name] = _best_with_interval(mus, values, seed=m)
        rows.append(out)
    return rows


def _finite(values: np.ndarray) -> np.ndarray:
    """Diverged replicates (NaN) count as the worst possible outcome of a quantity to minimise (a loss,
    or an accuracy with its sign turned)."""
    return np.where(np.isfinite(values), values, np.inf)


def _best_with_interval(mus: np.ndarray, values: np.ndarray, seed: int) -> dict:
    """The μ with the lowest mean over replicates; the 2.5% and 97.5% percentiles of that μ over
    paired bootstrap resamples of the replicates (a range, not a confidence interval); and the momenta
    that no other beats significantly, a confidence set for the best (:func:`_not_worse`)."""
    rng = np.random.default_rng(seed)
    n = values.shape[1]
    picks = rng.integers(0, n, size=(BOOTSTRAP, n))
    means = values.mean(axis=1)
    with np.errstate(invalid="ignore"):
        winners = mus[np.argmin(values[:, picks].mean(axis=2), axis=0)]
    best = int(np.argmin(means))
    low, high = np.percentile(winners, [2.5, 97.5], method="inverted_cdf")
    signs = rng.choice(np.array([-1.0, 1.0]), size=(SIGN_FLIPS, n))
    return {"best_mu": float(mus[best]), "ci_low": float(low), "ci_high": float(high),
            "not_worse": _not_worse(mus, values, signs),
            "share": {f"{m:g}": float(np.mean(winners == m)) for m in mus}}  # fmt: skip


def _not_worse(mus: np.ndarray, values: np.ndarray, signs: np.ndarray) -> list[float]:
    """The momenta that no other momentum beats significantly (multiple comparisons with the best): μ_i
    is left out where, for some μ_j, the mean paired excess ``d = values[i] − values[j]`` over the
    replicates is significantly positive by a one-sided sign-flip test (the runs are paired, so under no
    difference each d_r is as likely to be −d_r: the p-value is the share of the means of ``signs · d``,
    with the observed one counted, at or above the observed mean), at :data:`LEVEL` Bonferroni-corrected
    over the other momenta. The true best is left out only where some momentum beats it, with
    probability at most LEVEL: the set is a (1 − LEVEL) confidence set for the best momentum. A test
    against the lowest mean alone, by bootstrap percentiles, left a tied momentum out in about 10% of
    simulated trials (six equal momenta, 32 runs); this one in 3.0% of 1500. A replicate where μ_i
    diverged (+inf) and μ_j did not makes μ_i worse; one where both diverged is a tie."""
    others = max(len(mus) - 1, 1)
    kept = []
    for i, mu in enumerate(mus):
        for j in range(len(mus)):
            if j == i:
                continue
            with np.errstate(invalid="ignore"):
                d = np.nan_to_num(values[i] - values[j], nan=0.0, posinf=np.inf, neginf=-np.inf)
            if np.any(d == np.inf):
                break
            if np.isfinite(d).all():
                observed = d.mean()
                p = (1 + np.count_nonzero((signs * d).mean(axis=1) >= observed)) / (1 + len(signs))
                if p <= LEVEL / others:
                    break
        else:
            kept.append(float(mu))
    return kept


def run_paper_dnn(setup: DnnSetup | None = None, *, runs: str | os.PathLike, client=None,
                  scheduler: str | None = None, n_workers: int | None = None,
                  connect_timeout: float = CONNECT_TIMEOUT, progress: bool | None = None) -> DnnReport:  # fmt: skip
    """Predict every cell, then run the cells on Dask, then compare (see the module docstring).

    The runs are stored in ``runs`` (NetCDF, :class:`~amsgd.validation.paper_dnn_runs.DnnRuns`), each
    cell persisted in ``runs + ".parts/"`` as it finishes: an interrupted validation continues from the
    cells stored, and a finished file of the same setup is reused. They run on ``client``, else on the
    Dask scheduler at ``scheduler`` (connected to first, waiting at most ``connect_timeout`` seconds, so
    that a wrong address fails before the minutes of prediction; not where ``runs`` is there already,
    finished, needing no cluster), else on a local cluster of ``n_workers`` threads (default: one per
    core) (:func:`~amsgd.sweep.run.run_sweep`)."""
    if client is None and scheduler is not None and not os.path.exists(runs):
        with dask_client(scheduler, timeout=connect_timeout) as connected:
            return run_paper_dnn(setup, runs=runs, client=connected, n_workers=n_workers, progress=progress)
    from amsgd.diffusion.theory.model_point import model_point
    from amsgd.diffusion.theory.model_predictions import ModelPredictions, predict_model, sharpness_along
    from amsgd.diffusion.theory.options import PredictOptions
    from amsgd.simulate.model_engine import simulate_model, start_points

    setup = setup or DnnSetup()
    began = time.perf_counter()
    base = ModelProblem("mlp", load_data("digits"), eta=setup.eta, batch=setup.batch, l2=setup.l2, hidden=setup.hidden)
    options = PredictOptions(steps=setup.steps)
    theory = predict_model(base, options)
    plain = simulate_model(base.replace(mu=0.0), setup.steps, 1, rng=setup.seed, progress=False).last_iterates[0]
    trained = ModelPredictions(base, model_point(base, plain, source="end of a plain SGD run"), options)
    predicted = [_predict_cell(setup, base, theory, trained, *cell) for cell in setup.cells()]
    outcome = run_sweep(DnnRuns(setup, base), runs, resume=True, client=client, scheduler=scheduler,
                        n_workers=n_workers, local_processes=False, progress=progress)  # fmt: skip
    cells = [_measured_cell(outcome.dataset, cell) for cell in predicted]
    start = start_points(base, 1, rng=setup.seed)[0]
    sharp = sharpness_along(base, np.stack([start, plain, theory.point.x]))
    sharpness = {"at_start": float(sharp[0]), f"after_{setup.steps}_steps_of_plain_sgd": float(sharp[1]),
                 "at_minimum": float(sharp[2])}  # fmt: skip
    report = DnnReport(setup, theory.point.loss, theory.point.eigenvalues[: theory.point.top], sharpness, cells,
                       time.perf_counter() - began, runs={"file": str(outcome.path), "cells": outcome.points,
                                                          "computed": outcome.computed, "reused": outcome.reused})  # fmt: skip
    report.checks.extend(best_mu_checks(report))
    return report


def _predict_cell(setup: DnnSetup, base: ModelProblem, theory, trained, protocol: str, delay: str, m: int,
                  mu: float) -> Cell:  # fmt: skip
    """One cell predicted at x* (and its stability at the end of a plain run), before any run; the
    measured outcomes are left empty."""
    from amsgd.simulate.model_engine import start_points

    law = delay_law(delay, m)
    offsets = theory.point.mean_square_offsets(start_points(base, setup.replicates, rng=setup.seed_for(m)))
    eta = setup.eta_for(protocol, mu)
    horizon = setup.eta_for(protocol, 0.0)
    cell = theory.cell(eta, mu, law, horizon_eta=horizon)
    stable_trained = trained.cell(eta, mu, law, horizon_eta=horizon).stable
    excess = theory.excess_after(setup.steps, eta, mu, law, offsets) if cell.stable else np.inf
    empty = np.empty(0)
    return Cell(protocol, delay, m, mu, eta, cell.stable, stable_trained, cell.rate, excess, empty, empty, empty, np.nan)


def _measured_cell(runs, predicted: Cell) -> Cell:
    """``predicted`` with the measured outcomes of its runs (the Dataset of :class:`DnnRuns`)."""
    at = runs.sel(protocol=predicted.protocol, delay=predicted.delay, workers=predicted.workers, mu=predicted.mu)
    return replace(predicted, train_loss=at["train_loss"].values, val_loss=at["validation_loss"].values,
                   val_accuracy=at["validation_accuracy"].values,
                   diverged_fraction=float(at["diverged_fraction"]))  # fmt: skip


def best_mu_checks(report: DnnReport) -> list[Check]:
    """One check per (protocol, delay kind, M): the predicted best μ among the measured best momenta (by
    training loss). One worker has no delay whatever the kind of server: its check is made once per
    protocol, under the first delay kind."""
    checks = []
    for protocol in report.setup.protocols:
        for n, delay in enumerate(report.setup.delays):
            for row in report.best(protocol, delay):
                if n and row["workers"] == 1:
                    continue
                measured = row["train_loss"]
                predicted = np.nan if row["predicted_best_mu"] is None else row["predicted_best_mu"]
                accepted = measured["not_worse"]
                checks.append(Check(
                    f"best-mu/{protocol}/{delay}/M={row['workers']}", "paper-dnn", predicted, measured["best_mu"],
                    accepted[0], accepted[-1], extra_pass=predicted in accepted,
                    context={"accepted": accepted, "bootstrap_interval": [measured["ci_low"], measured["ci_high"]]},
                    criterion="the predicted best momentum (mean-square stable at x*, lowest predicted loss after the "
                              "budget) lies among the measured best: the momenta that no other momentum beats "
                              "significantly by its paired excess final training loss (one-sided sign-flip test, at "
                              f"{LEVEL:g} Bonferroni-corrected over the other momenta), a {1 - LEVEL:.0%} confidence "
                              "set for the best momentum; the interval is its range",
                ))  # fmt: skip
    return checks
