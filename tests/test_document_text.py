"""The derivation document's sentences where the numbers are unusual: e-notation in math, a caret in a
note, laws whose paths did not get that far, a table where nothing falls, an unstable mean dynamics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from amsgd import Problem, parse_delay, parse_distribution, predict
from amsgd.derivations import document

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _math(text: str) -> list[str]:
    return text.split("$")[1::2]


def test_e_notation_in_math_is_written_as_a_power_of_ten():
    text = document._math_numbers("$\\varepsilon = -1.87159e-05, 3e+20$ and 2e-3 outside, $x_2 e-1$")
    assert text == "$\\varepsilon = -1.87159 \\times 10^{-5}, 3 \\times 10^{20}$ and 2e-3 outside, $x_2 e-1$"
    for name in ("derivation.md", "derivation.tex"):  # the committed documents, as the code writes them
        math = _math((DOCS / name).read_text())
        assert math and not [m for m in math if re.search(r"\de[+-]\d", m)], name


def test_a_caret_in_running_latex_text_is_escaped():
    """Notes written for JSON ("(1-mu)^2", "0.99^i") reached LaTeX's text mode, where ^ is an error."""
    assert document._latex_prose("2 eta lambda_1/(1-mu)^2 > 5, $h^2$") == (
        "2 eta lambda\\_1/(1-mu)\\^{}2 $>$ 5, $h^2$"
    )


@pytest.mark.parametrize("quantiles, words", [
    ({"q10": 12.0, "q90": 80.0}, "one run in ten has escaped by 12 iterations and nine in ten by 80 iterations."),
    ({"q10": 12.0, "q90": None}, "one run in ten has escaped by 12 iterations; fewer than nine in ten within"),
    ({"q10": None, "q90": None}, "fewer than one run in ten has escaped within the iterations the law follows."),
])  # fmt: skip
def test_a_law_that_did_not_get_that_far_is_said_in_words(quantiles, words):
    """It read "one run in ten has arrived within beyond the iterations the law follows of its escape"."""
    sentence = document._deciles("escaped", quantiles)
    assert sentence.startswith(words) and "within beyond" not in sentence


def test_the_tradeoff_sentence_follows_its_table():
    """At η 1e-6 every momentum is stable for every M: the text said the largest usable momentum falls."""
    same = {"workers": [1, 64], "mus": [0.0, 0.9], "stable": [[True, True], [True, True]]}
    falls = {"workers": [1, 64], "mus": [0.0, 0.9], "stable": [[True, True], [True, False]]}
    assert "falls" not in document._tradeoff_trend(same) and "the same for every $M$" in document._tradeoff_trend(same)
    assert document._tradeoff_trend(falls) == (
        "the largest mean-square stable momentum goes from $0.9$ at $M = 1$ to $0$ at $M = 64$."
    )


def test_the_tradeoff_table_says_its_momenta_are_the_mean_square_stable_ones():
    """The default problem's second moments at μ 0.9 are stable up to τ = 30, its mean dynamics up to
    τ* = 32: with M = 32 workers (τ = 31) μ 0.9 is left out of the table, which said only "stable"
    beside a τ* of 32."""
    tradeoff = predict(Problem.from_spectrum()).to_dict(["tradeoff"])["tradeoff"]
    u, m = tradeoff["mus"].index(0.9), tradeoff["workers"].index(32)
    assert tradeoff["max_workers"][u] < 32 <= tradeoff["max_workers_mean"][u] and not tradeoff["stable"][m][u]
    text = (DOCS / "derivation.md").read_text()
    assert "| workers M | best mu (rate) | mean-square stable momenta |" in text
    row = next(line for line in text.splitlines() if line.startswith("| 32 |"))
    assert "0.9" not in row.split("|")[3] and "Stable here means mean-square stable" in text


@pytest.mark.slow
def test_the_numbers_sections_where_the_mean_dynamics_is_unstable_or_few_momenta_fit():
    """τ 40 on the default problem (τ* 32, the radial mode): section 10 blamed the second moments and gave
    a finite "additive linear part" beside section 9's infinite floor. Rademacher data at η 0.02: the
    exponent 1.7 was "closer to a power two than to the (1 − μ)² of the published condition", fitted
    on two of the five momenta."""
    unstable = predict(Problem.from_spectrum(delay=parse_delay("constant:40"))).to_dict(["stability", "stationary_error"])
    finite = unstable["stationary_error"]["finite_eta"]
    text = document._first_order_floor_prose(finite, unstable["stability"]).text
    assert "the radial mode $i = 1$ is unstable in the mean" in text and "second moments are unbounded" not in text
    problem = Problem.from_spectrum(distribution=parse_distribution("rademacher"), eta=0.02, delay=parse_delay("constant:2"))
    numbers = predict(problem).to_dict(["stability", "stationary_error", "delay_conditions"])
    assert sum(1 for t in numbers["stability"]["scaling"]["tau_max"] if t) == 2
    fit = document._stability_numbers(numbers)[-1].text
    assert "over the 2 momenta with $\\tau^* > 0$" in fit and "closer to the power two of the published" in fit


def test_where_epsilon_is_above_delta_sq_the_phases_say_where_the_runs_reach_it():
    """μ 0.95 (ε = 2F = 0.17 above δ² = 0.1): no phase III, and the per-run total is not the column's
    sum; the paragraph says so, with the runs' mean from escape to ε and the settled mean (the
    paragraph of phase III, which carried that, is not written here)."""
    phases = predict(Problem.from_spectrum(mu=0.95)).phases.to_dict()
    assert phases["epsilon"] >= phases["delta_sq"] and phases["converge_noise"] == "none"
    text = " ".join(block.text for block in document._phase_number_blocks(phases) if isinstance(block, document.Prose))
    reach = phases["total_iterations"] - phases["escape_iterations"]
    assert "$\\epsilon \\ge \\delta^2$" in text and f"({document._num(reach)} iterations)" in text
    assert reach < phases["travel_iterations"] and f"after {document._num(phases['settled_iterations'])}" in text
