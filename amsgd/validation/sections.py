"""One report section per experiment: run it and say what is compared (no drawing here; the
figures of each section are drawn by :mod:`amsgd.figures.validation` from its ``result``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from amsgd.validation import delays, dynamics, finite_eta, momentum, sdde_limit, stationary, texts
from amsgd.validation.checks import Check
from amsgd.validation.context import MAX_STEP_FACTOR, Context
from amsgd.validation.presets import Preset

#: The default momenta of the error-against-delay sweep when no preset gives them; its delays are
#: :func:`amsgd.validation.delays.default_taus` (the published problem's 0, 10, .., 160 is the fallback
#: where no momentum has a τ*).
SWEEP_MUS = (0.7, 0.8, 0.9)
SWEEP_TAUS = tuple(range(0, 161, 10))


@dataclass(frozen=True)
class Section:
    """One experiment's part of the report: checks, a paragraph of explanation, tables, and the
    computed ``result`` its figures are drawn from."""

    experiment: str
    title: str
    text: str
    checks: tuple[Check, ...] = ()
    tables: dict[str, list[dict]] = field(default_factory=dict)
    result: object = None


def ode_section(ctx: Context, preset: Preset | None) -> Section:
    traj = dynamics.ode_trajectory(ctx)
    text = texts.ODE.format(replicates=ctx.budget.transient_replicates, lag=dynamics.startup_lag(ctx.problem))
    return Section("ode", "ODE mean trajectory", text, traj.checks, result=traj)


def phases_section(ctx: Context, preset: Preset | None) -> Section:
    run = dynamics.phases(ctx)
    text = texts.PHASES.format(replicates=ctx.budget.transient_replicates)
    return Section("phases", "Phases from the saddle e₂", text, run.checks, result=run)


def rate_section(ctx: Context, preset: Preset | None) -> Section:
    if not ctx.problem.delay.is_iid:
        return Section("rate", "Local convergence rate", texts.RATE_SKIPPED.format(delay=ctx.problem.delay.spec))
    rate = dynamics.local_rate(ctx)
    text = texts.RATE.format(replicates=ctx.budget.replicates, tilt=rate.check.context["tilt_sin2"])
    return Section("rate", "Local convergence rate near e₁", text, (rate.check,), result=rate)


def stationary_section(ctx: Context, preset: Preset | None) -> Section:
    st = stationary.stationary(ctx)
    text = texts.STATIONARY.format(replicates=ctx.budget.replicates, steps=st.result.steps)
    return Section("stationary", "Stationary error", text, st.checks, result=st)


def finite_eta_section(ctx: Context, preset: Preset | None) -> Section:
    fe = finite_eta.finite_eta(ctx)
    text = texts.FINITE_ETA.format(replicates=ctx.budget.replicates, eta=fe.large_eta)
    return Section("finite-eta", "The finite-η theory: other data laws, a large step, divergence risk", text, fe.checks,
                   {"finite_eta": list(fe.rows)})  # fmt: skip


def stability_section(ctx: Context, preset: Preset | None) -> Section:
    st = delays.stability(ctx)
    return Section("stability", "Stability knee", texts.STABILITY.format(tau_star=ctx.tau_star()), st.checks, result=st)


def sweep_section(ctx: Context, preset: Preset | None) -> Section:
    mus = preset.sweep_mus if preset else SWEEP_MUS
    taus = preset.sweep_taus if preset else delays.default_taus(ctx, mus, SWEEP_TAUS)
    sw = delays.sweep(ctx, mus, taus)
    b = ctx.budget
    text = texts.SWEEP.format(eta=ctx.problem.eta, replicates=b.sweep_replicates, steps=b.sweep_steps)
    longer = [c for c in sw.curves if c.steps != b.sweep_steps]
    if longer:
        text += " " + texts.SWEEP_LONGER.format(
            relaxations=delays.SWEEP_RELAXATIONS, cap=MAX_STEP_FACTOR,
            runs=", ".join(f"{c.steps} iterations at μ = {c.mu:g}" for c in longer))  # fmt: skip
    return Section("sweep", "The published experiment: error against delay", text, sw.checks,
                   {"knees": sw.knee_table()}, result=sw)  # fmt: skip


def momentum_section(ctx: Context, preset: Preset | None) -> Section:
    mo = momentum.momentum(ctx)
    pairing = texts.MOMENTUM_SHARED if mo.shared_samples else texts.MOMENTUM_UNSHARED
    return Section("momentum", "Momentum against asynchrony", texts.MOMENTUM.format(eta_eff=mo.eta_eff, pairing=pairing),
                   mo.checks,
                   {"momentum": [r.to_dict() for r in mo.rows]}, result=mo)  # fmt: skip


def sdde_limit_section(ctx: Context, preset: Preset | None) -> Section:
    lim = sdde_limit.sdde_limit(ctx)
    first = lim.rungs[0]
    text = texts.SDDE_LIMIT.format(
        fraction=sdde_limit.DELAY_FRACTION, s=lim.delay_time, s_star=lim.critical_delay_time,
        mode=lim.limiting_mode["kind"], eta=first.eta, tau=first.tau, divisors=", ".join(str(m) for m in sdde_limit.LADDER),
        replicates=ctx.budget.replicates, steps=first.steps, relaxations=sdde_limit.MIN_RELAXATIONS,
    )  # fmt: skip
    return Section("sdde-limit", "The finite-delay (SDDE) limit: τ = s/η as η → 0",
                   text + "\n\n" + lim.markdown_table(), lim.checks,
                   {"sdde_limit": lim.table()}, result=lim)  # fmt: skip


#: The names of each experiment's checks whose prediction ``--perturb NAME=FACTOR`` scales, a
#: ``{field}`` standing for a number of the run (the momenta and delays a preset or the problem
#: gives). A name that fits none of the chosen experiments' is refused before any of them runs.
PERTURBABLE: dict[str, tuple[str, ...]] = {
    "ode": ("ode-mean-error-at-{percent}pct",),
    "phases": ("escape-iterations", "escape-iterations-linearized", "escape-iterations-saturated",
               "escape-iterations-per-run", "travel-iterations"),
    "rate": ("convergence-rate-near-e1",),
    "stationary": ("stationary-error-diffusion-floor", "stationary-error-linearized-floor",
                   "stationary-error-finite-eta-floor", "stationary-error-linearized-floor-problem-delay",
                   "stationary-error-finite-eta-floor-problem-delay"),
    "finite-eta": ("finite-eta-floor-{case}", "divergence-eta-{eta}-mu-{mu}-tau-{tau}"),
    "stability": ("tau-star", "knee-mu-{mu}", "linear-floor-at-0.8-tau-star", "finite-eta-floor-at-0.8-tau-star"),
    "sweep": ("knee-mu-{mu}", "floor-mu-{mu}-tau-{tau}"),
    "momentum": ("momentum-M{workers}-{algorithm}-linear-floor", "momentum-M{workers}-{algorithm}-finite-eta-floor",
                 "momentum-M{workers}-{algorithm}-rate", "momentum-M{workers}-floor-difference"),
    "sdde-limit": ("sdde-floor", "sdde-critical-delay-time", "sdde-limit-linear-floor-eta-{eta}",
                   "sdde-limit-finite-eta-floor-eta-{eta}"),
}  # fmt: skip


def perturbable(name: str, experiments: Sequence[str]) -> bool:
    """Whether ``name`` fits a name of :data:`PERTURBABLE` of one of ``experiments``."""
    return any(re.fullmatch(_pattern(template), name) for e in experiments for template in PERTURBABLE[e])


def _pattern(template: str) -> str:
    """The regular expression of a :data:`PERTURBABLE` name: each ``{field}`` one or more characters."""
    return ".+".join(re.escape(part) for part in re.split(r"\{\w+\}", template))


BUILDERS: dict[str, Callable[[Context, Preset | None], Section]] = {
    "ode": ode_section,
    "phases": phases_section,
    "rate": rate_section,
    "stationary": stationary_section,
    "finite-eta": finite_eta_section,
    "stability": stability_section,
    "sweep": sweep_section,
    "momentum": momentum_section,
    "sdde-limit": sdde_limit_section,
}
