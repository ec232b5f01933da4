"""The compiled normal generator: its bits are NumPy's SFC64, its ziggurat is exact, its draws normal."""

import math

import numpy as np
import pytest
from numba import njit
from scipy import integrate, stats

from amsgd.simulate.ziggurat import (
    LAYERS,
    WARM_UP,
    ReplicateNormals,
    replicate_states,
    tail,
    wedge_accepts,
    ziggurat_tables,
)

from helpers.streams import NormalStream, fill_raw, sfc64_state

Z = 4.5  # two-sided z for the fixed-seed checks below (false alarm about 7e-6 each)


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return NormalStream(20261124).standard_normal(4_000_000)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_words_are_numpys_sfc64_stream(seed):
    state = sfc64_state(np.random.SeedSequence(seed))
    first, second = np.empty(1000, np.uint64), np.empty(500, np.uint64)
    fill_raw(state, first)
    fill_raw(state, second)  # the state carries over between calls
    expected = np.random.SFC64(np.random.SeedSequence(seed)).random_raw(1500)
    np.testing.assert_array_equal(np.concatenate([first, second]), expected)


def test_replicate_streams_are_numpys_sfc64_seeded_with_their_words():
    """Stream r is NumPy's SFC64 set to (w_3r, w_3r+1, w_3r+2, 1) with its first WARM_UP words dropped."""
    seq = np.random.SeedSequence(77)
    states = replicate_states(seq, 5)
    words = seq.generate_state(15, np.uint64)
    for r, state in enumerate(states):
        numpy_sfc = np.random.SFC64(0)
        seeded = {"state": np.append(words[3 * r : 3 * r + 3], np.uint64(1))}
        numpy_sfc.state = {"bit_generator": "SFC64", "state": seeded, "has_uint32": 0, "uinteger": 0}
        numpy_sfc.random_raw(WARM_UP)
        out = np.empty(200, np.uint64)
        fill_raw(state.copy(), out)
        np.testing.assert_array_equal(out, numpy_sfc.random_raw(200), err_msg=f"stream {r}")
    np.testing.assert_array_equal(states[0], sfc64_state(seq))  # NumPy's own seeding of stream 0
    np.testing.assert_array_equal(replicate_states(seq, 2), states[:2])  # stream r does not depend on the count
    assert len({tuple(state) for state in states}) == 5


def test_replicate_normals_take_rows_from_every_stream_in_turn():
    seq = np.random.SeedSequence(4)
    scale = np.array([1.0, 3.0])
    sampler = ReplicateNormals(seq, 3, scale)
    first, second = sampler(6).reshape(3, 2, 2), sampler(3).reshape(3, 1, 2)
    for r, state in enumerate(replicate_states(seq, 3)):
        np.testing.assert_array_equal(np.concatenate([first[r], second[r]]), NormalStream.from_state(state).draw(3, scale))
    with pytest.raises(ValueError, match="evenly"):
        sampler(4)


def test_layers_have_equal_area_and_close_at_the_mode():
    t = ziggurat_tables()
    x, v, r = t["edges"], t["v"], t["r"]
    f = lambda s: math.exp(-0.5 * s * s)  # noqa: E731
    tail, _ = integrate.quad(f, r, np.inf, epsabs=0, epsrel=1e-13)
    assert v == pytest.approx(r * f(r) + tail, rel=1e-11)  # base layer: rectangle plus tail
    assert x[0] * f(r) == pytest.approx(v, rel=1e-12)
    areas = [x[i] * (f(x[i + 1]) - f(x[i])) for i in range(1, LAYERS)]
    np.testing.assert_allclose(areas, v, rtol=1e-9)  # the last one is the top layer, closing at f(0) = 1
    assert x[LAYERS] == 0.0 and np.all(np.diff(x[1:]) < 0)
    # Marsaglia and Tsang (2000) publish r = 3.6541528853610088 for 256 layers
    assert r == pytest.approx(3.6541528853610088, rel=1e-14)


def test_stream_is_reproducible_in_pieces():
    whole = NormalStream(7).draw(300, np.array([1.0, 2.0, 3.0]))
    pieces = NormalStream(7)
    split = np.vstack([pieces.draw(100, np.array([1.0, 2.0, 3.0])), pieces.draw(200, np.array([1.0, 2.0, 3.0]))])
    np.testing.assert_array_equal(whole, split)
    assert not np.array_equal(whole, NormalStream(8).draw(300, np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(whole[:, 1] / 2.0, NormalStream(7).draw(300, np.ones(3))[:, 1])


def _reference_normals(seed: int, count: int) -> tuple[np.ndarray, dict[str, int]]:
    """The ziggurat of the module docstring, step by step in Python on NumPy's SFC64 words."""
    t = ziggurat_tables()
    words = iter(int(w) for w in np.random.SFC64(np.random.SeedSequence(seed)).random_raw(3 * count))
    unit = lambda w: (w >> 11) * 2.0**-53  # noqa: E731
    out, branches = np.empty(count), {"fast": 0, "tail": 0, "wedge": 0, "redraw": 0}
    for k in range(count):
        while True:
            u = next(words)
            i, j = u & 0xFF, (u - 2**64 if u >= 2**63 else u) >> 11
            x = j * t["scale"][i]
            if abs(j) < t["accept"][i]:
                branches["fast"] += 1
                break
            if i == 0:
                while True:
                    xi, eta = -math.log1p(-unit(next(words))) / t["r"], -math.log1p(-unit(next(words)))
                    if eta + eta > xi * xi:
                        break
                x = -(t["r"] + xi) if j < 0 else t["r"] + xi
                branches["tail"] += 1
                break
            height = t["height"]
            if height[i] + unit(next(words)) * (height[i + 1] - height[i]) < math.exp(-0.5 * x * x):
                branches["wedge"] += 1
                break
            branches["redraw"] += 1
        out[k] = x
    return out, branches


def test_draws_are_the_documented_ziggurat_on_sfc64_words():
    """Word for word, branch for branch: the compiled draws equal a plain Python rendering."""
    expected, branches = _reference_normals(2026, 60_000)
    assert min(branches.values()) > 0  # every branch of the rejection sampler was exercised
    np.testing.assert_array_equal(NormalStream(2026).standard_normal(expected.size), expected)


def test_moments_and_symmetry(draws):
    n = draws.size
    assert abs(draws.mean()) < Z / math.sqrt(n)
    assert abs(draws.var() - 1.0) < Z * math.sqrt(2.0 / n)
    assert abs(np.mean(draws**4) - 3.0) < Z * math.sqrt(96.0 / n)  # Var Z⁴ = 105 − 9
    assert abs(np.mean(draws < 0) - 0.5) < Z * math.sqrt(0.25 / n)


@pytest.mark.parametrize("beyond", [1.0, 2.5, ziggurat_tables()["r"], 4.5])
def test_tail_probabilities(draws, beyond):
    """P(|Z| > a): a = r is where the tail branch takes over, 4.5 deep inside it."""
    p = math.erfc(beyond / math.sqrt(2.0))
    n = draws.size
    count = np.count_nonzero(np.abs(draws) > beyond)
    assert abs(count - n * p) < Z * math.sqrt(n * p * (1 - p)) + 1


def test_distribution_by_ks_and_chi_square(draws):
    assert stats.kstest(draws, "norm").pvalue > 1e-4
    edges = stats.norm.ppf(np.linspace(0, 1, 401))  # 400 equiprobable bins, all layers and wedges
    counts, _ = np.histogram(draws, edges)
    assert stats.chisquare(counts).pvalue > 1e-4


@njit
def _tail_draws(state, out):
    a, b, c, n = state[0], state[1], state[2], state[3]
    for k in range(out.size):
        out[k], a, b, c, n = tail(a, b, c, n)


def test_tail_branch_samples_the_normal_beyond_r():
    r = ziggurat_tables()["r"]
    out = np.empty(200_000)
    _tail_draws(sfc64_state(np.random.SeedSequence(3)), out)
    assert out.min() > r
    assert stats.kstest(out, stats.truncnorm(r, np.inf).cdf).pvalue > 1e-4


@njit
def _wedge_points(layer, lo, hi, candidates):
    points = np.empty(candidates.shape[0])
    kept = 0
    for k in range(candidates.shape[0]):
        x = lo + (hi - lo) * candidates[k, 0]
        if wedge_accepts(layer, x, candidates[k, 1]):
            points[kept] = x
            kept += 1
    return points[:kept]


@pytest.mark.parametrize("layer", [1, 40, 128, 250, LAYERS - 1])
def test_wedge_branch_keeps_the_density_above_the_layer(layer):
    """Accepted points of layer i have density ∝ f(x) − f(x_i) on [x_{i+1}, x_i]."""
    t = ziggurat_tables()
    lo, hi = t["edges"][layer + 1], t["edges"][layer]
    f = lambda s: np.exp(-0.5 * s * s)  # noqa: E731
    points = _wedge_points(layer, lo, hi, np.random.default_rng(layer).random((400_000, 2)))

    def cdf(x):
        x = np.clip(x, lo, hi)
        grid = np.linspace(lo, hi, 4001)
        mass = np.concatenate([[0], np.cumsum(np.diff(grid) * (f(grid[1:]) + f(grid[:-1])) / 2)])
        mass -= (grid - lo) * f(hi)
        return np.interp(x, grid, mass / mass[-1])

    assert stats.kstest(points, cdf).pvalue > 1e-4
