"""One report section per experiment: run it, draw its figures, explain what is compared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from amsgd import figures
from amsgd.problem import Problem
from amsgd.validation import delays, dynamics, momentum, stationary
from amsgd.validation.context import Context
from amsgd.validation.presets import Preset
from amsgd.validation.run import Section


def problem_label(p: Problem) -> str:
    """A short description for figure titles: spectrum, data law, η, μ and the delay."""
    lam = ",".join(f"{x:g}" for x in p.eigenvalues)
    spec = p.delay.spec
    delay = f"τ = {spec.split(':')[1]}" if spec.startswith("constant:") else f"delay {spec}"
    return f"Σ = diag({lam}), {p.distribution.spec}, η = {p.eta:g}, μ = {p.mu:g}, {delay}"


def ode_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    traj = dynamics.ode_trajectory(ctx)
    fig = figures.trajectory_figure(traj, problem_label(ctx.problem), out / "ode_trajectory.png")
    text = (
        f"{ctx.budget.transient_replicates} runs from h₀ ∝ (1,…,1). The mean error is compared with the ODE "
        "closed form at the iterations where the ODE error falls to 3/4, 1/2 and 1/4 of its start (grey lines), "
        f"evaluated μ/(1−μ) = {dynamics.startup_lag(ctx.problem):.3g} iterations late because the first step "
        "has no momentum. The tolerance is the O(η) part the ODE leaves out: the noise's contribution (up to "
        "the diffusion floor) and the first modified-equation correction."
    )
    return Section("ode", "ODE mean trajectory", text, traj.checks, [fig])


def phases_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    run = dynamics.phases(ctx)
    fig = figures.escape_figure(run, problem_label(ctx.problem), out / "escape.png")
    text = (
        f"{ctx.budget.transient_replicates} runs from the saddle e₂. The derived escape time is when the unstable "
        "OU variance makes E h₁² = δ²; it is compared with the crossing of δ² by the mean of h₁²/‖h‖² over runs. "
        "The per-run first passage (right panel) is later on average: E log(1/χ²₁) = γ + log 2 adds about "
        "1.27/(2a) to a first passage. The OU limit's own first-passage distribution, sampled exactly, is drawn "
        "beside the simulation's. Travel is the per-run time from sin² ≤ 1 − δ² to sin² ≤ δ²."
    )
    return Section("phases", "Phases from the saddle e₂", text, run.checks, [fig])


def rate_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    if not ctx.problem.delay.is_iid:
        return Section("rate", "Local convergence rate", f"skipped: delay {ctx.problem.delay.spec} is not i.i.d.")
    rate = dynamics.local_rate(ctx)
    fig = figures.rate_figure([rate], out / "convergence_rate.png")
    text = (
        f"Two sets of {ctx.budget.replicates} runs with the same random numbers, from e₁ and tilted by "
        f"sin² = {dynamics.RATE_TILT} toward the slowest tangent mode; the mean of their difference in that "
        "coordinate is the mean dynamics of the linear recursion. Its fitted decay rate (bootstrap interval) is "
        "compared with −log ρ of the exact linear theory; the OU rate η(λ₁ − λᵢ)/(1 − μ) is shown beside it."
    )
    return Section("rate", "Local convergence rate near e₁", text, (rate.check,), [fig])


def stationary_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    st = stationary.stationary(ctx)
    fig = figures.stationary_figure(st.u_samples, st.ou_variances, st.linear_variances,
                                    problem_label(stationary.zero_delay(ctx.problem)), out / "stationary_histograms.png")  # fmt: skip
    text = (
        f"{ctx.budget.replicates} runs of {ctx.budget.stationary_steps} iterations from e₁; each run's time average "
        "of sin² over the second half is one sample. The diffusion floor is checked at τ = 0; the exact linear "
        "floor at τ = 0 and at the problem's delay. The histograms show U_i = h_i/√η over the window against the OU "
        "stationary law."
    )
    return Section("stationary", "Stationary error", text, st.checks, [fig])


def stability_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    st = delays.stability(ctx)
    figs = [
        figures.delay_curves_figure([st.curve], problem_label(ctx.problem), out / "error_vs_delay.png"),
        figures.phase_diagram_figure(ctx.problem, ctx.rates, out / "phase_diagram.png", curves=[st.curve]),
    ]
    text = (
        f"Constant delays at the problem's η and μ; predicted τ* = {ctx.tau_star()}. "
        + delays.__doc__.split("\n\n", 1)[1].replace("\n", " ").strip()
    )
    return Section("stability", "Stability knee", text, st.checks, figs)


def sweep_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    mus = preset.sweep_mus if preset else (0.7, 0.8, 0.9)
    taus = preset.sweep_taus if preset else tuple(range(0, 161, 10))
    sw = delays.sweep(ctx, mus, taus)
    label = f"Σ = diag({','.join(f'{x:g}' for x in ctx.problem.eigenvalues)}), η = {ctx.problem.eta:g}"
    figs = [
        figures.delay_curves_figure(sw.curves, label, out / "error_vs_delay_per_mu.png"),
        figures.phase_diagram_figure(ctx.problem, ctx.rates, out / "phase_diagram.png", curves=sw.curves),
    ]
    b = ctx.budget
    text = (
        f"η = {ctx.problem.eta:g} (the paper does not give its step size), {b.sweep_replicates} runs of "
        f"{b.sweep_steps} iterations per (μ, τ) from random starts on the sphere; the stationary error is each "
        "run's time average over the second half. "
        + delays.__doc__.split("\n\n", 1)[1].split("\n\nStability checks")[0].replace("\n", " ").strip()
    )
    return Section("sweep", "The published experiment: error against delay", text, sw.checks, figs,
                   {"knees": sw.knee_table()})  # fmt: skip


def momentum_section(ctx: Context, out: Path, preset: Preset | None) -> Section:
    mo = momentum.momentum(ctx)
    fig = figures.momentum_figure(mo, out / "momentum_asynchrony.png")
    text = momentum.__doc__.split("\n\n", 1)[1].replace("\n", " ").strip()
    return Section("momentum", "Momentum against asynchrony", text, mo.checks, [fig],
                   {"momentum": [r.to_dict() for r in mo.rows]})  # fmt: skip


BUILDERS: dict[str, Callable[[Context, Path, Preset | None], Section]] = {
    "ode": ode_section,
    "phases": phases_section,
    "rate": rate_section,
    "stationary": stationary_section,
    "stability": stability_section,
    "sweep": sweep_section,
    "momentum": momentum_section,
}
