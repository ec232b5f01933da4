"""The exact linear theory against Monte Carlo: error floor up to 0.8 τ*, breakdown beyond τ*."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from amsgd import Problem, predict
from amsgd.core.delays import ConstantDelay
from amsgd.simulate import simulate

CONFIGS = [((4.0, 1.0, 0.5), 0.8), ((4.0, 1.0, 0.5), 0.6), ((3.0, 1.0), 0.8), ((3.0, 1.0), 0.6)]
FRACTIONS = (0.0, 0.4, 0.8)
# Family-wise 99%: Bonferroni over every (config, delay) comparison in this module.
Z = stats.norm.ppf(1 - 0.01 / (2 * len(CONFIGS) * len(FRACTIONS)))
ETA = 2e-4


def _run(problem: Problem, tau: int, seed: int):
    return simulate(
        problem.replace(delay=ConstantDelay(tau)),
        steps=40_000,
        replicates=300,
        rng=seed,
        start="e1",
        window=0.3,
        threads=2,
        progress=False,
    )


@pytest.mark.parametrize(("spectrum", "mu"), CONFIGS)
@pytest.mark.slow
def test_linearized_floor_holds_up_to_0_8_tau_star_and_breaks_beyond(spectrum, mu):
    problem = Problem.from_spectrum(spectrum, eta=ETA, mu=mu)
    tau_star = predict(problem).tau_max
    assert tau_star > 50  # the delays below are far from trivial
    floors = []
    for k, fraction in enumerate(FRACTIONS):
        tau = int(fraction * tau_star)
        predicted = predict(problem.replace(delay=ConstantDelay(tau)))
        linear = predicted.linearized.floor
        measured = _run(problem, tau, seed=100 + k).stationary_error
        assert abs(measured.mean - linear) <= Z * measured.std_error, (tau, linear, measured)
        floors.append(linear)
        if fraction == 0.8:
            # The τ-independent diffusion floor is excluded: the check can tell the two apart.
            assert abs(measured.mean - predicted.diffusion_floor) > Z * measured.std_error
    assert floors[0] < floors[1] < floors[2]
    # Past τ* the radial mode is unstable: the error leaves the floor by more than an order of magnitude.
    beyond = _run(problem, int(np.ceil(1.5 * tau_star)), seed=200)
    broken = beyond.diverged_fraction > 0.5 or beyond.stationary_error.mean > 10 * floors[-1]
    assert broken, (beyond.diverged_fraction, beyond.stationary_error)
