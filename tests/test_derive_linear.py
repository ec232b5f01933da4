"""``derive`` reports the exact linear theory: linearised floor, stability, τ* scaling, tradeoff."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem, parse_delay, parse_distribution, predict
from amsgd.cli import main
from amsgd.core.delays import ConstantDelay


def test_optimum_modes_are_the_jacobian_and_noise_at_e1():
    modes = predict(Problem.from_spectrum([5.0, 2.0, 1.0])).modes
    np.testing.assert_allclose(modes.rates, [10.0, 3.0, 4.0])  # 2 λ1, λ1 − λ2, λ1 − λ3
    np.testing.assert_allclose(modes.noise_variances, [0.0, 10.0, 5.0])  # λ1 λ_i; none radially
    assert list(modes.kinds) == ["radial", "tangent", "tangent"]


@pytest.mark.slow
def test_linearized_floor_tends_to_the_diffusion_floor_as_eta_shrinks():
    gaps = []
    for eta in (4e-3, 1e-3, 2.5e-4):
        out = predict(Problem.from_spectrum(eta=eta, mu=0.7)).to_dict(["stationary_error"])["stationary_error"]
        gaps.append(abs(out["linearized"]["value"] / out["diffusion"] - 1))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.01
    assert gaps[1] / gaps[2] == pytest.approx(4.0, rel=0.2)  # the gap is O(η)


@pytest.mark.slow
def test_delay_raises_the_linearized_floor_but_not_the_diffusion_floor():
    base = Problem.from_spectrum(eta=5e-4, mu=0.9)
    out0 = predict(base).to_dict(["stationary_error"])
    out20 = predict(base.replace(delay=ConstantDelay(20))).to_dict(["stationary_error"])
    assert out0["stationary_error"]["diffusion"] == out20["stationary_error"]["diffusion"]
    assert out20["stationary_error"]["linearized"]["value"] > 1.05 * out0["stationary_error"]["linearized"]["value"]


@pytest.mark.slow
def test_stability_section_for_the_default_problem():
    out = predict(Problem.from_spectrum()).to_dict(["stability"])["stability"]
    assert out["limiting_mode"]["kind"] == "radial"
    tau_max = out["tau_max"]
    # τ* is the boundary: stable there, unstable one step beyond.
    stable = predict(Problem.from_spectrum(delay=ConstantDelay(tau_max))).to_dict(["stability"])["stability"]
    unstable = predict(Problem.from_spectrum(delay=ConstantDelay(tau_max + 1))).to_dict(["stability"])["stability"]
    assert stable["spectral_radius"] < 1 < unstable["spectral_radius"]
    assert not unstable["stable"] and "beyond the largest stable delay" in unstable["note"]
    scaling = out["scaling"]
    assert scaling["tau_max"] == sorted(scaling["tau_max"], reverse=True)  # more momentum, less delay
    assert 1.0 < scaling["fitted_exponent"] < 2.0
    assert all(t > b for t, b in zip(scaling["tau_max"], scaling["paper_ode_bound"]))


@pytest.mark.slow
def test_random_delays_use_their_distribution():
    def floor(delay: str) -> float:
        out = predict(Problem.from_spectrum(delay=parse_delay(delay))).to_dict(["stability", "stationary_error"])
        assert out["stability"]["stable"]
        return out["stationary_error"]["linearized"]["value"]

    uniform = floor("uniform:0-20")
    assert floor("constant:0") < uniform < floor("constant:20")
    # Same mean delay, different law: a different exact floor (second moments see the spread).
    assert uniform != pytest.approx(floor("constant:10"), rel=1e-5)


@pytest.mark.slow
def test_an_event_driven_server_is_predicted_from_its_staleness_law():
    """ps:M is not i.i.d.; the theory uses its stationary staleness law (geometric, mean M − 1, for
    exponential compute times) as if i.i.d., and says so."""
    sections = ["stability", "stationary_error"]
    server = predict(Problem.from_spectrum(delay=parse_delay("ps:4"))).to_dict(sections)
    geometric = predict(Problem.from_spectrum(delay=parse_delay("geometric:3"))).to_dict(sections)
    assert "stationary staleness law" in server["stability"]["delay_law"]
    assert server["stationary_error"]["linearized"]["value"] == pytest.approx(
        geometric["stationary_error"]["linearized"]["value"], rel=1e-9
    )
    assert server["stationary_error"]["finite_eta"]["value"] == pytest.approx(
        geometric["stationary_error"]["finite_eta"]["value"], rel=1e-9
    )


def test_a_step_too_large_for_any_delay_is_stated(capsys):
    out = predict(Problem.from_spectrum(eta=0.6)).to_dict()
    assert out["stability"]["tau_max"] is None
    assert "no delay is stable" in out["stability"]["note"]
    assert out["stationary_error"]["linearized"]["value"] is None


def test_a_delay_beyond_the_numerics_is_refused(capsys):
    assert main(["derive", "--tau", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "beyond" in err


def test_tradeoff_grid_from_the_command_line(capsys):
    import json

    assert main(["derive", "--tradeoff-mu", "0.5,0.9", "--tradeoff-workers", "1,64"]) == 0
    tradeoff = json.loads(capsys.readouterr().out)["tradeoff"]
    assert tradeoff["mus"] == [0.5, 0.9] and tradeoff["workers"] == [1, 64]
    assert tradeoff["stable"] == [[True, True], [True, False]]  # 64 workers: too stale for μ = 0.9
    assert tradeoff["best_mu_rate"][1] == 0.5


def test_the_floors_that_describe_no_run_are_named():
    """η = 0.012, μ = 0.9: a diffusion floor of 1.04 (sin² above 1) where the second moments are
    unstable; η = 0.1, μ = 0, Rademacher: additive floors near 1 where the finite-η floor, which
    keeps the curvature of sin², still matches the runs (within its stated 2.5%)."""
    from amsgd.simulate import simulate

    unstable = predict(Problem.from_spectrum(eta=0.012)).to_dict(["stationary_error"])["stationary_error"]
    assert unstable["diffusion"] > 1 and "not mean-square stable" in unstable["note"]
    assert "note" not in predict(Problem.from_spectrum()).to_dict(["stationary_error"])["stationary_error"]
    noisy = Problem.from_spectrum(eta=0.1, mu=0.0, distribution=parse_distribution("rademacher"))
    floors = predict(noisy).to_dict(["stationary_error"])["stationary_error"]
    assert floors["linearized"]["value"] > 0.75 and "finite_eta is the floor to use" in floors["note"]
    runs = simulate(noisy, 4000, 100, rng=11, start="e1", progress=False).stationary_error
    tolerance = 0.025 * floors["finite_eta"]["value"]
    assert runs.ci_low - tolerance <= floors["finite_eta"]["value"] <= runs.ci_high + tolerance
