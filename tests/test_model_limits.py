"""The diffusion limits of a model (diffusion/model_limits.py) against independent computations:
least squares has a quadratic objective, so the gradient flow has a closed form and the Euler scheme
of the SME has exact stationary second moments (a linear equation in P, its noise depending on P)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.linalg import expm
from test_models import problem

from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.models import ModelProblem, split_data
from amsgd.diffusion.model_limits import integrate_model_limit, time_scales
from amsgd.diffusion.model_scheme import dividing_step, scheme_stability
from amsgd.simulate.model_engine import simulate_model

from helpers.cli import run_in_process


def _quadratic(p):
    """Least squares as ``L(x) = L* + ½ (x − x*)ᵀ H (x − x*)``: the augmented data Z = [X, 1], H, x*, L*."""
    z = np.c_[p.data.x_train, np.ones(p.data.examples)]
    y = p.data.y_train
    ridge = np.r_[np.full(p.data.features, p.l2), 0.0]
    h = z.T @ z / len(y) + np.diag(ridge)
    x_star = np.linalg.solve(h, z.T @ y / len(y))
    loss_star = 0.5 * np.mean((z @ x_star - y) ** 2) + 0.5 * np.sum(ridge * x_star**2)
    return z, y, h, x_star, loss_star


def test_time_scales_are_the_momentum_filter():
    for m in (0.0, 0.5, 0.9):
        assert time_scales(m) == pytest.approx((1 / (1 - m), 1 / (1 - m)), rel=1e-12)


def test_ode_limit_is_the_closed_form_gradient_flow():
    p = problem("least-squares", eta=0.05, mu=0.7, l2=0.01)
    z, y, h, x_star, loss_star = _quadratic(p)
    x0 = np.linspace(-1.0, 1.0, h.shape[0])
    sol = integrate_model_limit(p, 400, limit="ode", start=x0, record_every=50)
    s = 1 / (1 - p.mu)
    for k, value in zip(sol.iterations, sol.loss[0]):
        e = expm(-s * h * p.eta * k) @ (x0 - x_star)
        assert value == pytest.approx(loss_star + 0.5 * e @ h @ e, rel=1e-7, abs=1e-12)


def test_a_stiff_gradient_flow_is_integrated_in_few_steps_to_its_closed_form(monkeypatch):
    """η 0.5, μ 0.9 over 20 000 iterations: a diffusion time of 1e4 against curvatures from 1e-4 to
    about 2 (the ridge's 1e-4 on a nearly constant feature). An explicit method needs steps below
    3/(s λ_max) throughout (on digits this took 271 s); LSODA with the Hessian leaves them for backward
    differences: its gradient evaluations are counted, and the loss is the closed form's."""
    import scipy.integrate

    x, y = np.random.default_rng(5).standard_normal((200, 3)), np.zeros(200)
    x[:, 2] = x[:, 0] + 1e-3 * x[:, 2]  # two features nearly equal: a curvature near the ridge's
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * np.random.default_rng(6).standard_normal(200)
    p = ModelProblem("least-squares", split_data("stiff", x, y, classification=False), eta=0.5, mu=0.9, l2=1e-4)
    z, _, h, x_star, loss_star = _quadratic(p)
    evaluations = []
    solve = scipy.integrate.solve_ivp
    monkeypatch.setattr(scipy.integrate, "solve_ivp", lambda *a, **k: evaluations.append(solve(*a, **k)) or evaluations[-1])
    x0 = np.linspace(-1.0, 1.0, h.shape[0])
    sol = integrate_model_limit(p, 20_000, limit="ode", start=x0, record_every=2000)
    s = 1 / (1 - p.mu)
    curvatures = np.linalg.eigvalsh(h)
    assert curvatures[-1] / curvatures[0] > 1e4
    explicit = 12 * 20_000 * p.eta * s * curvatures[-1] / 3.3  # DOP853's 12 stages a step at its stability bound
    assert evaluations[0].nfev < explicit / 100, (evaluations[0].nfev, explicit)  # measured: 708; DOP853 took 376 055
    for k, value in zip(sol.iterations, sol.loss[0]):
        e = expm(-s * h * p.eta * k) @ (x0 - x_star)
        assert value == pytest.approx(loss_star + 0.5 * e @ h @ e, rel=1e-7, abs=1e-12)


def _euler_moment_operator(p, dt: float) -> np.ndarray:
    """The exact second-moment map of the Euler scheme of the least-squares SME (see
    :func:`_euler_stationary_excess`): ``vec(P) ← (A ⊗ A + c M) vec(P) + const``."""
    z, y, h, x_star, _ = _quadratic(p)
    n, q = z.shape
    s, g = time_scales(p.mu)
    step = dt * p.eta
    a = np.eye(q) - s * h * step
    h_data = z.T @ z / n
    zz = np.einsum("ni,nj->nij", z, z).reshape(n, q * q)
    return np.kron(a, a) + g**2 * p.eta * step / p.batch * (zz.T @ zz / n - np.kron(h_data, h_data))


def _exact_largest_stable_dt(p, high: float) -> float:
    low = 1e-6
    while high - low > 1e-5 * high:
        mid = 0.5 * (low + high)
        stable = np.max(np.abs(np.linalg.eigvals(_euler_moment_operator(p, mid)))) < 1.0
        low, high = (mid, high) if stable else (low, mid)
    return low


@pytest.mark.parametrize(("eta", "mu"), [(0.05, 0.5), (0.05, 0.9), (0.2, 0.0)])
def test_scheme_stability_is_the_exact_euler_second_moment_operator(eta, mu):
    """The map on the upper triangles in the Hessian's eigenbasis (diffusion/model_scheme.py) against the
    exact second-moment map of the scheme in parameter space: the radius at dt = 1 to rounding, the
    largest stable step within the bisection's 0.1%."""
    p = problem("least-squares", eta=eta, mu=mu, l2=0.01, batch=4)
    exact_radius = np.max(np.abs(np.linalg.eigvals(_euler_moment_operator(p, 1.0))))
    at_one = scheme_stability(p, 1.0)
    assert at_one.exact and at_one.to_dict()["map"] == "exact"
    assert at_one.radius == pytest.approx(exact_radius, rel=1e-12)
    unstable = scheme_stability(p, 100.0)
    assert not unstable.stable
    assert unstable.stable_dt == pytest.approx(_exact_largest_stable_dt(p, 100.0), rel=1e-3)


@pytest.mark.parametrize(("eta", "mu"), [(0.05, 0.5), (0.05, 0.9), (0.2, 0.0)])
def test_above_the_full_moments_size_the_scheme_check_keeps_the_diagonal_closure(monkeypatch, eta, mu):
    """Models with more parameters than the full second moments take are checked in the diagonal
    closure: on these data its radius is within 0.5% of the exact map's and its largest stable step
    within 1% (measured: 0.04–0.4%)."""
    import amsgd.diffusion.theory.full_moments as full_moments

    p = problem("least-squares", eta=eta, mu=mu, l2=0.01, batch=4)
    monkeypatch.setattr(full_moments, "FULL_MOMENTS_MAX", p.data.features)  # one parameter fewer than the model's
    exact_radius = np.max(np.abs(np.linalg.eigvals(_euler_moment_operator(p, 1.0))))
    at_one = scheme_stability(p, 1.0)
    assert not at_one.exact and at_one.to_dict()["map"] == "diagonal closure"
    assert at_one.radius == pytest.approx(exact_radius, rel=5e-3)
    assert scheme_stability(p, 100.0).stable_dt == pytest.approx(_exact_largest_stable_dt(p, 100.0), rel=1e-2)


def test_a_few_examples_make_no_step_stable_where_the_closure_finds_one(monkeypatch):
    """Least squares on 4 training examples of 3 features, one per batch, η 0.5, μ 0: the off-diagonal
    moments of the noise make the SME's own second moments grow. The exact map says so (its radius at
    dt = 0.5 is the parameter-space operator's, and at a tiny step that operator's radius is still above
    one); the diagonal closure calls dt = 0.5 stable."""
    import amsgd.diffusion.model_scheme as model_scheme
    import amsgd.diffusion.theory.full_moments as full_moments

    rng = np.random.default_rng(3)
    data = split_data("tiny", rng.standard_normal((5, 3)), rng.standard_normal(5), classification=False)
    p = ModelProblem("least-squares", data, eta=0.5, mu=0.0, batch=1, l2=0.0)
    assert p.data.examples == 4
    check = scheme_stability(p, 0.5)
    assert check.radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(_euler_moment_operator(p, 0.5)))), rel=1e-12)
    assert not check.stable and check.stable_dt is None
    assert np.max(np.abs(np.linalg.eigvals(_euler_moment_operator(p, 1e-3)))) > 1.0  # no step is stable
    assert "no step bounds them" in check.warning(np.array([10]))
    monkeypatch.setattr(full_moments, "FULL_MOMENTS_MAX", 3)
    assert scheme_stability(p, 0.5).stable  # the closure's verdict (radius 0.977)
    monkeypatch.undo()
    monkeypatch.setattr(model_scheme, "EXACT_MAP_WORK", 4 * 4**4 - 1)  # 4 examples, 4 parameters: one flop short
    assert not scheme_stability(p, 0.5).exact


@pytest.mark.slow
def test_an_unstable_euler_step_is_named_and_its_paths_grow():
    """η = 0.05, μ = 0.9: the drift alone is stable up to dt = 3.57 iterations (s Δt λ_max < 2), the scheme
    only up to 2.47 (its state-dependent noise). At dt = 3 a warning names a stable step and every path
    blows up; the dt = 2 run gets no warning and keeps every path."""
    p = problem("least-squares", eta=0.05, mu=0.9, l2=0.01, batch=4)
    _, _, h, x_star, _ = _quadratic(p)
    drift_limit = 2.0 / (time_scales(p.mu)[0] * p.eta * np.linalg.eigvalsh(h).max())
    assert drift_limit > 3.0
    unstable = r"dt = 3 iterations is not mean-square stable.*use --dt 2 \(steps below 2\.4\d are stable\)"
    with pytest.warns(RunWarning, match=unstable):
        big = integrate_model_limit(p, 2400, 16, dt=3.0, rng=2, start=x_star, record_every=600, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = integrate_model_limit(p, 2400, 16, dt=2.0, rng=2, start=x_star, record_every=600, progress=False)
    assert small.scheme.stable and not big.scheme.stable
    assert dividing_step(2.47, np.array([600])) == 2.0 and dividing_step(0.78, np.array([50])) == 0.5
    exact_dt = _exact_largest_stable_dt(p, 3.0)  # the exact second-moment map's largest stable step, 2.474
    assert big.to_dict()["scheme_stability"]["stable_dt_iterations"] == pytest.approx(exact_dt, rel=1e-3)
    assert big.blown_up == 16 and small.blown_up == 0  # every dt = 3 path left the divergence ball


def _euler_stationary_excess(p, dt: float) -> float:
    """``½ tr(H P)`` for the Euler scheme ``δ ← A δ + g sqrt(η Δt) ξ``, ``A = I − s H Δt``, whose noise
    covariance at ``x* + δ`` is ``Cov_n[z_n r_n]/B`` with ``r_n = z_nᵀ(x* + δ) − y_n``: averaged over
    δ ~ (0, P) it is ``(Σ_n z_n z_nᵀ (r*_n² + z_nᵀ P z_n)/N − H_d P H_d − g* g*ᵀ)/B`` with H_d the data
    part of H and g* the data gradient at x*; P = A P Aᵀ + c E[Σ] is solved as a linear system."""
    z, y, h, x_star, _ = _quadratic(p)
    n, q = z.shape
    _, g = time_scales(p.mu)
    c = g**2 * p.eta * dt * p.eta / p.batch
    residual = z @ x_star - y
    g_star = z.T @ residual / n
    constant = (z.T * residual**2) @ z / n - np.outer(g_star, g_star)
    # vec(P) = (A ⊗ A) vec(P) + c [vec(const) + M vec(P)], M vec(P) = vec(Σ_n z z^T (z^T P z)/N − H_d P H_d)
    lhs = np.eye(q * q) - _euler_moment_operator(p, dt)
    cov = np.linalg.solve(lhs, c * constant.reshape(-1)).reshape(q, q)
    return 0.5 * np.trace(h @ cov)


@pytest.mark.slow
def test_sme_stationary_loss_equals_the_exact_moments_of_its_scheme():
    p = problem("least-squares", eta=0.05, mu=0.5, l2=0.01, batch=4)
    _, _, _, x_star, loss_star = _quadratic(p)
    sol = integrate_model_limit(p, 4000, 256, dt=0.5, rng=1, start=x_star, record_every=20, window=0.25)
    est = sol.stationary_loss
    expected = _euler_stationary_excess(p, 0.5)
    assert sol.blown_up == 0
    assert abs((est.mean - loss_star) - expected) <= est.ci_high - est.mean, (est, expected)
    # the check can fail: the noise gain matters at this precision
    assert abs((est.mean - loss_star) - 1.1 * expected) > est.ci_high - est.mean


@pytest.mark.slow
def test_sme_follows_the_algorithm_at_small_step():
    """The mean objective of the SME ensemble against the simulated algorithm from the same start
    points: apart by at most three standard errors of the difference plus the limit's weak error,
    O(η): ``η s λ_max`` relative to the excess over the minimum (η = 0.005, μ = 0.5, batch 4)."""
    p = problem("least-squares", eta=0.005, mu=0.5, l2=0.01, batch=4)
    _, _, h, _, loss_star = _quadratic(p)
    sim = simulate_model(p, 1500, 128, rng=5, record_every=150, progress=False)
    sol = integrate_model_limit(p, 1500, 128, rng=5, record_every=150)
    runs = sim.values["train_loss"]
    se = np.sqrt(sol.loss.var(axis=0, ddof=1) / sol.loss.shape[0] + runs.var(axis=0, ddof=1) / runs.shape[0])
    weak = p.eta * time_scales(p.mu)[0] * np.linalg.eigvalsh(h).max()
    gap = np.abs(sol.mean_curve - sim.mean_curve())
    assert np.all(gap <= 3 * se + weak * (sim.mean_curve() - loss_star)), (gap, se, weak)


def test_bad_input_is_one_line():
    p = problem("least-squares")
    with pytest.raises(ProblemError, match="limit must be"):
        integrate_model_limit(p, 10, limit="sdde")
    with pytest.raises(ProblemError, match="dt"):
        integrate_model_limit(p, 10, dt=0.0)
    with pytest.raises(ProblemError, match="length 5"):
        integrate_model_limit(p, 10, start=np.zeros(3))


def test_a_path_that_leaves_the_divergence_ball_has_blown_up(capsys):
    """At η = 2 the Euler scheme of the least-squares SME grows geometrically: its paths passed 1e200
    and were reported as not blown up (the state stayed finite); they are blown up once past the
    simulator's divergence norm, and the command line says no estimate (exit status 3)."""
    from amsgd.cli import main
    from amsgd.cli.status import NO_ESTIMATE

    p = problem("least-squares", eta=2.0, mu=0.0)
    with pytest.warns(RunWarning, match="not mean-square stable"):  # the drift alone is unstable here
        solution = integrate_model_limit(p, 200, paths=4, rng=1, progress=False)
    assert solution.blown_up == 4 and np.isnan(solution.mean_curve[-1])
    with pytest.warns(RunWarning) as said:  # the scheme's step, and the window of paths growing past 1e96
        assert integrate_model_limit(p, 200, paths=4, rng=1, divergence_norm=1e300, progress=False).blown_up == 0
    assert ["use --dt 0.25 " in str(w.message) for w in said] == [True, False]
    assert "cannot be told stationary or not with 4 paths" in str(said[1].message)
    assert main(["integrate", "--model", "least-squares", "--eta", "2", "--mu", "0", "--steps", "200", "--paths", "4",
                 "-q"]) == NO_ESTIMATE  # fmt: skip
    assert "every one of the 4 paths diverged" in capsys.readouterr().err


def test_no_scheme_check_skips_the_check_and_only_where_there_is_one(tmp_path, capsys):
    """``--no-scheme-check`` runs the SME without the Euler–Maruyama check (no warning, no
    ``scheme_stability`` in the JSON, where the check would have warned: η = 2 above); with
    ``--limit ode`` it is refused in one line."""
    from amsgd.cli import main
    from amsgd.cli.status import NO_ESTIMATE

    argv = ["integrate", "--model", "least-squares", "--eta", "2", "--mu", "0", "--steps", "200", "--paths", "4"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main([*argv, "--no-scheme-check", "--out", str(tmp_path / "s.json")]) == NO_ESTIMATE
    assert "scheme_stability" not in json.loads((tmp_path / "s.json").read_text())
    capsys.readouterr()
    assert main([*argv, "--limit", "ode", "--no-scheme-check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--no-scheme-check applies to --limit sde" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_integrate_a_model_on_the_command_line(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 3))
    np.savez(tmp_path / "r.npz", X=x, y=x @ np.array([1.0, -0.5, 0.2]) + 0.3 * rng.normal(size=120))
    run = run_in_process(["integrate", "--model", "least-squares", "--data", str(tmp_path / "r.npz"),
                          "--eta", "0.02", "--mu", "0.5", "--paths", "8", "--steps", "200", "--quiet"])  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["limit"] == "sde" and out["paths"] == 8 and len(out["loss_mean"]) == len(out["iterations"])
    loss = out["stationary_loss"]  # over the 8 paths, its interval not degenerate
    assert loss["n"] == 8 and loss["ci_low"] < loss["mean"] < loss["ci_high"]


@pytest.mark.parametrize("extra", [["--limit", "sdde"], ["--convergence-study"], ["--scheme", "milstein"]])
def test_what_a_model_cannot_integrate_is_one_line_and_exit_2(tmp_path, extra):
    np.savez(tmp_path / "r.npz", X=np.eye(6)[:, :3], y=np.arange(6.0))
    run = subprocess.run(
        [sys.executable, "-m", "amsgd", "integrate", "--model", "least-squares", "--data", str(tmp_path / "r.npz"),
         *extra], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "for a model" in run.stderr, run.stderr


def test_paths_that_blew_up_are_counted_in_a_warning():
    """A divergence ball barely larger than the start's distance from the centre (--divergence-norm 1.12)
    loses some paths, not all: their number is said, the estimates being over the others."""
    with pytest.warns(RunWarning, match=r"^(\d+) of the 16 paths blew up: the mean loss") as said:
        sol = integrate_model_limit(problem("least-squares", eta=0.05, mu=0.9), 400, 16, rng=1, divergence_norm=1.12,
                                    check_scheme=False)  # fmt: skip
    assert 0 < sol.blown_up < 16 and str(said[0].message).startswith(f"{sol.blown_up} of the 16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none lost: nothing said
        assert integrate_model_limit(problem("least-squares", eta=0.05, mu=0.9), 400, 16, rng=1,
                                     check_scheme=False).blown_up == 0  # fmt: skip


def test_a_window_the_paths_still_fall_through_is_said_not_stationary():
    """The SME's averaging window gets ``simulate``'s stationarity check over its paths: from the
    initialisation, 300 iterations at η 0.002 still fall through the second half (by 47% of the
    estimate: the summary's "stationary" loss was reported without a word), while from the minimum
    the window is stationary. The ODE, one path, has no check."""
    p = problem("least-squares", eta=0.002, mu=0.5, l2=0.01, batch=4)
    with pytest.warns(RunWarning, match=r"the averaging window \(iterations 150\.\.300\) is not stationary"):
        falling = integrate_model_limit(p, 300, 16, rng=1, check_scheme=False)
    assert falling.stationarity.stationary is False and falling.to_dict()["stationarity"]["stationary"] is False
    _, _, _, x_star, _ = _quadratic(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say
        settled = integrate_model_limit(p, 300, 16, rng=1, start=x_star, check_scheme=False)
    assert settled.stationarity.stationary is True
    assert integrate_model_limit(p, 300, limit="ode", check_scheme=False).stationarity is None
