"""The divergence risk of a model's runs (diffusion/theory/model_divergence.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_models import problem

from amsgd.core.delays import ConstantDelay, GeometricDelay, UniformDelay
from amsgd.core.models import Dataset, ModelProblem, load_data, split_data
from amsgd.diffusion.theory.linear_recursion import delay_law, spectral_radius
from amsgd.diffusion.theory.model_divergence import (
    BLOW_UP,
    KICK_FRACTION,
    LINE_MIN,
    LINE_POINTS,
    ModelDivergenceRisk,
    StiffestLine,
    _blows_up,
    critical_impulses,
    divergence_distance,
    kick_probability,
    line_fate,
    model_divergence_risk,
    stiffest_line,
)
from amsgd.diffusion.theory.model_predictions import predict_model
from amsgd.diffusion.theory.options import PredictOptions
from amsgd.diffusion.theory.random_growth import blow_up_fraction
from amsgd.diffusion.theory.stability import critical_delay
from amsgd.simulate.model_engine import simulate_model
from amsgd.simulate.models import model_functions
from amsgd.validation.statistics import proportion_interval


def _line(lam: float, slope) -> StiffestLine:
    """``φ'`` given as a function, tabulated on the module's grid."""
    side = np.geomspace(LINE_MIN / math.sqrt(lam), BLOW_UP, LINE_POINTS)
    t = np.r_[-side[::-1], 0.0, side]
    return StiffestLine(t, slope(t), np.zeros(3))


def _direct_blows_up(slope, eta: float, mu: float, tau: int, kick: float) -> bool:
    """The scalar recursion with the exact derivative, one iteration at a time."""
    history = [0.0] * (tau + 1) + [kick]
    for _ in range(4000):
        new = history[-1] + mu * (history[-1] - history[-2]) - eta * slope(history[-1 - tau])
        if not abs(new) < BLOW_UP:
            return True
        history = history[1:] + [new]
    return False


@pytest.mark.parametrize(("eta", "mu", "tau"), [(0.05, 0.0, 0), (0.05, 0.5, 2), (0.02, 0.9, 1), (0.05, -0.3, 1)])
def test_critical_impulses_of_a_stiffening_line_match_the_scalar_recursion(eta, mu, tau):
    """``φ' = λt + c t³`` (the curvature grows away from the minimum, as streaming PCA's radial mode
    does): a finite K* on each side, equal by symmetry, at the edge of the directly iterated recursion."""
    lam, cubic = 1.0, 0.5

    def slope(t):
        return lam * t + cubic * t**3

    positive, negative = critical_impulses(_line(lam, slope), eta, mu, delay_law(tau).pmf)
    assert eta * positive < 0.1 * KICK_FRACTION * BLOW_UP and negative == pytest.approx(positive, rel=1e-3)  # a basin, not the cap
    assert _direct_blows_up(slope, eta, mu, tau, 1.01 * eta * positive)
    assert not _direct_blows_up(slope, eta, mu, tau, 0.99 * eta * positive)


def test_one_sided_stiffening_gives_one_threshold_and_the_tail_counts_its_side():
    eta, mu, tau = 0.05, 0.5, 1

    def slope(t):
        return t + 0.5 * np.minimum(t, 0.0) ** 3  # stiffens for t < 0 only

    positive, negative = critical_impulses(_line(1.0, slope), eta, mu, delay_law(tau).pmf)
    assert math.isinf(positive) and math.isfinite(negative)
    assert _direct_blows_up(slope, eta, mu, tau, -1.01 * eta * negative)
    # a displacement −η(ū_B − ū) < 0 needs ū_B − ū > K*_−: only the examples above the mean count
    u = np.array([-3.0, -2.0, 0.0, 2.0, 3.0]) * negative / 2.5
    line = StiffestLine(np.zeros(1), np.zeros(1), u)
    assert kick_probability(line, 1, positive, negative).p == pytest.approx(0.2)


@pytest.mark.parametrize("mu", [-0.3, 0.0, 0.5, 0.9])
@pytest.mark.parametrize("eta", [0.043, 0.05])
def test_a_linear_line_returns_from_every_kick(eta, mu):
    """A stable linear mode comes back from any kick: no critical impulse, whatever the step (0.043
    puts the largest trial kick just short of the norm) and the sign of the momentum."""
    line = _line(1.0, lambda t: t)
    for tau in (0, 2):
        if spectral_radius(1.0, eta, mu, tau) < 1:
            assert critical_impulses(line, eta, mu, delay_law(tau).pmf) == (math.inf, math.inf)


def test_the_line_recursion_loses_stability_exactly_at_the_mean_boundary():
    """For ``φ' = λt`` the line recursion is the mode's mean recursion: stable at ⌈τ_c⌉ − 1, growing
    at ⌈τ_c⌉ at the rate ``spectral_radius`` gives (a delay off by one fails here: τ_c = 6.66)."""
    lam, eta, mu = 1.0, 0.05, 0.5
    tau_c = float(critical_delay(np.array([lam]), eta, mu)[0])
    below, above = math.ceil(tau_c) - 1, math.ceil(tau_c)
    assert above - tau_c > 0.2 and tau_c - below > 0.2
    line = _line(lam, lambda t: lam * t)
    start = np.array([1e-3])
    assert not _blows_up(line, eta, mu, delay_law(below).pmf, start, 20_000)[0]
    reach = math.log(BLOW_UP / 1e-3) / math.log(spectral_radius(lam, eta, mu, above))
    assert not _blows_up(line, eta, mu, delay_law(above).pmf, start, int(0.5 * reach))[0]
    assert _blows_up(line, eta, mu, delay_law(above).pmf, start, int(2 * reach))[0]
    assert line_fate(line, eta, mu, delay_law(above), lam) == "blows up"


def test_a_random_delay_enters_as_its_expected_force():
    """A geometric law of mean 24 is mean-stable at η 0.05, μ 0.5, λ 1 while the constant delay 24 is
    not: the line under the law's expected force returns from kicks as the mode's mean does."""
    law = delay_law(GeometricDelay(24.0))
    assert spectral_radius(1.0, 0.05, 0.5, law) < 1 < spectral_radius(1.0, 0.05, 0.5, 24)
    line = _line(1.0, lambda t: t)
    assert critical_impulses(line, 0.05, 0.5, law.pmf) == (math.inf, math.inf)


def test_kick_probability_counts_for_one_example_and_samples_minibatches():
    u = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    line = StiffestLine(np.zeros(1), np.zeros(1), u)
    assert kick_probability(line, 1, 2.0) == pytest.approx((0.4, 0.4, 0.4))  # the data's own law: exact
    assert kick_probability(line, 1, 0.5).p == pytest.approx(0.8)
    assert kick_probability(line, 4, 3.0) == (0.0, 0.0, 0.0)  # no mean of examples goes beyond the largest one
    two = StiffestLine(np.zeros(1), np.zeros(1), np.array([-1.0, 1.0]))
    tail = kick_probability(two, 2, 0.5)  # the mean of two draws is ±1 with probability 1/2
    assert abs(tail.p - 0.5) < 4 * math.sqrt(0.25 / 200_000)
    assert tail.low < tail.p < tail.high and tail.high - tail.low == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 200_000),
                                                                                   rel=0.01)  # fmt: skip


def test_a_kick_no_minibatch_reached_is_not_called_impossible():
    """Examples at ±1 and one at 40 (deviations from the mean −9, −7 and 32), minibatches of 12: the
    mean's deviation passes K* = 31 only when all twelve draws are the outlier (eleven and one −7 give
    30.6), ``0.2^12`` = 4.1e-9 a step, which 200 000 draws do not see. The count of none still allows up
    to 1.8e-5 a step (Clopper–Pearson), 84% of runs of 10⁵ iterations, and the note says so rather than
    "no more than 1%", which it keeps for runs short enough that the interval's upper end is below it."""
    u = np.array([-1.0, 1.0, -1.0, 1.0, 40.0])
    line = StiffestLine(np.zeros(1), np.zeros(1), u)
    tail = kick_probability(line, 12, 31.0)
    exact = 0.2**12
    assert tail.p == 0.0 == tail.low and exact < tail.high == pytest.approx(1 - 0.025 ** (1 / 200_000))
    risk = ModelDivergenceRisk(31.0, tail.p, 100_000, "stable", "diagonal", per_iteration_interval=(tail.low, tail.high))
    assert risk.fraction == 0.0 and risk.interval[0] == 0.0 and risk.interval[1] > 0.8
    note = risk.to_dict()["note"]
    assert note.startswith("up to 84") and "no more than" not in note, note
    assert risk.to_dict()["interval"] == pytest.approx(list(risk.interval))
    short = ModelDivergenceRisk(31.0, tail.p, 100, "stable", "diagonal", per_iteration_interval=(tail.low, tail.high))
    assert short.to_dict()["note"].startswith("no more than 1% of runs of 100 iterations")


@pytest.mark.slow
def test_the_line_table_and_the_directional_derivatives_match_the_model():
    """``φ'(t)`` against central differences of the objective along q_1; ``u_n`` against the
    per-example gradients (logistic regression on the tests' blobs)."""
    p = problem("logistic", eta=0.05, mu=0.5)
    point = predict_model(p).point
    line = stiffest_line(p, point)
    with jax.enable_x64(True):
        f = model_functions(p)
        z, y = jnp.asarray(p.data.x_train), jnp.asarray(p.data.y_train)
        q, x = point.vectors[:, 0], point.x
        for t in (-30.0, -0.7, 0.01, 2.5, 400.0):
            h = 1e-5 * max(1.0, abs(t))
            fd = (float(f.objective(x + (t + h) * q, z, y)) - float(f.objective(x + (t - h) * q, z, y))) / (2 * h)
            assert line.derivative(np.array([t]))[0] == pytest.approx(fd, rel=2e-3, abs=1e-8)
        grads = jax.vmap(jax.grad(lambda w, zi, yi: f.sample_losses(w, zi[None], yi[None])[0]), (None, 0, 0))(x, z, y)
        assert np.allclose(line.directional, np.asarray(grads) @ q, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "delay", "fate", "diverged"),
                         [("least-squares", ConstantDelay(30), "blows up", 16), ("logistic", ConstantDelay(60), "saturates", 0),
                          ("least-squares", ConstantDelay(3), "stable", 0), ("mlp", ConstantDelay(30), "saturates", 0),
                          ("least-squares", GeometricDelay(24.0), "stable", 0)])  # fmt: skip
def test_fate_against_runs_from_the_minimum(model, delay, fate, diverged):
    p = problem(model, eta=0.05, mu=0.5, delay=delay)
    theory = predict_model(p)
    risk = theory.divergence
    assert risk.fate == fate
    runs = simulate_model(p, 3000, 16, rng=7, start=theory.point.x, record_every=3000)
    assert int(np.sum(runs.diverged_at >= 0)) == diverged
    if fate == "stable":
        assert risk.fraction == 0.0 and math.isinf(risk.critical_impulse)
    else:
        assert risk.fraction == (1.0 if fate == "blows up" else 0.0)
    block = theory.to_dict(["stability"])["stability"]["divergence_risk"]
    assert block["fate"] == fate and block["steps"] == theory.options.steps and block["note"]
    assert block["mean_square_theory"] == "full second moments" if isinstance(delay, ConstantDelay) else "diagonal"


def _heavy_features() -> Dataset:
    """Least squares on 240 examples of 4 Student-t (3 degrees of freedom) features: heavy-tailed
    per-example Hessians, so a wide band between the mean-square boundary (η ≈ 0.1 at μ = 0.5, B = 1) and
    the mean one (η ≈ 2.4)."""
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, size=(240, 4))
    return split_data("heavy", x, x @ rng.normal(size=4) + 0.5 * rng.normal(size=240), classification=False)


@pytest.mark.slow
@pytest.mark.parametrize(("eta", "mu", "delay", "steps"),
                         [(0.14, 0.5, ConstantDelay(0), 4000), (0.16, 0.5, ConstantDelay(0), 4000),
                          (0.16, 0.5, ConstantDelay(0), 10_000), (0.17, 0.5, ConstantDelay(0), 4000),
                          (0.2, 0.5, ConstantDelay(0), 4000),
                          (0.05, 0.7, UniformDelay(0, 4), 6000), (0.07, 0.7, UniformDelay(0, 4), 6000)])  # fmt: skip
def test_fraction_between_the_boundaries_against_runs(eta, mu, delay, steps):
    """Between the mean-square and the mean boundary the top exponent's fraction against 256 runs from
    x*, inside the simulated fraction's 99% Clopper–Pearson interval (from none to every run blowing up;
    γ from −0.022 to +0.022 per step)."""
    p = ModelProblem("least-squares", _heavy_features(), l2=1e-2, batch=1, eta=eta, mu=mu, delay=delay)
    theory = predict_model(p, PredictOptions(steps=steps))
    risk = theory.divergence
    assert risk.fate == "mean-square unstable" and risk.growth is not None
    runs = simulate_model(p, steps, 256, rng=7, start=theory.point.x, record_every=10, progress=False)
    simulated = proportion_interval(int(np.sum(runs.diverged_at >= 0)), 256, confidence=0.99)
    assert simulated.ci_low <= risk.fraction <= simulated.ci_high, (risk.fraction, simulated)
    block = risk.to_dict()
    assert block["fraction"] == risk.fraction and block["growth"]["exponent"] == risk.growth.exponent
    low, high = block["interval"]  # the fraction over the exponent's 95% interval
    assert low <= risk.fraction <= high and (low < high or risk.fraction in (0.0, 1.0))
    assert ("grow at the rate" if risk.growth.exponent > 0 else "return, with a heavy-tailed law") in block["note"]
    assert (block["growth"]["tail_exponent"] is None) == (risk.growth.exponent > 0)


@pytest.mark.slow
def test_the_tail_exponent_not_the_gaussian_root_meets_many_runs():
    """η 0.15 on the heavy-tailed features (γ < 0): the norm's tail exponent κ lies 10% below the Gaussian
    walk's ``2|γ|/σ²``, which at the distance ``log(D/r_0)`` ≈ 15 more than doubles the fraction. Against
    2048 runs of 4000 steps the fraction with κ is inside the 99% Clopper–Pearson interval and the
    Gaussian walk's (the same exponent, variance σ²) is below it."""
    p = ModelProblem("least-squares", _heavy_features(), l2=1e-2, batch=1, eta=0.15, mu=0.5, delay=ConstantDelay(0))
    theory = predict_model(p, PredictOptions(steps=4000))
    growth = theory.divergence.growth
    assert growth.exponent < 0 and growth.tail_exponent < 0.95 * 2 * abs(growth.exponent) / growth.variance
    gaussian = blow_up_fraction(growth.exponent, growth.variance,
                                divergence_distance(p, theory.point, delay_law(0)), 4000)  # fmt: skip
    runs = simulate_model(p, 4000, 2048, rng=11, start=theory.point.x, record_every=4000, progress=False)
    simulated = proportion_interval(int(np.sum(runs.diverged_at >= 0)), 2048, confidence=0.99)
    assert simulated.ci_low <= theory.divergence.fraction <= simulated.ci_high, (theory.divergence.fraction, simulated)
    assert gaussian < simulated.ci_low, (gaussian, simulated)


@pytest.mark.slow
def test_mean_square_unstable_digits_cell_gets_the_fraction_of_its_growing_runs():
    """Least squares on digits at η 0.004, l2 0.1: the mean dynamics is stable, the full second moments
    are not, and every run of 10 000 steps diverges (tests/test_full_moments.py): the top exponent is
    positive and nearly every run is expected to blow up."""
    p = ModelProblem("least-squares", load_data("digits", classification=False), mu=0.9, batch=32, eta=0.004, l2=0.1)
    risk = predict_model(p, PredictOptions(steps=10_000)).divergence
    assert risk.fate == "mean-square unstable" and risk.mean_square_theory == "full second moments"
    assert risk.growth.exponent > 4 * risk.growth.standard_error
    assert risk.fraction > 0.99


@pytest.mark.slow
def test_a_classifier_between_the_boundaries_gets_no_fraction():
    """Logistic regression: the quadratic approximation's exponent does not decide the far dynamics."""
    p = problem("logistic", eta=0.05, mu=0.5)
    point = predict_model(p).point
    risk = model_divergence_risk(p, point, delay_law(0), 1000, False, "diagonal")
    assert risk.fate == "mean-square unstable" and risk.growth is None and risk.fraction is None
    assert risk.to_dict()["fraction"] is None and "least squares only" in risk.to_dict()["note"]


def test_the_noise_scale_is_the_mean_recursions_through_a_random_delay():
    """r_0 comes from the modes' mean recursions: with a constant delay that is the gain G_i, and with an
    i.i.d. delay it stays finite where the delay's spread alone makes a mode's second moments grow (G_i
    infinite; that growth belongs to the exponent), so log(D/r_0) falls steadily towards the mean
    boundary (where the mean recursion's variance grows without bound) through that point instead of
    jumping to the rounding floor (about 50)."""
    from types import SimpleNamespace

    from amsgd.diffusion.theory.lyapunov import scaled_gain
    from amsgd.diffusion.theory.second_moments import gains

    def distance(eta: float, law) -> float:
        problem = SimpleNamespace(eta=eta, mu=0.7, data=SimpleNamespace(target_scale=1.0))
        point = SimpleNamespace(eigenvalues=np.array([1.0, 0.5]), additive=np.array([1e-3, 2e-3]), x=np.ones(2),
                                flat=lambda: np.array([False, False]))  # fmt: skip
        return divergence_distance(problem, point, law)

    constant = delay_law(ConstantDelay(3))
    spread = float(gains(np.array([1.0, 0.5]), 0.1, 0.7, ConstantDelay(3)) @ np.array([1e-3, 2e-3]))
    assert distance(0.1, constant) == pytest.approx(math.log(BLOW_UP / math.sqrt(spread)), rel=1e-12)
    law = delay_law(UniformDelay(0, 4))
    etas = np.linspace(0.12, 0.19, 36)
    beyond = [eta for eta in etas if spectral_radius(1.0, eta, 0.7, law) < 1.0 and scaled_gain(1.0, eta, 0.7, law) == np.inf]
    assert beyond, "no step size where the mode is mean-stable with an infinite gain"
    levels = np.array([distance(eta, law) for eta in etas if spectral_radius(1.0, eta, 0.7, law) < 1.0])
    assert np.all((levels > 10.0) & (levels < 20.0)) and np.all(np.diff(levels) < 0.0)
