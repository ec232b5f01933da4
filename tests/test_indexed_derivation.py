"""The indexed derivation (every per-mode formula derived once, in generic indices) against the
per-coordinate derivation of the same problem, and against independent numbers (Monte Carlo, ODE solver)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from amsgd import Gaussian, Problem, ProblemError, Rademacher, SampledDistribution, StudentT, predict
from amsgd.derivations import Derivation, derive
from amsgd.derivations.indexed import FULL_LISTING_DIM, MAX_SME_DIM, dim, indexed_pca
from amsgd.derivations.limits import ode_limit
from amsgd.derivations.pca import MAX_SYMBOLIC_DIM, PCAModel
from amsgd.derivations.recursion import mu
from amsgd.derivations.sme import sme_expressions
from amsgd.diffusion.theory.report import sde_list

LAWS = [Gaussian(), Rademacher(), StudentT(7.0)]
SPECTRA = [(4.0, 3.0, 2.0, 1.0), (5.0, 2.0, 2.0, 1.0), (3.0, 2.5, 1.0, 1.0, 0.5), (6.0, 3.0, 3.0, 3.0, 2.0, 1.0),
           (8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0)]  # fmt: skip


def _same(a, b, path: str = "", formulas: Callable[[sp.Expr, sp.Expr], bool] | None = None) -> list[str]:
    """Where two JSON documents differ: numbers beyond 1e-10 relative, texts that are not the same
    formula (equal strings, or ``formulas(a, b)`` of the two as SymPy expressions, by default their
    difference simplifying to 0), keys, lengths."""
    formulas = formulas or (lambda x, y: sp.simplify(x - y) == 0)
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _same(a[k], b[k], f"{path}.{k}", formulas)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for n, (x, y) in enumerate(zip(a, b)) for d in _same(x, y, f"{path}[{n}]", formulas)]
    if isinstance(a, float) and isinstance(b, (float, int)):
        return [] if abs(a - b) <= 1e-10 * max(abs(a), abs(b)) else [f"{path}: {a} != {b}"]
    if isinstance(a, str) and isinstance(b, str) and a != b:
        try:
            same = formulas(sp.sympify(a), sp.sympify(b))
        except (sp.SympifyError, TypeError, SyntaxError):
            same = False
        return [] if same else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _equal_at_random_points(a: sp.Expr, b: sp.Expr) -> bool:
    """Two formulas with floating-point coefficients agree to 1e-10 relative at three random points
    (μ in (0, 0.9), every other symbol in (1, 3)); a symbolic difference would keep rounding residues."""
    rng = np.random.default_rng(0)
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    for _ in range(3):
        point = {s: rng.uniform(0.0, 0.9) if s == mu else rng.uniform(1.0, 3.0) for s in symbols}
        x, y = complex(a.evalf(subs=point)), complex(b.evalf(subs=point))
        if abs(x - y) > 1e-10 * max(abs(x), abs(y), 1e-300):
            return False
    return True


def _moments_put_in(document, moments: np.ndarray):
    """A JSON document with every symbol ``m_a_b`` of its texts replaced by the sampled value."""
    if isinstance(document, dict):
        return {k: _moments_put_in(v, moments) for k, v in document.items()}
    if isinstance(document, list):
        return [_moments_put_in(v, moments) for v in document]
    if isinstance(document, str):
        return re.sub(r"\bm_(\d+)_(\d+)\b", lambda f: repr(float(moments[int(f[1]) - 1, int(f[2]) - 1])), document)
    return document


# -- the indexed derivation equals the per-coordinate one ------------------------------------------


#: Each spectrum with one law, every law on a spectrum with repeated eigenvalues (the law enters the
#: formulas through its moments alone, the spectrum through which eigenvalues coincide).
SPECTRUM_LAWS = [(spectrum, LAWS[(k + 1) % len(LAWS)]) for k, spectrum in enumerate(SPECTRA)]


def _route_parts(problem: Problem, route: str | None) -> dict:
    """All that ``predict`` takes from the derivation: its own JSON, the time scales, the OU limit at
    every stationary point, the linear modes at e_1 and the diffusion floor (the rest of ``amsgd
    derive`` is computed from these and the problem, by code that does not know the route)."""
    p = predict(problem, route=route)
    timing = p.derivation.timing
    return {"derivation": p.derivation.to_dict(), "time_scales": [str(timing.drift_scale), str(timing.noise_gain)],
            "points": [point.to_dict() for point in p.points], "modes": p.modes.to_dict(),
            "diffusion_floor": p.diffusion_floor}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("spectrum, law", SPECTRUM_LAWS,
                         ids=[",".join(f"{v:g}" for v in s) + "-" + law.spec for s, law in SPECTRUM_LAWS])  # fmt: skip
def test_what_predict_takes_from_either_route_agrees(spectrum, law):
    """Every number ``predict`` takes from the derivation (d <= 8, repeated eigenvalues included) to
    1e-10 relative, and every formula text the same formula."""
    problem = Problem.from_spectrum(spectrum, distribution=law, eta=2e-4, mu=0.8)
    assert _same(_route_parts(problem, "per-coordinate"), _route_parts(problem, None)) == []


@pytest.mark.slow
@pytest.mark.parametrize("problem", [Problem.from_spectrum(), Problem.from_spectrum(SPECTRA[3], distribution=LAWS[1], eta=2e-4, mu=0.8)],
                         ids=["default", "repeated-eigenvalues"])  # fmt: skip
def test_the_derive_json_of_both_routes_agrees(problem):
    """The whole JSON of ``amsgd derive``, on the default problem and on a spectrum with a threefold
    eigenvalue: the routes differ only in the indexed route's ``sde_formulas``."""
    indexed, per_coordinate = predict(problem).to_dict(), predict(problem, route="per-coordinate").to_dict()
    assert set(indexed) - set(per_coordinate) == {"sde_formulas"}
    indexed.pop("sde_formulas")
    assert _same(per_coordinate, indexed) == []


def _laplace(eigenvalues: tuple[float, ...]) -> SampledDistribution:
    """A user sampler: independent Laplace coordinates with variances ``eigenvalues`` (kurtosis 6)."""
    scale = np.sqrt(np.asarray(eigenvalues) / 2.0)
    return SampledDistribution(lambda rng, n: rng.laplace(size=(n, scale.size)) * scale, name="laplace")


@pytest.mark.slow
@pytest.mark.parametrize("spectrum", [SPECTRA[1], SPECTRA[2]], ids=["4-distinct", "5-repeated"])
def test_a_sampled_law_takes_either_route_to_the_same_numbers_and_formulas(spectrum):
    """A user sampler's derivation in the symbols ``m_ab`` of a sign-symmetric law, with the sampled
    values put in, against the per-coordinate derivation with every sampled fourth moment: every number
    ``predict`` takes from the derivation to 1e-10 relative, every formula text the same formula."""
    problem = Problem.from_spectrum(spectrum, distribution=_laplace(spectrum), eta=2e-4, mu=0.8)
    indexed = _moments_put_in(_route_parts(problem, None), derive(problem).pair_moments)
    assert _same(_route_parts(problem, "per-coordinate"), indexed, formulas=_equal_at_random_points) == []


def test_predictions_at_another_point_keep_the_route():
    """``Predictions.at`` derived again on the indexed route where the given derivation was on the
    per-coordinate one; it keeps the route (the numbers of the two agree, as tested above)."""
    p = predict(Problem.from_spectrum((3.0, 2.0, 1.0)), route="per-coordinate")
    for changes in ({"eta": 2e-3}, {"delay": 3}, {"distribution": "rademacher"}):
        assert p.at(**changes).derivation.route == "per-coordinate", changes
    assert predict(Problem.from_spectrum((3.0, 2.0, 1.0))).at(mu=0.5).derivation.route == "indexed"


@pytest.mark.slow
def test_a_gaussian_sampler_above_the_listing_dimension_has_the_gaussian_limits_within_sampling_error():
    """d = 30: a sampler of independent Gaussian coordinates on the indexed route (which took the
    per-coordinate one and refused d > 12) has at every e_j the drift rates of the Gaussian law and its
    noise ``b_i²`` within five standard errors of the moment draws' ``m_ji = E[Y_j² Y_i²]`` (each one's
    own, ``std(Y_j² Y_i²)/sqrt(n)``); the diffusion floor likewise (the standard error of its estimator
    ``Σ_i c_i Y_1² Y_i²``). The texts name the moments."""
    lam = np.linspace(3.0, 1.0, 30)
    law = SampledDistribution(lambda rng, n: rng.standard_normal((n, lam.size)) * np.sqrt(lam), name="normal")
    sampled, named = (predict(Problem.from_spectrum(lam, distribution=d, eta=1e-3, mu=0.5)) for d in (law, Gaussian()))
    y2 = law.moment_samples_for(lam, np.eye(lam.size)) ** 2
    n = y2.shape[0]
    standard_error = np.sqrt(np.maximum((y2**2).T @ y2**2 / n - (y2.T @ y2 / n) ** 2, 0.0) / n)
    tangent = ~np.eye(lam.size, dtype=bool)
    gain = (1 - 0.5) ** 2  # b² = m_ji/(1 − μ)²
    rates = np.array([p.drift_rates for p in sampled.points])
    np.testing.assert_allclose(rates, np.array([p.drift_rates for p in named.points]), rtol=1e-12)
    noise = np.array([p.diffusions for p in sampled.points]) ** 2 * gain
    gaussian = np.array([p.diffusions for p in named.points]) ** 2 * gain
    assert np.all(np.abs(noise - gaussian)[tangent] <= 5 * standard_error[tangent])
    weights = 1e-3 / (2 * (1 - 0.5) * (lam[0] - lam[1:]))  # E sin² = Σ_i η m_1i/(2 (1 − μ)(λ_1 − λ_i))
    floor_error = np.std(y2[:, 0] * (y2[:, 1:] @ weights)) / np.sqrt(n)
    assert abs(sampled.diffusion_floor - named.diffusion_floor) <= 5 * floor_error
    document = sampled.to_dict(["sde", "stationary_error"])
    assert document["sde"][0]["modes"][1]["diffusion_formula"] == "sqrt(m_1_2)/(1-mu)"
    assert document["stationary_error"]["diffusion_formula"] == "eta*Sum(m_1_i/(lambda_1 - lambda_i), (i, 2, 30))/(2*(1-mu))"


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.spec)
def test_indexed_formulas_are_the_formulas_of_a_five_dimensional_model(law):
    """The mean map, ``S(h)``, every OU mode at every e_j and the stationary error, instantiated for
    d = 5, equal the symbolic objects of the five-dimensional model."""
    x = indexed_pca(law)
    model = PCAModel(5, law)
    lam, h = model.lam, model.h
    mean_map = model.recursion.mean_map
    _, s = model.projected_noise
    diagonal, off_diagonal = x.noise_covariance
    for a in range(5):
        own = {"i": (lam[a], h[a])}
        assert sp.expand(x.mean_map.explicit(x.model, own, lam, h) - mean_map[a]) == 0
        assert sp.expand(diagonal.explicit(x.model, own, lam, h) - s[a, a]) == 0
        for b in range(5):
            if b != a:
                pair = {"i": (lam[a], h[a]), "k": (lam[b], h[b])}
                assert sp.expand(off_diagonal.explicit(x.model, pair, lam, h) - s[a, b]) == 0
    derivation = derive(Problem.from_spectrum((5.0, 4.0, 3.0, 2.0, 1.0), distribution=law), route="per-coordinate")
    lam_j, lam_i = x.symbol("lam", "j"), x.symbol("lam", "i")
    for point in derivation.sde:
        for mode in point.modes:
            generic = x.modes[mode.kind]
            names = {lam_j: lam[point.j - 1], lam_i: lam[mode.i - 1]}
            assert sp.simplify(generic.drift_rate.xreplace(names) - mode.drift_rate) == 0
            assert sp.simplify(generic.variance.xreplace(names) - mode.variance) == 0
    floor = x.stationary_error().subs(dim, 5).doit().xreplace({sp.IndexedBase("lambda", positive=True)[n]: lam[n - 1]
                                                               for n in range(1, 6)})  # fmt: skip
    assert sp.simplify(floor - derivation.stationary_error) == 0


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.spec)
@pytest.mark.parametrize("spectrum", [(4.0, 3.0, 2.0, 1.0), (5.0, 2.0, 2.0, 1.0, 0.5, 0.5)])
def test_the_sme_is_the_per_coordinate_sme_at_random_points(law, spectrum):
    """Drift and ``S(h)`` of :func:`sme_expressions` against the d-dimensional model's own ones."""
    problem = Problem.from_spectrum(spectrum, distribution=law)
    sme = sme_expressions(problem)
    model = PCAModel(len(spectrum), law)
    values = model.substitutions(problem)
    drift = ode_limit(model.recursion).drift.subs(values)
    covariance = model.projected_noise[1].subs(values)
    rng = np.random.default_rng(5)
    for _ in range(3):
        at = dict(zip(sme.symbols, rng.standard_normal(len(spectrum))))
        np.testing.assert_allclose(np.array(sme.drift.xreplace(at), dtype=float),
                                   np.array(drift.xreplace(at), dtype=float), rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(np.array(sme.unprojected_covariance.xreplace(at), dtype=float),
                                   np.array(covariance.xreplace(at), dtype=float), rtol=1e-12, atol=1e-13)  # fmt: skip
    assert float(sme.noise_gain) == pytest.approx(1 / (1 - problem.mu), rel=1e-14)


# -- independent checks in high dimension -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("law", "d"), [(Gaussian(), 40), (Rademacher(), 40), (StudentT(12.0), 100)],
                         ids=lambda v: getattr(v, "spec", str(v)))  # fmt: skip
def test_sme_noise_in_high_dimension_against_monte_carlo(law, d):
    """``S(h) = Cov[Y Yᵀ h]`` of the SME against the sample covariance of ``Y Yᵀ h``: each of the
    d (d + 1)/2 entries within 5.5 standard errors (the mean ``Λh`` is known, so the estimate is
    unbiased); d = 100 (5050 entries) for the law with a fourth-moment excess, 40 for the others (the
    SME's SymPy matrix takes seconds at d = 100)."""
    n, chunk = 100_000, 20_000
    lam = np.linspace(3.0, 0.5, d)
    problem = Problem.from_spectrum(lam, distribution=law)
    sme = sme_expressions(problem)
    rng = np.random.default_rng(17)
    h = rng.standard_normal(d)
    h /= np.linalg.norm(h)
    predicted = np.array(sme.unprojected_covariance.xreplace(dict(zip(sme.symbols, h))), dtype=float)
    first, second = np.zeros((d, d)), np.zeros((d, d))
    for _ in range(n // chunk):
        y = law.sample(rng, chunk, problem.eigenvalues, problem.basis) @ problem.basis
        w = y * (y @ h)[:, None] - lam * h
        first += w.T @ w
        second += (w**2).T @ (w**2)
    mean = first / n
    se = np.sqrt((second / n - mean**2) / n)
    z = np.abs(predicted - mean) / se
    assert z.max() < 5.5, (z.max(), np.unravel_index(z.argmax(), z.shape))
    # the test can fail: a noise model without the fourth-moment excess is rejected
    wrong = predicted - np.diag(np.diag(predicted)) + np.diag(np.diag(predicted) * 1.1)
    assert (np.abs(wrong - mean) / se).max() > 5.5


def test_the_indexed_closed_form_solves_the_ode_at_d_30():
    """``h_i(t) = w_i/sqrt(Σ_k w_k²)`` written out for d = 30 against SciPy's solution of the ODE."""
    solution, residual = indexed_pca(Gaussian()).ode_closed_form
    assert residual == 0
    d, m = 30, 0.7
    lam = np.linspace(2.0, 0.2, d)
    rng = np.random.default_rng(3)
    h0 = rng.standard_normal(d)
    h0 /= np.linalg.norm(h0)
    numbers = {sp.IndexedBase("lambda", positive=True): lam, sp.IndexedBase("h0", real=True): h0}
    written_out = solution.subs({dim: d, mu: m}).doit()
    times = np.linspace(0.0, 0.5, 6)
    ivp = solve_ivp(lambda _, h: (lam * h - (h @ (lam * h)) * h) / (1 - m), (0.0, 0.5), h0, t_eval=times,
                    rtol=1e-11, atol=1e-13)  # fmt: skip
    for c in (1, 2, 15, 30):
        component = written_out.subs(sp.Symbol("i", integer=True, positive=True), c)
        indexed = {e: numbers[e.base][int(e.indices[0]) - 1] for e in component.atoms(sp.Indexed)}
        closed = sp.lambdify(sp.Symbol("t", real=True), component.xreplace(indexed), "numpy")
        np.testing.assert_allclose([float(closed(time)) for time in times], ivp.y[c - 1], atol=1e-8)


def test_the_modes_of_every_point_at_d_200_are_the_formulas():
    """At d = 200, every drift rate and diffusion of every point (a 200 x 200 table, no symbolic work per
    mode) is ``(λ_i − λ_j)/(1 − μ)``, ``sqrt(κ λ_i λ_j)/(1 − μ)`` and ``−2 λ_j/(1 − μ)`` for the radial mode."""
    d = 200
    lam = np.linspace(5.0, 0.1, d)
    problem = Problem.from_spectrum(lam, distribution=StudentT(9.0), mu=0.6)
    p = predict(problem)
    kappa = (9.0 - 2) / (9.0 - 4)
    for point in p.points[:: 37]:
        j = point.j - 1
        expected = np.where(np.arange(d) == j, -2 * lam[j], lam - lam[j]) / (1 - 0.6)
        noise = np.where(np.arange(d) == j, 0.0, np.sqrt(kappa * lam * lam[j]) / (1 - 0.6))
        np.testing.assert_allclose(point.drift_rates, expected, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(point.diffusions, noise, rtol=1e-13)
    expected_floor = problem.eta * np.sum(kappa * lam[0] * lam[1:] / (2 * (1 - 0.6) * (lam[0] - lam[1:])))
    assert p.diffusion_floor == pytest.approx(expected_floor, rel=1e-12)
    np.testing.assert_allclose(p.modes.rates, np.concatenate([[2 * lam[0]], lam[0] - lam[1:]]), rtol=1e-13)
    np.testing.assert_allclose(p.modes.noise_variances, np.concatenate([[0.0], kappa * lam[0] * lam[1:]]),
                               rtol=1e-13)  # fmt: skip


# -- the JSON and the documents stay small --------------------------------------------------------


@pytest.mark.parametrize("d", [FULL_LISTING_DIM + 5, 4 * FULL_LISTING_DIM])
def test_the_sde_list_grows_linearly_above_the_listing_bound(d):
    problem = Problem.from_spectrum(np.linspace(3.0, 0.5, d))
    p = predict(problem)
    listed = sde_list(p)
    assert [point["j"] for point in listed] == list(range(1, d + 1))
    entries = sum(len(point["modes"]) for point in listed)
    assert entries <= 2 * d + 5 * (d - 2)
    optimum = listed[0]
    assert len(optimum["modes"]) == d and optimum["kind"] == "minimum"
    other = listed[d // 2]
    assert "modes_listed" in other and other["fastest_mode"] == 1 and other["unstable_modes"] == d // 2
    for mode in other["modes"]:  # each listed mode is its formula at the spectrum
        lam_j, lam_i = problem.eigenvalues[other["j"] - 1], problem.eigenvalues[mode["i"] - 1]
        formula = sp.sympify(mode["drift_rate_formula"])
        value = formula.subs({f"lambda_{other['j']}": lam_j, f"lambda_{mode['i']}": lam_i, "mu": problem.mu})
        assert float(value) == pytest.approx(mode["drift_rate"], rel=1e-12)
    formulas = derive(problem).to_dict()
    assert len(formulas["ode"]["drift"]) == d and "drift_note" in formulas["ode"]
    assert all(len(text) < 200 for text in formulas["ode"]["drift"])
    assert len(formulas["stationary_error"]["diffusion_formula"]) < 200
    # the texts with their sums mean what they say: evaluated, they give the numbers
    lam = problem.eigenvalues
    h = np.random.default_rng(2).standard_normal(d)
    numbers = {"lambda": lam, "h": h, "eta": problem.eta, "mu": problem.mu}
    for c in (1, 3, d):
        drift = _evaluate_text(formulas["ode"]["drift"][c - 1], numbers)
        assert drift == pytest.approx((lam[c - 1] * h[c - 1] - (h @ (lam * h)) * h[c - 1]) / (1 - problem.mu), rel=1e-12)
    floor = _evaluate_text(formulas["stationary_error"]["diffusion_formula"], numbers)
    assert floor == pytest.approx(p.diffusion_floor, rel=1e-12)
    assert f"Sum(h_k*Y_k, (k, 1, {d}))" in formulas["recursion"]["update"].replace("Y_k*h_k", "h_k*Y_k")


def _evaluate_text(text: str, numbers: dict) -> float:
    """A formula text with sums over the modes (``Sum(h_k**2*lambda_k, (k, 1, d))``, ``lambda_3``) at
    the arrays ``numbers["lambda"]``, ``numbers["h"]`` and the numbers η, μ."""
    bases = {"lam": sp.IndexedBase("lam"), "h": sp.IndexedBase("h")}  # "lambda" is a Python keyword
    indexed = re.sub(r"\blambda_", "lam_", text)
    indexed = re.sub(r"\b(lam|h)_([a-z]|\d+)\b", r"\1[\2]", indexed)
    expr = sp.sympify(indexed, locals={**bases, "eta": sp.Symbol("eta"), "mu": sp.Symbol("mu")}).doit()
    arrays = {"lam": numbers["lambda"], "h": numbers["h"]}
    values = {e: arrays[str(e.base)][int(e.indices[0]) - 1] for e in expr.atoms(sp.Indexed)}
    return float(expr.xreplace(values).subs({"eta": numbers["eta"], "mu": numbers["mu"]}))


@pytest.mark.slow
def test_the_document_at_d_40_shows_indexed_formulas_and_a_small_table():
    problem = Problem.from_spectrum(np.arange(40.0, 0.0, -1.0))
    text = predict(problem).document("markdown")
    assert "\\sum_{k=1}^{d}" in text and "S_{ik}(h)" in text and "P_{ii}" in text
    assert "The table shows" in text and "of the 1600 modes" in text
    rows = [line for line in text.splitlines() if line.startswith("| e_")]
    assert 0 < len(rows) <= 30
    assert "\\lambda_{40}" not in text  # no formula written out over the coordinates


# -- what the routes refuse ----------------------------------------------------------------------


def test_the_per_coordinate_route_above_its_limit_is_one_clear_error():
    """Beyond ``MAX_SYMBOLIC_DIM`` the per-coordinate route is refused in one line; a sampled law there
    is derived on the indexed route, its default."""
    d = MAX_SYMBOLIC_DIM + 1
    lam = np.linspace(2.0, 1.0, d)
    law = SampledDistribution(lambda rng, n: rng.standard_normal((n, d)) * np.sqrt(lam), name="normal-sampler")
    problem = Problem.from_spectrum(lam, distribution=law)
    with pytest.raises(ProblemError, match=f"supports d <= {MAX_SYMBOLIC_DIM}, got d = {d}; the route 'indexed'") as raised:
        derive(problem, route="per-coordinate")
    assert "\n" not in str(raised.value)
    assert derive(problem).route == "indexed" and derive(problem).pair_moments.shape == (d, d)
    with pytest.raises(ProblemError, match="route must be"):
        derive(Problem.from_spectrum(), route="fast")
    with pytest.raises(ProblemError, match="route must be 'indexed' or 'per-coordinate', got 'fast'"):
        Derivation(Problem.from_spectrum(), route="fast")


def test_the_sme_refuses_d_above_its_limit_in_one_line():
    problem = Problem.from_spectrum(np.linspace(2.0, 1.0, MAX_SME_DIM + 1))
    with pytest.raises(ProblemError, match=f"supports d <= {MAX_SME_DIM}"):
        sme_expressions(problem)


def test_a_law_that_couples_the_coordinates_is_refused_by_the_split():
    from amsgd.derivations.indexed import split_over_modes

    model = PCAModel(4, Gaussian(), labels=("j", "i", "k", "l"))
    h = model.h
    with pytest.raises(ArithmeticError, match="couples two other coordinates"):
        split_over_modes(h[1] * h[0] * h[2], model, (1,), 2)
    with pytest.raises(ArithmeticError, match="not one formula"):
        split_over_modes(h[1] * (h[0] ** 2 + 2 * h[2] ** 2 + h[3] ** 2), model, (1,), 2)
    split = split_over_modes(h[1] * (h[0] ** 2 + h[2] ** 2 + h[3] ** 2), model, (1,), 2)
    assert (split.base, split.term) == (-h[1] ** 3, h[1] * h[2] ** 2)  # own part minus the term at k = i
