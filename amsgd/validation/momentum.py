"""Momentum against asynchrony: Async-SGD with geometric staleness against Sync-MSGD.

With M workers and geometric staleness of mean M − 1 (``P(τ = j) = (1 − q) q^j``, ``q = 1 − 1/M``),
Async-SGD at step η is claimed to behave like Sync-MSGD with momentum ``1 − 1/M`` at step η/M
(Mitliagkas et al.); Liu et al. argue that asynchrony adds no momentum. For one linear mode the
mean of the asynchronous recursion obeys ``E x_{k+1} = E x_k − η a Σ_j p_j E x_{k−j}``; with the
geometric law its characteristic equation is ``(z − 1)(z − q) + η a (1 − q) z = 0``, i.e.
``z² − (1 + q − (η/M) a) z + q = 0``: exactly the momentum recursion with μ = q and step η/M. So
the mean dynamics (the local rates) are identical. The second moments are not: the spread of the
random delay feeds back as extra noise (:mod:`amsgd.diffusion.theory.lyapunov`), so the exact linear floor
of Async-SGD is higher, while the diffusion limit gives both the floor ``η Σ s_i²/(2 a_i)``.

Checked: each floor against its finite-η floor (the floor ``predict`` reports; the exact linear one
where the finite-η theory has none: the additive linear floor leaves out the data's fourth moments,
1.8–2.3% of the floor on Σ = diag(10, 1) at η 2e-4, μ 0.9, far above its 2F), each rate against its
finite-η rate (:func:`.dynamics.local_rate`; the two differ slightly, though the exact linear rates
are the same), and the difference of the two floors
(async − sync) against the difference of their finite-η floors (multiplicative noise and the norm's
coupling included), with the tolerance 2F relative to that difference: each finite-η floor leaves out
terms of relative order F, whose leading parts are the same for both algorithms (they share the
diffusion limit), so what is left in the difference is of relative order F of the difference. On the
default problem the paired difference at M = 2 is 0.000390 (six seeds) against 0.000405 predicted,
3.7% low (3.0% below the exact linear one); at M = 4 and 8 within 0.6%. The two floor runs share
their seed, so for Gaussian data replicate r of both algorithms sees the same samples (the kernels draw
them on a stream of their own, apart from the delays): common random numbers. Their time averages
then correlate at 0.994–0.999, and the paired difference's interval is 13–31 times narrower than
that of two independent runs. Other data laws are drawn on the block's generator, which also draws
the delays of the asynchronous side: the pairs are then independent and the interval as wide as
for independent runs (``Momentum.shared_samples`` says which).

The comparison runs at the problem's effective step ``η_eff = η/(1 − μ)`` (Async-SGD step η_eff,
Sync-MSGD step η_eff/M): both then share the problem's diffusion limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core.delays import ConstantDelay, GeometricDelay
from amsgd.core.estimates import Estimate, paired_difference
from amsgd.core.progress import shares
from amsgd.simulate.plan import kernel_samples
from amsgd.simulate.result import SimulationResult
from amsgd.validation.checks import Check
from amsgd.validation.context import LINEAR_TOLERANCE_FACTOR, Context
from amsgd.validation.dynamics import LocalRate, local_rate
from amsgd.validation.stationary import finite_eta_floor_check

WORKERS = (2, 4, 8)


@dataclass(frozen=True)
class Side:
    """One algorithm of the comparison: its parameters, measured and predicted floor and rate."""

    label: str
    eta: float
    mu: float
    delay: str
    floor: Estimate
    linear_floor: float
    finite_eta_floor: float
    rate: LocalRate


@dataclass(frozen=True)
class MomentumRow:
    workers: int
    asynchronous: Side
    synchronous: Side
    diffusion_floor: float
    floor_difference: Estimate  # measured async − sync, paired by replicate
    linear_floor_difference: float
    finite_eta_floor_difference: float

    def to_dict(self) -> dict:
        def side(s: Side) -> dict:
            return {
                "eta": s.eta, "mu": s.mu, "delay": s.delay,
                "stationary_error": s.floor.to_dict(), "linearized_floor": s.linear_floor,
                "finite_eta_floor": s.finite_eta_floor,
                "rate_measured": [s.rate.fit.rate, s.rate.fit.ci_low, s.rate.fit.ci_high],
                "rate_finite_eta": s.rate.finite, "rate_exact_linear": s.rate.exact, "rate_ou": s.rate.ou,
            }  # fmt: skip

        return {
            "workers": self.workers,
            "async_sgd": side(self.asynchronous),
            "sync_msgd": side(self.synchronous),
            "diffusion_floor": self.diffusion_floor,
            "floor_difference_measured": self.floor_difference.to_dict(),
            "floor_difference_linear": self.linear_floor_difference,
            "floor_difference_finite_eta": self.finite_eta_floor_difference,
        }


@dataclass(frozen=True)
class Momentum:
    eta_eff: float
    rows: tuple[MomentumRow, ...]
    checks: tuple[Check, ...]
    shared_samples: bool  # the paired runs see the same samples (Gaussian data: common random numbers)


def momentum(ctx: Context, workers: Sequence[int] = WORKERS, key: int = 6) -> Momentum:
    """Stationary errors and local rates of both algorithms for each M (module docstring)."""
    base = ctx.problem
    eta_eff = base.eta / (1 - base.mu)
    reps = ctx.budget.replicates
    rows, checks = [], []
    shared = kernel_samples(base.distribution)
    for m_index, m in enumerate(shares(workers)):
        sides, runs = [], []
        variants = (
            ("async", "Async-SGD", base.replace(eta=eta_eff, mu=0.0, delay=GeometricDelay(m - 1.0))),
            ("sync", "Sync-MSGD", base.replace(eta=eta_eff / m, mu=1 - 1 / m, delay=ConstantDelay(0))),
        )
        steps = max(ctx.stationary_steps(p) for _, _, p in variants)  # the same for both: paired replicates
        for v_index, (tag, label, p) in enumerate(variants):
            run = ctx.simulate(p, steps, reps, (key, m_index, 0))  # one seed for both: paired replicates
            runs.append(run)
            lin, finite = ctx.floor(p.eta, p.mu, p.delay), ctx.finite_eta(p)
            checks.append(finite_eta_floor_check(ctx, f"momentum-M{m}-{tag}-{{}}-floor", p, run, finite, lin.floor,
                                                 label, group="momentum"))  # fmt: skip
            rate = local_rate(ctx, p, key=(key, m_index, 1 + v_index), name=f"momentum-M{m}-{tag}-rate",
                              group="momentum")  # fmt: skip
            checks.append(rate.check)
            sides.append(Side(label, p.eta, p.mu, p.delay.spec, run.stationary_error, lin.floor, finite, rate))
        a, s = sides
        diff = paired_difference(*(_window_errors(run) for run in runs))
        finite = a.finite_eta_floor - s.finite_eta_floor
        rows.append(MomentumRow(m, a, s, ctx.diffusion_floor, diff, a.linear_floor - s.linear_floor, finite))
        name = f"momentum-M{m}-floor-difference"
        checks.append(Check(
            name=name, group="momentum", predicted=ctx.perturb(name, finite), tolerance=ctx.linear_tolerance(finite),
            tolerance_reason=f"the finite-eta floors leave out terms of relative order F, the same at leading order "
            f"for both algorithms: what is left in their difference is of relative order F of it; tolerance "
            f"{LINEAR_TOLERANCE_FACTOR:g} F relative to the predicted difference",
            measured=diff.mean, ci_low=diff.ci_low, ci_high=diff.ci_high, unit="sin^2",
            context={"measured_as": "Async-SGD minus Sync-MSGD stationary error, paired by replicate " + (
                "(both runs see the same samples: common random numbers)" if shared else
                "(the samples are not shared: this data law is drawn with the delays' stream)"),
                     "prediction": "finite-eta floors: async minus sync",
                     "exact_linear_difference": a.linear_floor - s.linear_floor,
                     "perturbation": ctx.perturb.factor(name)},
        ))  # fmt: skip
    return Momentum(eta_eff, tuple(rows), tuple(checks), shared)


def _window_errors(run: SimulationResult) -> np.ndarray:
    """Each replicate's stationary error, NaN where it diverged (the pair is then left out)."""
    return np.where(run.diverged, np.nan, run.window_error)
