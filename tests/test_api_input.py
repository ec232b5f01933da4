"""The Python API at the edges of its input: one clear ProblemError for bad input, strict JSON from
every ``to_dict``, and results that stay right where their arithmetic under- or overflows."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import amsgd
from amsgd import Problem, ProblemError, StudentT, parse_delay, parse_distribution, predict
from amsgd.advise import advise
from amsgd.core.delays import HistogramDelay
from amsgd.core.models import ModelProblem, load_data, split_data
from amsgd.derivations import derive
from amsgd.diffusion import convergence_study, integrate_sde
from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.ou import ou_mean_cov, sample_ou
from amsgd.diffusion.sdde import integrate_sdde, sdde_convergence_study
from amsgd.diffusion.sme import integrate_sme, phase_predictions
from amsgd.diffusion.theory.options import PredictOptions
from amsgd.figures.standard import standard_figures
from amsgd.figures.validation import draw_validation
from amsgd.simulate import simulate
from amsgd.validation import run_validation
from amsgd.validation.presets import get_preset

SMALL = Problem.from_spectrum((2.0, 1.0), eta=0.01, mu=0.5)


def strict_json(document: dict) -> dict:
    """The document through JSON without NaN or infinity (what a strict parser accepts)."""
    return json.loads(json.dumps(document, allow_nan=False))


def _normal_pair(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws of the law of :data:`SMALL`: independent Gaussian coordinates with variances 2 and 1."""
    return rng.standard_normal((n, 2)) * np.sqrt([2.0, 1.0])


def _sweep(problem: Problem):
    from amsgd.sweep import Sweep, SweepGrid

    return Sweep(problem, SweepGrid(("gaussian",), (2e-3,), (0.5,), "tau", (0,)), steps=10, replicates=2, seed=0)


def _drift(y):
    return -y


def _unit_noise(y):
    return np.ones(y.shape + (1,))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Problem([[2.0, 0.0], [0.0]]), "covariance must be numbers"),
        (lambda: Problem(np.array([[1 + 1j, 0], [0, 1]])), "covariance must be real"),
        (lambda: Problem([[1e308, 1e307], [1e307, 1e308]]), r"must lie in \[1e-100, 1e\+100\]"),
        (lambda: Problem.from_spectrum((1e-300, 1e-301), eta=1e295), r"must lie in \[1e-100, 1e\+100\]"),
        (lambda: Problem.from_spectrum(np.array([2 + 1j, 1])), "spectrum must be real"),
        (lambda: Problem.from_spectrum((2, 1), basis="abc"), "basis must be numbers"),
        (lambda: parse_distribution(None), "distribution must be a name"),
        (lambda: StudentT(1e308), r"takes NU up to 1e\+300, got NU = 1e\+308"),  # its predictions hung
        (lambda: derive(None), "derive needs a Problem"),
        (lambda: amsgd.diffusion.integrate_ode(None, [1, 0], [0, 1]), "integrate_ode needs a Problem"),
        (lambda: predict(SMALL, {"delta_sq": 0.2}), "options must be a PredictOptions"),
        (lambda: predict(SMALL, 0), "options must be a PredictOptions"),
        (lambda: PredictOptions(tradeoff_mus=None), "tradeoff momenta must be a non-empty list"),
        (lambda: simulate(SMALL, 50, 4, start=["a", "b"]), "start must be numbers"),
        (lambda: simulate(SMALL, 50, 4, start=[1 + 1j, 0]), "start must be real"),
        (lambda: simulate(SMALL, 50, 4, start=b"e1"), "start must be numbers"),
        (lambda: Problem.from_spectrum((2, 1), eta="0.1"), "eta must be a number, got '0.1'"),
        (lambda: Problem.from_spectrum((2, 1), mu=True), "mu must be a number, got True"),
        (lambda: HistogramDelay(tuple(np.eye(1, 1_000_002, 1_000_001)[0])), "reaches 1000001 iterations"),
        (lambda: HistogramDelay("abc"), "delay histogram must be a list of probabilities, got 'abc'"),
        (lambda: HistogramDelay((0.5 + 0j, 0.5)), "delay histogram must be real"),
        (lambda: amsgd.SampledDistribution(lambda r, n: r.standard_normal((n, 2)), moment_samples=0),
         "moment_samples must be an integer >= 2"),
        (lambda: predict(SMALL.replace(distribution=amsgd.SampledDistribution(_normal_pair, moment_samples=3))),
         "cannot be estimated from these 3 draws .* more moment_samples"),  # "look infinite" for Gaussian draws
        (lambda: _sweep(SMALL.replace(distribution=amsgd.SampledDistribution(_normal_pair))),
         "takes its data laws from the grid's distributions .* not the problem's distribution sampler:sampler"),
        (lambda: sample_ou(-np.eye(2), np.eye(2), [0, 0], [0, 1], paths=1.5), "paths must be a positive integer"),
        (lambda: sample_ou(-np.eye(2), np.eye(2), [0, 0, 0], [0, 1]), "u0 must have shape"),
        (lambda: BrownianIncrements.create(0.1, np.nan, 2), "steps must be a positive integer"),
        (lambda: integrate_sde(_drift, _unit_noise, np.ones(1), [0, 1], paths=-1, dt=0.1), "paths must be"),
        (lambda: integrate_sde(lambda y: -y[:1], _unit_noise, np.ones(1), [0, 1], paths=4, dt=0.1),
         r"drift must map \(P, 1\) to \(P, 1\), got \(1, 1\)"),  # path 0's drift was given to every path
        (lambda: integrate_sdde(_drift, lambda y: np.ones((1, 1, 1)), [1.0], 2, [0, 0.5, 1], dt=0.1, paths=3),
         r"diffusion must map \(P, 1\) to \(P, 1, m\), got \(1, 1, 1\)"),
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=(4, 8), bootstrap=0), "bootstrap must"),
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=(4, 8), confidence=2), "confidence must"),
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=(8, 8)), "two different positive step counts"),
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=(4, 8), schemes=()), "at least one scheme"),
        (lambda: SMALL and predict(SMALL).at(eta=1e-15), "raise eta"),
        (lambda: predict(SMALL).delay_boundary(["a"]), "mus .*must be numbers"),
        (lambda: predict(SMALL).delay_boundary([0.5, 1.0]), r"mus .*in \[0, 1\)"),
        (lambda: advise(SMALL, [1, 2], ["a"]), "mus .*must be numbers"),
        (lambda: advise(SMALL, [1, 2], [[0.5, 0.9]]), r"mus .*must be a list of numbers, got an array of shape \(1, 2\)"),
        (lambda: advise(ModelProblem("logistic", load_data("digits"), eta=0.1), [1, 4], [0.5, 1.0]),
         r"mu must lie in \(-1, 1\) for a model .*got 1$"),  # was "raise eta", after the minimum's search
        (lambda: phase_predictions(SMALL, iterations=300, paths=50, rng=1, confidence=95),
         "confidence must lie in"),  # every interval came back NaN
        (lambda: amsgd.core.estimates.t_interval(np.ones(4), 1.0), "confidence must lie in"),  # [low, high] of the support
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=(4.5, 8)), "whole step counts"),
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=8), "whole step counts"),
        (lambda: convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=(4, 8), schemes="euler"), "list of scheme names"),
        (lambda: integrate_sde(_drift, _unit_noise, np.ones(1), [0, 1], dt=0.1, scheme=["euler"]), "unknown scheme"),
        (lambda: integrate_sde(_drift, _unit_noise, np.ones(1), [0, 1], dt=0.1, brownian="x"), "brownian must be"),
        (lambda: integrate_sde(_drift, _unit_noise, np.ones(1), [0, 1], dt=0.1, observe=lambda y: None), "observe must"),
        (lambda: integrate_sde(_drift, _unit_noise, ["a"], [0, 1], dt=0.1), "y0 must be numbers"),
        (lambda: integrate_sde(_drift, _unit_noise, [], [0, 1], dt=0.1), "d >= 1"),
        (lambda: BrownianIncrements.create(0.1, 10, 1, 3, rng=0).path(5), "below the 3 paths"),
        (lambda: BrownianIncrements.create(0.1, 10, 1, 3, rng=0).increments(paths=[5]), r"path indices in \[0, 3\)"),
        (lambda: BrownianIncrements.create(0.1, 10, 1, 3, rng=0).generator(-1), "path index must be"),
        (lambda: BrownianIncrements.create(0.1, 10, 1, 3, rng=0).increments(0.5, 2), "start .*integer"),
        (lambda: BrownianIncrements.create(0.1, 10, 1, 3, rng=0).coarsen(None), "coarsening factor"),
        (lambda: sample_ou(np.zeros((2, 2, 2)), np.ones((2, 1)), [0, 0], [0, 1]), "A must be"),
        (lambda: sample_ou("a", [[1.0]], [0.0], [0, 1]), "A must be numbers"),
        (lambda: amsgd.diffusion.integrate_ode(SMALL, [1, 0], [[0], [1, 2]]), "times must be numbers"),
        (lambda: simulate(SMALL, 20, 2, progress=False).with_predicted_phases(1e308, None), "escape must be"),
        (lambda: simulate(SMALL, 20, 2, progress=False).with_predicted_phases(-1.0, None), "escape must be"),
        (lambda: run_validation(None, experiments=["ode"]), "needs a Problem"),
        (lambda: run_validation(SMALL, preset=5, experiments=["ode"]), "preset must be a Preset, its name or None, got 5"),
        (lambda: Problem.from_spectrum([[4, 3], [2, 1]]), r"spectrum must be a flat list of eigenvalues, .*shape \(2, 2\)"),
        (lambda: run_validation(SMALL, budget={"replicates": 1}, experiments=["ode"]), "budget must be"),
        (lambda: run_validation(SMALL, experiments=["stability"], perturb={"tau-star": float("nan")}),
         "perturb tau-star: the factor must be finite"),
        (lambda: run_validation(SMALL, experiments=["stability"], perturb={"tau-star": "2"}),
         "perturb tau-star: the factor must be a number"),
        (lambda: get_preset(["default"]), "preset must be one of"),
        (lambda: BrownianIncrements.create(0.1, 10, 1, 3, rng=0).increments(paths=[-1]), r"path indices in \[0, 3\)"),
        (lambda: sdde_convergence_study(_drift, _unit_noise, 1.0, 0.0, 1.0, steps=(4.5, 8)), "whole step counts"),
        (lambda: sdde_convergence_study(_drift, _unit_noise, 1.0, 0.0, 1.0, steps=(4, 8), schemes="euler"),
         "list of scheme names"),
        (lambda: integrate_sdde(_drift, _unit_noise, [1.0], 0, [0, 1], dt=0.1, brownian="x"), "brownian must be"),
        (lambda: integrate_sdde(_drift, _unit_noise, [1.0], 2, [0, 1], dt=0.1, paths=-1), "paths must be"),
        (lambda: integrate_sdde(_drift, _unit_noise, [1.0], np.nan, [0, 1], dt=0.1), "delay_steps must be an integer"),
        (lambda: sdde_convergence_study(_drift, _unit_noise, 1.0, 0.0, 1.0, steps=(4, 8), reference_factor=1),
         "reference_factor must be an integer >= 2"),  # the finest level was its own reference: order 1019.7
        (lambda: sdde_convergence_study(_drift, _unit_noise, 1.0, 0.0, 1.0, steps=(4, 8), reference_factor=2.5),
         "reference_factor must be an integer >= 2"),
        (lambda: convergence_study(_drift, _unit_noise, 1.0, 1.0, steps=(4, 8), schemes=("",)), "no empty name"),
        (lambda: integrate_sme(SMALL, [0.0, 1.0], np.nan, dt=1, paths=2), r"horizon \(iterations\) must be a finite"),
        (lambda: integrate_sme(SMALL, [0.0, 1.0], -1, dt=1, paths=2), r"horizon \(iterations\) must be a finite"),
        (lambda: ou_mean_cov(-np.eye(1), np.eye(1), [0.0], [-1.0]), "time step must be"),
        (lambda: standard_figures(SMALL, ".", mus="0.5"), "mus .*must be numbers"),
        (lambda: draw_validation(None, "no-such-folder"), "directory 'no-such-folder' does not exist"),
        (lambda: predict(SMALL).to_dict("stability"), "sections must be a list of section names"),
        (lambda: predict(SMALL).to_dict(5), "sections must be a list of section names, got 5"),
        (lambda: predict(SMALL).to_dict(["stability", "floor"]), r"unknown sections \['floor'\]: the JSON has problem"),
    ],
)
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ProblemError, match=message):
        call()


def test_the_sections_asked_for_are_those_of_the_whole_document():
    """``to_dict(sections)`` holds the sections named, in the document's order, each equal to the whole
    document's; the phase laws are not sampled for it."""
    whole = predict(SMALL).to_dict()
    p = predict(SMALL)
    part = p.to_dict(["sdde", "stability", "tradeoff", "sde_formulas"])
    assert list(part) == ["stability", "tradeoff", "sdde", "sde_formulas"]
    assert all(part[name] == whole[name] for name in part)
    assert "escape_law" not in p.phases.__dict__  # the sampled law, a cached property, was not computed


def test_a_changed_covariance_is_predicted_again():
    """``at(covariance=...)`` re-derives the modes of the new Σ instead of reusing the old ones."""
    sections = ["stationary_error", "stability"]
    moved = predict(SMALL).at(covariance=np.diag([3.0, 1.0])).to_dict(sections)
    fresh = predict(Problem.from_spectrum((3.0, 1.0), eta=0.01, mu=0.5)).to_dict(sections)
    for key in ("linearized", "finite_eta", "diffusion"):
        assert moved["stationary_error"][key] == fresh["stationary_error"][key]
    assert moved["stability"]["tau_max"] == fresh["stability"]["tau_max"]


@pytest.mark.parametrize("scale", [1e-100, 1e100])
def test_only_eta_times_sigma_matters_at_the_ends_of_the_accepted_scale(scale):
    """Σ scaled by 1e±100 with η scaled back gives the same finite-η floor and τ* (to rounding); the
    scaled problem's whole JSON document is built (every part works at that scale)."""
    base = predict(Problem.from_spectrum((1.0, 0.5), eta=1e-2, mu=0.5))
    scaled = predict(Problem.from_spectrum((scale, 0.5 * scale), eta=1e-2 / scale, mu=0.5)).to_dict()
    assert scaled["stationary_error"]["finite_eta"]["value"] == pytest.approx(base.finite_eta.value, rel=1e-10)
    assert scaled["stability"]["tau_max"] == base.stability.tau_max


def test_phases_beyond_the_sampled_reach_are_null_with_a_reason():
    """At η = 1e-6 the passage laws are not sampled (beyond 2e6 iterations): their means are null in
    strict JSON, and the note says why; the mean curve's numbers stand."""
    phases = strict_json(predict(Problem.from_spectrum((2.0, 1.0), eta=1e-6, mu=0.5)).to_dict())["phases"]
    assert phases["escape_iterations"] is None and phases["settled_iterations"] is None
    assert "was not sampled" in phases["note"]
    assert phases["mean_curve"]["escape_iterations"] > 2e6
    sampled = strict_json(predict(SMALL).to_dict())["phases"]
    assert sampled["escape_iterations"] > 0 and "was not sampled" not in sampled["note"]


def test_a_convergence_study_on_two_step_sizes_is_strict_json():
    """Two step counts (the minimum) leave the regression's standard error undefined: null, not NaN."""
    study = convergence_study(_drift, lambda y: 0.5 * _unit_noise(y), [1.0], 1.0, steps=(4, 8),
                              schemes=("euler",), paths=20, rng=0, bootstrap=20)  # fmt: skip
    fits = strict_json(study.to_dict())["schemes"]["euler"]
    assert fits["strong_order"]["regression_se"] is None and fits["strong_order"]["order"] > 0


@pytest.mark.parametrize("spec", ["geometric:1.0000001", "poisson:2.5", "ps:4:lognormal:0.30000000000000004"])
def test_delay_specs_parse_back_to_the_same_model(spec):
    delay = parse_delay(spec)
    assert parse_delay(delay.spec) == delay and delay.spec == spec


@pytest.mark.parametrize("nu", [4.0000001, 5.0, 2.0000001])
def test_student_t_specs_parse_back_to_the_same_law(nu):
    law = StudentT(nu)
    again = parse_distribution(law.spec)
    assert again.nu == law.nu and again.finite_fourth_moments == law.finite_fourth_moments


def test_a_models_start_point_is_checked_by_every_entry():
    """A start of the wrong length or with NaN is one ProblemError in predict_model as in the
    simulator and the limits (predict_model raised a reshape TypeError or a LinAlgError)."""
    from amsgd.core.models import ModelProblem, load_data
    from amsgd.diffusion.model_limits import integrate_model_limit
    from amsgd.diffusion.theory.model_predictions import predict_model
    from amsgd.simulate.model_engine import simulate_model

    problem = ModelProblem("logistic", load_data("digits"), batch=8)
    calls = (lambda x: predict_model(problem, start=x), lambda x: simulate_model(problem, 2, 1, start=x),
             lambda x: integrate_model_limit(problem, 2, 1, start=x))  # fmt: skip
    for call in calls:
        for start in (np.zeros(3), np.full(650, np.nan), ["a"] * 650):
            with pytest.raises(ProblemError, match="start must be"):
                call(start)
    for seed in ("a", -1, 1.5):  # JAX's key raised a TypeError for "a" and took -1
        with pytest.raises(ProblemError, match="seed must be a non-negative integer"):
            predict_model(problem, seed=seed)


def _synthetic_least_squares():
    """Least squares with 10 features (11 parameters) on 200 Gaussian examples."""
    from amsgd.core.models import ModelProblem

    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 10))
    data = split_data("synthetic", x, x @ rng.standard_normal(10) + rng.standard_normal(200), classification=False)
    return ModelProblem("least-squares", data, eta=0.02, mu=0.5, batch=4, l2=1e-2)


def test_a_models_sections_are_those_of_its_whole_document():
    """``predict_model(...).to_dict(sections)`` as ``predict``'s: the sections named, in the document's
    order, each the whole document's; a name it does not have is refused."""
    from amsgd.diffusion.theory.model_predictions import predict_model

    whole = predict_model(_synthetic_least_squares()).to_dict()
    part = predict_model(_synthetic_least_squares()).to_dict(["relaxation_iterations", "stability"])
    assert list(part) == ["stability", "relaxation_iterations"] and all(part[k] == whole[k] for k in part)
    with pytest.raises(ProblemError, match=r"unknown sections \['phases'\]: the JSON has problem, point"):
        predict_model(_synthetic_least_squares()).to_dict(["phases"])


def test_a_model_above_the_full_hessian_size_says_its_floor_and_rate_are_bounds(monkeypatch):
    """With the exact Hessian limited to 5 parameters, least squares with 11 parameters gets its top
    modes by Lanczos: the JSON says so, and the floor is below (the rate above) the full theory's."""
    from amsgd.diffusion.theory import model_point
    from amsgd.diffusion.theory.model_predictions import predict_model

    problem = _synthetic_least_squares()
    full = predict_model(problem)
    monkeypatch.setattr(model_point, "FULL_HESSIAN_MAX", 5)
    partial = predict_model(problem, top=3)
    point = strict_json(partial.to_dict())["point"]
    assert not point["full_spectrum"] and "only the 3 stiffest Hessian modes" in point["note"]
    assert "note" not in full.to_dict(["point"])["point"]
    assert 0 < partial.floor.value < full.floor.value and partial.rate > full.rate


def test_a_model_run_file_names_what_made_it(tmp_path):
    """The NetCDF of a model run carries the problem (l2, hidden units, data) and the seed, enough to
    run it again and get the same numbers."""
    import xarray as xr

    from amsgd.core.models import ModelProblem, load_data
    from amsgd.simulate.model_engine import simulate_model

    problem = ModelProblem("mlp", load_data("digits"), batch=8, hidden=3, l2=0.02)
    run = simulate_model(problem, 6, 2, rng=9, record_every=3, progress=False)
    path = tmp_path / "run.nc"
    run.to_xarray().to_netcdf(path)
    with xr.open_dataset(path) as ds:
        described = json.loads(ds.attrs["problem"])
        assert (described["hidden"], described["l2"], described["data"]["name"]) == (3, 0.02, "digits")
        again = simulate_model(problem, int(ds.attrs["steps"]), 2, rng=json.loads(ds.attrs["seed"])["entropy"],
                               record_every=3, progress=False)  # fmt: skip
        np.testing.assert_array_equal(again.values["train_loss"], ds["train_loss"].values)


def test_negative_tradeoff_momenta_are_for_models():
    """PredictOptions takes momenta in (−1, 1) (a model's range); predict refuses negative ones for
    streaming PCA, whose momentum lies in [0, 1)."""
    options = PredictOptions(tradeoff_mus=(-0.5, 0.2))
    assert options.tradeoff_mus == (-0.5, 0.2)
    with pytest.raises(ProblemError, match=r"must lie in \[0, 1\) for streaming PCA"):
        predict(SMALL, options)
    with pytest.raises(ProblemError, match=r"in \(-1, 1\)"):
        PredictOptions(tradeoff_mus=(-1.0,))


def test_phase_times_are_not_negative_at_a_tiny_delta():
    """δ² = 1e-300: the mean curve crosses at once, and the formula's rounding gave −5.6e-18."""
    from amsgd.diffusion.theory.options import PredictOptions

    phases = predict(Problem.from_spectrum(), PredictOptions(delta_sq=1e-300)).phases
    assert phases.escape_time == 0.0 and phases.to_dict()["mean_curve"]["escape_iterations"] == 0.0


def test_what_the_checks_still_take():
    """Forms the entries' checks must not refuse: boolean labels in a data set (0 and 1), a boolean
    observable (saved as 0 and 1) on each integrator's path, step counts as a range or whole floats."""
    x = np.random.default_rng(0).normal(size=(40, 3))
    data = split_data("flags", x, x[:, 0] > 0)
    assert data.classes == 2
    above = lambda y: y[:, 0] > 0.5  # noqa: E731
    for scheme in ("euler", "sdeint-euler"):
        sol = integrate_sde(_drift, _unit_noise, np.ones(1), [0, 0.5, 1], dt=0.1, paths=3, rng=1, scheme=scheme, observe=above)
        assert sol.y.dtype == float and set(np.unique(sol.y)) <= {0.0, 1.0}
    delayed = integrate_sdde(_drift, _unit_noise, [1.0], 2, [0, 0.5, 1], dt=0.1, paths=3, rng=1, observe=above)
    assert set(np.unique(delayed.y)) <= {0.0, 1.0}
    for steps in (range(4, 9, 4), np.array([4.0, 8.0])):
        study = convergence_study(_drift, _unit_noise, [1.0], 1.0, steps=steps, schemes=["euler"], paths=50, rng=0)
        np.testing.assert_allclose(study.results["euler"].dt, [0.25, 0.125])


def test_numpy_scalars_are_numbers_like_python_ones():
    """np.int64 and np.float32 arguments were refused by some checks ("must be a positive integer, got
    np.int64(100)") and taken by others; now every entry takes them, with the Python numbers' results."""
    plain = simulate(SMALL, 200, 3, rng=1, divergence_norm=10, window=0.5, progress=False)
    numpy = simulate(SMALL, np.int64(200), np.int64(3), rng=np.int64(1), divergence_norm=np.int64(10),
                     window=np.float32(0.5), progress=False)  # fmt: skip
    np.testing.assert_array_equal(plain.error, numpy.error)
    options = PredictOptions(steps=np.int64(100), tradeoff_workers=[np.int64(2)], delta_sq=np.float32(0.1),
                             epsilon=np.float32(0.01), gamma=np.float64(0.3))  # fmt: skip
    assert type(options.steps) is int and options.tradeoff_workers == (2,) and options.steps == 100
    assert all(type(x) is float for x in (options.delta_sq, options.epsilon, options.gamma))  # the JSON takes them
    boundary = predict(SMALL).delay_boundary(0.5)  # one momentum, as advise takes it
    assert boundary.mus.tolist() == [0.5] and boundary.tau_max.tolist() == predict(SMALL).delay_boundary([0.5]).tau_max.tolist()
    p = predict(Problem.from_spectrum())
    assert p.at(delay=np.int64(3)).to_dict() == p.at(delay=3).to_dict()
    with pytest.raises(ProblemError, match="got 0.5"):
        PredictOptions(tradeoff_mus=0.5)
    with pytest.raises(ProblemError, match="positive integer"):
        PredictOptions(steps=np.bool_(True))


def test_unknown_fields_and_a_window_beside_window_start_are_refused():
    """``replace(foo=1)`` raised TypeError; a window fraction was not checked where window_start was given."""
    with pytest.raises(ProblemError, match="got foo"):
        SMALL.replace(foo=1)
    from amsgd.core.delays import EventDrivenDelay

    with pytest.raises(ProblemError, match="takes no SIGMA"):  # built in Python as parse_delay refuses it
        EventDrivenDelay(4, "exp", 3.0)
    with pytest.raises(ProblemError, match="window must be a fraction"):
        simulate(SMALL, 100, 2, rng=1, window=5, window_start=10, progress=False)
    assert simulate(SMALL, 100, 2, rng=1, window_start=10, progress=False).window_start == 10


def test_a_sampler_is_checked_for_its_draws_mean_and_covariance():
    """Text or complex draws were NumPy's errors (or only a ComplexWarning); a sampler whose covariance
    is not Σ made the finite-η floor infinite without a word; now the first two are one clear error and
    the third a warning beyond the draws' own sampling error (a right sampler, even heavy-tailed, is
    quiet)."""
    import warnings

    from amsgd.core.errors import RunWarning

    sigma = Problem.from_spectrum((3.0, 2.0, 1.0), eta=0.01, mu=0.5)
    scale = np.sqrt([3.0, 2.0, 1.0])

    def law(sampler):
        return sigma.replace(distribution=amsgd.SampledDistribution(sampler, "s", moment_samples=20_000))

    with pytest.raises(ProblemError, match="sampler's draws must be"):
        predict(law(lambda rng, n: np.full((n, 3), "x")))
    with pytest.raises(ProblemError, match="must be real"):
        predict(law(lambda rng, n: rng.standard_normal((n, 3)) * (1 + 1j)))
    with pytest.warns(RunWarning, match="covariance Sigma"):
        predict(law(lambda rng, n: rng.standard_normal((n, 3))))  # identity, not diag(3, 2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(law(lambda rng, n: rng.standard_normal((n, 3)) * scale))
        predict(law(lambda rng, n: rng.standard_t(5, (n, 3)) * scale * np.sqrt(3 / 5)))


def test_indices_out_of_range_are_one_clear_error():
    """A stationary point, a mode or an SVAG amplification out of range: a bare StopIteration, an
    IndexError (or, at −1, the last mode's rate) and a math domain error before."""
    from amsgd.simulate.svag import svag_weights

    problem = Problem.from_spectrum((4, 3, 2, 1))
    assert derive(problem).point(2).j == 2
    for j in (0, 5):
        with pytest.raises(ProblemError, match=f"the stationary points are e_1 … e_4; got j = {j}"):
            derive(problem).point(j)
    theory = predict(problem)
    assert theory.ou_rate(0) == pytest.approx(5e-4 * 8 / 0.1)
    for index in (-1, 4):
        with pytest.raises(ProblemError, match=r"mode index must be 0 … 3"):
            theory.ou_rate(index)
    assert svag_weights(1) == (1.0, 0.0)
    for amplification in (0, -1, 1.5):
        with pytest.raises(ProblemError, match="the SVAG amplification L must be a positive integer"):
            svag_weights(amplification)


def test_options_outside_their_range_are_refused_in_the_python_entries(tmp_path):
    """A document format other than markdown or latex gave LaTeX, μ = 1 gave a delay limit of 0, and a
    negative number of retries was taken."""
    from amsgd.sweep import Sweep, SweepGrid, run_sweep

    theory = predict(Problem.from_spectrum((4, 3, 2, 1)))
    with pytest.raises(ProblemError, match="a document's format is markdown or latex, got 'bogus'"):
        theory.document("bogus")
    assert theory.tau_max_delay_differential(mu=0.8) == pytest.approx(2 * theory.tau_max_delay_differential())
    for mu in (1.0, -0.1, float("nan")):
        with pytest.raises(ProblemError, match=r"mu must lie in \[0, 1\)"):
            theory.tau_max_delay_differential(mu=mu)
    sweep = Sweep(Problem.from_spectrum((2, 1)), SweepGrid(("gaussian",), (2e-3,), (0.5,), "tau", (0,)), steps=10,
                  replicates=2, seed=0)  # fmt: skip
    with pytest.raises(ProblemError, match="retries must be an integer >= 0, got -1"):
        run_sweep(sweep, tmp_path / "s.nc", retries=-1)
    # a client that is none, a truthy word for a flag, a callback that is a number: they failed once
    # points ran (AttributeError, worker processes for "no", TypeError after the first point stored)
    for options, needle in [({"client": "x"}, "client must be a dask.distributed Client (or None), got str"),
                            ({"local_processes": "no"}, "local_processes must be True, False or None, got 'no'"),
                            ({"progress": 1}, "progress must be True, False or None, got 1"),
                            ({"on_point": 5}, "on_point must be a function (or None), got 5"),
                            ({"compute": "f"}, "compute must be a function (or None), got 'f'")]:  # fmt: skip
        with pytest.raises(ProblemError, match=re.escape(needle)):
            run_sweep(sweep, tmp_path / "s.nc", **options)
    assert not (tmp_path / "s.nc").exists() and not (tmp_path / "s.nc.parts").exists()


def test_a_problem_takes_a_delay_and_a_data_law_as_their_specs_or_an_integer_delay():
    """``Predictions.at(delay=3)`` took an integer while ``Problem(delay=3)`` refused it, and neither took
    the command line's specs; now both take the same, and what is neither is refused in one line."""
    problem = Problem.from_spectrum((4, 3, 2, 1), delay=3, distribution="student-t:8")
    assert (problem.delay.spec, problem.distribution.spec) == ("constant:3", "student-t:8")
    assert Problem.from_spectrum(delay="uniform:0-8").delay == parse_delay("uniform:0-8")
    assert predict(Problem.from_spectrum()).at(delay="constant:3").problem.delay.spec == "constant:3"
    for bad in (True, 2.5, None):
        with pytest.raises(ProblemError, match="delay must be a DelayModel, its spec or an integer"):
            Problem.from_spectrum(delay=bad)
    with pytest.raises(ProblemError, match="distribution must be a Distribution or its spec"):
        Problem.from_spectrum(distribution=3)


def test_a_model_entry_refuses_what_is_not_a_model_and_text_or_booleans_for_numbers():
    """simulate_model raised AttributeError on None or a streaming-PCA Problem; ModelProblem took
    eta="0.1" and eta=True (as 1.0)."""
    from amsgd.core.models import ModelProblem, load_data
    from amsgd.simulate.model_engine import simulate_model

    for wrong in (None, SMALL):
        with pytest.raises(ProblemError, match="simulate_model needs a ModelProblem"):
            simulate_model(wrong, 10, 2)
    data = load_data("digits")
    for field, value in (("eta", "0.1"), ("eta", True), ("l2", True), ("mu", "0.5")):
        with pytest.raises(ProblemError, match=f"{field} must be a number"):
            ModelProblem("logistic", data, **{field: value})
    with pytest.raises(ProblemError, match="the delays and the delayed iterates need .* GiB"):
        simulate_model(ModelProblem("logistic", data), 10, 10**8)  # refused before any per-replicate work


def test_a_model_too_large_for_its_minimum_is_refused_before_its_parameters_are_made():
    """advise and validate at --hidden 1e9 raised NumPy's allocation error from deep in the optimiser
    (and at 3e8 the process was killed for memory): the size is counted from the model's shapes."""
    from amsgd.core.models import ModelProblem, load_data
    from amsgd.diffusion.theory.model_point import MAX_POINT_BYTES, check_point_memory
    from amsgd.diffusion.theory.model_predictions import minimum_point
    from amsgd.simulate.models import layout_of

    data = load_data("digits")
    with pytest.raises(ProblemError, match=r"the 75,000,000,010 parameters' .* need .* GiB \(limit 4 GiB\); use a smaller --hidden"):
        minimum_point(ModelProblem("mlp", data, hidden=10**9))
    # the bound is 8 p (n + 40) bytes: the largest hidden layer under it passes, the next is refused
    per_unit = layout_of(ModelProblem("mlp", data, hidden=2)).size - layout_of(ModelProblem("mlp", data, hidden=1)).size
    rest = layout_of(ModelProblem("mlp", data, hidden=1)).size - per_unit
    largest = (MAX_POINT_BYTES // (8 * (data.examples + 40)) - rest) // per_unit
    check_point_memory(ModelProblem("mlp", data, hidden=int(largest)))
    with pytest.raises(ProblemError, match="per-example gradients"):
        check_point_memory(ModelProblem("mlp", data, hidden=int(largest) + 1))



def test_predictions_and_derivations_pickle_after_use():
    """Once a part had been computed, ``pickle.dumps`` failed on the local functions it holds (the data
    law's moments in the derivation, the formula texts of the modes), so whether a result could go to
    a process pool depended on what had been looked at. They pickle as their inputs and compute the
    same parts again."""
    import pickle

    p = predict(SMALL)
    whole = p.to_dict()
    again = pickle.loads(pickle.dumps(p))
    assert json.dumps(again.to_dict(), allow_nan=False) == json.dumps(whole, allow_nan=False)
    derivation = derive(SMALL)
    derivation.sde  # the OU limits: the moment function of the data law is now cached on it
    loaded = pickle.loads(pickle.dumps(derivation))
    assert loaded.route == derivation.route
    assert [str(point.ou.noise) for point in loaded.sde] == [str(point.ou.noise) for point in derivation.sde]


def test_a_model_takes_its_delay_as_a_problem_does():
    """``Problem(delay=3)`` and ``Problem(delay="workers:4")`` worked where ``ModelProblem`` refused both."""
    data = load_data("digits")
    for given, spec in ((3, "constant:3"), ("workers:4", "workers:4"), (parse_delay("uniform:0-2"), "uniform:0-2")):
        assert ModelProblem("logistic", data, delay=given).delay.spec == spec == Problem.from_spectrum(delay=given).delay.spec
    with pytest.raises(ProblemError, match="delay must be a DelayModel, its spec or an integer, got 2.5"):
        ModelProblem("logistic", data, delay=2.5)


def test_the_linear_theory_takes_a_delay_spec_and_names_a_fractional_delay():
    """``stability_report(..., delay="uniform:0-4")`` was refused (a model had to be parsed first), and
    ``delay=2.5`` was told its "probabilities must be a non-empty vector"."""
    from amsgd.diffusion.theory.error_floor import linearized_floor
    from amsgd.diffusion.theory.stability import stability_report

    by_spec = stability_report([1.0, 2.0], 5e-4, 0.9, "uniform:0-4").to_dict()
    assert by_spec == stability_report([1.0, 2.0], 5e-4, 0.9, parse_delay("uniform:0-4")).to_dict()
    assert linearized_floor([1.0], [1.0], 5e-4, 0.9, "constant:3").floor == linearized_floor([1.0], [1.0], 5e-4, 0.9, 3).floor
    with pytest.raises(ProblemError, match="delay tau must be a non-negative integer, got 2.5"):
        stability_report([1.0, 2.0], 5e-4, 0.9, 2.5)
