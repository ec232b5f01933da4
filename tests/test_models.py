"""Models other than PCA: data, losses, derivatives, per-example statistics, the JAX simulator."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from amsgd.core.delays import ConstantDelay, EventDrivenDelay, UniformDelay
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem, load_data, split_data
from amsgd.core.seeding import child_sequence, root_sequence
from amsgd.diffusion.theory.model_point import SEPARATION_CHECK_EVERY, find_minimum, model_point
from amsgd.simulate.delay_sequences import delay_sequence
from amsgd.simulate.model_engine import INIT_STREAM, simulate_model, start_points
from amsgd.simulate.models import compilations_during, model_functions


def blobs(n: int = 240, p: int = 4, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Gaussian classes (no separating hyperplane, so a finite minimum exists)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return rng.normal(size=(n, p)) + 0.8 * rng.normal(size=(classes, p))[y], y


def regression(n: int = 240, p: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    return x, x @ rng.normal(size=p) + 0.5 * rng.normal(size=n)


def problem(model: str, **kw) -> ModelProblem:
    x, y = regression() if model == "least-squares" else blobs()
    data = split_data("test", x, y, classification=model != "least-squares")
    layer = {"hidden": 5} if model == "mlp" else {}
    return ModelProblem(model, data, **{"eta": 0.05, "l2": 1e-2, "batch": 8, **layer, **kw})


MODELS = ["least-squares", "logistic", "mlp"]


def _objective(p: ModelProblem):
    f = model_functions(p)
    z, y = jnp.asarray(p.data.x_train), jnp.asarray(p.data.y_train)
    return f, (lambda w: f.objective(w, z, y))


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_gradient_and_hessian_vector_product_match_finite_differences(model):
    p = problem(model)
    with jax.enable_x64(True):
        f, obj = _objective(p)
        rng = np.random.default_rng(1)
        x = rng.normal(size=f.layout.size) * 0.3
        v = rng.normal(size=f.layout.size)
        h = 1e-6
        grad = np.asarray(jax.grad(obj)(x))
        fd = np.array([(obj(x + h * e) - obj(x - h * e)) / (2 * h) for e in np.eye(x.size)])
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
        hvp = np.asarray(jax.jvp(jax.grad(obj), (x,), (v,))[1])
        fd_hvp = (np.asarray(jax.grad(obj)(x + h * v)) - np.asarray(jax.grad(obj)(x - h * v))) / (2 * h)
        np.testing.assert_allclose(hvp, fd_hvp, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("model", ["logistic", "mlp"])
def test_accuracy_is_the_fraction_of_correct_labels_in_double_precision(model):
    p = problem(model)
    with jax.enable_x64(True):
        f = model_functions(p)
        x = np.random.default_rng(2).normal(size=f.layout.size)
        accuracy = f.accuracy(x, jnp.asarray(p.data.x_val), jnp.asarray(p.data.y_val))
    n = p.data.y_val.size
    hits = round(float(accuracy) * n)
    assert accuracy.dtype == np.float64
    assert 0 < hits < n  # neither all nor none right: the fraction has a denominator to show
    assert float(accuracy) == pytest.approx(hits / n, rel=1e-14, abs=0)  # float32 is 1e-8 off


def _augmented(p: ModelProblem) -> np.ndarray:
    return np.hstack([p.data.x_train, np.ones((p.data.examples, 1))])


@pytest.mark.slow
def test_logistic_hessian_and_noise_match_the_closed_form():
    """Multinomial logistic: H = mean_n (diag(s) − s sᵀ) ⊗ z̃ z̃ᵀ + l2 on the weights, with the
    parameters ordered as (W (p, C) row-major, then c)."""
    p = problem("logistic")
    x = find_minimum(p)
    point = model_point(p, x, top=4)
    f_p, c = p.data.features, p.outputs
    w, b = x[: f_p * c].reshape(f_p, c), x[f_p * c :]
    z = p.data.x_train
    s = np.exp(z @ w + b)
    s /= s.sum(axis=1, keepdims=True)
    # reorder to (feature-major weights, intercepts) = rows of z̃ ⊗ class
    zt = _augmented(p)
    blocks = [np.kron(np.outer(zi, zi), np.diag(si) - np.outer(si, si)) for zi, si in zip(zt, s)]
    hessian = np.mean(blocks, axis=0) + p.l2 * np.diag(np.r_[np.ones(f_p * c), np.zeros(c)])
    np.testing.assert_allclose(point.eigenvalues, np.linalg.eigvalsh(hessian)[::-1], atol=1e-9)
    # additive noise of the top modes: Var_n of the per-example gradient along each eigenvector / B
    per_example = np.stack([np.kron(zi, si - np.eye(c)[yi]) for zi, si, yi in zip(zt, s, p.data.y_train)])
    values, vectors = np.linalg.eigh(hessian)
    q = vectors[:, ::-1][:, :4]
    np.testing.assert_allclose(point.additive[:4], (per_example @ q).var(axis=0) / p.batch, rtol=1e-6)


def test_the_theory_compiles_once_per_model_structure():
    """The derivatives take the data as an argument: another point, batch and data set of the same
    shapes reuse every compiled program."""
    p = problem("mlp")
    x = find_minimum(p)
    first = model_point(p, x)
    other = dataclasses.replace(p.data, x_train=p.data.x_train[::-1].copy(), y_train=p.data.y_train[::-1].copy())
    again, compiled = compilations_during(lambda: model_point(dataclasses.replace(p, data=other, batch=3), x + 0.01))
    assert compiled == []
    assert not np.allclose(again.eigenvalues, first.eigenvalues)  # the new point was computed, not reused


def test_least_squares_coupling_matches_the_closed_form():
    """Least squares: H_n = z̃ z̃ᵀ, so C_ij = Var_n((q_iᵀ z̃)(q_jᵀ z̃))/B and s_i = Var_n(q_iᵀ z̃ r_n)/B."""
    p = problem("least-squares")
    x = find_minimum(p)
    zt = _augmented(p)
    np.testing.assert_allclose(x, np.linalg.solve(zt.T @ zt / len(zt) + p.l2 * np.diag(np.r_[np.ones(4), 0.0]),
                                                  zt.T @ p.data.y_train / len(zt)), rtol=1e-8)  # fmt: skip
    point = model_point(p, x, top=3)
    vectors = np.linalg.eigh(zt.T @ zt / len(zt) + p.l2 * np.diag(np.r_[np.ones(4), 0.0]))[1][:, ::-1]
    u = zt @ vectors  # the signs of eigenvectors are arbitrary; these variances do not depend on them
    expected = (u[:, :, None] * u[:, None, :]).var(axis=0) / p.batch  # a small model couples every mode
    np.testing.assert_allclose(point.coupling, expected, rtol=1e-6, atol=1e-12)
    assert point.top == 3
    r = zt @ x - p.data.y_train
    np.testing.assert_allclose(point.additive, (u * r[:, None]).var(axis=0) / p.batch, rtol=1e-6, atol=1e-14)


def _plain_loop(p: ModelProblem, steps: int, replicates: int, seed: int) -> np.ndarray:
    """Async-MSGD replicate by replicate, step by step, with the documented random streams."""
    root = root_sequence(seed)
    finals = []
    with jax.enable_x64(True):
        f = model_functions(p)
        grad = jax.jit(jax.grad(f.objective))
        zt, yt = jnp.asarray(p.data.x_train), jnp.asarray(p.data.y_train)
        for r in range(replicates):
            seq = child_sequence(root, r)
            delays = delay_sequence(p.delay, np.random.default_rng(seq), steps)
            key = jax.random.wrap_key_data(np.asarray(seq.generate_state(2), np.uint32))
            history = [np.asarray(f.init(jax.random.fold_in(key, INIT_STREAM)))]
            prev = history[0]
            for k in range(steps):
                idx = jax.random.randint(jax.random.fold_in(key, k), (p.batch,), 0, p.data.examples)
                stale = history[max(0, k - int(delays[k]))]
                new = history[k] + p.mu * (history[k] - prev) - p.eta * np.asarray(grad(stale, zt[idx], yt[idx]))
                prev = history[k]
                history.append(new)
            finals.append(history[-1])
    return np.array(finals)


@pytest.mark.parametrize("delay", [UniformDelay(0, 5), EventDrivenDelay(3)])
@pytest.mark.slow
def test_simulator_equals_a_plain_loop(delay):
    p = problem("mlp", delay=delay, eta=0.1, mu=0.7)
    result = simulate_model(p, 40, 3, rng=11, record_every=7, progress=False)
    np.testing.assert_allclose(result.last_iterates, _plain_loop(p, 40, 3, 11), rtol=1e-10, atol=1e-12)


def test_start_points_are_each_replicates_own_initialisation():
    """The keys of all replicates are made in one call (a call per key took minutes at 10⁵ replicates):
    each start is still the initialisation with that replicate's documented key."""
    p = problem("mlp")
    root = root_sequence(9)
    with jax.enable_x64(True):
        init = model_functions(p).init
        one_by_one = [np.asarray(init(jax.random.fold_in(jax.random.wrap_key_data(
            np.asarray(child_sequence(root, r).generate_state(2), np.uint32)), INIT_STREAM))) for r in range(4)]
    starts = start_points(p, 4, rng=9)
    np.testing.assert_array_equal(starts, np.array(one_by_one))
    assert not np.allclose(starts[0], starts[1])


@pytest.mark.slow
def test_one_compilation_serves_every_run_length_and_recording_interval(monkeypatch):
    """Segments of 40, 3, 7, 6 and 10 steps, and another data set of the same shapes, run the programs
    compiled for the first run; with blocks of 16 steps a segment of 43 is split over three calls and
    gives the numbers of one call."""
    import amsgd.simulate.model_engine as engine

    p = problem("least-squares", delay=UniformDelay(0, 4), eta=0.05, mu=0.5)
    first = simulate_model(p, 43, 2, rng=3, record_every=40, progress=False)
    for every in (7, None):
        _, compiled = compilations_during(lambda: simulate_model(p, 1000, 2, rng=3, record_every=every, progress=False))
        assert not [name for name in compiled if "advance" in name], compiled
    other = p.replace(data=split_data("other", *regression(seed=1), classification=False))
    again, compiled = compilations_during(lambda: simulate_model(other, 43, 2, rng=3, record_every=40, progress=False))
    assert not [name for name in compiled if "advance" in name or "measure" in name], compiled
    assert not np.allclose(again.last_iterates, first.last_iterates)  # the new data were used
    monkeypatch.setattr(engine, "BLOCK", 16)
    split = simulate_model(p, 43, 2, rng=3, record_every=43, progress=False)
    np.testing.assert_array_equal(split.last_iterates, first.last_iterates)
    assert not np.allclose(first.last_iterates[0], first.last_iterates[1])


@pytest.mark.slow
def test_replicates_do_not_depend_on_how_many_run_together():
    p = problem("logistic", delay=UniformDelay(0, 3))
    two = simulate_model(p, 30, 2, rng=4, progress=False)
    five = simulate_model(p, 30, 5, rng=4, record_every=10, progress=False)
    np.testing.assert_array_equal(two.last_iterates, five.last_iterates[:2])
    assert not np.allclose(five.last_iterates[0], five.last_iterates[1])
    # nor does whether one diverges: each run's ball is measured from its own start (MLP: random starts)
    mlp = problem("mlp", eta=0.5, mu=0.5)
    runs = [simulate_model(mlp, 60, r, rng=4, divergence_norm=1.0, progress=False).diverged_at for r in (3, 8)]
    np.testing.assert_array_equal(runs[0], runs[1][:3])
    assert 0 < np.sum(runs[1] >= 0) < 8


def test_delay_sequences_follow_their_laws():
    rng = np.random.default_rng(0)
    law = UniformDelay(2, 6)
    draws = delay_sequence(law, rng, 20_000)
    counts = np.bincount(draws, minlength=7)
    assert counts[:2].sum() == 0
    assert stats.chisquare(counts[2:], 20_000 * law.pmf()[2:]).pvalue > 1e-3
    assert np.all(delay_sequence(ConstantDelay(4), rng, 10) == 4)
    server = delay_sequence(EventDrivenDelay(5), rng, 50_000)
    assert server.size == 50_000 and abs(server.mean() - 4.0) < 0.1  # long-run mean staleness M − 1


def test_diverged_replicates_are_flagged_and_excluded():
    p = problem("least-squares", eta=3.0, mu=0.9, delay=ConstantDelay(5))
    result = simulate_model(p, 200, 3, rng=0, progress=False)
    assert result.diverged_fraction == 1.0
    summary = result.to_dict()
    assert summary["alive"] == 0 and "every replicate diverged" in summary["note"]
    assert summary["stationary_loss"]["mean"] is None


def test_a_replicate_that_diverged_in_the_windows_second_half_is_out_of_both_halves():
    """Nine replicates that diverged in the second half of the window still counted in the first half's
    mean, so the stationarity warning printed two means that its paired difference did not join
    (4.708e8 and 1.412e7, difference 3.32e8). Records at 0, 10, ..., 90 of 100 steps, window from 50:
    replicate 2 diverges at 80."""
    from amsgd.simulate.model_result import QUANTITIES, ModelSimulationResult

    iterations = np.arange(0, 100, 10)
    values = np.ones((3, len(QUANTITIES), iterations.size)) * np.array([1.0, 2.0, 1e6])[:, None, None]
    records = {"iterations": iterations, "diverged_at": np.array([-1, -1, 80]), "values": values,
               "final": np.zeros((3, 2))}  # fmt: skip
    run = ModelSimulationResult.build(problem("least-squares"), 100, records, np.zeros(3), 50, {}, 0.0)
    assert np.isnan(run.window_halves[2]).all() and np.isnan(run.window_loss[2])
    check = run.stationarity
    assert check.first.n == check.second.n == check.difference.n == 2
    assert check.first.mean - check.second.mean == pytest.approx(check.difference.mean) and check.first.mean == 1.5


def test_digits_and_data_files(tmp_path):
    digits = load_data("digits")
    assert digits.classes == 10 and digits.features == 64
    assert digits.examples + digits.x_val.shape[0] == 1797
    np.testing.assert_allclose(digits.x_train.mean(axis=0), 0.0, atol=1e-12)
    x, y = blobs()
    np.savez(tmp_path / "d.npz", X=x, y=y)
    np.savetxt(tmp_path / "d.csv", np.column_stack([x, y]), delimiter=",")
    a, b = load_data(str(tmp_path / "d.npz")), load_data(str(tmp_path / "d.csv"))
    (tmp_path / "d.csv").rename(tmp_path / "D.CSV")  # the extension in capitals names the same format
    np.testing.assert_array_equal(load_data(str(tmp_path / "D.CSV")).x_train, b.x_train)
    (tmp_path / "D.CSV").rename(tmp_path / "d.csv")
    np.testing.assert_allclose(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    # a first row of column names is skipped; a later non-numeric row is still an error
    named = tmp_path / "named.csv"
    np.savetxt(named, np.column_stack([x, y]), delimiter=",", header="x1,x2,label", comments="")
    np.testing.assert_allclose(load_data(str(named)).x_train, a.x_train)
    marked = tmp_path / "marked.csv"  # a spreadsheet's byte-order mark: still every row of data
    marked.write_text("\ufeff" + (tmp_path / "d.csv").read_text(), encoding="utf-8")
    np.testing.assert_allclose(load_data(str(marked)).x_train, a.x_train)
    # comment lines first (with or without a row of names after them): skipped, not read as separators
    commented = tmp_path / "commented.csv"
    commented.write_text("# my data\n\n" + named.read_text())
    np.testing.assert_allclose(load_data(str(commented)).x_train, a.x_train)
    commented.write_text("# my data\n" + (tmp_path / "d.csv").read_text())
    np.testing.assert_allclose(load_data(str(commented)).x_train, a.x_train)
    named.write_text(named.read_text() + "1,oops,0\n")
    with pytest.raises(ProblemError, match="not a numeric CSV table"):
        load_data(str(named))
    # names some of which are numbers are names; a first example with a missing value is not (its
    # NA made the row names, and the example was dropped without a word)
    numbered = tmp_path / "numbered.csv"
    np.savetxt(numbered, np.column_stack([x, y]), delimiter=",", header="age,2020,label", comments="")
    np.testing.assert_allclose(load_data(str(numbered)).x_train, a.x_train)
    for missing in ("NA", "?", "null", ""):
        gap = tmp_path / "gap.csv"
        gap.write_text(f"0.5,{missing},1\n" + (tmp_path / "d.csv").read_text())
        with pytest.raises(ProblemError, match=f"could not convert string '{re.escape(missing)}' to float64 in row 1 of"):
            load_data(str(gap))


def test_a_csv_with_pandas_default_column_names_skips_them_and_says_so(tmp_path):
    """``DataFrame(array).to_csv(index=False)`` names the columns 0, 1, 2, ...: numbers, once read as an
    example (a phantom class 3 of one example here); now skipped with a warning. A first row of other
    numbers is still an example."""
    from amsgd.core.errors import RunWarning

    x, y = blobs()
    np.savez(tmp_path / "d.npz", X=x, y=y)
    table = np.column_stack([x, y])
    (tmp_path / "pandas.csv").write_text("0,1,2,3,4\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in table) + "\n")
    with pytest.warns(RunWarning, match="read as column names"):
        named = load_data(str(tmp_path / "pandas.csv"))
    plain = load_data(str(tmp_path / "d.npz"))
    assert named.classes == plain.classes == 3 and named.examples == plain.examples
    np.testing.assert_allclose(named.x_train, plain.x_train)
    (tmp_path / "numbers.csv").write_text("0,1,2,4,1\n" + (tmp_path / "pandas.csv").read_text().split("\n", 1)[1])
    assert load_data(str(tmp_path / "numbers.csv")).examples == plain.examples + 1
    # a narrow table's first row 0,1 is as likely an example (x = 0, y = 1): kept, with a warning
    (tmp_path / "narrow.csv").write_text("".join(f"{x},{2 * x + 1}\n" for x in range(6)))
    with pytest.warns(RunWarning, match="is read as an example"):
        narrow = load_data(str(tmp_path / "narrow.csv"), classification=False)
    assert narrow.examples + narrow.x_val.shape[0] == 6


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: load_data(str(d / "missing.npz")), "does not exist"),
        (lambda d: (np.savez(d / "a.npz", X=np.ones((5, 2))), load_data(str(d / "a.npz"))), "needs arrays X and y"),
        (lambda d: split_data("x", np.array([[np.nan, 1.0]] * 5), np.arange(5) % 2), "finite"),
        (lambda d: split_data("x", np.ones((6, 2)), np.array([0, 1, 0.5, 1, 0, 1])), "integer labels"),
        (lambda d: split_data("x", np.ones((6, 2)), np.zeros(5)), "X must be (n, p)"),
        (lambda d: ModelProblem("svm", load_data("digits")), "model must be one of"),
        (lambda d: ModelProblem("least-squares", load_data("digits")), "needs real targets"),
        (lambda d: ModelProblem("logistic", load_data("digits"), hidden=5), "logistic has no hidden layer"),
        (lambda d: ModelProblem("logistic", load_data("digits"), activation="relu"), "logistic has no hidden layer"),
        (lambda d: ModelProblem("mlp", load_data("digits"), activation="sigmoid"), "activation must be one of"),
        (lambda d: (d.joinpath("t.txt").write_text("1"), load_data(str(d / "t.txt"))), "digits, FILE.npz or FILE.csv"),
    ],
)
def test_bad_model_input_is_one_clear_error(tmp_path, make, message):
    with pytest.raises(ProblemError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(tmp_path)


def test_the_hidden_layer_has_defaults_for_the_mlp_and_does_not_carry_to_another_model():
    """A value of ``hidden`` given for a model without a hidden layer used to be dropped silently (it is
    refused above); the MLP gets 32 tanh units unless told, and ``replace`` to another model leaves the
    layer behind (and back to the MLP takes the defaults again)."""
    digits = load_data("digits")
    mlp = ModelProblem("mlp", digits)
    assert (mlp.hidden, mlp.activation) == (32, "tanh")
    logistic = ModelProblem("mlp", digits, hidden=5, activation="relu").replace(model="logistic")
    assert (logistic.hidden, logistic.activation) == (None, None) and "hidden" not in logistic.to_dict()
    assert (logistic.replace(model="mlp").hidden, logistic.replace(model="mlp", hidden=7).hidden) == (32, 7)


def test_features_of_any_scale_are_standardised_alike():
    """Standardisation does not depend on the features' scale: at 1e200 the squares overflow (at 1e-200
    they underflow), and the features used to come out all zero (silently, the advice that of constant
    data) or unscaled; now they equal those of the unscaled data to rounding."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 3)), np.arange(60) % 3
    plain = split_data("plain", x, y)
    for factor in (1e-200, 1e200, 1e300):
        scaled = split_data("scaled", x * factor, y)
        np.testing.assert_allclose(scaled.x_train, plain.x_train, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scaled.x_val, plain.x_val, rtol=1e-12, atol=1e-12)
    assert np.abs(plain.x_train).max() > 1.0


def test_whether_a_least_squares_run_diverges_does_not_depend_on_the_targets_units():
    """Targets y → a y + b map a least-squares run started at (W_0, c_0) onto the run started at
    (a W_0, a c_0 + b), its losses times a²; the divergence ball maps with it. Targets of order 1e7 used
    to mark every run diverged at its minimum (‖x‖ > 1e6), and targets far from 0 in their own spread
    a run from the default start at 0; now stable runs stay alive in any units and unstable ones
    diverge in any units, in the simulator and in the SME."""
    from amsgd.diffusion.model_limits import integrate_model_limit

    x, y = regression()
    base = ModelProblem("least-squares", split_data("base", x, y, classification=False), eta=0.05, mu=0.5,
                        l2=1e-2, batch=8)  # fmt: skip
    plain = simulate_model(base, 600, 4, rng=3, start=np.zeros(5), progress=False)
    assert plain.diverged_fraction == 0.0
    for a, b in ((1e7, 0.0), (1.0, 1e7), (1e7, 3e8), (1e-6, 5.0)):
        moved = base.replace(data=split_data("moved", x, a * y + b, classification=False))
        run = simulate_model(moved, 600, 4, rng=3, start=np.r_[np.zeros(4), b], progress=False)
        assert run.diverged_fraction == 0.0, (a, b)
        np.testing.assert_allclose(run.window_loss, a * a * plain.window_loss, rtol=1e-6)
        assert simulate_model(moved, 600, 4, rng=3, progress=False).diverged_fraction == 0.0, (a, b)  # start 0
        assert simulate_model(moved.replace(eta=3.0, mu=0.9, delay=ConstantDelay(5)), 200, 3, rng=0,
                              progress=False).diverged_fraction == 1.0, (a, b)  # fmt: skip
        sme = integrate_model_limit(moved, 600, paths=4, rng=1, check_scheme=False, progress=False)
        assert sme.blown_up == 0, (a, b)


def test_a_missing_minimum_says_so_with_the_gradient_norm():
    x = np.vstack([np.full((20, 2), -1.0), np.full((20, 2), 1.0)]) + np.random.default_rng(0).normal(size=(40, 2)) * 0.1
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    separable = ModelProblem("logistic", split_data("sep", x, y), l2=0.0)
    with pytest.raises(ProblemError, match=r"no minimum found .*gradient norm .* add --l2"):
        find_minimum(separable)
    # the search stops once the classes are separated, instead of scaling the weights up to its iteration limit
    import scipy.optimize

    searches, minimize = [], scipy.optimize.minimize

    def recorded(*args, **kwargs):
        searches.append(minimize(*args, **kwargs))
        return searches[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scipy.optimize, "minimize", recorded)
        with pytest.raises(ProblemError, match=r"training classes are separated .* add --l2"):
            find_minimum(separable)
    assert "StopIteration" in searches[0].message and searches[0].nit <= 2 * SEPARATION_CHECK_EVERY
    # a ReLU network whose kinks stall L-BFGS: the line names both remedies, and each finds the minimum
    x = np.random.default_rng(0).normal(size=(60, 3))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    relu = ModelProblem("mlp", split_data("kinks", x, labels), hidden=3, activation="relu", batch=4, l2=0.01)
    with pytest.raises(ProblemError, match=r"stopped making progress; a larger --l2 .*--activation tanh"):
        find_minimum(relu)
    for remedy in (dict(activation="tanh"), dict(l2=0.1)):
        assert np.all(np.isfinite(find_minimum(relu.replace(**remedy))))


def test_more_modes_than_parameters_is_refused():
    p = problem("least-squares")
    with pytest.raises(ProblemError, match="at most the 5 parameters"):
        model_point(p, np.zeros(5), top=6)


def test_model_intervals_stay_in_the_range_of_their_quantity():
    """With two replicates the Student-t interval is wide; a loss's is cut at 0 and an accuracy's to
    [0, 1] (a model sweep once reported a validation accuracy 'up to 1.40')."""
    result = simulate_model(problem("logistic", eta=0.5, mu=0.5), 30, 2, rng=5, record_every=10, progress=False)
    cut = 0
    for quantity in ("train_loss", "validation_loss", "train_accuracy", "validation_accuracy"):
        est = result.final(quantity)
        assert 0.0 <= est.ci_low <= est.mean <= est.ci_high
        assert est.ci_high <= 1.0 or quantity.endswith("loss")
        cut += est.ci_low == 0.0 or est.ci_high == 1.0
    assert cut == 4  # every one of them reached beyond its range here
    assert result.stationary_loss().ci_low >= 0.0


def test_the_model_api_refuses_what_it_cannot_use_in_one_clear_error():
    """predict_model of a streaming-PCA Problem (or anything else), and a quantity the runs did not
    record, are ProblemErrors that say what to give (an AttributeError and a bare KeyError before)."""
    from amsgd import Problem
    from amsgd.diffusion.theory.model_predictions import predict_model

    with pytest.raises(ProblemError, match="predict_model needs a ModelProblem"):
        predict_model(Problem.from_spectrum((2.0, 1.0)))
    result = simulate_model(problem("least-squares", eta=0.05), 20, 2, rng=1, progress=False)
    with pytest.raises(ProblemError, match="no recorded quantity 'foo'; recorded: train_loss"):
        result.final("foo")
