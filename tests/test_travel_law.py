"""The travel and the convergence of single runs from the saddle: the sampled laws from a run's escape
to its arrival, and from its arrival to its first error ``<= ε``.

* against the algorithm: Async-MSGD from the saddle e_2, each run's iterations from error ``<= 1 − δ²``
  to error ``<= δ²``, on six problems (Gaussian and Rademacher data, μ from 0 to 0.95, a constant
  delay, a floor above δ²): the law's mean within 5% of the simulated mean (the ODE's travel misses that on three of
  them) and a two-sample Kolmogorov–Smirnov test that does not reject at 1%;
* the same for the convergence from the arrival to ε on three problems (the law of a run started at
  the travel's end point at rest is 3 times too slow on the first), and the per-run total from the
  saddle to ε within the runs' 95% interval widened by 2%, and the mean error's settling at ε
  (``settled_iterations``) within its simulated crossing's interval widened by 3%;
* the law without the data's coupling V (Rademacher data then travel with a Gaussian-like spread)
  fails the Kolmogorov–Smirnov test;
* the model's noise variances are the data's: the plane's ``S cos² 2θ + (V/4) sin² 2θ`` and the
  orthogonal coordinates' interpolation, against sample moments of three data laws;
* where the floor lies above δ², the runs decide whether the travel ends;
* bad input, an unfinished law and the JSON keys.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from amsgd import Problem, ProblemError, parse_delay, parse_distribution, predict
from amsgd.core.estimates import Estimate
from amsgd.diffusion.theory.first_passage import FirstPassageLaw
from amsgd.diffusion.theory.phases import Phases
from amsgd.diffusion.theory.travel_law import PlaneModel, SaddleRuns, saddle_runs
from amsgd.simulate import simulate
from amsgd.validation.statistics import crossing_interval

REPLICATES = 2048
SIM_SEED = 31
#: The target on the mean, relative, and the level the Kolmogorov–Smirnov test must not reject at.
MEAN_TOLERANCE = 0.05
KS_LEVEL = 0.01

CASES = {
    "default": ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.9, "constant:0", "gaussian"),
    "rademacher": ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.9, "constant:0", "rademacher"),
    "no-momentum": ((4.0, 3.0, 2.0, 1.0), 1e-2, 0.0, "constant:0", "gaussian"),
    "mu-0.95": ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95, "constant:0", "gaussian"),
    "delay-5": ((4.0, 3.0, 2.0, 1.0), 2e-3, 0.7, "constant:5", "rademacher"),
    "mu-0.7": ((4.0, 3.0, 2.0, 1.0), 1e-3, 0.7, "constant:0", "gaussian"),
    "delay-10": ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.9, "constant:10", "gaussian"),
    "floor-above": ((4.0, 3.0, 2.0, 1.0), 2e-3, 0.9, "constant:0", "gaussian"),  # floor 0.17 > δ² = 0.1
}
TRAVEL_CASES = ["default", "rademacher", "no-momentum", "mu-0.95", "delay-5", "floor-above"]
#: Problems where ε = 2F lies below δ², so that phase III takes time.
CONVERGE_CASES = ["default", "mu-0.7", "delay-10"]


def _problem(case: str) -> Problem:
    spectrum, eta, mu, delay, data = CASES[case]
    return Problem.from_spectrum(spectrum, eta=eta, mu=mu, delay=parse_delay(delay),
                                 distribution=parse_distribution(data))  # fmt: skip


@lru_cache(maxsize=8)
def _simulated(case: str) -> tuple[np.ndarray, np.ndarray, Phases, Estimate]:
    """Each simulated run's arrival from e_2, its first error <= ε after it and its first error <= ε
    after its escape (the iterations at which they come, rows 0 to 2), its escape subtracted from the
    first (its travel), the phases of the problem, and when the mean error over runs first reaches ε,
    with its interval."""
    problem = _problem(case)
    phases = predict(problem).phases
    steps = int(4 * (phases.escape_time + phases.travel_time + phases.converge_time) / problem.eta) + 1000
    run = simulate(problem, steps, REPLICATES, rng=SIM_SEED, start="e2", record_every=1, threads=2)
    errors, k = run.error[~run.diverged], run.iterations.astype(float)

    def first(level: float, after: np.ndarray) -> np.ndarray:
        below = (errors <= level) & (k[None, :] >= after[:, None])
        return np.where(below.any(axis=1), k[np.argmax(below, axis=1)], np.nan)

    escape = first(1 - phases.delta_sq, np.zeros(errors.shape[0]))
    arrival = first(phases.delta_sq, escape)
    converged = first(phases.epsilon, arrival)
    reached = first(phases.epsilon, escape)  # on the travel where ε >= δ²
    assert np.isnan(converged).mean() < 0.005  # followed long enough
    keep = np.isfinite(converged)
    settled = crossing_interval(k, -errors, -phases.epsilon)  # the mean error, falling to ε
    return arrival[keep] - escape[keep], np.stack([arrival[keep], converged[keep], reached[keep]]), phases, settled


@pytest.mark.slow
@pytest.mark.parametrize("case", TRAVEL_CASES)
def test_the_travel_law_matches_simulated_runs(case):
    travel, _, phases, _ = _simulated(case)
    law = phases.travel_law
    assert abs(law.mean.mean / travel.mean() - 1) < MEAN_TOLERANCE
    assert stats.ks_2samp(law.samples[np.isfinite(law.samples)], travel).pvalue > KS_LEVEL
    # the law is closer than the ODE's travel, the same for every run
    assert abs(law.mean.mean - travel.mean()) < abs(phases.travel_time / phases.eta - travel.mean())


@pytest.mark.slow
def test_the_travel_of_rademacher_data_needs_the_coupling():
    """Without ``V`` the plane's noise at mid-travel is that at the ends, ``E[Y_1² Y_2²]``; Rademacher
    data have ``V = 0``: their runs cross the middle with almost no noise and travel far less spread."""
    travel, _, phases, _ = _simulated("rademacher")
    assert phases.escape_coupling == pytest.approx(0.0, abs=1e-12)
    rates, noise = (np.array(v) for v in phases.saddle_modes)
    optimum_rates, optimum_noise = np.array(phases.tangent_rates), np.array(phases.tangent_noise)
    model = PlaneModel(
        optimum_rates[0], noise[0], 2 * (16 + 9),  # Var(Y_1² − Y_2²) of Gaussian data, λ = (4, 3)
        np.stack([rates[1:], optimum_rates[1:]], axis=1), np.stack([noise[1:], optimum_noise[1:]], axis=1),
    )  # fmt: skip
    gaussian_like = saddle_runs(model, phases.eta, phases.mu, 0, phases.delta_sq, 5000, 100_000).travel
    assert stats.ks_2samp(gaussian_like.samples, travel).pvalue < KS_LEVEL
    assert np.std(gaussian_like.samples) > 1.3 * np.std(travel)


@pytest.mark.slow
@pytest.mark.parametrize("case", CONVERGE_CASES)
def test_the_convergence_after_arrival_matches_simulated_runs(case):
    """A run arrives moving, with the other coordinates at their fluctuations: it reaches ε soon after
    (ε = 2F is just below δ² here); the law of a run started at rest at the travel's end point is
    slower, three times on the default problem."""
    _, (arrival, converged, _), phases, _ = _simulated(case)
    times, law = converged - arrival, phases.converge_law
    assert phases.epsilon < phases.delta_sq and phases.converge_noise == "finite-eta"
    assert abs(law.mean.mean / times.mean() - 1) < MEAN_TOLERANCE
    assert stats.ks_2samp(law.samples[np.isfinite(law.samples)], times).pvalue > KS_LEVEL
    if case == "default":
        assert phases.converge_law_at_rest.mean.mean > 2.5 * times.mean()
    total = stats.t.interval(0.95, converged.size - 1, loc=converged.mean(), scale=stats.sem(converged))
    assert total[0] - 0.02 * converged.mean() <= phases.total_iterations <= total[1] + 0.02 * converged.mean()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mu-0.95", "no-momentum", "floor-above"])
def test_where_epsilon_is_above_delta_sq_the_total_is_the_runs_first_passage_below_it(case):
    """ε = 2F at or above δ²: a run's error first reaches ε on its travel, before δ². The total is the
    escape's mean and the sampled runs' mean from escape to that passage, within the simulated runs'
    95% interval widened by 2% (as where ε < δ²); the escape and the whole travel to δ² (what the total
    was) lie beyond it, and the mean error settles later."""
    _, (_, _, reached), phases, settled = _simulated(case)
    assert phases.epsilon >= phases.delta_sq and phases.converge_iterations == 0
    total = stats.t.interval(0.95, reached.size - 1, loc=reached.mean(), scale=stats.sem(reached))
    slack = 0.02 * reached.mean()
    assert total[0] - slack <= phases.total_iterations <= total[1] + slack
    assert phases.escape_iterations + phases.travel_iterations > total[1] + slack
    assert phases.total_iterations < settled.ci_low


@pytest.mark.slow
@pytest.mark.parametrize("case", CONVERGE_CASES)
def test_the_mean_error_settles_when_the_sampled_runs_mean_does(case):
    """``settled_iterations``, when the mean error over runs from the saddle first reaches ε, against the
    simulated mean curve's crossing: within its 95% interval widened by 3% of it. Runs escape at
    widely spread times, so the mean settles well after the sum of the means of the phases (a third
    later on the default problem)."""
    _, _, phases, settled = _simulated(case)
    assert phases.settled_iterations == pytest.approx(settled.mean, abs=settled.mean * 0.03 + (settled.ci_high - settled.ci_low) / 2)
    assert phases.total_iterations < settled.ci_low


@pytest.mark.parametrize("data", ["gaussian", "rademacher", "student-t:9"])
def test_the_model_noise_is_the_data_variance_along_the_plane(data):
    """At angle θ in the plane of e_1 and e_2 (``h = (sin θ, cos θ, 0)``, ``e = (cos θ, −sin θ, 0)``):
    ``Var[(yᵀh)(yᵀe)] = S cos² 2θ + (V/4) sin² 2θ`` and ``E[(yᵀh)² Y_3²]`` the shares' weighting of
    its values at e_2 and e_1, from the phases' derived S, V and modes, against 2e6 samples."""
    problem = Problem.from_spectrum((4.0, 3.0, 2.0), distribution=parse_distribution(data))
    phases = predict(problem).phases
    s, v = phases.escaping_mode[1], phases.escape_coupling
    saddle_noise, optimum_noise = phases.saddle_modes[1], phases.tangent_noise
    y = problem.distribution.sample(np.random.default_rng(5), 2_000_000, problem.eigenvalues, problem.basis)
    for theta in (0.0, 0.3, np.pi / 4, 1.2):
        h, e = np.array([np.sin(theta), np.cos(theta), 0]), np.array([np.cos(theta), -np.sin(theta), 0])
        plane = (y @ h) * (y @ e)
        formula = s * np.cos(2 * theta) ** 2 + v / 4 * np.sin(2 * theta) ** 2
        se = np.std((plane - plane.mean()) ** 2) / np.sqrt(plane.size)
        assert abs(np.var(plane) - formula) < 5 * se + 1e-9
        other = (y @ h) ** 2 * y[:, 2] ** 2
        share = np.sin(theta) ** 2
        weighted = (1 - share) * saddle_noise[1] + share * optimum_noise[1]
        assert abs(other.mean() - weighted) < 5 * np.std(other) / np.sqrt(other.size) + 1e-9


def test_phases_report_the_travel_law_beside_the_ode():
    phases = predict(Problem.from_spectrum((4.0, 3.0, 2.0, 1.0))).to_dict()["phases"]
    law = phases["travel_law"]
    assert phases["travel_iterations"] == law["mean"] and law["unfinished"] == 0
    assert law["quantiles"]["q10"] < law["median"] < law["quantiles"]["q90"]
    ode = phases["mean_curve"]["travel_iterations"]
    assert ode == pytest.approx(phases["mean_curve"]["travel_time"] / 5e-4)
    assert law["mean_ci"][0] > ode  # the other coordinates count in a run's error: it arrives later
    assert phases["total_iterations"] == pytest.approx(
        phases["escape_iterations"] + phases["travel_iterations"] + phases["converge_iterations"]
    )


def test_a_law_not_followed_long_enough_is_unfinished():
    model = PlaneModel(1.0, 12.0, 50.0, np.zeros((0, 2)), np.zeros((0, 2)))
    runs = saddle_runs(model, 5e-4, 0.9, 0, 0.1, 50, 100, epsilon=0.05)
    for law in (runs.travel, runs.convergence):
        assert np.all(np.isnan(law.samples)) and np.isnan(law.mean.mean)
        assert law.to_dict()["unfinished"] == 50 and law.to_dict()["mean"] is None
    with pytest.raises(ProblemError, match="not followed to"):
        saddle_runs(model, 5e-4, 0.9, 0, 0.1, 5, 10).convergence


def test_a_partly_unfinished_law_counts_its_unfinished_paths_in_the_quantiles():
    """An unfinished path passes later than any finished one: the quantiles are those of all paths (NumPy's
    where every path finished), null where they fall among the unfinished; the phases' note names the law."""
    times = np.random.default_rng(5).exponential(100.0, 1001)
    np.testing.assert_allclose([FirstPassageLaw(times).quantile(q) for q in (0.0, 0.1, 0.5, 0.9, 1.0)],
                               np.quantile(times, [0.0, 0.1, 0.5, 0.9, 1.0]), rtol=1e-12)  # fmt: skip
    censored = np.where(times > np.quantile(times, 0.8), np.nan, times)  # the slowest fifth not followed
    law = FirstPassageLaw(censored)
    assert law.quantile(0.5) == pytest.approx(np.quantile(times, 0.5), rel=1e-12)
    assert law.quantile(0.75) == pytest.approx(np.quantile(times, 0.75), rel=1e-12)
    assert law.to_dict()["quantiles"]["q90"] is None and law.to_dict()["unfinished"] == 200
    phases = predict(_problem("default")).phases
    note = phases._censored_note("travel_law", law)
    assert f"200 of its 1001 sampled paths had not got there within the {phases.saddle_runs.iterations}" in note
    assert phases._censored_note("travel_law", FirstPassageLaw(times)) == ""


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"plane_rate": 0.0}, "rate"),
        ({"plane_noise": -1.0}, "noise variances"),
        ({"plane_coupling": np.nan}, "noise variances"),
        ({"rates": np.zeros((2, 3))}, "pairs"),
        ({"noise": np.zeros((3, 2))}, "pairs"),
        ({"noise": -np.ones((2, 2))}, "noise variances"),
        ({"delta_sq": 0.5}, "delta_sq"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"paths": 0}, "paths"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    coefficients = {"plane_rate": 1.0, "plane_noise": 12.0, "plane_coupling": 50.0, "rates": np.ones((2, 2)),
                    "noise": np.ones((2, 2))}  # fmt: skip
    run = {"eta": 5e-4, "mu": 0.9, "delay": 0, "delta_sq": 0.1, "paths": 10, "iterations": 10, "epsilon": 0.05}
    with pytest.raises(ProblemError, match=match):
        model = PlaneModel(**{k: kwargs.get(k, v) for k, v in coefficients.items()})
        saddle_runs(model, **{k: kwargs.get(k, v) for k, v in run.items()})


def test_the_travel_noise_is_derived_in_the_stated_form():
    """The engine's forms (:mod:`amsgd.derivations.travel_noise`) are those the model samples: S the
    escaping mode's noise and V the escape's coupling, here for Gaussian fourth moments
    (``m_aaaa = 3 λ_a²``, ``m_aabb = λ_a λ_b``) against the phases' own numbers."""
    from amsgd.derivations import travel_noise as tn

    s, v = tn.plane_noise()
    assert s == tn.M22
    assert sp.expand(v - (tn.M4_1 + tn.M4_J - 2 * tn.M22 - (tn.LAMBDA_1 - tn.LAMBDA_J) ** 2)) == 0
    assert sp.simplify(tn.orthogonal_noise() - (sp.sin(tn.THETA) ** 2 * tn.M1I + sp.cos(tn.THETA) ** 2 * tn.MJI)) == 0
    phases = predict(Problem.from_spectrum((4.0, 3.0, 2.0, 1.0))).phases
    gaussian = {tn.M4_1: 3 * 16, tn.M4_J: 3 * 9, tn.M22: 12, tn.LAMBDA_1: 4, tn.LAMBDA_J: 3}
    assert float(s.subs(gaussian)) == pytest.approx(phases.escaping_mode[1], rel=1e-12)
    assert float(v.subs(gaussian)) == pytest.approx(phases.escape_coupling, rel=1e-12)


def test_a_floor_above_the_arrival_level_is_decided_by_the_runs():
    """Where the floor lies above δ² = 0.1 a run's error reaches δ² on a dip. Σ = diag(2, 1), η 0.02:
    floor 0.2, every sampled run dips there soon after its travel, so the travel law stands (the
    row "floor-above" checks such a law against simulated runs). At η 0.06 the floor is 0.6, above 1/2:
    the arrivals are not followed, the travel and the totals are null, and the note and the document
    say why (the document had said that the law's paths were short)."""
    from amsgd.derivations import document

    dips = predict(Problem.from_spectrum((2.0, 1.0), eta=0.02)).phases
    assert dips.floor >= dips.delta_sq and dips.arrives
    assert np.isfinite(dips.travel_iterations) and dips.to_dict()["travel_law"]["unfinished"] == 0
    far = predict(Problem.from_spectrum((2.0, 1.0), eta=0.06)).phases
    assert far.floor >= 0.5 and not far.arrives
    out = far.to_dict()
    assert out["travel_iterations"] is None and out["travel_law"]["unfinished"] == out["travel_law"]["paths"]
    assert out["escape_iterations"] > 0 and out["total_iterations"] is None
    assert "stays far from e_1" in out["note"] and out["arrives"] is False and dips.to_dict()["arrives"] is True
    assert "outside the range of sin^2" not in out["note"]
    # μ 0.999 on the default problem: the diffusion floor 4.33 was quoted as "the floor", with no word
    outside = predict(Problem.from_spectrum(mu=0.999)).phases.to_dict()["note"]
    assert "the diffusion floor 4.33 is at or above 0.5" in outside and "outside the range of sin^2" in outside
    assert document._travel_law_prose(out).text.startswith("Travel: there is no per-run law here: the floor lies")


def test_the_runs_give_up_once_too_many_have_not_arrived():
    """Floor above δ² (d = 20, floor 0.30): once more than 1% of all sampled paths escaped without
    arriving, the travel cannot end, and the sampling stops there; the paths it followed are those of
    the full sampling, whose unarrived share (2010 of 5000) gives the same verdict. The note says so."""
    from amsgd.diffusion.theory.travel_law import MAX_UNARRIVED

    phases = predict(Problem.from_spectrum(np.r_[4.0, np.linspace(2.0, 0.02, 19)], eta=2e-3)).phases
    runs = phases.saddle_runs
    followed, paths = runs.followed, runs.escape.size
    assert phases.floor > phases.delta_sq and followed is not None and not phases.arrives
    full = saddle_runs(phases._plane_model, phases.eta, phases.mu, phases.delay, phases.delta_sq, paths,
                       runs.iterations)  # fmt: skip
    assert full.followed is None
    for given, whole in ((runs.escape, full.escape), (runs.arrival, full.arrival)):
        np.testing.assert_array_equal(given[:followed], whole[:followed])
        assert np.all(np.isnan(given[followed:]))
    assert runs.unarrived[1] == math.floor(MAX_UNARRIVED * paths) + 1  # the path that decided it was the last
    escaped, unarrived = full.unarrived
    assert unarrived > MAX_UNARRIVED * escaped
    assert f"more than 1% of all {paths} paths, which decides it: the sampling stopped after the first {followed}" in (
        phases.to_dict()["note"])


def test_a_travel_that_too_many_runs_do_not_finish_is_null():
    """Floor above δ²: with 2 of 100 escaped runs not arrived (more than 1%) the travel does not end,
    its law is NaN and the note counts them; with 1 of 100 it stands."""
    phases = predict(Problem.from_spectrum((2.0, 1.0), eta=0.02)).phases
    escape = np.full(100, 10.0)
    for unarrived, ends in ((2, False), (1, True)):
        arrival = np.where(np.arange(100) < unarrived, np.nan, 30.0)
        copy = replace(phases)
        copy.__dict__["saddle_runs"] = SaddleRuns(escape, arrival, None, 400)  # what the cached property holds
        assert copy.arrives is ends
        assert np.isnan(copy.travel_iterations) is not ends
        if not ends:
            assert "2 of the 100 sampled runs that escaped had not within the 400 iterations" in copy.to_dict()["note"]

def test_beyond_the_mean_boundary_there_is_no_travel_law():
    """τ 100 on the default problem (τ* 32): the reduced model, which leaves the norm out, had every
    run arrive (mean 550 iterations), while the runs' norm oscillates with growing amplitude and many
    blow up; the travel law is null, the note and the document say why, and the escape law stands."""
    from amsgd.derivations import document
    from amsgd.diffusion.theory.phases import BEYOND_MEAN

    problem = Problem.from_spectrum(delay=parse_delay("constant:100"))
    p = predict(problem)
    out = p.phases.to_dict()
    assert not p.stability.stable and out["mean_stable"] is False and out["travel_iterations"] is None
    assert out["travel_law"]["mean"] is None and BEYOND_MEAN in out["note"] and out["escape_iterations"] > 0
    prose = " ".join(b.text for b in document._phase_number_blocks(out) if isinstance(b, document.Prose))
    assert "Travel: there is no per-run law here: beyond the mean-dynamics boundary" in prose
    run = simulate(problem, 1500, 256, rng=3, start="e2", record_every=1500, coordinates="none", progress=False)
    assert run.diverged_fraction > 0.1  # the runs do not all travel
    inside = predict(Problem.from_spectrum(delay=parse_delay("constant:31"))).phases.to_dict()
    assert inside["mean_stable"] is True and inside["travel_iterations"] > 0


@pytest.mark.parametrize(("eta", "mu", "noted"), [(1e-2, 0.7, True), (5e-4, 0.99, True), (1e-2, 0.5, False),
                                                   (5e-4, 0.9, False)])  # fmt: skip
def test_a_large_effective_step_is_noted_where_the_travel_drifts(eta, mu, noted):
    """η λ_1/(1 − μ) above 0.1 (0.13 and 0.2 here; 0.08 and 0.02 not): the travel's reduced model ran
    11–14% long against 4000 runs there with no word; the JSON and the document's travel say so."""
    from amsgd.derivations import document

    out = predict(Problem.from_spectrum(eta=eta, mu=mu)).phases.to_dict()
    note = out["large_step_note"]
    assert (note is not None) == noted
    if noted:
        assert note.startswith(f"at the effective step eta lambda_1/(1-mu) = {eta * 4 / (1 - mu):.3g}, above 0.1")
        assert f"Accuracy: {note}." in document._travel_law_prose(out).text
