"""The compiled SME integrator: keyed increments drawn in compiled code, the structured SME coefficients
against the SymPy SME and Monte Carlo, any dimension, and a numba cache that a second process reuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from amsgd import Problem
from amsgd.core.distributions import Gaussian, Rademacher, SampledDistribution, StudentT
from amsgd.core.errors import ProblemError
from amsgd.core.seeding import child_sequence, root_sequence
from amsgd.derivations.sme import sme_expressions
from amsgd.diffusion.brownian import BLOCK, BrownianIncrements, block_state, keyed_normals, stream_key
from amsgd.diffusion.coefficients import sme_coefficients
from amsgd.diffusion.compiled import covariance_into, drift_into, euler_compiled, euler_compiled_delayed
from amsgd.diffusion.sde import integrate_sde
from amsgd.diffusion.sme import integrate_sme

from helpers.streams import NormalStream, sfc64_state

ROOTS = [
    np.random.SeedSequence(4),
    np.random.SeedSequence(0),
    np.random.SeedSequence(2**70 + 5, spawn_key=(3, 2**33)),  # multi-word entropy, a spawned root
    root_sequence(np.random.default_rng(1)),  # the root SPEC 7 makes of a Generator
    np.random.SeedSequence([1, 2, 3, 4, 5, 6], pool_size=8),
    np.random.SeedSequence(),  # fresh 128-bit entropy
]


@pytest.mark.parametrize("root", ROOTS, ids=range(len(ROOTS)))
def test_block_generator_is_numpys_sfc64_of_the_child_sequence(root):
    pool, const = stream_key(root, 0)
    mixer = np.empty(pool.size, dtype=np.uint64)
    for p, b in [(0, 0), (1, 0), (0, 1), (5, 17), (2**32 + 1, 3), (123_456_789_012, 2**40)]:
        state = np.array(block_state(pool, np.uint64(const), p, b, mixer), dtype=np.uint64)
        np.testing.assert_array_equal(state, sfc64_state(child_sequence(root, 0, p, b)), err_msg=f"{p}, {b}")


def test_increments_are_the_ziggurat_normals_of_each_blocks_child_sequence():
    dt, d = 0.01, 3
    b = BrownianIncrements.create(dt, 5000, d, 4, rng=4)
    window = b.increments(1500, 4500, paths=[1, 3])  # spans blocks 0, 1 and 2
    for column, p in enumerate((1, 3)):
        blocks = [NormalStream(child_sequence(b.root, 0, p, k)).draw(BLOCK, np.ones(d)) for k in range(3)]
        expected = np.sqrt(dt) * np.concatenate(blocks)[1500:4500]
        np.testing.assert_array_equal(window[:, column], expected)
    # The compiled routine itself: a window is drawn from its block's start, whatever the request.
    pool, const = b.normal_key
    out = np.empty((2, 10, d))
    keyed_normals(pool, const, np.array([3, 1]), 2040, 2050, out)
    np.testing.assert_array_equal(np.sqrt(dt) * out[[1, 0]].transpose(1, 0, 2), b.increments(2040, 2050, paths=[1, 3]))


def test_coarsened_increments_are_sums_of_fine_ones_bit_for_bit():
    b = BrownianIncrements.create(0.01, 4800, 2, 3, rng=9)
    coarse = b.coarsen(3)  # 2048 is not a multiple of 3: some coarse steps straddle two blocks
    fine = b.increments()
    assert np.array_equal(coarse.increments(), fine.reshape(1600, 3, 3, 2).sum(axis=1))
    assert np.array_equal(coarse.increments(680, 690, paths=[2]), coarse.increments()[680:690, [2]])


def test_keyed_normals_are_standard_normal_and_uncorrelated_across_blocks_and_paths():
    b = BrownianIncrements.create(1.0, 4 * BLOCK, 2, 50, rng=2018)
    z = b.increments()  # N(0, 1): 819,200 draws over 200 (path, block) streams
    n = z.size
    assert abs(z.mean()) < 4.5 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 4.5 * np.sqrt(2.0 / n)
    # Neighbouring paths, neighbouring blocks and the two coordinates: correlations within 4.5 standard errors.
    for a, c in ((z[:, :-1, 0], z[:, 1:, 0]), (z[:BLOCK, :, 1], z[BLOCK : 2 * BLOCK, :, 1]), (z[..., 0], z[..., 1])):
        assert abs(np.corrcoef(a.ravel(), c.ravel())[0, 1]) < 4.5 / np.sqrt(a.size)


FAMILIES = {
    "gaussian": lambda d, m: Gaussian(),
    "student-t": lambda d, m: StudentT(12.0),  # finite eighth moments: the Monte Carlo errors are reliable
    "rademacher": lambda d, m: Rademacher(),
    "sampled": lambda d, m: SampledDistribution(_laplace(d), name="laplace", moment_samples=m),
}


def _laplace(d: int):
    """Independent Laplace coordinates with covariance diag(d, ..., 1) (the problems' Σ below)."""
    lam = np.arange(d, 0, -1, dtype=float)
    return lambda rng, n: rng.laplace(size=(n, d)) * np.sqrt(lam / 2.0)


def _problem(d: int, family: str, moment_samples: int = 20_000) -> Problem:
    return Problem.from_spectrum(tuple(float(d - i) for i in range(d)), eta=1e-3, mu=0.7,
                                 distribution=FAMILIES[family](d, moment_samples))  # fmt: skip


def _compiled_fields(coefficients, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lam, scale, kurtosis, diagonal, fourth = coefficients.kernel_arguments()
    d = h.size
    a, s = np.empty(d), np.empty((d, d))
    drift_into(h, lam, scale, a)
    covariance_into(h, lam, kurtosis, diagonal, fourth, s)
    return a, s


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-12) -> None:
    assert np.abs(actual - expected).max() <= rtol * np.abs(expected).max(), np.abs(actual - expected).max()


def _check_against_sympy(d: int, family: str) -> None:
    """The compiled kernels and the structured NumPy forms against the lambdified SymPy SME at random h."""
    problem = _problem(d, family, moment_samples=4000)  # the SymPy SME averages them once per moment
    coefficients = sme_coefficients(problem)
    sme = sme_expressions(problem)
    assert coefficients.noise_scale == pytest.approx(np.sqrt(problem.eta) * float(sme.noise_gain), rel=1e-15)
    rng = np.random.default_rng(d)
    h = rng.standard_normal((3, d)) * np.array([[1.0], [0.3], [2.0]])  # on, inside and outside the sphere
    drift, covariance = coefficients.drift(h), coefficients.unprojected_covariance(h)  # SymPy, d <= 12
    for k in range(h.shape[0]):
        values = dict(zip(sme.symbols, h[k]))
        exact_drift = np.array([float(e.subs(values)) for e in sme.drift])
        _close(drift[k], exact_drift)  # the lambdified callables are the SymPy SME
        a, s = _compiled_fields(coefficients, h[k])
        _close(a, drift[k])
        _close(s, covariance[k])
    _close(coefficients.structured_drift(h), drift)
    _close(coefficients.structured_covariance(h), covariance)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("d", [2, 3])
def test_structured_coefficients_are_the_sympy_sme(d, family):
    _check_against_sympy(d, family)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("d", [4, 6, 8])
def test_structured_coefficients_are_the_sympy_sme_up_to_d8(d, family):
    _check_against_sympy(d, family)


def test_sampled_fourth_moments_are_the_means_of_the_moment_samples():
    problem = _problem(3, "sampled")
    y = problem.distribution.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
    fourth = sme_coefficients(problem).fourth.reshape(3, 3, 3, 3)
    expected = np.einsum("ni,nj,nk,nl->ijkl", y, y, y, y) / y.shape[0]
    _close(fourth, expected)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_covariance_at_d50_matches_monte_carlo(family):
    """``S(h) = Cov[Y Yᵀ h]`` against the sample covariance of ``Y (Yᵀh)`` from fresh draws, entry by entry
    within 5 standard errors (for a sampled law, widened by the error of its own moment estimate)."""
    d, n = 50, 100_000
    problem = _problem(d, family)
    coefficients = sme_coefficients(problem)
    rng = np.random.default_rng(50)
    h = rng.standard_normal(d)
    h /= np.linalg.norm(h)
    _, s = _compiled_fields(coefficients, h)
    _close(coefficients.structured_covariance(h), s)  # the NumPy form used beyond d = 12
    n_moments = problem.distribution.moment_samples if family == "sampled" else np.inf
    y = problem.distribution.sample(rng, n, problem.eigenvalues, problem.basis)
    g = y * (y @ h)[:, None]
    centred = g - g.mean(axis=0)
    mc = centred.T @ centred / n
    second = (centred**2).T @ (centred**2) / n
    se = np.sqrt(np.maximum(second - mc**2, 0.0) / n) * np.sqrt(1 + n / n_moments)
    z = np.abs(s - mc) / se
    assert z.max() < 5.0, (z.max(), np.unravel_index(z.argmax(), z.shape))


@pytest.mark.slow
def test_euler_jit_runs_beyond_the_symbolic_dimension_and_equals_the_numpy_euler():
    d = 16
    problem = Problem.from_spectrum(tuple(4.0 * (d - i) / d for i in range(d)), eta=2e-3 / d, mu=0.9)
    start = np.ones(d) / np.sqrt(d)
    runs = {scheme: integrate_sme(problem, start, 300, paths=5, rng=3, scheme=scheme, keep_states=True, save_every=7)
            for scheme in ("euler", "euler-jit")}  # fmt: skip
    np.testing.assert_allclose(runs["euler-jit"].h, runs["euler"].h, rtol=0, atol=1e-12)
    assert np.abs(runs["euler"].h[-1] - runs["euler"].h[0]).max() > 1e-2  # the paths moved


@pytest.mark.slow
@pytest.mark.parametrize("family", ["student-t", "sampled"])
def test_euler_jit_on_a_coarsened_source_equals_the_numpy_euler(family):
    # (Not Rademacher data: near e_1 their S is nearly singular, and where one path's Cholesky fails the
    # NumPy scheme takes the symmetric root for the whole batch, the compiled one for that path only.)
    problem = _problem(3, family)
    coefficients = sme_coefficients(problem)
    fine = BrownianIncrements.create(problem.eta / 3, 2400 * 3, 3, 4, rng=12)
    coarse = fine.coarsen(3)  # coarse steps straddle the fine blocks
    h0 = np.array([0.6, 0.7, 0.3])
    save = np.arange(0, 2401, 100)
    sde = integrate_sde(coefficients.drift, coefficients.diffusion, h0, problem.eta * save, brownian=coarse)
    jit = euler_compiled(coefficients, np.broadcast_to(h0, (4, 3)), save, problem.eta, coarse)
    np.testing.assert_allclose(jit, sde.y, rtol=0, atol=1e-12)
    assert np.abs(jit[-1] - jit[0]).max() > 1e-2


@pytest.mark.parametrize("lag", [None, 3])
def test_blocks_of_paths_change_no_number_and_are_counted(monkeypatch, lag):
    """The compiled loops return to Python between blocks of paths (progress, Ctrl-C); a path's noise
    is keyed by its index, so one path per block gives the numbers of one block for all."""
    from amsgd.diffusion import compiled

    problem = _problem(3, "gaussian")
    coefficients = sme_coefficients(problem)
    h0 = np.broadcast_to(np.array([0.6, 0.7, 0.3]), (5, 3))
    save = np.arange(0, 301, 50)

    def run():
        source = BrownianIncrements.create(problem.eta, 300, 3, 5, rng=4)
        if lag is None:
            return compiled.euler_compiled(coefficients, h0, save, problem.eta, source)
        return compiled.euler_compiled_delayed(coefficients, h0, lag, save, problem.eta, source)

    whole = run()
    blocks = []
    real = compiled.counter
    monkeypatch.setattr(compiled, "BLOCK_WORK", 1)
    monkeypatch.setattr(compiled, "counter", lambda total, *a, **k: blocks.append(total) or real(total, *a, **k))
    np.testing.assert_array_equal(run(), whole)
    assert blocks == [5 * 300]


def test_compiled_integrators_refuse_a_source_that_does_not_fit():
    coefficients = sme_coefficients(Problem.from_spectrum())
    b = BrownianIncrements.create(5e-4, 10, 4, 2, rng=0)
    y0 = np.ones((2, 4)) / 2
    for call, fragment in [
        (lambda: euler_compiled(coefficients, y0[:1], np.arange(3), 5e-4, b), "paths"),
        (lambda: euler_compiled(coefficients, y0, np.arange(12), 5e-4, b), "save steps"),
        (lambda: euler_compiled(coefficients, y0, np.arange(3), 1e-3, b), "differs"),
        (lambda: euler_compiled_delayed(coefficients, y0, -1, np.arange(3), 5e-4, b), "lag"),
    ]:
        with pytest.raises(ProblemError, match=fragment) as info:
            call()
        assert "\n" not in str(info.value)


# A fresh process: a small euler-jit run, plain and delayed, then every numba dispatcher of the modules
# involved that has a cache, with its cache hits and misses.
PROBE = """
import json
import numpy as np
from amsgd import Problem
from amsgd.diffusion.sme import integrate_sme, integrate_sme_delayed
problem = Problem.from_spectrum((4, 3, 2, 1), eta=1e-3, mu=0.8)
integrate_sme(problem, np.eye(4)[0], 30, paths=2, rng=1, scheme="euler-jit")
integrate_sme_delayed(problem, np.eye(4)[0], 30, delay_iterations=2, paths=2, rng=1, scheme="euler-jit")
import amsgd.diffusion.brownian as brownian, amsgd.diffusion.compiled as compiled, amsgd.simulate.ziggurat as ziggurat
from numba.core.registry import CPUDispatcher
stats = {}
for module in (brownian, compiled, ziggurat):
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher) and value.stats.cache_path:
            stats[name] = [sum(value.stats.cache_hits.values()), sum(value.stats.cache_misses.values())]
print(json.dumps(stats))
"""


@pytest.mark.slow
def test_a_second_process_loads_the_kernels_from_the_numba_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def probe() -> dict:
        done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = probe(), probe()
    assert first["_euler_paths"][1] == 1 and first["_euler_delayed_paths"][1] == 1  # compiled, cache empty
    assert any(tmp_path.rglob("*.nbi"))
    assert second["_euler_paths"] == [1, 0] and second["_euler_delayed_paths"] == [1, 0]
    assert sum(misses for _, misses in second.values()) == 0, second
