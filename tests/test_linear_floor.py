"""The linearised error floor near e_1 and the momentum/asynchrony tradeoff."""

import json

import numpy as np
import pytest

from amsgd import Problem, ProblemError, parse_delay, predict
from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.error_floor import linearized_floor
from amsgd.diffusion.theory.linear_recursion import spectral_radius
from amsgd.diffusion.theory.lyapunov import stationary_variance
from amsgd.diffusion.theory.second_moments import finite_eta_floor, mean_square_stable
from amsgd.diffusion.theory.stability import critical_delay, max_stable_delay
from amsgd.diffusion.theory.tradeoff import tradeoff

SPECTRUM = np.array([4.0, 3.0, 2.0, 1.0])


def pca_modes(spectrum):
    """Rates and Gaussian noise variances near e_1: tangent (λ1 − λi, λi λ1), radial (2 λ1, 0)."""
    lam1, rest = spectrum[0], spectrum[1:]
    return np.append(lam1 - rest, 2 * lam1), np.append(lam1 * rest, 0.0)


def test_mode_rates_are_the_jacobian_of_the_mean_gradient_at_e1():
    # E g(v) = Σ v − (vᵀ Σ v) v in a rotated basis; its Jacobian at the top eigenvector has
    # eigenvalues −(λ1 − λi) on the tangent space and −2 λ1 along v.
    basis, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    sigma = basis @ np.diag(SPECTRUM) @ basis.T
    v1 = basis[:, 0]

    def drift(v):
        return sigma @ v - (v @ sigma @ v) * v

    step = 1e-6
    columns = [(drift(v1 + step * e) - drift(v1 - step * e)) / (2 * step) for e in np.eye(4)]
    jac = np.column_stack(columns)
    rates, _ = pca_modes(SPECTRUM)
    np.testing.assert_allclose(np.sort(-np.linalg.eigvals(jac).real), np.sort(rates), atol=1e-6)


def test_mode_noise_is_the_tangent_gradient_at_e1():
    # At v = e_1, g = (I − e1 e1ᵀ) X Xᵀ e1 has no radial part and tangent parts Y_i Y_1, of
    # variance E[Y_i² Y_1²] = λ_i λ_1 for Gaussian data (checked within a 4-sigma Monte Carlo band).
    rng = np.random.default_rng(5)
    y = rng.normal(size=(200_000, 4)) * np.sqrt(SPECTRUM)
    e1 = np.eye(4)[0]
    g = (y @ e1)[:, None] * y - ((y @ e1) ** 2)[:, None] * e1
    assert np.all(g[:, 0] == 0)
    _, noise = pca_modes(SPECTRUM)
    products = g[:, 1:] ** 2
    sem = products.std(axis=0) / np.sqrt(len(y))
    assert np.all(np.abs(products.mean(axis=0) - noise[:3]) < 4 * sem)


def _variance_by_kronecker(rate: float, eta: float, mu: float, pmf: np.ndarray, noise: float) -> float:
    """``Var x`` of ``x_{k+1} = x_k + μ (x_k − x_{k−1}) − η a x_{k−τ_k} + η ξ_k`` (τ_k drawn from
    ``pmf``, ``Var ξ = noise``): the second moment ``M = Σ_τ p_τ A_τ M A_τᵀ + η² noise e_0 e_0ᵀ`` of the
    state ``(x_k, .., x_{k−L})`` solved as one linear system in vec(M)."""
    size = max(2, pmf.size)
    operator = np.zeros((size * size, size * size))
    for tau, weight in enumerate(pmf):
        a = np.zeros((size, size))
        a[0, 0], a[0, 1] = 1 + mu, -mu
        a[0, tau] -= eta * rate
        a[np.arange(1, size), np.arange(size - 1)] = 1.0
        operator += weight * np.kron(a, a)
    source = np.zeros(size * size)
    source[0] = eta**2 * noise
    return float(np.linalg.solve(np.eye(size * size) - operator, source)[0])


@pytest.mark.parametrize("delay", [0, 20, [0.5, 0.0, 0.0, 0.5]])
def test_floor_is_the_sum_of_mode_variances(delay):
    """Each mode's variance against the state's second moment solved directly (Kronecker products),
    the floor their sum, the diffusion floor the small-η limit ``η s/(2 a (1 − μ))``."""
    rates, noise = pca_modes(SPECTRUM)
    eta, mu = 5e-4, 0.9
    result = linearized_floor(rates, noise, eta, mu, delay)
    pmf = np.eye(delay + 1)[delay] if isinstance(delay, int) else np.array(delay)
    variances = [_variance_by_kronecker(r, eta, mu, pmf, s) for r, s in zip(rates, noise)]
    assert result.variances == pytest.approx(variances, rel=1e-8)
    assert result.variances[3] == 0.0  # the radial mode carries no noise
    assert result.floor == pytest.approx(sum(variances), rel=1e-12)
    expected = sum(eta * s / (2 * r * (1 - mu)) for r, s in zip(rates, noise))
    assert result.diffusion_floor == pytest.approx(expected, rel=1e-12)
    assert result.stable
    json.dumps(result.to_dict(), allow_nan=False)


def test_floor_tends_to_the_diffusion_floor_as_eta_vanishes():
    rates, noise = pca_modes(SPECTRUM)
    gaps = [abs(linearized_floor(rates, noise, eta, 0.9, 10).ratio - 1) for eta in (2e-4, 1e-4, 5e-5)]
    assert gaps[1] / gaps[0] == pytest.approx(0.5, abs=0.05)
    assert gaps[2] / gaps[1] == pytest.approx(0.5, abs=0.05)


def test_floor_beyond_the_largest_stable_delay_is_infinite():
    rates, noise = pca_modes(SPECTRUM)
    eta, mu = 5e-4, 0.9
    tau_max = max_stable_delay(rates, eta, mu).value
    assert linearized_floor(rates, noise, eta, mu, tau_max).stable
    beyond = linearized_floor(rates, noise, eta, mu, tau_max + 1)
    assert not beyond.stable and beyond.floor == np.inf
    assert beyond.variances[:3] == pytest.approx(  # only the radial mode has gone unstable
        [stationary_variance(r, eta, mu, tau_max + 1, s) for r, s in zip(rates[:3], noise[:3])]
    )
    assert beyond.to_dict()["floor"] is None


@pytest.mark.parametrize("delay", [0, 3, parse_delay("uniform:0-4"), parse_delay("geometric:3")])
def test_a_mode_that_does_not_restore_has_no_floor_and_bad_shapes_are_refused(delay):
    """A rate of 0 leaves a root of the mean recursion at 1, which rounding put just inside: the
    Yule–Walker solve then failed with NumPy's "Singular matrix" at τ = 0 and the geometric law's closed
    form gave a floor of −4e8 (a negative rate gave inf). Now both are unstable modes with an infinite
    variance. A mode whose step η·rate·(1 − μ) lies below the resolution ``predict`` asks of a problem
    is refused as ``predict`` refuses it (at τ = 3 a rate of 1e-14 gave a variance 5.5 times too small),
    and at the bound itself taken; noise variances that are neither one number nor one per rate are
    refused in words (a broadcast error)."""
    for rate in (0.0, -0.5):
        result = linearized_floor([1.0, rate], [1.0, 1.0], 5e-4, 0.9, delay)
        assert not result.stable and result.variances[1] == np.inf and np.isfinite(result.variances[0])
    for tiny in (1e-300, 1e-14):
        with pytest.raises(ProblemError, match=r"eta·rate·\(1 − mu\) of the mode of rate 1e-.* is below 1e-10"):
            linearized_floor([1.0, tiny], [1.0, 1.0], 5e-4, 0.9, delay)
        with pytest.raises(ProblemError, match="is below 1e-10"):
            stationary_variance(tiny, 5e-4, 0.9, delay)
    at_bound = 1e-10 / (5e-4 * 0.1)
    assert np.isfinite(linearized_floor([1.0, at_bound], [1.0, 1.0], 5e-4, 0.9, delay).variances[1])
    with pytest.raises(ProblemError, match=r"one number or one per rate \(3\)"):
        linearized_floor([1.0, 2.0, 3.0], [1.0, 1.0], 5e-4, 0.9, delay)


def test_predict_at_the_resolution_bound_has_a_linearised_floor():
    """``predict`` accepts η (λ1 − λ2)(1 − μ) at 1e-10 itself (to rounding); the linearised floor,
    which checked each mode against the bound without that slack, refused it."""
    p = predict(Problem.from_spectrum((1.1, 1.0), eta=1e-10 / (0.1 * 0.05), mu=0.95))
    assert np.isfinite(p.linearized.floor)


def test_tradeoff_grid():
    problem = Problem.from_spectrum(SPECTRUM, eta=5e-4)
    c = coefficients_for(problem)
    eta, mus, workers = 5e-4, [0.5, 0.7, 0.9, 0.95], [1, 8, 40, 100]
    result = tradeoff(c, eta, mus, workers)
    assert result.floor.shape == result.error_radius.shape == (4, 4)
    for u, mu in enumerate(mus):
        tau_max = max_stable_delay(c.rates, eta, mu).value
        assert result.max_workers_mean[u] == tau_max + 1
        assert result.max_workers[u] <= result.max_workers_mean[u]  # mean-square stability is stricter
        critical = critical_delay(c.rates, eta, mu)
        for m, count in enumerate(workers):
            assert result.stable[m, u] == mean_square_stable(c, eta, mu, count - 1, critical)
            assert result.stable[m, u] == (count <= result.max_workers[u])
            radii = [spectral_radius(r, eta, mu, count - 1) for r in c.rates]
            assert result.linear_error_radius[m, u] == max(radii[1:]) and result.radial_radius[m, u] == radii[0]
            if result.stable[m, u]:  # the finite-η floor and rate (on this grid the ratio's drift lowers every rate)
                finite = finite_eta_floor(c, eta, mu, count - 1)
                assert result.floor[m, u] == finite.value
                assert result.error_rate[m, u] == pytest.approx(finite.decay_per_iteration, rel=1e-12)
                assert result.error_rate[m, u] < result.linear_error_rate[m, u]
            else:
                assert result.error_radius[m, u] == result.linear_error_radius[m, u]
    for m in range(len(workers)):
        stable = result.stable[m]
        assert result.best_mu_floor[m] == np.asarray(mus)[stable][np.argmin(result.floor[m][stable])]
        rates_m = result.error_rate[m][stable]
        assert result.best_mu_rate[m] == np.asarray(mus)[stable][np.argmax(rates_m)]
    # More workers never allow a faster best momentum.
    assert np.all(np.diff(result.best_mu_rate) <= 0)
    json.dumps(result.to_dict(), allow_nan=False)
    ds = result.to_xarray()
    assert dict(ds.sizes) == {"workers": 4, "mu": 4}
    assert float(ds["floor"].sel(workers=8, mu=0.9)) == result.floor[1, 2]


def test_the_advice_table_is_over_sorted_distinct_workers_and_momenta():
    """Workers and momenta given in any order come out in increasing order, each row the same as when
    given sorted; a value listed twice is refused (it gave duplicate rows); one value is a list of one."""
    from amsgd.advise import advise

    problem = Problem.from_spectrum()
    shuffled = advise(problem, workers=(8, 1, 4), mus=(0.9, 0.5))
    ordered = advise(problem, workers=(1, 4, 8), mus=(0.5, 0.9))
    assert shuffled.to_dict() == ordered.to_dict()
    assert shuffled.to_dict()["grid"]["workers"] == [1, 4, 8] and shuffled.to_dict()["grid"]["mus"] == [0.5, 0.9]
    with pytest.raises(ProblemError, match="workers lists a value twice"):
        advise(problem, workers=(4, 1, 1))
    with pytest.raises(ProblemError, match="mus lists a value twice"):
        advise(problem, mus=(0.5, 0.5))
    assert advise(problem, workers=4, mus=0.5).to_dict() == advise(problem, workers=(4,), mus=(0.5,)).to_dict()
    # streaming PCA's rates are the modes' (radial 2λ_1, then λ_1 − λ_i), not a Hessian's eigenvalues
    rates = ordered.to_dict()["mode_rates"]
    assert "hessian_top" not in ordered.to_dict() and rates == pytest.approx([8.0, 1.0, 2.0, 3.0])
    # the grid ranges over μ and the delay, and no run length enters streaming PCA's ranking: all null
    assert ordered.to_dict()["problem"]["mu"] is None and ordered.to_dict()["problem"]["delay"] is None
    assert ordered.to_dict()["steps"] is None
    # a momentum so close to 1 that the step η (λ1 − λ2)(1 − μ) is below what the numbers resolve:
    # refused, naming it (it printed a singular-matrix warning and "none" for every row)
    with pytest.raises(ProblemError, match=r"mus \(--mus\): at mu = 0\.99999999999999, .* raise eta or lower that momentum"):
        advise(problem, mus=(0.5, 0.99999999999999))


def test_advice_without_a_stable_momentum_says_why():
    """Σ = diag(1.001, 1): the floor's ratio variance is far above 1, no momentum is mean-square stable
    for any number of workers, and the table was all "none" without a word."""
    from amsgd.advise import advise

    lost = advise(Problem.from_spectrum((1.001, 1.0)), workers=(1, 4), mus=(0.0, 0.5))
    assert lost.table().splitlines()[-1] == (
        "# none: no momentum of the grid (mu 0 to 0.5) is mean-square stable with 1, 4 workers: the linear "
        "theory gives no floor or rate there (runs may still settle at a higher error, or blow up: amsgd derive "
        "--delay workers:M --mu MU says which); lower eta"
    )
    assert "# none" not in advise(Problem.from_spectrum(), workers=(1, 4), mus=(0.0, 0.5)).table()


def test_advice_on_tied_top_eigenvalues_names_the_missing_eigengap():
    """λ1 = λ2: no step resolves the optimum; the refusal said to raise η or lower the momentum."""
    from amsgd.advise import advise

    with pytest.raises(ProblemError, match=r"^covariance needs an eigengap λ1 > λ2"):
        advise(Problem.from_spectrum((3.0, 3.0, 1.0)), workers=(1, 4), mus=(0.0, 0.5))


def test_the_advice_figure_without_a_stable_momentum_says_why(tmp_path, monkeypatch):
    """With nothing to draw on its log axis the figure failed in matplotlib (the rates all NaN)."""
    from matplotlib import pyplot

    from amsgd.advise import advise
    from amsgd.figures.advice import advice_figure

    lost = advise(Problem.from_spectrum((1.001, 1.0)), workers=(1, 4), mus=(0.0, 0.5))
    kept = []
    monkeypatch.setattr(pyplot, "close", kept.append)  # keep the figure written, to read it back
    assert advice_figure(lost, tmp_path / "advice.png").stat().st_size > 5_000
    (ax,) = kept[0].axes
    assert ax.get_yscale() == "linear" and ax.get_xlim() == (0.0, 0.5)
    assert [t.get_text() for t in ax.texts] == ["no momentum of the grid is mean-square stable\nfor these worker "
                                                "counts: lower η"]  # fmt: skip
    monkeypatch.undo()
    pyplot.close(kept[0])


def test_the_advice_figure_of_one_unstable_momentum_spans_it_without_a_warning(tmp_path, monkeypatch):
    """A single momentum of the grid set equal axis limits, and matplotlib's warning reached stderr."""
    import warnings

    from matplotlib import pyplot

    from amsgd.advise import advise
    from amsgd.figures.advice import advice_figure

    lost = advise(Problem.from_spectrum((1.001, 1.0)), workers=(1,), mus=(0.99,))
    kept = []
    monkeypatch.setattr(pyplot, "close", kept.append)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        advice_figure(lost, tmp_path / "advice.png")
    low, high = kept[0].axes[0].get_xlim()
    assert low < 0.99 < high <= 1.0  # no momentum of 1 or above on the axis
    monkeypatch.undo()
    pyplot.close(kept[0])


def test_the_momentum_workers_table_counts_its_cells_for_progress(monkeypatch):
    """A table of 951 momenta took minutes behind a bare timer: each cell and each momentum's largest
    stable delay is one unit of a counter whose total is their number."""
    import contextlib

    from amsgd.diffusion.theory import tradeoff as module

    seen = {}

    class Count:
        def __init__(self) -> None:
            self.done = 0

        def update(self, n: float) -> None:
            self.done += n

    @contextlib.contextmanager
    def recording(total, unit, label, **kw):
        seen.update(total=total, unit=unit, count=Count())
        yield seen["count"]

    monkeypatch.setattr(module, "counter", recording)
    p = Problem.from_spectrum()
    module.tradeoff(coefficients_for(p), p.eta, (0.0, 0.5, 0.9), np.array([1, 4]))
    assert seen["total"] == 2 * 3 + 3 and seen["count"].done == seen["total"] and seen["unit"] == "cells"
