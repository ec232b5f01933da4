"""The Problem type validates its inputs once, with messages naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem, ProblemError, StudentT, parse_delay, parse_distribution, predict
from amsgd.core.delays import ConstantDelay

from .conftest import random_rotation


def test_defaults_are_the_published_problem(default_problem):
    assert default_problem.eigenvalues.tolist() == [4.0, 3.0, 2.0, 1.0]
    assert default_problem.eta == 5e-4 and default_problem.mu == 0.9
    assert default_problem.delay == ConstantDelay(0)
    assert default_problem.distribution.spec == "gaussian"


def test_rotated_covariance_has_the_same_spectrum_and_a_true_eigenbasis(rotated_problem):
    p = rotated_problem
    np.testing.assert_allclose(p.eigenvalues, [4, 3, 2, 1], rtol=1e-12)
    np.testing.assert_allclose(p.covariance @ p.basis, p.basis * p.eigenvalues, atol=1e-12)
    np.testing.assert_allclose(p.basis.T @ p.basis, np.eye(4), atol=1e-12)
    assert not p.to_dict()["covariance_is_diagonal"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eta": 0.0}, "eta must be a finite number > 0"),
        ({"eta": -1e-3}, "eta must be a finite number > 0"),
        ({"eta": float("nan")}, "eta must be finite"),
        ({"mu": 1.0}, "mu must satisfy 0 <= mu < 1"),
        ({"mu": -0.1}, "mu must satisfy 0 <= mu < 1"),
        ({"mu": "fast"}, "mu must be a number"),
    ],
)
def test_scalar_parameters_are_range_checked(kwargs, message):
    with pytest.raises(ProblemError, match=message):
        Problem.from_spectrum(**kwargs)


def test_delay_must_be_a_non_negative_integer():
    with pytest.raises(ProblemError, match="non-negative integer"):
        ConstantDelay(-1)
    with pytest.raises(ProblemError, match="non-negative integer"):
        ConstantDelay(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[1.0, 0.2], [0.0, 1.0]], "symmetric"),
        ([[1.0, 2.0], [2.0, 1.0]], "positive definite"),
        ([[1.0, 0.0], [0.0, -1.0]], "positive definite"),
        ([[1.0, 0.0, 0.0]], "square"),
        ([[1.0]], "d >= 2"),
        ([[np.inf, 0.0], [0.0, 1.0]], "finite"),
    ],
)
def test_covariance_must_be_symmetric_positive_definite(matrix, message):
    with pytest.raises(ProblemError, match=message):
        Problem(np.array(matrix))


@pytest.mark.parametrize("smallest, accepted", [(3.8e-10, False), (4.2e-10, True)])
def test_a_rotation_of_sigma_is_refused_or_accepted_as_its_diagonal_form(smallest, accepted):
    """The rules took Σ's largest entry as their scale, which a rotation changes: diag(4, 3, 2, 3.8e-10)
    was refused (the entry 4) and its rotation accepted (the entry 3.7)."""
    diagonal = np.diag([4.0, 3.0, 2.0, smallest])
    q = random_rotation(4, 0)
    for sigma in (diagonal, q @ diagonal @ q.T):
        if accepted:
            assert Problem(sigma).eigenvalues[-1] == pytest.approx(smallest, rel=1e-5)
        else:
            with pytest.raises(ProblemError, match=r"above 1e-10 times its largest in magnitude \(4\)"):
                Problem(sigma)


def test_the_refusal_of_a_rotated_near_tie_says_its_eigenvalues_were_computed_and_merged():
    """The refusal showed ``λ1 = 3.9999999999995, λ2 = 3.9999999999995`` for a Σ given as a rotation of
    diag(4, 4 − 1e-12, 2, 1), without saying where those equal numbers came from."""
    q = random_rotation(4, 0)
    with pytest.raises(ProblemError, match="computed; those within 1e-10 × λ1 of each other are taken as one"):
        Problem(q @ np.diag([4.0, 4.0 - 1e-12, 2.0, 1.0]) @ q.T).require_eigengap()
    with pytest.raises(ProblemError, match=r"λ2 = 3.999999999999 \(a gap below 1e-10 × λ1 counts as none\)"):
        Problem.from_spectrum([4.0, 4.0 - 1e-12, 2.0, 1.0]).require_eigengap()


def test_a_diagonal_covariance_keeps_the_coordinate_axes():
    """A diagonal Σ is decomposed without LAPACK: for distinct entries the same eigenvalues and basis
    as ``eigh`` (sorted decreasing, signs positive), exactly; equal entries in coordinate order."""
    rng = np.random.default_rng(3)
    for dim in (2, 5, 40):
        values = rng.uniform(0.1, 5.0, dim)
        p = Problem(np.diag(values))
        lam, q = np.linalg.eigh(np.diag(values))
        order = np.argsort(lam)[::-1]
        lam, q = lam[order], q[:, order]
        q = q * np.sign(q[np.argmax(np.abs(q), axis=0), np.arange(dim)])
        assert np.array_equal(p.eigenvalues, lam) and np.array_equal(p.basis, q)
    p = Problem(np.diag([1.0, 3.0, 2.0, 3.0, 1.0]))
    assert p.eigenvalues.tolist() == [3.0, 3.0, 2.0, 1.0, 1.0]
    assert np.argmax(p.basis, axis=0).tolist() == [1, 3, 2, 0, 4]
    np.testing.assert_array_equal(p.covariance @ p.basis, p.basis * p.eigenvalues)


def test_changes_of_coordinates_agree_with_the_basis(rotated_problem):
    """``to_eigen`` is ``Qᵀ x`` and ``from_eigen`` is ``Q h``, on single vectors and on rows, for a
    diagonal Σ (kept as a permutation, equal entries included) and a rotated one."""
    rng = np.random.default_rng(7)
    for p in (Problem(np.diag([1.0, 3.0, 2.0, 3.0, 1.0])), Problem.from_spectrum([2.0, 5.0, 1.0]), rotated_problem):
        x = rng.standard_normal((6, p.dim))
        np.testing.assert_allclose(p.to_eigen(x), x @ p.basis, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(p.to_eigen(x[0]), p.basis.T @ x[0], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(p.from_eigen(x), x @ p.basis.T, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(p.from_eigen(p.to_eigen(x)), x, rtol=1e-14, atol=1e-15)
        assert p.covariance_is_diagonal == (p is not rotated_problem)
    copy = rotated_problem.replace(mu=0.5, eta=1e-3)
    assert copy.basis is rotated_problem.basis and copy.covariance is rotated_problem.covariance  # not solved again
    assert (copy.mu, copy.eta) == (0.5, 1e-3)


def test_a_spectrum_in_high_dimension_forms_no_matrix():
    """From a spectrum, d = 20 000: building, copying, describing, pickling and simulating the problem
    allocate O(d) memory (the two matrices would take 6 GiB), and none of the matrices is formed."""
    import pickle
    import tracemalloc

    from amsgd.simulate import simulate
    from amsgd.simulate.engine import warm_up

    dim = 20_000
    warm_up()  # the kernels' compilation or loading allocates on its own
    tracemalloc.start()
    p = Problem.from_spectrum(np.linspace(2.0, 1.0, dim), eta=0.1 / dim, delay=parse_delay("constant:1"))
    q = pickle.loads(pickle.dumps(p.replace(mu=0.5)))
    description = q.to_dict()
    run = simulate(q, 5, 2, rng=0, start="random", progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * dim * 8  # a few dozen vectors of length d (history, recordings); a matrix holds d of them
    assert "covariance" not in description and description["covariance_is_diagonal"]
    assert q.mu == 0.5 and np.array_equal(q.eigenvalues, p.eigenvalues) and not run.diverged.any()
    assert not {"covariance", "basis"} & (set(vars(p)) | set(vars(q)))
    small = Problem.from_spectrum([3.0, 2.0, 1.0])  # formed when asked (here small: at d = 20 000 it is 3.2 GB)
    assert not {"covariance", "basis"} & set(vars(small))
    assert np.array_equal(small.covariance, np.diag([3.0, 2.0, 1.0])) and np.array_equal(small.basis, np.eye(3))


def test_spectrum_entries_must_be_positive():
    with pytest.raises(ProblemError, match="spectrum entries"):
        Problem.from_spectrum([3.0, 0.0])


def test_eigengap_is_required_only_where_needed():
    p = Problem.from_spectrum([2.0, 2.0, 1.0])  # a valid problem...
    with pytest.raises(ProblemError, match="eigengap"):
        p.require_eigengap()  # ...but not for predictions that need an isolated optimum


def test_heavy_tails_are_refused_for_moment_based_predictions():
    p = Problem.from_spectrum(distribution=StudentT(4.0))
    with pytest.raises(ProblemError, match="infinite fourth moments"):
        p.require_finite_fourth_moments()
    Problem.from_spectrum(distribution=StudentT(4.5)).require_finite_fourth_moments()
    with pytest.raises(ProblemError, match="NU > 2"):
        StudentT(2.0)


@pytest.mark.parametrize("spec", ["cauchy", "student-t:abc", "t:"])
def test_unknown_or_malformed_distributions_are_refused(spec):
    with pytest.raises(ProblemError):
        parse_distribution(spec)


def test_distribution_specs_round_trip():
    for spec in ("gaussian", "rademacher", "student-t:7"):
        assert parse_distribution(spec).spec == spec


@pytest.mark.parametrize(
    "spec", ["constant:-1", "constant:x", "uniform:5-2", "uniform:3", "geometric:0", "workers:0", "lag:3"]
)
def test_malformed_delay_specs_are_refused(spec):
    with pytest.raises(ProblemError):
        parse_delay(spec)


def test_basis_must_be_orthonormal():
    with pytest.raises(ProblemError, match="orthonormal"):
        Problem.from_spectrum([2.0, 1.0], basis=np.array([[1.0, 1.0], [0.0, 1.0]]))
    Problem.from_spectrum([2.0, 1.0], basis=random_rotation(2, 0))


@pytest.mark.parametrize(("make", "words"), [
    (lambda: Problem.from_spectrum("4,3,2,1"), "spectrum must be a sequence of numbers"),
    (lambda: Problem.from_spectrum([[4.0, 3.0], [1.0]]), "spectrum must be a sequence of numbers"),
    (lambda: Problem.from_spectrum([4 + 1j, 1.0]), "spectrum must be real"),
    (lambda: StudentT("8x"), "NU must be a number"),
    (lambda: StudentT("8"), "NU must be a number, got '8'"),  # text is refused, as for eta and mu
    (lambda: StudentT(True), "NU must be a number, got True"),
    (lambda: parse_delay(3), "a delay spec is a string"),
    (lambda: parse_delay(None), "a delay spec is a string"),
    (lambda: predict(None), "predict needs a Problem"),
])  # fmt: skip
def test_python_callers_with_wrong_types_get_a_problem_error(make, words):
    """Wrong types from Python get the toolkit's one-line ProblemError, not NumPy's or an AttributeError."""
    with pytest.raises(ProblemError, match=words):
        make()
    assert StudentT(8).spec == parse_distribution("student-t:8").spec == "student-t:8"


def test_eigen_coordinates_refuse_vectors_of_another_length():
    """A diagonal Σ used to cut ([1, 2, 3, 4] -> [1, 2, 3]) or reorder a vector of the wrong length
    silently, a rotated one to raise NumPy's shape error; both now name the length they need."""
    for problem in (Problem.from_spectrum([3.0, 2.0, 1.0]), Problem.from_spectrum([1.0, 3.0, 2.0])):
        for wrong in ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0], 5.0):
            for convert in (problem.to_eigen, problem.from_eigen):
                with pytest.raises(ProblemError, match="vectors of length d = 3"):
                    convert(wrong)
        x = np.arange(6.0).reshape(2, 3)
        np.testing.assert_array_equal(problem.from_eigen(problem.to_eigen(x)), x)


def test_a_rotated_covariance_with_a_repeated_eigenvalue_gives_the_diagonal_forms_predictions():
    """Σ = Q diag(4, 1, 1, 1) Qᵀ: LAPACK returned the repeated eigenvalue as 1 ± 1e-15, whose differences
    read as rates of the modes at the saddle, and the phases (so derive, its document) raised a singular
    solve with a traceback; with diag(4, 2, 2, 2, 1, 1) the kinds of the points and the escape law's note
    differed from the diagonal form's. A matrix's eigenvalues within 1e-10 λ1 of each other are now equal."""
    from amsgd.core.problem import _merged

    for lam in ([4.0, 1.0, 1.0, 1.0], [4.0, 2.0, 2.0, 2.0, 1.0, 1.0]):
        q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((len(lam), len(lam))))
        rotated, diagonal = Problem(q @ np.diag(lam) @ q.T), Problem.from_spectrum(lam)
        np.testing.assert_allclose(rotated.eigenvalues, lam, rtol=1e-14)
        assert np.unique(rotated.eigenvalues).size == np.unique(lam).size  # equal ones exactly equal
    turned, plain = (predict(p).to_dict(["phases"])["phases"] for p in (rotated, diagonal))
    assert turned["escape_law_note"] == plain["escape_law_note"] and turned["worst_saddle"] == plain["worst_saddle"]
    for law in ("escape_law", "travel_law", "converge_law"):
        assert turned[law]["mean"] == pytest.approx(plain[law]["mean"], rel=1e-9)
    spread = np.array([4.0, 1.0 + 8e-11, 1.0 + 4e-11, 1.0, 0.5 + 1e-12, 0.5])  # runs of neighbours within 4e-10
    np.testing.assert_allclose(_merged(spread), [4.0, 1.0 + 4e-11, 1.0 + 4e-11, 1.0 + 4e-11, 0.5 + 5e-13, 0.5 + 5e-13],
                               rtol=0, atol=1e-15)  # fmt: skip
    assert _merged(np.array([4.0, 3.0])).tolist() == [4.0, 3.0]


def test_a_diagonal_spectrum_with_eigenvalues_a_rounding_apart_gives_the_equal_ones_phases():
    """``--spectrum 4,1.000000000001,1,1``: the values given are kept, and the rates 1e-12 between them
    at the saddle made its stationary solve singular (a traceback from derive). A rate within the
    problem's rounding gap counts as 0 in the phases, which then equal those of diag(4, 1, 1, 1)."""
    near, equal = Problem.from_spectrum([4.0, 1.0 + 1e-12, 1.0, 1.0]), Problem.from_spectrum([4.0, 1.0, 1.0, 1.0])
    assert near.eigenvalues[1] != near.eigenvalues[2]  # kept as given
    close, plain = (predict(p).to_dict(["phases"])["phases"] for p in (near, equal))
    assert close["escape_law_note"] == plain["escape_law_note"] and close["worst_saddle"] == plain["worst_saddle"]
    for law in ("escape_law", "travel_law", "converge_law"):
        assert close[law]["mean"] == pytest.approx(plain[law]["mean"], rel=1e-9)
