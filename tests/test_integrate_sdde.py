"""The SDDE integrator: exact agreement with the SDE integrator at zero delay, shared keyed noise,
moments against independent solutions of the moment equations, strong and weak orders, and the
delayed SME of streaming PCA against the closed-form floor."""

import json
from math import factorial

import numpy as np
import pytest
from scipy import integrate

import amsgd.diffusion.sdde as sdde_module
from amsgd import Problem, predict
from amsgd.cli import main
from amsgd.core.delays import ConstantDelay, parse_delay
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import t_interval
from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.sdde import delay_steps, integrate_sdde, sdde_convergence_study
from amsgd.diffusion.sde import integrate_sde
from amsgd.diffusion.sme import integrate_sme, integrate_sme_delayed, time_averaged_error


def linear(c, b):
    """``dX = −c X(t − s) dt + b dW`` (additive noise)."""
    return (lambda y: -c * y), (lambda y: np.full((*y.shape, 1), b))


def multiplicative(c, g):
    """``dX = −c X(t − s) dt + g X(t − s) dW``."""
    return (lambda y: -c * y), (lambda y: (g * y)[..., None])


def dde_mean(c, s, t, x0=1.0):
    """The method-of-steps solution of ``x' = −c x(t − s)``, ``x = x0`` on ``[−s, 0]``:
    ``x(t) = x0 Σ_{k=0}^{⌊t/s⌋+1} (−c)^k (t − (k − 1)s)^k / k!``."""
    n = int(np.floor(t / s)) + 1
    return x0 * sum((-c) ** k * (t - (k - 1) * s) ** k / factorial(k) for k in range(n + 1))


def second_moment(c, g, s, t_end, x0, lag):
    """``E X(t_end)²`` of the multiplicative SDDE from the moment equations of ``P(t, u) = E X(t) X(u)``:
    ``∂_t P(t, u) = −c P(t − s, u)`` for ``t > u`` and ``d/dt P(t, t) = −2c P(t, t − s) + g² P(t − s, t − s)``,
    on the band ``0 ≤ t − u ≤ s`` with step ``s/lag`` (first order in the step)."""
    h = s / lag
    band = np.full((int(round(t_end / h)) + lag + 1, lag + 1), x0 * x0)  # row r: t_{r − lag}; column l: lag l
    lags = np.arange(1, lag + 1)
    for r in range(lag, band.shape[0] - 1):
        band[r + 1, 1:] = band[r, lags - 1] - c * h * band[r + 1 - lags, lag + 1 - lags]
        band[r + 1, 0] = band[r, 0] + h * (-2 * c * band[r, lag] + g * g * band[r - lag, 0])
    return band[-1, 0]


def kuchler_mensch_variance(c, b, s):
    """Stationary variance of ``dX = −c X(t − s) dt + b dW`` for ``0 ≤ cs < π/2`` (Küchler & Mensch 1992)."""
    return b * b * (1 + np.sin(c * s)) / (2 * c * np.cos(c * s))


def nonlinear():
    def drift(y):
        return np.stack([-y[..., 0] + y[..., 1] ** 2, np.sin(y[..., 0]) - 0.5 * y[..., 1]], axis=-1)

    def diffusion(y):
        return 0.3 * np.stack([np.stack([1 + y[..., 1] ** 2, y[..., 0]], -1),
                               np.stack([np.zeros_like(y[..., 0]), np.cos(y[..., 1])], -1)], axis=-2)  # fmt: skip

    return drift, diffusion


@pytest.mark.parametrize("scheme", ["euler", "milstein"])
def test_zero_delay_is_the_sde_integrator_bit_for_bit(scheme):
    drift, diffusion = nonlinear()
    times = np.linspace(0.0, 2.0, 401)
    sde = integrate_sde(drift, diffusion, np.array([0.5, -0.2]), times, scheme=scheme, paths=5, rng=3)
    sdde = integrate_sdde(drift, diffusion, np.array([0.5, -0.2]), 0, times, scheme=scheme, paths=5, rng=3)
    assert np.array_equal(sde.y, sdde.y) and sdde.delay == 0
    assert np.abs(sdde.y[-1] - sdde.y[0]).max() > 0.1


def test_same_seed_same_numbers_whatever_the_chunking_or_the_number_of_paths(monkeypatch):
    drift, diffusion = multiplicative(1.0, 1.0)
    times = np.linspace(0.0, 2.0, 9)
    fine = BrownianIncrements.create(2.0 / 640, 640, 1, 6, rng=8)
    runs = {}
    for scheme, source in (("euler", fine), ("milstein", fine.coarsen(4))):
        runs[scheme] = integrate_sdde(drift, diffusion, np.array([1.0]), 40, times, scheme=scheme, brownian=source)
        again = integrate_sdde(drift, diffusion, np.array([1.0]), 40, times, scheme=scheme, brownian=source)
        assert np.array_equal(runs[scheme].y, again.y)
    monkeypatch.setattr(sdde_module, "CHUNK", 7)
    for scheme, source in (("euler", fine), ("milstein", fine.coarsen(4))):
        chunked = integrate_sdde(drift, diffusion, np.array([1.0]), 40, times, scheme=scheme, brownian=source)
        assert np.array_equal(runs[scheme].y, chunked.y)
    few = integrate_sdde(drift, diffusion, np.array([1.0]), 40, times, paths=3, rng=8, dt=2.0 / 640)
    assert np.array_equal(few.y, runs["euler"].y[:, :3])
    assert np.abs(runs["euler"].y[-1] - runs["milstein"].y[-1]).max() > 1e-3  # different schemes differ


def test_an_sde_and_an_sdde_run_share_their_noise():
    drift, diffusion = linear(1.0, 1.0)
    times = np.linspace(0.0, 1.0, 101)
    sde = integrate_sde(drift, diffusion, np.array([0.0]), times, paths=4, rng=2)
    sdde = integrate_sdde(drift, diffusion, np.array([0.0]), 30, times, paths=4, rng=2)
    # Over the first delay the drift is that of the zero history, so the SDDE path is b W(t) on the SDE's noise.
    w = np.concatenate([np.zeros((1, 4, 1)), np.cumsum(sde.brownian.increments(), axis=0)])
    np.testing.assert_allclose(sdde.y[:31], w[:31], atol=1e-12)
    assert np.abs(sde.y[:31] - w[:31]).max() > 1e-3  # the SDE's own drift acts at once


def test_bad_input_is_refused_in_one_line():
    drift, diffusion = linear(1.0, 1.0)
    for call, fragment in [
        (lambda: delay_steps(0.3, 0.2), "not a whole number of grid steps"),
        (lambda: integrate_sdde(drift, diffusion, np.zeros(1), -1, [0.0, 1.0], dt=0.1), "delay_steps"),
        (lambda: integrate_sdde(drift, diffusion, np.zeros(1), 2, [0.0, 1.0], dt=0.1, scheme="weak2"), "SDDE scheme"),
        (lambda: integrate_sdde(drift, diffusion, np.zeros((3, 1)), 2, [0.0, 1.0], dt=0.1, paths=2), "rows"),
        (lambda: integrate_sdde(drift, diffusion, [np.nan], 2, [0.0, 1.0], dt=0.1), "finite"),
    ]:
        with pytest.raises(ProblemError, match=fragment) as info:
            call()
        assert "\n" not in str(info.value)
    assert delay_steps(0.3, 0.1) == 3


def test_a_delay_of_half_the_run_warns_as_the_algorithms_runs_do():
    from amsgd.core.errors import LongDelayWarning

    problem = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), delay=ConstantDelay(30))
    with pytest.warns(LongDelayWarning, match=r"the delay \(30 iterations\) is at least half the run \(40 steps\)"):
        integrate_sme_delayed(problem, np.eye(4)[0], 40, paths=2, rng=1)


def test_a_callable_history_is_read_on_the_grid():
    drift, diffusion = linear(2.0, 0.0)
    times = np.linspace(0.0, 0.5, 51)
    sol = integrate_sdde(drift, diffusion, lambda t: np.array([np.cos(t)]), 50, times, dt=0.01)
    # Over the first delay, X(t) = φ(0) − c Σ_n φ(t_n − s) Δ: a left Riemann sum of the history.
    expected = 1.0 - 2.0 * 0.01 * np.concatenate([[0.0], np.cumsum(np.cos(times[:-1] - 0.5))])
    np.testing.assert_allclose(sol.y[:, 0, 0], expected, atol=1e-12)


def test_mean_of_the_linear_sdde_follows_the_method_of_steps():
    c, s, t_end = 1.0, 1.0, 3.0
    # The method-of-steps series against an independent quadrature of x(t) = x(ks) − c ∫ x(u − s) du.
    ks = integrate.quad(lambda u: dde_mean(c, s, u - s), 2.0, 2.5)[0]
    assert dde_mean(c, s, 2.5) == pytest.approx(dde_mean(c, s, 2.0) - c * ks, abs=1e-12)
    # The noise-free run is Euler's method for the DDE: first order to the series.
    errors = []
    for lag in (25, 50, 100):
        y = integrate_sdde(*linear(c, 0.0), np.array([1.0]), lag, np.array([0.0, t_end]), dt=s / lag).y[-1, 0, 0]
        errors.append(abs(y - dde_mean(c, s, t_end)))
    assert np.log2(errors[0] / errors[1]) == pytest.approx(1.0, abs=0.1)
    assert np.log2(errors[1] / errors[2]) == pytest.approx(1.0, abs=0.1)
    # With noise, the ensemble mean at t = 1, 2, 3 matches the series within its 95% interval.
    times = np.arange(0.0, 3.0001, 0.01)
    sol = integrate_sdde(*linear(c, 1.0), np.array([1.0]), 100, times, paths=3000, rng=21)
    for t in (1.0, 2.0, 3.0):
        est = t_interval(sol.y[int(round(t / 0.01)), :, 0])
        assert est.ci_low <= dde_mean(c, s, t) <= est.ci_high, (t, est, dde_mean(c, s, t))


def test_stationary_variance_of_the_linear_sdde_matches_kuchler_mensch():
    # Euler's own stationary variance at this step is 0.36% above the closed form (its AR(K + 1) Lyapunov
    # equation), a tenth of the interval's half-width.
    c, b, s, dt = 1.0, 1.0, 0.8, 0.005
    times = np.arange(0.0, 60.0001, dt)
    sol = integrate_sdde(*linear(c, b), np.array([0.0]), 160, times, paths=600, rng=4,
                         observe=lambda y: y[:, 0] ** 2)  # fmt: skip
    per_path = sol.y[times >= 20.0].mean(axis=0)  # each path's late time average, then across paths
    est = t_interval(per_path)
    exact = kuchler_mensch_variance(c, b, s)
    assert est.ci_low <= exact <= est.ci_high, (est, exact)
    assert est.ci_high - est.ci_low < 0.1 * exact
    # The delay matters: the undelayed OU variance b²/(2c) = 0.5 is far outside.
    assert est.ci_low > 2 * b * b / (2 * c)


@pytest.mark.slow
def test_second_moment_of_the_multiplicative_sdde_matches_the_moment_equations():
    c, g, s, t_end = 1.0, 1.0, 0.5, 1.5
    coarse, fine = second_moment(c, g, s, t_end, 1.0, 500), second_moment(c, g, s, t_end, 1.0, 1000)
    exact = 2 * fine - coarse  # Richardson: the first-order error removed
    assert abs(fine - coarse) < 1e-3
    for scheme in ("euler", "milstein"):
        sol = integrate_sdde(*multiplicative(c, g), np.array([1.0]), 50, np.array([0.0, t_end]), dt=s / 50,
                             paths=4000, rng=13, scheme=scheme)  # fmt: skip
        x = sol.y[-1, :, 0]
        second = t_interval(x**2)
        assert second.ci_low <= exact <= second.ci_high, (scheme, second, exact)
        mean = t_interval(x)
        assert mean.ci_low <= dde_mean(c, s, t_end) <= mean.ci_high, (scheme, mean)


def _assert_order(fit, width):
    assert fit.ci_low <= fit.stated <= fit.ci_high, fit
    assert fit.ci_high - fit.ci_low < width, fit


def test_strong_orders_on_multiplicative_noise():
    drift, diffusion = multiplicative(1.0, 1.5)
    study = sdde_convergence_study(drift, diffusion, np.array([1.0]), 0.5, 1.5, steps=(24, 48, 96, 192),
                                   paths=500, rng=1)  # fmt: skip
    euler, milstein = study.results["euler"], study.results["milstein"]
    assert euler.strong.stated == 0.5 and milstein.strong.stated == 1.0
    _assert_order(euler.strong, 0.3)
    _assert_order(milstein.strong, 0.3)
    # The correction matters: at the finest step Milstein is several times closer to the fine run.
    assert milstein.strong_error[-1] < euler.strong_error[-1] / 5


@pytest.mark.slow
def test_strong_order_one_on_additive_noise():
    # The errors against the fine run are coherent across levels, so a fine run only 8 times finer than
    # the finest level tilts the fitted slope up by ~0.06; 64 times finer leaves ~0.01.
    drift, diffusion = linear(1.0, 1.0)
    study = sdde_convergence_study(drift, diffusion, np.array([1.0]), 0.5, 1.5, steps=(24, 48, 96, 192),
                                   schemes=("euler",), paths=400, rng=2, additive=True, reference_factor=64)  # fmt: skip
    _assert_order(study.results["euler"].strong, 0.3)


@pytest.mark.slow
@pytest.mark.parametrize(("scheme", "c", "g"), [("euler", 2.0, 0.7), ("milstein", 1.0, 1.0)])
def test_weak_order_one_on_the_second_moment(scheme, c, g):
    study = sdde_convergence_study(
        *multiplicative(c, g), np.array([1.0]), 0.5, 1.5, steps=(24, 48, 96, 192), schemes=(scheme,),
        paths=1000, rng=1, functional=lambda y: y**2, reference_factor=16,
    )  # fmt: skip
    _assert_order(study.results[scheme].weak, 0.6)


# The delayed SME of streaming PCA near e_1: per tangent mode dU = −c U(t − s) dt + b dW with
# c = a/(1 − μ) and b² = η σ²/(1 − μ)², so the floor is Σ_i b_i² (1 + sin c_i s)/(2 c_i cos c_i s).
ETA, MU = 1e-4, 0.9


@pytest.fixture(scope="module")
def pca():
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=ETA, mu=MU)
    return problem, predict(problem).modes


def closed_form_floor(modes, s):
    total = 0.0
    for k in modes.tangent:
        c = modes.rates[k] / (1 - MU)
        total += kuchler_mensch_variance(c, np.sqrt(ETA * modes.noise_variances[k]) / (1 - MU), s)
    return total


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0, 80, 160])
def test_pca_sdde_floor_matches_the_closed_form(pca, tau):
    problem, modes = pca
    ensemble = integrate_sme_delayed(problem, np.eye(4)[0], 20_000, delay_iterations=tau, dt=10.0, paths=300, rng=5)
    est = time_averaged_error(ensemble, window=0.5)
    floor = closed_form_floor(modes, tau * ETA)
    assert est.ci_low <= floor <= est.ci_high, (tau, est, floor)
    assert est.ci_high - est.ci_low < 0.1 * floor
    if tau == 160:  # the delay raises the floor well beyond the interval
        assert est.ci_low > closed_form_floor(modes, 0.0) * 1.1


def test_pca_sdde_at_zero_delay_is_the_sme_and_refuses_bad_delays(pca):
    problem, _ = pca
    start = np.array([0.3, 0.9, 0.2, 0.1]) / np.linalg.norm([0.3, 0.9, 0.2, 0.1])
    sme = integrate_sme(problem, start, 300, paths=4, rng=5, keep_states=True)
    sdde = integrate_sme_delayed(problem, start, 300, delay_iterations=0, paths=4, rng=5, keep_states=True)
    assert np.array_equal(sme.h, sdde.h)
    with pytest.raises(ProblemError, match=r"mode i = 1 \(radial, a = 2λ1 = 8\) is unstable beyond s\* = 0.01963"):
        integrate_sme_delayed(problem, start, 300, delay_iterations=200, paths=4)
    with pytest.raises(ProblemError, match="not a whole number of SDE steps"):
        integrate_sme_delayed(problem, start, 300, delay_iterations=15, dt=10.0, paths=4)
    delayed = Problem.from_spectrum((4, 3, 2, 1), eta=ETA, mu=MU, delay=ConstantDelay(3))  # τ from the problem
    assert integrate_sme_delayed(delayed, start, 30, dt=3.0, paths=2, rng=1).error.shape == (11, 2)


@pytest.mark.slow
def test_compiled_delayed_euler_equals_the_batched_one_path_by_path():
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=1e-3, mu=0.8)
    start = np.array([0.3, 0.9, 0.2, 0.1]) / np.linalg.norm([0.3, 0.9, 0.2, 0.1])
    runs = {
        scheme: integrate_sme_delayed(problem, start, 600, delay_iterations=20, dt=2.0, paths=24, rng=5,
                                      scheme=scheme, keep_states=True, save_every=3)
        for scheme in ("euler", "euler-jit")
    }  # fmt: skip
    np.testing.assert_allclose(runs["euler-jit"].h, runs["euler"].h, rtol=0, atol=1e-11)
    assert not runs["euler-jit"].diverged.any()


@pytest.mark.slow
def test_cli_integrate_sdde_reports_the_delay(capsys):
    code = main(["integrate", "--limit", "sdde", "--tau", "10", "--dt", "2", "--paths", "20", "--steps", "600",
                 "--seed", "3", "--eta", "1e-3"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["limit"] == "sdde" and out["delay_iterations"] == 10 and out["delay_time"] == pytest.approx(0.01)
    entry = out["stationary_error"]
    assert entry["ci_low"] < entry["mean"] < entry["ci_high"] and entry["n"] == 20  # over every path, not degenerate
    assert out["escape_iterations"]["n"] > 0
    assert out["stability_limit"]["mode"]["kind"] == "radial"



def test_cli_integrate_sdde_takes_round_robin_workers_as_their_constant_delay(capsys):
    """``workers:M`` is the constant delay M − 1: the same run, numbers and all, as ``constant:M-1``."""
    outs = []
    for delay in ("workers:3", "constant:2"):
        assert main(["integrate", "--limit", "sdde", "--delay", delay, "--paths", "4", "--steps", "40",
                     "--seed", "1"]) == 0  # fmt: skip
        out = json.loads(capsys.readouterr().out)
        outs.append({k: v for k, v in out.items() if k not in ("seconds", "problem")})
    assert outs[0]["delay_iterations"] == 2 and outs[0] == outs[1]

def test_the_sdde_prediction_is_made_before_the_runs_and_for_any_constant_delay(capsys, monkeypatch):
    """A problem the theory refuses (η (λ1 − λ2)(1 − μ) below 1e-10 at τ = 0) was refused only after the
    whole ensemble had run; a constant delay beyond the discrete theory's 2000 lags (τ = 5000 at η = 1e-8,
    far inside the SDDE's own limit) ran, then was refused for the closed-form floor, which needs no
    delay law."""
    import amsgd.diffusion.sme as sme

    monkeypatch.setattr(sme, "delayed_phase_predictions", lambda *a, **k: pytest.fail("ran before the refusal"))
    assert main(["integrate", "--limit", "sdde", "--tau", "0", "--mu", "0.999", "--eta", "1e-8", "--paths", "4",
                 "--steps", "100"]) == 2  # fmt: skip
    assert "is below 1e-10" in capsys.readouterr().err
    long = predict(Problem.from_spectrum((4, 3, 2, 1), eta=1e-8, delay=ConstantDelay(5000)))
    turns = predict(Problem.from_spectrum((4, 3, 2, 1), eta=1e-8, delay=parse_delay("workers:5001")))
    assert turns.sdde.floor == long.sdde.floor and turns.delay_time == long.delay_time  # round robin: the same delay
    short = predict(Problem.from_spectrum((4, 3, 2, 1), eta=1e-8, delay=ConstantDelay(1000)))
    assert long.delay_time == pytest.approx(5e-5) and long.sdde.delay_time == pytest.approx(5e-5)
    assert short.sdde.floor < long.sdde.floor < 1.001 * long.sdde.diffusion_floor


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "ode"], "the ODE has no noise"),
        (["--limit", "sdde", "--tau", "7", "--dt", "2"], "not a whole number of SDE steps"),
        (["--limit", "sdde", "--delay", "uniform:0-4"], "needs a constant delay"),
        (["--limit", "sdde", "--tau", "60"], "unstable beyond s*"),
        (["--limit", "sdde", "--convergence-study"], "--limit sde"),
    ],
)
def test_cli_integrate_sdde_rejects_bad_input(capsys, argv, message):
    assert main(["integrate", "--steps", "10", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_kuchler_mensch_variance_agrees_with_parseval():
    # Independent check of the closed form: Var = b² ∫ x(t)² dt with x the DDE's fundamental solution, by
    # Parseval (b²/2π) ∫ dω / |iω + c e^{−iωs}|², integrated numerically.
    c, b, s = 1.0, 1.0, 1.0
    cut = 2000.0  # beyond it the integrand is 1/ω² + O(ω⁻³): the tail is 1/cut to 1e-9
    value = integrate.quad(lambda w: 1.0 / abs(1j * w + c * np.exp(-1j * w * s)) ** 2, 0.0, cut, limit=5000)[0]
    value += 1.0 / cut
    assert b * b * value / np.pi == pytest.approx(kuchler_mensch_variance(c, b, s), rel=1e-6)


def test_a_delay_the_sdde_calls_stable_beyond_the_algorithms_own_limit_warns():
    """η 5e-5, μ 0.99: the SDDE's limit is 39.3 iterations, the algorithm's τ* 26; at τ = 30 the SDDE gave
    a floor of 0.0535 with no warning where the runs of the algorithm measure 0.091 (its mean dynamics are
    unstable there). The delay limit now carries the algorithm's τ*, and such a delay warns."""
    import warnings

    from amsgd.core.errors import RunWarning
    from amsgd.diffusion.sme import delay_limit

    problem = Problem.from_spectrum((4, 3, 2, 1), eta=5e-5, mu=0.99)
    limit = delay_limit(problem)
    assert limit.algorithm_tau_max == predict(problem).tau_max == 26 and limit.iterations == pytest.approx(39.27, abs=0.01)
    assert limit.to_dict()["algorithm_tau_max"] == 26
    start = np.array([1.0, 0.0, 0.0, 0.0])
    with pytest.warns(RunWarning, match=r"the delay 30 is below the SDDE's limit 39\.27 but beyond .* \(tau\* = 26 at"):
        integrate_sme_delayed(problem, start, 100, delay_iterations=30, paths=2, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)
        integrate_sme_delayed(problem, start, 100, delay_iterations=26, paths=2, rng=1)
