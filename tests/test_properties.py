"""Properties of the derived limits over random spectra (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amsgd import Problem, predict

spectra = st.lists(st.floats(0.1, 10.0), min_size=2, max_size=4, unique=True).filter(
    lambda xs: min(abs(a - b) for i, a in enumerate(xs) for b in xs[i + 1 :]) > 1e-2
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(spectrum=spectra, mu=st.floats(0.0, 0.95), eta=st.floats(1e-5, 1e-2))
def test_mode_rates_floor_and_phases_over_random_spectra(spectrum, mu, eta):
    problem = Problem.from_spectrum(sorted(spectrum, reverse=True), eta=eta, mu=mu)
    lam = problem.eigenvalues
    predictions = predict(problem)
    for point in predictions.points:
        j = point.j - 1
        for mode in point.modes:
            i = mode.i - 1
            expected = (-2 * lam[j] if i == j else lam[i] - lam[j]) / (1 - mu)
            assert np.isclose(mode.drift_rate, expected, rtol=1e-9)
            # Gaussian data: α_ij² = λ_i λ_j off the radial mode.
            noise = 0.0 if i == j else np.sqrt(lam[i] * lam[j]) / (1 - mu)
            assert np.isclose(mode.diffusion, noise, rtol=1e-9, atol=1e-12)
            assert mode.stable == (expected < 0)
    # Exactly one minimum (e_1) and the worst saddle is e_2.
    assert [p.j for p in predictions.points if p.kind == "minimum"] == [1]
    phases = predictions.phases
    if len(lam) > 2:
        assert phases.worst_saddle == 2
    floor = predictions.diffusion_floor
    assert np.isclose(floor, eta * np.sum(lam[0] * lam[1:] / (2 * (1 - mu) * (lam[0] - lam[1:]))), rtol=1e-9)
    assert phases.escape_time > 0 and phases.travel_time > 0 and phases.converge_time >= 0
    # Momentum only rescales time: durations in diffusion time scale with (1 − μ) (escape up to its log).
    assert np.isclose(phases.travel_time, (1 - mu) * np.log(9.0) / (lam[0] - lam[1]), rtol=1e-9)
