"""The SME ensemble of streaming PCA: coefficients, stationary error, phases and the CLI."""

import json
import re

import numpy as np
import pytest

from amsgd import Problem, ProblemError
from amsgd.cli import main
from amsgd.diffusion.schemes import noise_commutator
from amsgd.diffusion.sde import integrate_sde
from amsgd.diffusion.sme import (
    first_passage,
    integrate_sme,
    phase_predictions,
    sme_functions,
    time_averaged_error,
)


def gaussian_noise_covariance(lam, h):
    """Independent oracle: C(h) = P (Λ h hᵀ Λ + (hᵀΛh) Λ) P with P = I − h hᵀ (Gaussian data)."""
    p = np.eye(lam.size) - np.outer(h, h)
    big = np.diag(lam)
    return p @ (np.outer(lam * h, lam * h) + (h @ big @ h) * big) @ p


def test_sme_coefficients_match_the_gaussian_noise_and_are_not_commutative():
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=2e-3, mu=0.7)
    drift, diffusion = sme_functions(problem)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((5, 4))
    sigma = diffusion(h)
    for k in range(5):
        expected = problem.eta * gaussian_noise_covariance(problem.eigenvalues, h[k]) / (1 - problem.mu) ** 2
        assert np.allclose(sigma[k] @ sigma[k].T, expected, atol=1e-12)
        lam = problem.eigenvalues
        assert np.allclose(drift(h[k]), (lam * h[k] - (h[k] @ (lam * h[k])) * h[k]) / (1 - problem.mu))
    unit = h / np.linalg.norm(h, axis=1, keepdims=True)
    assert noise_commutator(diffusion, unit) > 1e-3


def test_sme_stationary_error_matches_leading_order():
    eta, mu = 1e-4, 0.9
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=eta, mu=mu)
    ensemble = integrate_sme(problem, np.eye(4)[0], 20_000, dt=10.0, paths=300, rng=5)
    estimate = time_averaged_error(ensemble, window=0.5)
    lam = problem.eigenvalues
    leading = eta * sum(lam[i] * lam[0] / (2 * (1 - mu) * (lam[0] - lam[i])) for i in range(1, 4))
    assert estimate.ci_low <= leading <= estimate.ci_high, (estimate, leading)
    assert (estimate.ci_high - estimate.ci_low) < 0.1 * leading
    assert not ensemble.diverged.any()


def test_phase_predictions_escape_and_travel():
    # Small η, so that the error floor (~0.002) is far below δ² and travel is the ODE's.
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=2e-5, mu=0.9)
    phases = phase_predictions(problem, iterations=60_000, paths=200, rng=1, dt=100.0)
    assert phases.escape.n == 200 and np.all(phases.escape_samples > 0)
    # ODE travel: h_1²/h_2² grows like exp(2 (λ1 − λ2) t/(1 − μ)) from δ²/(1−δ²) to (1−δ²)/δ².
    d2 = phases.delta_sq
    ode_travel = np.log(((1 - d2) / d2) ** 2) * (1 - problem.mu) / (2 * 1.0) / problem.eta
    assert phases.travel.ci_low <= ode_travel <= phases.travel.ci_high, (phases.travel, ode_travel)
    # Escape from e_2 is noise driven, hence widely spread, and slower than travel at this η.
    q10, q90 = np.nanquantile(phases.escape_samples, [0.1, 0.9])
    assert q90 > 2 * q10 and phases.escape.ci_low > phases.travel.ci_high
    summary = phases.to_dict()
    assert summary["escape_iterations"]["completed_fraction"] == 1.0


def test_sme_first_passage_and_start_coordinates():
    basis = np.array([[0.0, 1.0], [1.0, 0.0]])  # Σ = diag(1, 2): e_1 of the problem is the second axis
    problem = Problem.from_spectrum((2, 1), basis=basis, eta=1e-3, mu=0.5)
    ensemble = integrate_sme(
        problem, np.array([0.0, 1.0]), 200, paths=4, rng=0, coordinates="original", keep_states=True
    )
    assert np.allclose(ensemble.h[0], [1.0, 0.0]) and ensemble.error[0].max() == 0
    assert np.all(first_passage(ensemble, 0.5) == 0)
    for start in (np.zeros(2), np.array([np.nan, 1.0]), np.ones(3)):  # a zero start has no direction (all NaN)
        with pytest.raises(ProblemError, match="start must be a finite nonzero vector of length 2"):
            integrate_sme(problem, start, 200, paths=4, rng=0)


def test_batched_euler_and_sdeint_agree_on_the_sme():
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=5e-4, mu=0.9)
    drift, diffusion = sme_functions(problem)
    h0 = np.ones(4) / 2
    times = problem.eta * np.arange(0, 301, 50)
    batched = integrate_sde(drift, diffusion, h0, times, paths=3, rng=9)
    looped = integrate_sde(drift, diffusion, h0, times, scheme="sdeint-euler", brownian=batched.brownian)
    assert np.abs(batched.y - looped.y).max() < 1e-12


def test_cli_integrate_prints_summary(capsys):
    code = main(["integrate", "--paths", "20", "--steps", "600", "--dt", "2", "--seed", "3", "--eta", "1e-3"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("stationary_error", "escape_iterations"):  # estimates over the paths, their intervals not degenerate
        entry = out[key]
        assert entry["ci_low"] < entry["mean"] < entry["ci_high"] and 1 < entry["n"] <= 20
    assert out["problem"]["eta"] == 1e-3 and out["scheme"] == "euler"
    assert out["seed"] == {"entropy": 3, "spawn_key": []}  # the record simulate prints


def test_integrate_window_starts_where_simulate_window_starts(capsys):
    """``--window 0.1`` averages from 10% of the run to its end in both commands (integrate averaged
    the last 10%)."""
    assert main(["integrate", "--paths", "4", "--steps", "200", "--window", "0.1", "--seed", "1", "-q"]) == 0
    integrated = json.loads(capsys.readouterr().out)
    assert main(["simulate", "--replicates", "2", "--steps", "200", "--window", "0.1", "--seed", "1", "-q"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    assert integrated["stationary_window_iterations"] == [20.0, 200.0]
    assert simulated["window"] == {"start_iteration": 20, "iterations": 181}
    # saved every 40 iterations, the window from 100 starts at the first saved point in it, 120 (it took 80 in)
    assert main(["integrate", "--paths", "4", "--steps", "200", "--dt", "40", "--seed", "1", "-q"]) == 0
    coarse = json.loads(capsys.readouterr().out)
    assert coarse["stationary_window_iterations"] == [120.0, 200.0]
    assert coarse["stationarity"]["first_half"]["iterations"][0] == 120


def test_a_convergence_study_with_some_diverged_paths_says_so(capsys):
    """11 of 30 Euler paths blow up at the coarsest step (η 0.05, μ 0.5, dt 0.125 to 1): the study still
    reports, over the finite paths, and one warning line says what they are and what to lower."""
    assert main(["integrate", "--convergence-study", "--paths", "30", "--scheme", "euler", "--eta", "0.05", "--mu", "0.5",
                 "--dt", "0.125", "--steps", "20", "-q"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    lost = json.loads(captured.out)["convergence"]["schemes"]["euler"]["diverged_paths"]
    assert 0 < lost < 30
    assert f"paths diverged in the convergence study ({lost} of 30 with euler)" in captured.err


def test_a_study_where_some_schemes_lost_every_path_names_them_and_leaks_no_numpy_warning(capsys):
    """dt 25 on the default problem (seed 7): Euler keeps 3 paths of 20, Milstein and weak2 none. The warning named
    Euler alone (the others' null errors unexplained), after five raw NumPy RuntimeWarnings (overflow in
    the norm of the diverged ends, NaN in the order fits)."""
    assert main(["integrate", "--convergence-study", "--dt", "25", "--levels", "4", "--steps", "1600", "--paths", "20",
                 "--seed", "7", "-q"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    schemes = json.loads(captured.out)["convergence"]["schemes"]
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "RuntimeWarning" not in captured.err, captured.err
    for name, scheme in schemes.items():
        n = scheme["diverged_paths"]
        assert n == 0 or f"{n} of 20 with {name}" + (": no estimate" if n == 20 else "") in lines[0]
    assert any(s["diverged_paths"] == 20 for s in schemes.values()) and any(s["diverged_paths"] < 20 for s in schemes.values())


def test_cli_convergence_study(capsys, tmp_path):
    code = main([
        "integrate", "--convergence-study", "--paths", "20", "--steps", "40", "--levels", "3",
        "--scheme", "euler", "--reference-factor", "4", "--plot", str(tmp_path / "c.png"),
    ])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    euler = out["convergence"]["schemes"]["euler"]
    assert len(euler["dt"]) == 3 and euler["strong_order"]["stated"] == 0.5
    assert (tmp_path / "c.png").exists()


@pytest.mark.parametrize("study", [False, True])
def test_cli_integrate_says_when_every_path_diverged(capsys, tmp_path, study):
    """η 0.5 throws every path out: exit 3 and one line on stderr, the JSON still printed, no figure."""
    plot = tmp_path / "c.png"
    extra = ["--convergence-study", "--levels", "2", "--steps", "50", "--plot", str(plot)] if study else ["--steps", "300"]
    code = main(["integrate", "-q", "--paths", "8", "--eta", "0.5", *extra])
    captured = capsys.readouterr()
    assert code == 3 and not plot.exists()
    assert captured.err.strip().splitlines() == [
        "amsgd integrate: every one of "
        + ("the 8 paths diverged with every scheme: no estimate, no figure written" if study else
           "the 16 paths of the two ensembles (from e_2 and from e_1) diverged: no estimate") + "; lower --dt, --eta or --mu"
    ]  # fmt: skip
    out = json.loads(captured.out)
    if study:
        assert all(s["diverged_paths"] == 8 for s in out["convergence"]["schemes"].values())
    else:
        assert out["diverged_fraction"] == 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--scheme", "rk4"], "unknown scheme"),
        (["--paths", "1"], "paths must be"),
        (["--dt", "-1"], "dt (in iterations)"),
        (["--convergence-study", "--steps", "30", "--levels", "4"], "whole multiple"),
        (["--distribution", "student-t:3"], "fourth moments"),
        (["--no-scheme-check"], "--no-scheme-check applies to a --model's SME"),
        (["--steps", "0"], "--steps must be a positive number of iterations, got 0"),
        (["--scheme", ""], "--scheme is empty"),
        (["--plot", "c.png"], "--plot draws the convergence study's figure"),
    ],
)
def test_cli_integrate_rejects_bad_input(capsys, argv, message):
    steps = [] if "--steps" in argv else ["--steps", "10"]  # an option given twice is refused on its own
    assert main(["integrate", *steps, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_compiled_euler_equals_batched_euler_path_by_path():
    from amsgd.diffusion.sme import integrate_sme

    problem = Problem.from_spectrum((4, 3, 2, 1), eta=1e-3, mu=0.8)
    start = np.array([0.3, 0.9, 0.2, 0.1])
    runs = {
        scheme: integrate_sme(problem, start / np.linalg.norm(start), 600, paths=24, rng=5, scheme=scheme,
                              keep_states=True, save_every=3)
        for scheme in ("euler", "euler-jit")
    }  # fmt: skip
    assert runs["euler-jit"].scheme == "euler-jit"
    np.testing.assert_allclose(runs["euler-jit"].h, runs["euler"].h, rtol=0, atol=1e-11)
    np.testing.assert_allclose(runs["euler-jit"].error, runs["euler"].error, rtol=0, atol=1e-11)
    assert not runs["euler-jit"].diverged.any()


@pytest.mark.slow
def test_compiled_euler_handles_a_singular_noise_and_divergence():
    from amsgd import Rademacher
    from amsgd.diffusion.sme import integrate_sme

    # Rademacher data at e_1: S(e_1) is singular, so the kernel takes the symmetric root.
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=1e-3, mu=0.8, distribution=Rademacher())
    run = integrate_sme(problem, np.eye(4)[0], 200, paths=8, rng=1, scheme="euler-jit")
    assert np.isfinite(run.error).all() and run.error[-1].mean() > 0
    # A step far too large blows up: the paths are flagged, not averaged in.
    wild = integrate_sme(Problem.from_spectrum(eta=0.9, mu=0.0), np.eye(4)[1], 200, paths=4, rng=1, scheme="euler-jit")
    assert wild.diverged.all()


def test_the_stationary_error_interval_stays_in_the_range_of_sin2(capsys):
    """Two paths of two steps: a Student-t interval of sin² reached below 0 (−0.0059); it is cut to [0, 1]."""
    assert main(["integrate", "--paths", "2", "--steps", "2", "--seed", "1"]) == 0
    entry = json.loads(capsys.readouterr().out)["stationary_error"]
    assert entry["n"] == 2 and 0.0 == entry["ci_low"] <= entry["mean"] <= entry["ci_high"] <= 1.0


def test_integrate_warns_of_a_short_window_and_of_censored_phases(capsys):
    """Two iterations from e_1 average an error still rising from 0 (the window's halves differ), and in
    300 iterations from e_2 some paths have not escaped (the mean escape is over those that did)."""
    assert main(["integrate", "-q", "--paths", "40", "--steps", "2", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["stationarity"]["stationary"] is False
    assert "is not stationary" in captured.err and "use more steps (--steps)" in captured.err
    assert main(["integrate", "-q", "--paths", "40", "--steps", "300", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    done = out["escape_iterations"]["completed_fraction"]
    assert 0 < done < 1
    assert f"{1 - done:.0%} of the paths did not complete the escape" in out["censoring"]
    assert out["censoring"] in captured.err


def test_a_save_interval_that_does_not_divide_the_run_still_ends_it():
    """Every ``save_every``-th step is saved, and the last: 100 iterations saved every 7 end at 100, not 98."""
    from amsgd.diffusion.sme import integrate_sme, integrate_sme_delayed

    problem = Problem.from_spectrum((4, 3, 2, 1), eta=1e-3, mu=0.8)
    h0 = np.full(4, 0.5)
    for scheme in ("euler", "euler-jit"):
        plain = integrate_sme(problem, h0, 100, paths=3, rng=1, scheme=scheme, save_every=7)
        delayed = integrate_sme_delayed(problem, h0, 100, delay_iterations=4, paths=3, rng=1, scheme=scheme,
                                        save_every=7)  # fmt: skip
        for run in (plain, delayed):
            assert run.iterations.tolist() == [*range(0, 99, 7), 100]


def test_integrate_says_how_many_paths_diverged_and_that_none_escaped(capsys):
    """Student-t 4.01 data (fourth moments barely finite): most SME paths blow up. The run ended with exit
    status 0 and nothing on stderr, its one surviving path's error standing as the estimate, and the
    censoring line missing because no path at all completed the escape."""
    assert main(["integrate", "-q", "--distribution", "student-t:4.01", "--paths", "20", "--steps", "200",
                 "--seed", "0"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["escape_iterations"]["completed_fraction"] == 0.0
    lost = re.search(r"warning: (\d+) of the 20 paths from e_2 and (\d+) of the 20 from e_1 diverged", captured.err)
    assert lost is not None, captured.err
    assert 0 < int(lost[1]) + int(lost[2]) < 40 and (int(lost[1]) + int(lost[2])) / 40 == out["diverged_fraction"]
    slow = 1 - int(lost[1]) / 20  # the censoring line counts the others: more steps would not finish the lost
    if slow > 0:
        said = f"{slow:.0%} of the paths did not complete the escape within the horizon without diverging"
        assert said in out["censoring"] and out["censoring"] in captured.err
    else:
        assert "censoring" not in out and "did not complete" not in captured.err


def test_paths_that_diverged_are_not_called_slow(capsys):
    """At η 5e-3 the paths from e_2 that did not finish had all diverged, and the censoring line told the
    user to use more steps, which made more of them diverge; the line now counts only paths that stayed
    finite, and the refusal where every path diverges names the integrator's step too."""
    assert main(["integrate", "-q", "--paths", "50", "--steps", "1000", "--eta", "0.005", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    unfinished = 1.0 - out["escape_iterations"]["completed_fraction"]
    lost = re.search(r"warning: (\d+) of the 50 paths from e_2", captured.err)
    assert lost is not None and unfinished == pytest.approx(int(lost[1]) / 50) and unfinished > 0, captured.err
    assert "censoring" not in out and "did not complete" not in captured.err


def test_the_error_of_a_state_close_to_e1_is_not_rounded_to_zero():
    """``1 − h_1²/‖h‖²`` cancelled below about 1e-16: at η = 1e-13 the SME's stationary error read 0 with
    the interval [0, 0]. The tangent sum over the squared norm keeps it, to rounding."""
    from amsgd.diffusion.ode import sin2_error

    h = np.random.default_rng(3).standard_normal((50, 4)) * np.array([1.0, 1e-10, 3e-9, 1e-12])
    independent = np.sum(h[:, 1:] ** 2, axis=1) / np.sum(h**2, axis=1)
    assert np.all(independent > 0)
    np.testing.assert_allclose(sin2_error(h), independent, rtol=1e-13)
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=1e-13)
    run = integrate_sme(problem, np.array([1.0, 0, 0, 0]), 2000, paths=20, rng=2, scheme="euler-jit")
    floor = time_averaged_error(run)
    assert 0 < floor.ci_low and floor.mean < 1e-18  # the floor is O(η): about 4e-20 here


@pytest.mark.parametrize("delayed", [False, True])
def test_the_saved_size_counted_is_what_the_scheme_saves(monkeypatch, delayed):
    """The compiled scheme saves the states (d numbers per path and save) whatever ``keep_states``, and
    was counted as saving the error alone (d = 50, 200 paths, 10⁶ steps: 1.5 GiB counted, then a
    traceback allocating 74.5 GiB); the delayed NumPy schemes save the error alone, and were counted as
    saving the states (refused at 22.4 GiB for 0.45)."""
    import amsgd.diffusion.sme as sme

    problem = Problem.from_spectrum((4, 3, 2, 1))
    error_bytes = 101 * 10 * 8  # 100 iterations saved at every step, 10 paths
    monkeypatch.setattr(sme, "MAX_SAVED_BYTES", 2 * error_bytes)  # the error fits, the states (4 numbers) do not
    run = sme.integrate_sme_delayed if delayed else integrate_sme
    kwargs = {"delay_iterations": 2} if delayed else {}
    start = np.array([1.0, 0.0, 0.0, 0.0])
    assert run(problem, start, 100, paths=10, rng=1, scheme="euler", **kwargs).error.shape == (101, 10)
    for scheme, keep in (("euler-jit", False), ("euler", True)):
        with pytest.raises(ProblemError, match=r"10 paths saved at 101 times take 0\.0 GiB"):
            run(problem, start, 100, paths=10, rng=1, scheme=scheme, keep_states=keep, **kwargs)
