"""The derivation as a readable document, in Markdown or LaTeX, generated from the SymPy objects.

A document is a list of blocks (headings, prose with inline math, display equations, tables);
the two renderers differ only in syntax, so Markdown and LaTeX always say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from amsgd.core.distributions import Distribution
from amsgd.core.errors import ProblemError

from . import heavy_tails, travel_noise
from .delay_conditions import ODE_CONDITION, SDE_CONDITION
from .delay_stability import (
    characteristic_polynomial,
    delay_differential_limit,
    dominant_root_expansion,
    small_delay_stability,
)
from .derivation import Derivation
from .display import as_latex
from .indexed import FULL_LISTING_DIM, INDEX, dim, ordered
from .linearization import coupling_patterns, optimum_linearization
from .norm_coupling import (
    KERNEL_CUMULANT_MAX,
    kinetic_covariance,
    kinetic_noise,
    norm_balance,
    ratio_noise_excess,
    restoring_split,
)
from .pca import PCAModel
from .ratio_drift import ratio_rate_correction
from .recursion import eta, mu, t, tau
from .sdde import LinearModeSDDE, delayed_expansion, linear_mode_sdde
from .sdde import noise_variance as noise_sigma2
from .sdde import rate as a_rate

#: Up to this dimension the tables list every mode (of every stationary point); above, a few rows and
#: a sentence saying how many are left out.
TABLE_FULL_DIM = 4


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Prose:
    text: str  # may contain inline math $...$


@dataclass(frozen=True)
class Equation:
    latex: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Prose | Equation | Table


def _num(x: float) -> str:
    return f"{x:.6g}"


def _settled_text(settled: float | None) -> str:
    """When the mean error has settled (phases.settled_iterations), or why the number is missing."""
    if settled is None:
        return ("once the mean error over runs has reached $\\epsilon$ (the runs were not sampled, or not followed "
                "that far, at this step size, so the number of iterations is not given).")  # fmt: skip
    return (f"after {_num(settled)} iterations, when the mean error of the sampled runs from the saddle first "
            "reaches $\\epsilon$: later than the sums in the table, since runs escape at widely spread times and "
            "the mean waits for the slow ones.")  # fmt: skip


def _optional(x: float | None) -> str:
    """A table's number, or "—" where the theory gives none (a JSON null)."""
    return "—" if x is None else _num(x)


def _radius(x: float) -> str:
    """A spectral radius in LaTeX: to six digits, unless that would read as exactly 1 (the verdict's
    boundary) while it is not, then as ``1 ± (x − 1)``."""
    shown = _num(x)
    if float(shown) != 1.0 or x == 1.0:
        return shown
    return f"1 {'+' if x > 1.0 else '-'} {_num(abs(x - 1.0))}"


def _passage(iterations: float | None) -> str:
    """A quantile of a first-passage law in iterations, or words where the law's paths had not passed
    by the iterations it follows (a JSON null)."""
    return "beyond the iterations the law follows" if iterations is None else f"{_num(iterations)} iterations"


def _ratio_drift() -> sp.Expr:
    """The ratio's rate correction c_i = η s_i/(1 − μ), written with s_i the variance of the ratio's additive
    noise (:func:`ratio_rate_correction` names that variance s_i²)."""
    return ratio_rate_correction().subs(sp.Symbol("s_i^2", positive=True), sp.Symbol("s_i", positive=True))


def _deciles(done: str, quantiles: dict, after: str = "") -> str:
    """When one run in ten and nine in ten have ``done`` (a past participle: "escaped"), from a law's
    quantiles, in words where its paths had not got that far by the iterations it follows (JSON nulls)."""
    q10, q90 = quantiles["q10"], quantiles["q90"]
    if q10 is None:
        return f"fewer than one run in ten has {done} within the iterations the law follows."
    first = f"one run in ten has {done} by {_num(q10)} iterations{after}"
    if q90 is None:
        return f"{first}; fewer than nine in ten within the iterations the law follows."
    return f"{first} and nine in ten by {_num(q90)} iterations{after}."


def _converge_noise_text(calibration: str) -> str:
    """How the other coordinates' noise at e_1 was chosen, in words."""
    if calibration == "finite-eta":
        return "set so that each one's stationary variance is the finite-$\\eta$ theory's (multiplicative noise in)"
    return "additive (the finite-$\\eta$ theory gives no stationary variances here)"


def _shown(d: int, *extra: int) -> list[int]:
    """The 1-based indices a table shows: all up to ``TABLE_FULL_DIM``, else 1, 2, 3, d and ``extra``."""
    if d <= TABLE_FULL_DIM:
        return list(range(1, d + 1))
    return sorted({1, 2, 3, d, *extra})


def _omitted(shown: int, total: int, what: str) -> list[Block]:
    """A sentence saying how many rows a table leaves out (none when it shows them all)."""
    if shown >= total:
        return []
    return [Prose(f"The table shows {shown} of the {total} {what}; the others follow the formulas above.")]


def _leading(values) -> str:
    """The values, or the first three of them and an ellipsis beyond :data:`FULL_LISTING_DIM`."""
    shown = values if len(values) <= FULL_LISTING_DIM else values[:3]
    return ", ".join(_num(v) for v in shown) + (", \\ldots" if len(shown) < len(values) else "")


def _spectrum(values) -> str:
    """:func:`_leading`, ending in the last value when it leaves values out."""
    return _leading(values) + ("" if len(values) <= FULL_LISTING_DIM else ", " + _num(values[-1]))


def _eq(lhs: sp.Basic, rhs: sp.Basic, simplify: bool = False) -> Equation:
    return Equation(f"{as_latex(lhs)} = {as_latex(rhs, simplify)}")


def build_document(d: Derivation, numbers: dict) -> list[Block]:
    """The step-by-step derivation: recursion → mean map → ODE → linearisation → OU → phases.

    ``numbers`` is the JSON of ``amsgd derive`` (:meth:`amsgd.diffusion.theory.Predictions.to_dict`)
    with the linear modes at e_1 under ``optimum_modes``: the formulas are derived here, the
    numbers quoted beside them come from the numeric stage.
    """
    return (
        _recursion_blocks(d)
        + _limit_blocks(d)
        + _optimum_blocks(d, numbers)
        + _sdde_blocks(d, numbers)
        + _phase_blocks(d, numbers)
        + _condition_blocks(numbers)
        + _delay_theory_blocks(numbers)
        + _random_coefficient_blocks(d, numbers)
        + _divergence_blocks(numbers)
    )


def _recursion_blocks(d: Derivation) -> list[Block]:
    """Title, problem, sections 1 (the recursion) and 2 (the time scale)."""
    p, timing = d.problem, d.timing
    x, xi = sp.IndexedBase("x"), sp.IndexedBase("xi")
    k = sp.Symbol("k", integer=True)
    step = sp.Add(
        x[k],
        sp.Mul(mu, sp.Add(x[k], -x[k - 1], evaluate=False), evaluate=False),
        sp.Mul(eta, sp.Function("G")(x[k - tau], xi[k]), evaluate=False),
        evaluate=False,
    )
    return [
        Heading("Diffusion limits of Async-MSGD on streaming PCA"),
        Prose(
            f"Problem: $d = {p.dim}$, spectrum $({_spectrum(p.eigenvalues)})$, "
            f"data `{p.distribution.spec}`, $\\eta = {_num(p.eta)}$, $\\mu = {_num(p.mu)}$, "
            f"delay `{p.delay.spec}`. Every formula below is derived symbolically by amsgd; numbers are "
            "those formulas evaluated for this problem. Time $t = k\\eta$ is diffusion time; durations "
            "in iterations are $t/\\eta$."
        ),
        Heading("1. The recursion"),
        Prose("Async-MSGD with a stale gradient and fresh momentum, in eigen-coordinates $h = Q^T v$, $Y = Q^T X$:"),
        Equation(sp.latex(sp.Eq(x[k + 1], step, evaluate=False), order="none")),
        *_update_blocks(d),
        Heading("2. Time scale of the limit"),
        Prose(
            "Put $x_k = X(k\\eta)$ for a smooth curve and expand the recursion in $\\eta$. "
            "The coefficients of $\\eta$ and $\\eta^2$ in the residual are:"
        ),
        Equation(f"{sp.latex(timing.residual_order1)} = 0"),
        Equation(f"{sp.latex(timing.residual_order2)} = 0"),
        Prose(
            "Solving the first for $X'$ gives the drift time scale, and the momentum filter "
            "$m_k = \\mu m_{k-1} + \\eta \\xi_k$ has zero-frequency gain (per unit $\\eta$):"
        ),
        Equation(f"\\frac{{X'}}{{G}} = {as_latex(timing.drift_scale)}, \\qquad H(1) = {as_latex(timing.noise_gain)}"),
        Prose(
            "The delay $\\tau$ first enters at order $\\eta^2$. Solving the second balance gives the "
            "modified equation, the first correction beyond the limit:"
        ),
        _eq(sp.Derivative(timing.curve(t), t), timing.modified_drift, simplify=True),
    ]


def _update_blocks(d: Derivation) -> list[Block]:
    """The update: component i in indexed form, or the first component of the d-dimensional model."""
    if d.indexed is None:
        return [
            Prose("with the streaming-PCA update (first component shown):"),
            Equation(f"G_1(h, Y) = {sp.latex(d.model.recursion.update[0])}"),
        ]
    i = INDEX["i"]
    return [
        Prose(
            "with the streaming-PCA update $G(h, Y) = (I - h h^T) Y Y^T h$, component $i$ (checked against the "
            "update of a model of four coordinates $j, i, k, l$ with their own eigenvalues $\\lambda_j, \\lambda_i, "
            "\\lambda_k, \\lambda_l$, which stands for any four coordinates: every formula below is derived in it "
            "once and holds for every $d$):"
        ),
        Equation(f"G_{{{i}}}(h, Y) = {sp.latex(d.indexed.update)}"),
    ]


def _limit_blocks(d: Derivation) -> list[Block]:
    """Sections 3 (mean map and ODE) and 4 (gradient noise)."""
    if d.indexed is not None:
        return _indexed_limit_blocks(d)
    solution, residual = d.ode_closed_form
    _, unprojected = d.model.projected_noise
    return [
        Heading("3. Mean map and the ODE limit"),
        Prose("The expectation over $Y$ of the update (second moments $E[Y Y^T] = \\Lambda$) is the mean map; the ODE is"),
        _eq(sp.Derivative(sp.Symbol("h"), t), d.ode.drift),
        Prose(
            "Its closed form follows from the linear flow $w' = \\Lambda w/(1-\\mu)$ (solved by `dsolve`) "
            "and $h = w/\\|w\\|$; substituting it back into the ODE leaves the residual "
            f"${sp.latex(residual.T)}$. First component:"
        ),
        _eq(sp.Function("h_1")(t), solution[0]),
        Heading("4. Gradient noise"),
        Prose(
            f"$C(h) = \\mathrm{{Cov}}[G(h, Y)]$ uses the fourth moments of `{d.problem.distribution.spec}` data. "
            "Since $G = P(h)\\,Y Y^T h$ with the noise-free projector $P = I - h h^T$, "
            "$C(h) = P\\, S(h)\\, P$ with $S(h) = \\mathrm{Cov}[Y Y^T h]$; two entries of $S$:"
        ),
        Equation(f"S_{{11}}(h) = {sp.latex(sp.factor(unprojected[0, 0]))}"),
        Equation(f"S_{{12}}(h) = {sp.latex(sp.factor(unprojected[0, 1]))}"),
    ]


def _indexed_limit_blocks(d: Derivation) -> list[Block]:
    """Sections 3 and 4 in indexed form: component i of the ODE, its closed form, ``S_ii`` and ``S_ik``."""
    x = d.indexed
    m = x.model
    i, k = INDEX["i"], INDEX["k"]
    solution, residual = x.ode_closed_form
    diagonal, off_diagonal = x.noise_covariance
    return [
        Heading("3. Mean map and the ODE limit"),
        Prose(
            "The expectation over $Y$ of the update (second moments $E[Y Y^T] = \\Lambda$) is the mean map. In the "
            "four-coordinate model component $i$ splits into a part in $h_i$ and one term per other coordinate, the "
            "same function for each; summed over all modes, the ODE is"
        ),
        Equation(f"\\frac{{d h_{{{i}}}}}{{d t}} = {as_latex(x.mean_map.indexed(m, x.drift_scale))}"),
        Prose(
            "Its closed form follows from the linear flow $w_i' = \\lambda_i w_i/(1-\\mu)$ (solved by `dsolve`) and "
            "$h = w/\\|w\\|$. With $W = \\sum_k w_k^2$ and $V = \\sum_k \\lambda_k w_k^2$, $W' = 2V/(1-\\mu)$ and "
            "$h^T \\Lambda h = V/W$; substituting into the ODE leaves the residual "
            f"${sp.latex(residual)}$ for every $d$:"
        ),
        _eq(sp.Function(f"h_{{{i}}}")(t), solution),
        Heading("4. Gradient noise"),
        Prose(
            f"$C(h) = \\mathrm{{Cov}}[G(h, Y)]$ uses the fourth moments of `{d.problem.distribution.spec}` data. "
            "Since $G = P(h)\\,Y Y^T h$ with the noise-free projector $P = I - h h^T$, "
            "$C(h) = P\\, S(h)\\, P$ with $S(h) = \\mathrm{Cov}[Y Y^T h]$. Each entry involves at most four "
            "coordinates, so the four-coordinate model gives the diagonal and the off-diagonal entries ($i \\ne k$), "
            "each summed over the modes" + _moment_symbols_prose(d) + ":"
        ),
        Equation(f"S_{{{i}{i}}}(h) = {sp.latex(diagonal.indexed(m))}"),
        Equation(f"S_{{{i}{k}}}(h) = {sp.latex(off_diagonal.indexed(m))}, \\qquad {i} \\ne {k}"),
    ]


def _moment_symbols_prose(d: Derivation) -> str:
    """For a sampled law, what its symbols ``m_{a,b}`` stand for; empty for a named law."""
    if d.moment_symbols is None:
        return ""
    return (
        ", for a law symmetric under sign changes of each eigen-coordinate, whose fourth moments with an index an odd "
        "number of times vanish and whose others are the symbols $m_{a,b} = E[Y_a^2 Y_b^2]$, $m_{a,a} = E[Y_a^4]$, "
        f"here estimated from the sampled law's {d.problem.distribution.moment_samples} moment draws (the limits at "
        "the stationary points need only $E[Y_j^2 Y_i Y_k] = 0$, $i \\ne k$, at $e_j$, which the draws are checked "
        "for; the other vanishing moments enter $S(h)$ away from them and are not checked)"
    )


def _optimum_blocks(d: Derivation, numbers: dict) -> list[Block]:
    """Sections 5 (the OU limits at every stationary point) and 6 (the stationary error)."""
    if d.indexed is not None:
        return _indexed_optimum_blocks(d, numbers)
    blocks: list[Block] = [
        Heading("5. Stationary points and their Ornstein–Uhlenbeck limits"),
        Prose(
            "Solving $E\\,G(h) = 0$ gives $h = 0$ and the points "
            + ", ".join(f"$\\pm e_{j}$" for j in d.stationary_points)
            + ". At $e_j$, with $U = (h - e_j)/\\sqrt{\\eta}$, the linearised drift $A = J(e_j)/(1-\\mu)$ and the "
            "noise $BB^T = C(e_j)/(1-\\mu)^2$ are diagonal, so each coordinate is a scalar OU process "
            "$dU_i = a_i U_i\\,dt + b_i\\,dB_i$. Coordinate $j$ is the radial mode (the update is not "
            "renormalised); the others are tangent modes."
        ),
    ]
    kinds = {point["j"]: point["kind"] for point in numbers["sde"]}
    for point in d.sde:
        blocks.append(Prose(f"At $\\pm e_{point.j}$ ({kinds[point.j]}):"))
        blocks.append(_eq(sp.Symbol("A"), point.ou.drift_matrix))
        blocks.append(_eq(sp.Symbol("B B^{T}"), point.ou.noise))
    rows = tuple(
        (f"e_{pt['j']}", str(m["i"]), m["kind"], _num(m["drift_rate"]), _num(m["diffusion"]), "yes" if m["stable"] else "no")
        for pt in numbers["sde"]
        for m in pt["modes"]
    )
    blocks.append(Table(("point", "mode i", "kind", "drift rate a_i", "diffusion b_i", "stable"), rows))
    blocks += [
        Heading("6. Stationary error near the optimum"),
        Prose("The error $\\sin^2\\angle(h, e_1)$ at $h = e_1 + \\sqrt{\\eta} U$ is, to leading order, $\\eta$ times"),
        Equation(sp.latex(d.error_expansion)),
        Prose(
            "The OU law at $e_1$ has the stationary covariance solving $A P + P A^T + B B^T = 0$ "
            "(the radial mode carries no noise):"
        ),
        _eq(sp.Symbol("P"), d.stationary_covariance),
        Prose("so the leading-order stationary error is"),
        _eq(sp.Symbol(r"E \sin^2"), d.stationary_error),
        Prose(_floor_for_this_problem(numbers)),
    ]
    return blocks


def _indexed_optimum_blocks(d: Derivation, numbers: dict) -> list[Block]:
    """Sections 5 and 6 in indexed form, with a table of a few modes."""
    x = d.indexed
    radial, tangent = x.modes["radial"], x.modes["tangent"]
    i, j = INDEX["i"], INDEX["j"]
    pair_drift, pair_noise = x.pair

    def at(expr: sp.Expr, **rename: str) -> str:
        shown, names = ordered(expr, x.model, rename)
        return as_latex(shown, names=names)

    blocks: list[Block] = [
        Heading("5. Stationary points and their Ornstein–Uhlenbeck limits"),
        Prose(
            "Solving $E\\,G(h) = 0$ in the four-coordinate model gives $h = 0$ and $\\pm e_c$ for each of its "
            f"coordinates, so the stationary points are $\\pm e_j$, $j = 1, \\ldots, {d.problem.dim}$. At $e_j$, "
            "with $U = (h - e_j)/\\sqrt{\\eta}$, the linearised drift $A = J(e_j)/(1-\\mu)$ and the noise "
            "$BB^T = C(e_j)/(1-\\mu)^2$ are diagonal: for two modes $i \\ne k$, "
            f"$A_{{{i}k}} = {sp.latex(pair_drift)}$ and $(BB^T)_{{{i}k}} = {sp.latex(pair_noise)}$. Each coordinate is a "
            "scalar OU process $dU_i = a_i U_i\\,dt + b_i\\,dB_i$; coordinate $j$ is the radial mode (the update is "
            "not renormalised), the others are tangent modes:"
        ),
        Equation(f"a_{{{i}}} = {at(tangent.drift_rate)}, \\quad b_{{{i}}}^2 = {at(tangent.variance)} \\quad ({i} \\ne {j}), "
                 f"\\qquad a_{{{j}}} = {at(radial.drift_rate)}, \\quad b_{{{j}}}^2 = {at(radial.variance)}"),
    ]
    points = {point["j"]: point for point in numbers["sde"]}
    dim_value = d.problem.dim
    saddle = numbers["phases"]["worst_saddle"]
    rows = []
    for j_value in _shown(dim_value, saddle):
        point = points[j_value]
        listed = {m["i"]: m for m in point["modes"]}
        for i_value in _shown(dim_value, j_value, point.get("fastest_mode", 1)):
            if i_value in listed:
                m = listed[i_value]
                rows.append((f"e_{j_value}", str(m["i"]), m["kind"], point["kind"], _num(m["drift_rate"]),
                             _num(m["diffusion"]), "yes" if m["stable"] else "no"))  # fmt: skip
    header = ("point", "mode i", "kind", "point kind", "drift rate a_i", "diffusion b_i", "stable")
    blocks.append(Table(header, tuple(rows)))
    blocks += _omitted(len(rows), dim_value**2, "modes of the stationary points")
    blocks += [
        Heading("6. Stationary error near the optimum"),
        Prose(
            "The error $\\sin^2\\angle(h, e_1)$ at $h = e_1 + \\sqrt{\\eta} U$ is, to leading order, $\\eta$ times a "
            "sum over the tangent modes (no radial term, no cross terms):"
        ),
        Equation(sp.latex(sp.Sum(x.error_weight * sp.IndexedBase("U")[i] ** 2, (i, 2, dim)))),
        Prose(
            "The OU law at $e_1$ has a diagonal stationary covariance; the scalar Lyapunov equation "
            "$2 a_i P_{ii} + b_i^2 = 0$ of each tangent mode gives (the radial mode carries no noise, $P_{11} = 0$)"
        ),
        Equation(f"P_{{{i}{i}}} = {at(tangent.stationary_variance, j='1')}"),
        Prose("so the leading-order stationary error is"),
        _eq(sp.Symbol(r"E \sin^2"), x.stationary_error()),
        Prose(_floor_for_this_problem(numbers)),
    ]
    return blocks


def _sdde_blocks(d: Derivation, numbers: dict) -> list[Block]:
    """Section 6a: the finite-delay limit (SDDE), its linearisation, boundary and stationary floor."""
    linear = linear_mode_sdde()
    return [*_sdde_derivation_blocks(linear), *_sdde_number_blocks(d, numbers, linear)]


def _sdde_derivation_blocks(linear: LinearModeSDDE) -> list[Block]:
    """Section 6a's formulas: the delayed expansion, the linear SDDE of a mode, its boundary and its
    stationary variance."""
    expansion = delayed_expansion()
    s = sp.Symbol("s")
    c_sym, b_sym, r_sym = sp.Symbol("c"), sp.Symbol("b"), sp.Function("R")
    u = sp.Symbol("u")
    a_i, sigma_i2 = sp.Symbol("a_i", positive=True), sp.Symbol("sigma_i^2", positive=True)
    drift = as_latex(expansion.drift_scale)
    amplitude = as_latex(expansion.noise_amplitude)
    return [
        Heading("6a. The finite-delay limit (SDDE)"),
        Prose(
            "The limits above hold $\\tau$ fixed as $\\eta \\to 0$, and the delay disappears. If instead "
            "$\\tau = s/\\eta$ with the delay time $s = \\tau\\eta$ fixed, the stale iterate is $X(t - s)$, a shift "
            "of order one that the expansion of section 2 does not expand. Its coefficient of $\\eta$ is"
        ),
        Equation(f"{sp.latex(expansion.residual_order1)} = 0"),
        Prose(
            "the balance of section 2 with the gradient at the stale state. The noise of step $k$ is that of the "
            "gradient at $x_{k-\\tau}$ through the same momentum filter, so the limit is the stochastic delay "
            "differential equation"
        ),
        Equation(f"dX = {drift}\\, G(X(t - s))\\, dt + {amplitude}\\, C(X(t - s))^{{1/2}}\\, dW"),
        Prose(
            "Linearised at $e_1$, mode $i$ (restoring rate $a_i = -J_{ii}(e_1)$ as in section 9, gradient-noise "
            "variance $\\sigma_i^2 = C_{ii}(e_1)$) is a scalar linear SDDE"
        ),
        Equation(
            f"dX_i = -c_i X_i(t - s)\\, dt + b_i\\, dW_i, \\qquad c_i = {as_latex(linear.rate.subs(a_rate, a_i))}, "
            f"\\quad b_i^2 = {as_latex(linear.noise.subs(noise_sigma2, sigma_i2))}"
        ),
        Prose("with the characteristic equation and the stability boundary of the delay-differential limit:"),
        Equation(
            f"{sp.latex(linear.delay_differential.characteristic.subs(a_rate, a_i))} = 0, \\qquad "
            f"s_i^* = {as_latex(linear.delay_differential.critical_delay_time.subs(a_rate, a_i))}"
        ),
        Prose(
            "For $dX = -c X(t - s)\\, dt + b\\, dW$ the stationary autocovariance $R(u) = E[X(t + u) X(t)]$ obeys "
            f"${sp.latex(sp.Eq(r_sym(u).diff(u), -c_sym * r_sym(s - u)))}$ on $[0, s]$ ($R$ is even), and Itô's "
            f"formula for $X^2$ gives ${sp.latex(sp.Eq(0, -2 * c_sym * r_sym(s) + b_sym**2))}$. With $P(u) = R(u)$ and "
            "$Q(u) = R(s - u)$ this is the linear system $P' = -cQ$, $Q' = cP$, solved by SymPy; its $R(0)$ is the "
            "stationary variance (equal to the form of Küchler and Mensch, 1992), for $0 \\le c s < \\pi/2$:"
        ),
        _eq(sp.Symbol(r"\mathrm{Var}\, X"), linear.closed_form),
        Prose(
            "It tends to the diffusion value $b^2/(2c)$ of section 6 as $s \\to 0$ and to infinity at the boundary. "
            "The floor of the SDDE at $e_1$ is the sum over the modes, "
            "$\\sum_i b_i^2 (1 + \\sin c_i s)/(2 c_i \\cos c_i s)$. For this problem:"
        ),
    ]


def _sdde_number_blocks(d: Derivation, numbers: dict, linear: LinearModeSDDE) -> list[Block]:
    """Section 6a's numbers: each mode's SDDE coefficients and boundary, the problem's delay time and floor."""
    sdde = numbers["sdde"]
    modes = numbers["optimum_modes"]
    shown = _shown(len(modes["i"]), sdde["limiting_mode"]["i"])
    boundary = linear.delay_differential.critical_delay_time
    rows = []
    for i_value in shown:
        k = i_value - 1
        at = {a_rate: modes["rate"][k], noise_sigma2: modes["noise_variance"][k], eta: d.problem.eta, mu: d.problem.mu}
        variance = sdde["per_mode"][k]
        rows.append((str(modes["i"][k]), modes["kind"][k], _num(float(linear.rate.subs(at))),
                     _num(float(linear.noise.subs(at))), _num(float(boundary.subs(at))),
                     _num(variance) if variance is not None else "not computed" if sdde.get("unresolved") else "$\\infty$"))  # fmt: skip
    header = ("mode i", "kind", "c_i", "b_i squared", "s_i*", f"Var X_i at s = {_num(sdde['delay_time'])}")
    blocks: list[Block] = [Table(header, tuple(rows))]
    blocks += _omitted(len(rows), len(modes["i"]), "modes at $e_1$")
    blocks.append(_sdde_prose(sdde, numbers["stationary_error"]["linearized"]["value"]))
    return blocks


def _sdde_prose(sdde: dict, linearized: float | None) -> Prose:
    """The problem's delay time against the boundary, and the SDDE floor beside the exact linear one; for
    a random delay, the distributed-delay equation whose variances the table gives."""
    limiting = sdde["limiting_mode"]
    distributed = sdde.get("delay") == "distributed"
    boundary = (f"one constant delay would be stable for $s < s^* = {_num(sdde['critical_delay_time'])}$ "
                if distributed else f"the SDDE is stable for $s < s^* = {_num(sdde['critical_delay_time'])}$ ")  # fmt: skip
    floor = sdde["stationary_error"]
    return Prose(
        f"The problem's delay gives $s = \\tau\\eta = {_num(sdde['delay_time'])}$"
        + (" (the mean delay times $\\eta$). The delay is random, and its limit spreads it over its law, "
           "$dX_i = -c_i \\sum_k p_k X_i(t - k\\eta)\\,dt + b_i\\,dW_i$: the table's variances are that "
           "distributed-delay equation's (stability by the argument principle, the variance by the spectral "
           "integral $\\frac{b_i^2}{\\pi}\\int_0^\\infty |i\\omega + c_i \\varphi(\\omega)|^{-2}\\,d\\omega$, "
           "$\\varphi(\\omega) = \\sum_k p_k e^{-i\\omega k\\eta}$ the law's transfer factor, the conjugate of "
           "its characteristic function); " if distributed else "; ")
        + boundary
        + f"($\\tau < {_num(sdde['critical_delay'])}$), set by the {limiting['kind']} mode $i = {limiting['i']}$. "
        + (
            f"Its floor is ${_num(floor)}$ against the diffusion floor ${_num(sdde['diffusion_floor'])}$"
            if floor is not None
            else f"Its floor is not computed: {sdde['unresolved']} (the diffusion floor is "
            f"${_num(sdde['diffusion_floor'])}$)"
            if sdde.get("unresolved")
            else f"At this $s$ it has no stationary law (the diffusion floor is ${_num(sdde['diffusion_floor'])}$)"
        )
        + "; the exact linear floor at this $\\eta$ (section 9) is "
        + (f"${_num(linearized)}$." if linearized is not None else "$\\infty$.")
    )


def _phase_blocks(d: Derivation, numbers: dict) -> list[Block]:
    """Section 7: the three phases, their formulas and their durations for this problem."""
    phases = numbers["phases"]
    return [*_phase_formula_blocks(d, phases["worst_saddle"]), *_phase_number_blocks(phases)]


def _phase_formula_blocks(d: Derivation, saddle: int) -> list[Block]:
    """Section 7's formulas: the escape's variance and time, the travel time, the convergence curve and time."""
    f, lam = d.phase_formulas, d.model.lam
    return [
        Heading("7. The three phases"),
        Prose(
            f"Start at the worst saddle $e_{saddle}$. Phase I (escape) ends when $h_1^2 = \\delta^2$: "
            "the unstable OU mode from $U = 0$ has variance"
        ),
        _eq(sp.Symbol("V(t)"), f.escape_variance),
        Prose("and $\\eta V(T_1) = \\delta^2$ gives"),
        _eq(sp.Symbol("T_1"), f.escape_time),
        Prose(
            "Phase II (travel) follows the ODE, whose closed form makes $h_1^2/h_2^2$ grow like "
            "$e^{2(\\lambda_1-\\lambda_2) t/(1-\\mu)}$, from $h_1^2 = \\delta^2$ to $1 - \\delta^2$:"
        ),
        _eq(sp.Symbol("T_2"), f.travel_time_scaled / ((lam[0] - lam[1]) * d.timing.drift_scale)),
        Prose(
            "That is every run's travel in the limit. A single run's is sampled (below) from the plane's angle "
            f"$\\theta$ ($h = (\\sin\\theta, \\cos\\theta)$ in $(e_1, e_j)$, here $j = {saddle}$, moving along "
            "$e = (\\cos\\theta, -\\sin\\theta)$) and the other coordinates; from the fourth moments "
            "$M_{abcd} = E[Y_a Y_b Y_c Y_d]$ the gradient noise along the travel is"
        ),
        _eq(sp.Symbol(r"\operatorname{Var}[(y^\top h)(y^\top e)]"), _plane_noise_form()),
        Prose("and that of another coordinate $i$, linear in the shares,"),
        _eq(sp.Symbol(r"E[(y^{\top} h)^{2} Y_{i}^{2}]"), travel_noise.orthogonal_noise()),
        Prose(
            "Phase III (convergence): the slowest stable mode at $e_1$ relaxes from $\\delta^2$ while the "
            "others sit at their stationary variances; with $F$ the stationary error, the expected error is"
        ),
        _eq(sp.Symbol(r"E\,\sin^{2}(t)"), f.converge_error),
        Prose("and it reaches $\\epsilon$ at"),
        _eq(sp.Symbol("T_3"), f.converge_time),
    ]


def _plane_noise_form() -> sp.Expr:
    """``S cos² 2θ + (V/4) sin² 2θ`` with the derived S and V (:func:`.travel_noise.plane_noise`), unevaluated."""
    s, v = travel_noise.plane_noise()
    gap = (travel_noise.LAMBDA_1 - travel_noise.LAMBDA_J) ** 2
    v_shown = sp.Add(sp.expand(v + gap), -gap, evaluate=False)  # Var(Y_1² − Y_j²): moments less the squared mean
    angle = 2 * travel_noise.THETA
    return sp.Add(sp.Mul(s, sp.cos(angle) ** 2, evaluate=False),
                  sp.Mul(sp.Rational(1, 4), v_shown, sp.sin(angle) ** 2, evaluate=False), evaluate=False)  # fmt: skip


def _phase_number_blocks(phases: dict) -> list[Block]:
    """Section 7's numbers: each phase's duration (mean curve and per run), the escape's and the
    convergence's laws over runs, and the linear recursion's escape at this η."""
    blocks = [*_phase_table_blocks(phases), _escape_law_prose(phases), _travel_law_prose(phases)]
    if phases.get("converges", True) and phases["converge_noise"] in ("finite-eta", "additive"):
        blocks.append(_converge_law_prose(phases))  # sampled: travel ends above ε, modes stable
    elif phases.get("converges", True) and phases["total_iterations"] is not None:
        blocks.append(_early_epsilon_prose(phases))  # ε >= δ²: reached on the travel
    if phases["mean_curve"]["escape_iterations_linearized"] is not None:
        blocks.append(_linear_escape_prose(phases["mean_curve"]))
    return blocks


def _phase_table_blocks(phases: dict) -> list[Block]:
    """The phases' durations: the diffusion limit's, and the mean of the runs' own passages."""
    curve = phases["mean_curve"]
    converges = phases.get("converges", True)
    limit_total = (
        curve["escape_iterations"] + curve["travel_iterations"] + curve["converge_iterations"] if converges else None
    )
    target = (
        f" and $\\epsilon = {_num(phases['epsilon'])}$:"
        if converges
        else ": there is no phase III, since the iteration is not mean-square stable at $e_1$ (section 10) and the "
        "error has no floor to settle at:"
    )
    return [
        Prose(
            f"Here $a$, $\\sigma^2$ are the rate and noise variance of the mode concerned. For this problem, "
            f"with $\\delta^2 = {_num(phases['delta_sq'])}${target}"
        ),
        Table(
            ("phase", "iterations (diffusion limit)", "iterations (per run, mean over runs)"),
            (
                ("escape", _num(curve["escape_iterations"]), _optional(phases["escape_iterations"])),
                ("travel", _num(curve["travel_iterations"]), _optional(phases["travel_iterations"])),
                ("converge", _optional(curve["converge_iterations"]), _optional(phases["converge_iterations"])),
                ("total", _optional(limit_total), _optional(phases["total_iterations"])),
            ),
        ),
    ]


def _escape_law_prose(phases: dict) -> Prose:
    """The mean curve's crossing against the runs' own passages, and the escape's law over runs."""
    return Prose(
        "The diffusion-limit column is the formulas above: the escape when the mean of $h_1^2$ over runs "
        "crosses $\\delta^2$, the ODE's travel, and the convergence of the mean error from $\\delta^2$; the "
        "other is the mean over runs of each run's own first passage. Neither total is when the mean error "
        "over runs reaches $\\epsilon$ (below). Escape: a single run starts from "
        "noise, so its first passage is later and widely spread: sampled exactly from the linear "
        "escaping recursion at this $\\eta$, $\\mu$ and delay (the ratio $h_1/h_2$ crossing "
        "$\\delta\\sqrt{(1+S)/(1-\\delta^2)}$, $S$ the other coordinates' share of $\\|h\\|^2$ per "
        "$h_2^2$ grown from rest at the saddle with their additive and multiplicative noise, which also "
        "adds to the ratio's own; the ratio's additive and multiplicative noise drawn from the data law, "
        "with the rate correction "
        f"${sp.latex(_ratio_drift())}$ of the ratio, $s_i$ the variance of its additive noise as in section 10), "
        "the median is "
        f"{_passage(phases['escape_law']['median'])}; {_deciles('escaped', phases['escape_law']['quantiles'])}"
        + (f" Accuracy: {phases['escape_law_note']}." if phases.get("escape_law_note") else "")
    )


def _travel_law_prose(phases: dict) -> Prose:
    """The travel's law over runs, sampled from the plane's angle; where there is none, why."""
    law = phases["travel_law"]
    if not phases.get("mean_stable", True):
        return Prose("Travel: there is no per-run law here: beyond the mean-dynamics boundary (section 9) the norm "
                     "of $v$, which the travel's model leaves out, oscillates with growing amplitude, and runs blow "
                     "up or saturate rather than travel.")  # fmt: skip
    if not phases.get("arrives", True):
        return Prose("Travel: there is no per-run law here: the floor lies at or above $\\delta^2$, where a run's "
                     "error reaches $\\delta^2$ only on a dip, and too many of the sampled runs had not, or the "
                     "error stays too far from $e_1$ for the arrivals to be followed (the note of the JSON says "
                     "which).")  # fmt: skip
    return Prose(
        "Travel: the ODE's travel is the same for every run; a run's is longer, since the error counts "
        "the other coordinates' fluctuations (it arrives only when its own part is below $\\delta^2$ minus "
        "theirs) and the plane's noise moves it at both ends. Sampled from the plane's angle $\\theta$ "
        "($h_1 = \\sin\\theta$) under the ODE's force $(\\lambda_1 - \\lambda_2)\\sin 2\\theta/2$ and the "
        "data's noise at that angle, with the other coordinates linear about the current point, from rest "
        f"at the saddle, the median is {_passage(law['median'])}; "
        + _deciles("arrived", law["quantiles"], " after its escape")
        + (f" Accuracy: {phases['large_step_note']}." if phases.get("large_step_note") else "")
    )


def _converge_law_prose(phases: dict) -> Prose:
    """The convergence's law over runs, each from its own arrival, and when a window may start."""
    converge = phases["converge_law"]
    return Prose(
        "Convergence: a run arrives moving, and its error fluctuates about the floor and crosses "
        "$\\epsilon$ on a dip. From the same sampled runs, each from its own arrival, the other "
        f"coordinates' noise at $e_1$ {_converge_noise_text(phases['converge_noise'])}, the median is "
        f"{_passage(converge['median'])}; " + _deciles("come below $\\epsilon$", converge["quantiles"]) + " A "
        "stationary window should start when the mean has settled, " + _settled_text(phases["settled_iterations"])
    )


def _early_epsilon_prose(phases: dict) -> Prose:
    """Where ε >= δ²: a run reaches ε on its travel, and the per-run total is not the column's sum."""
    reach = phases["total_iterations"] - phases["escape_iterations"]
    return Prose(
        "Here $\\epsilon \\ge \\delta^2$: a run's error first reaches $\\epsilon$ on its travel, before "
        "$\\delta^2$, so there is no phase III, and the per-run total is the escape's mean and the mean, over "
        f"the same sampled runs, from a run's escape to that passage ({_num(reach)} iterations), not the "
        "column's sum. A stationary window should start when the mean has settled, "
        + _settled_text(phases["settled_iterations"])
    )


def _linear_escape_prose(curve: dict) -> Prose:
    """The exact linear recursion's escape at this η against the limit's."""
    linear_escape = curve["escape_iterations_linearized"]
    return Prose(
        "At finite $\\eta$ and this delay, the exact linear recursion of the escaping mode, started at "
        f"rest, reaches variance $\\delta^2$ at iteration {linear_escape} (against "
        f"{_num(curve['escape_iterations'])} from the limit): the escape-time formula is accurate only "
        "to leading order in $\\eta$."
        + _saturated_sentence(curve)
        + _limit_range_sentence(curve)
    )


def _saturated_sentence(curve: dict) -> str:
    """The mean curve of the escape law's own paths, where it was sampled and reached δ²."""
    saturated = curve["escape_iterations_saturated"]
    if saturated is None:
        return ""
    low, high = curve["escape_iterations_saturated_interval"]
    return (" A run's share $h_1^2/\\|h\\|^2$ saturates below 1 while the linear ratio grows on, and runs escape "
            "at widely spread times: the mean over the escape law's own paths of $r^2/(1 + r^2 + S)$ reaches "
            f"$\\delta^2$ at iteration {saturated} (95% interval {low} to {'beyond the paths followed' if high is None else high}), "
            "the mean curve of runs at this $\\eta$, $\\mu$ and delay.")


def _limit_range_sentence(curve: dict) -> str:
    """Where the limit's escape is outside its range (``accuracy_note``): against which finite-η crossing."""
    if not curve["accuracy_note"]:
        return ""
    crossing = "mean curve's crossing" if curve["escape_iterations_saturated"] is not None else "linear escape"
    return (f" Here the limit's escape lies more than a quarter of its e-folding time from that {crossing}: the "
            "limit leaves out the momentum's build-up and the finite step's slower growth, of relative order "
            f"$\\eta |a|/(1-\\mu)^2$, and the {crossing} holds.")


def _condition_blocks(numbers: dict) -> list[Block]:
    """Section 8: the published sufficient delay conditions, quoted and evaluated."""
    cond = numbers["delay_conditions"]
    return [
        Heading("8. The published sufficient delay conditions"),
        Prose(
            "Quoted from Liu et al. (NeurIPS 2018), not derived here: the ODE limit is proved for "
            f"$\\tau_k \\lesssim {as_latex(ODE_CONDITION)}$ and the SDE limit for "
            f"$\\tau_k \\lesssim {as_latex(SDE_CONDITION)}$, up to unspecified constants. "
            f"With $\\gamma = {_num(cond['gamma'])}$ the ODE bound is ${_num(cond['ode_tau_bound'])}$"
            + (
                f" and the SDE bound ${_num(cond['sde_tau_bound'])}$ ($C_d = {_num(cond['sample_bound'])}$)."
                if cond["sde_tau_bound"] is not None
                else "; the SDE bound needs bounded samples ($C_d < \\infty$), which this distribution does not have."
            )
        ),
    ]


def _delay_theory_blocks(numbers: dict) -> list[Block]:
    """Section 9: the exact finite-η, finite-τ linear theory, its formulas and its numbers."""
    dde = delay_differential_limit()
    expansion = dominant_root_expansion()
    modes = numbers["optimum_modes"]
    blocks: list[Block] = [
        Heading("9. Finite step and finite delay: the exact linear theory"),
        Prose(
            "The diffusion limit does not see $\\tau$. Linearised at $e_1$, mode $i$ with restoring rate "
            "$a_i = -J_{ii}(e_1)$ obeys $x_{k+1} = (1+\\mu) x_k - \\mu x_{k-1} - \\eta a_i x_{k-\\tau} + \\eta \\xi_k$. "
            + _rates_text(modes)
            + ": the radial mode, $2\\lambda_1$, is the fastest. Substituting $x_k = z^k$ and multiplying by "
            f"$z^{{\\tau - k}}$ (for $\\tau \\ge 1$; at $\\tau = 0$ by $z^{{1-k}}$, which gives "
            f"${sp.latex(characteristic_polynomial(0))}$):"
        ),
        Equation(f"p(z) = {sp.latex(characteristic_polynomial())}"),
        Prose(
            "For small delays the Schur–Cohn reduction gives the stability region in closed form; "
            "in terms of $c = \\eta a$ the mode is stable iff $0 < c < c^*$ with"
        ),
    ]
    for delay in (0, 1, 2):
        critical = as_latex(small_delay_stability(delay).critical_step)
        blocks.append(Equation(f"\\tau = {delay}:\\quad c^* = {critical}"))
    blocks += [
        Prose("The root near 1, to second order in $\\eta$ (for any $\\tau$), and its rate per unit time $t$:"),
        _eq(sp.Symbol("z"), 1 + expansion.c1 * eta + expansion.c2 * eta**2),
        _eq(sp.Symbol(r"\log(z)/\eta"), expansion.rate, simplify=True),
        Prose(
            "When $\\tau\\eta/(1-\\mu) = O(1)$ the recursion tends to a delay-differential equation, whose "
            "stability boundary follows from its characteristic equation on the imaginary axis:"
        ),
        Equation(sp.latex(dde.equation)),
        _eq(sp.Symbol(r"\tau^*_{\mathrm{DDE}}"), dde.critical_delay),
    ]
    stability = numbers["stability"]
    if stability.get("tau_max") is None:
        blocks.append(Prose(f"For this problem: {stability.get('note', 'no stability result')}."))
        return blocks
    return blocks + _stability_numbers(numbers) + _tradeoff_blocks(numbers["tradeoff"])


def _rates_text(modes: dict) -> str:
    """``Here the rates are …``: every mode up to ``TABLE_FULL_DIM``, else the first, the last and a count."""
    shown = _shown(len(modes["i"]))
    listed = ", ".join(f"${_num(modes['rate'][i - 1])}$ ({modes['kind'][i - 1]} $i = {i}$)" for i in shown)
    if len(shown) == len(modes["i"]):
        return "Here the rates are " + listed
    return f"Here the rates of the modes $i = {', '.join(map(str, shown))}$ (of {len(modes['i'])}) are " + listed


def _stability_numbers(numbers: dict) -> list[Block]:
    """τ*, its mode, the floor at the problem's delay, and how τ* scales with 1 − μ."""
    stability, linearized = numbers["stability"], numbers["stationary_error"]["linearized"]
    limiting = stability["limiting_mode"]
    floor_text = _num(linearized["value"]) if linearized["value"] is not None else "\\infty"
    ratio = linearized["ratio_to_diffusion"]
    ratio_text = _num(ratio) if ratio is not None else "an infinite multiple"
    scaling = stability["scaling"]
    blocks: list[Block] = [
        Prose(
            f"For this problem the exact largest stable constant delay (all modes, from the roots) is "
            f"$\\tau^* = {stability['tau_max']}$, set by the {limiting['kind']} mode $i = {limiting['i']}$ "
            f"(rate ${_num(limiting['rate'])}$); the delay-differential limit gives "
            f"${_num(stability['tau_max_delay_differential'])}$. At the problem's delay the spectral radius is "
            f"${_num(stability['spectral_radius'])}$ and the exact linearised error floor is "
            f"${floor_text}$, {ratio_text} times the diffusion floor."
        ),
        Prose(
            "How $\\tau^*$ scales with $1-\\mu$ at this $\\eta$, beside the delay-differential value and "
            "the published sufficient condition $(1-\\mu)^2/(\\lambda_1\\eta^{1-\\gamma})$ "
            f"($\\gamma = {_num(numbers['delay_conditions']['gamma'])}$):"
        ),
        Table(
            ("mu", "1 - mu", "tau* (exact)", "tau* (DDE limit)", "paper's bound"),
            tuple(
                (_num(m), _num(1 - m), str(t), _num(dd), _num(pb))
                for m, t, dd, pb in zip(
                    scaling["mu"], scaling["tau_max"], scaling["tau_max_delay_differential"], scaling["paper_ode_bound"]
                )
            ),
        ),
    ]
    exponent = scaling["fitted_exponent"]
    if exponent is None:
        return blocks + [Prose("Too few momenta have a stable delay to fit an exponent.")]
    margins = [t / b for t, b in zip(scaling["tau_max"], scaling["paper_ode_bound"]) if t]
    fitted = "these momenta" if len(margins) == len(scaling["mu"]) else f"the {len(margins)} momenta with $\\tau^* > 0$"
    closer = (
        "closer to a power one than to the $(1-\\mu)^2$ of the published sufficient condition"
        if abs(exponent - 1) < abs(exponent - 2)
        else "closer to the power two of the published sufficient condition than to one"
    )
    return blocks + [
        Prose(
            f"A log-log fit gives $\\tau^* \\propto (1-\\mu)^{{{_num(exponent)}}}$ over {fitted}, {closer}; the "
            "delay-differential limit is exactly linear, $\\pi(1-\\mu)/(2 a \\eta)$. The published bound "
            f"(up to its unspecified constant) lies below the exact knee by a factor {_num(min(margins))} "
            f"to {_num(max(margins))} here."
        )
    ]


def _tradeoff_blocks(tradeoff: dict) -> list[Block]:
    """The momentum–asynchrony tradeoff table: best momentum and stable momenta per worker count."""
    return [
        Prose(
            "The momentum–asynchrony tradeoff with $M$ round-robin workers ($\\tau = M - 1$): "
            f"{_tradeoff_trend(tradeoff)} Stable here means mean-square stable (section 10), which can stop short "
            "of the mean dynamics' $\\tau^*$ (section 9). Best momentum per $M$ by the local convergence rate of "
            "the error at finite $\\eta$ (section 10; the floor alone always prefers the smallest momentum):"
        ),
        Table(
            ("workers M", "best mu (rate)", "mean-square stable momenta"),
            tuple(
                (
                    str(m),
                    _num(best) if best is not None else "none",
                    ", ".join(_num(mu_v) for mu_v, ok in zip(tradeoff["mus"], row) if ok) or "none",
                )
                for m, best, row in zip(tradeoff["workers"], tradeoff["best_mu_rate"], tradeoff["stable"])
            ),
        ),
    ]


def _tradeoff_trend(tradeoff: dict) -> str:
    """What the table shows of the largest stable momentum as the number of workers grows."""
    largest = [max((mu for mu, ok in zip(tradeoff["mus"], row) if ok), default=None) for row in tradeoff["stable"]]
    if all(mu == largest[0] for mu in largest):
        return "at this $\\eta$ the largest mean-square stable momentum of the table is the same for every $M$ listed."
    shown = ["none" if mu is None else f"${_num(mu)}$" for mu in largest]
    workers = tradeoff["workers"]
    return f"the largest mean-square stable momentum goes from {shown[0]} at $M = {workers[0]}$ to {shown[-1]} at $M = {workers[-1]}$."


def _random_coefficient_blocks(d: Derivation, numbers: dict) -> list[Block]:
    """Section 10: the random-coefficient linearisation, the finite-η floor and mean-square stability."""
    lin = optimum_linearization(PCAModel(3, d.problem.distribution)) if d.model.estimated_moments is None else None
    blocks: list[Block] = [
        Heading("10. Multiplicative noise: the random-coefficient linearisation"),
        Prose(
            "Near $e_1$, with $h = e_1 + x$, the update is $G(e_1 + x, Y) = b(Y) + A(Y)\\,x + O(x^2)$: the "
            "gradient noise is not additive, its coefficient $A$ is random. Derived from the update "
            "(three coordinates shown: $1$, $i$, $j$):"
        ),
    ]
    if lin is not None:
        patterns = coupling_patterns(d.problem.distribution)
        blocks += [
            _eq(sp.Symbol("A(Y)"), lin.coefficient),
            _eq(sp.Symbol("b(Y)"), lin.forcing),
            Prose(
                f"Under `{d.problem.distribution.spec}` data, with $\\lambda_2, \\lambda_3$ standing for any "
                "$\\lambda_i, \\lambda_j$, the couplings $C_{ij} = \\mathrm{Var}\\,A_{ij}$ and the additive noise "
                "$s_i = E\\,b_i^2$ are"
            ),
            _eq(sp.Symbol("C"), patterns.coupling),
            _eq(sp.Symbol("s^{T}"), patterns.additive.T),
        ]
    finite = numbers["stationary_error"]["finite_eta"]
    return [
        *blocks,
        _first_order_floor_prose(finite, numbers["stability"]),
        *_norm_coupling_blocks(finite, d.problem.distribution if lin is not None else None),
        *_heavy_tail_blocks(finite),
        _mean_square_prose(numbers["stability"]),
    ]


def _first_order_floor_prose(finite: dict, stability: dict) -> Prose:
    """The exact second moments of the ratios and the first-order floor with its three parts."""
    parts = finite["parts"]
    mode = stability["limiting_mode"]
    return Prose(
        "The covariance stays diagonal across coordinates, and each tangent mode $i$ is the delayed momentum "
        "recursion of section 9 driven by white noise of variance $s_i + \\sum_j C_{ij} v_j$. With $G_i$ its "
        "stationary variance per unit noise (delay spread included), the exact variances of the ratios "
        "$r_i = h_i/h_1$ solve $(I - \\mathrm{diag}(G)\\,C)\\,v = G \\odot s$, and the floor is "
        "$E[S/(1+S)]$, $S = \\sum_i r_i^2$, for Gaussian $r$. For this problem: "
        + (
            f"${_num(finite['first_order'])}$ = ${_num(parts['additive_linear'])}$ (additive linear) "
            f"${_signed(parts['multiplicative'])}$ (multiplicative) ${_signed(parts['nonlinear'])}$ (curvature of "
            "$\\sin^2$)."
            if finite["value"] is not None
            else "a tangent mode is unstable in the mean at this $\\eta$, $\\mu$ and delay (section 9), so there is "
            "no finite floor."
            if parts["additive_linear"] is None
            else f"the {mode['kind']} mode $i = {mode['i']}$ is unstable in the mean at this $\\eta$, $\\mu$ and delay "
            "(section 9), so there is no finite floor (the tangent modes alone give an additive linear part of "
            f"${_num(parts['additive_linear'])}$)."
            if not stability["stable"]
            else "the mean dynamics is stable but the second moments are unbounded at this $\\eta$, $\\mu$ and "
            f"delay (below), so there is no finite floor (the additive linear part alone is "
            f"${_num(parts['additive_linear'])}$)."
        )
    )


def _mean_square_prose(stability: dict) -> Prose:
    """Mean-square stability: the second-moment operator's radius and the largest mean-square-stable delay."""
    ms = stability["mean_square"]
    return Prose(
        "The second moments of the whole linearisation, the radial mode included, are bounded iff every "
        "mode is and the Perron root of $\\mathrm{diag}(G)\\,C$ is below one; the spectral radius of the "
        f"second-moment operator is ${_radius(ms['radius'])}$ here. "
        + (
            f"Every constant delay up to $\\tau = {ms['tau_max']}$, the longest the numerics take, is "
            f"mean-square stable: the boundary lies beyond it (against $\\tau^* = "
            f"{stability['tau_max']}$ for the mean)."
            if ms.get("tau_max_is_lower_bound")
            else f"The largest mean-square-stable constant delay is $\\tau = {ms['tau_max']}$ (beyond it the "
            f"{ms['limiting_mode']['kind']} mode $i = {ms['limiting_mode']['i']}$ breaks), against "
            f"$\\tau^* = {stability['tau_max']}$ for the mean."
            if ms["tau_max"] is not None
            else f"No constant delay is mean-square stable at this $\\eta$ (the {ms['limiting_mode']['kind']} "
            f"mode $i = {ms['limiting_mode']['i']}$ breaks first)."
        )
    )


def _heavy_tail_blocks(finite: dict) -> list[Block]:
    """Student-t data: the curvature of sin² under the ratios' heavy-tailed law (:mod:`.heavy_tails`)."""
    factor = finite.get("heavy_tail_factor")
    if factor is None:
        return []
    t_, s_ = heavy_tails.t, heavy_tails.s
    return [
        Prose(
            "Student-t data, $Y = \\sqrt{g}\\,\\zeta$ with $g = (\\nu - 2)/w$, $w \\sim \\chi^2_\\nu$: the ratios are "
            "Gaussian only given the per-step scales $m = g^2 \\zeta_1^2 / E[g^2 \\zeta_1^2]$, with variances "
            "$V_i = v_i \\sum_j \\kappa_{ij} m_{k-j}$ ($\\kappa_{ij}$ the squared impulse response of mode $i$, summing to "
            "one). With"
        ),
        _eq(sp.Symbol("{E[g^2]}"), heavy_tails.scale_second_moment()),
        _eq(sp.Symbol("{E_x[e^{-t V x^2}]}"), heavy_tails.gaussian_laplace()),
        _eq(sp.Integral(sp.exp(-t_ * (1 + s_)), (t_, 0, sp.oo)), heavy_tails.resolvent()),
        Prose(
            "the floor's curvature becomes $1 - \\int_0^\\infty e^{-t}\\,E_w[\\prod_j \\varphi(t \\sum_i w_i^2 v_i "
            "\\kappa_{ij})]\\,dt$ with $\\varphi(s) = E[e^{-s m}]$ and $w$ standard normal (a quadrature). Its ratio "
            f"to the same with Gaussian data is ${_num(factor)}$ here, and the floor is ${_num(finite['value'])}$."
        ),
    ]


def _norm_coupling_blocks(finite: dict, law: Distribution | None) -> list[Block]:
    """The floor's next order: how the norm of h enters (:mod:`.norm_coupling`); ``law`` the named data law
    (None: a sampler's, estimated)."""
    balance = norm_balance()
    blocks: list[Block] = [
        Prose(
            "Next order: the norm $\\|h\\|^2 = 1 + \\delta$. To first order in $r$ the ratio's drift under the mean "
            "map at the delayed iterate is $-(a_i - b)\\,r_{k-\\tau} - b\\,r_k$: part of the restoring force acts on "
            "the current ratio, with ($E h_1^2 = (1 + \\delta)(1 - F)$, $Q = \\sum_j \\lambda_j v_j$ the tangent modes' "
            "share of $h^\\top \\Sigma h / h_1^2$)"
        ),
        _eq(sp.Symbol("b"), restoring_split()),
        Prose(
            "The exact identity $\\eta\\,E[h \\cdot g] = -(1 + \\mu)\\,K/2$ ($K = E\\|h_k - h_{k-1}\\|^2$, the "
            "kinetic energy) with $E[h \\cdot g]$ to first order gives the norm excess, $L$ the sum over the tangent "
            "modes of"
        ),
        _eq(sp.Symbol("L_i"), balance.per_mode),
        _eq(sp.Symbol("delta"), balance.delta),
        Prose(
            "With momentum the ratio's velocity is carried by $\\mu\\,h_{1,k-1}/h_{1,k+1}$, whose norm part is "
            "$1 + (\\delta_{k-1} - \\delta_{k+1})/2$, and $\\delta$ follows the radial recursion (rate $2\\lambda_1$, "
            "impulse response $H_j$) driven by the kinetic energy. For Gaussian velocities (Isserlis) the "
            "covariance of that drive with mode $i$'s squared velocity is"
        ),
        _eq(sp.Symbol("{\\kappa_i(\\ell)}"), kinetic_covariance()),
        Prose(
            "so mode $i$ relaxes with the momentum $\\mu(1 + \\varepsilon_i)$, "
            "$\\varepsilon_i = \\sum_j H_j\\,[\\kappa_i(j + 2) - \\kappa_i(j)]/(2\\gamma^w_i(0))$ ($\\gamma^w_i$ "
            "its velocity autocovariance)."
        ),
        *_kernel_constant_blocks(law),
        Prose(
            "Dividing by $h_1$ drifts the ratio away from $e_1$: the radial part of a step carries the stale ratio and "
            "shares the mode's noise, so the restoring rate on the stale ratio falls by $c_i$ (per unit $\\eta$, "
            "with the mode's momentum $\\mu_i$ for $\\mu$), and the additive noise's correlation with the step's "
            "second-order part changes its variance $s_i$ by $\\Delta s_i$:"
        ),
        _eq(sp.Symbol("c_i"), _ratio_drift()),
        _eq(sp.Symbol("{\\Delta s_i}"), ratio_noise_excess()),
        Prose("The floor is recomputed with all of these."),
    ]
    norm = finite.get("norm")
    if finite["first_order"] is None:  # no floor at any order (section above)
        return blocks
    if norm is None or finite["value"] is None:
        blocks.append(Prose("For this problem the coupled second moments have no stationary law: the floor is "
                            "the first-order one."))  # fmt: skip
        return blocks
    blocks.append(Prose(
        f"For this problem: $\\delta = {_num(norm['norm_excess'])}$, $b = {_num(norm['restoring_split'])}$, "
        f"$\\varepsilon_i = {_leading(norm['friction'])}$, $c_i = {_leading(norm['ratio_drift'])}$; "
        f"the floor is ${_num(finite['first_order'] + finite['parts']['norm_coupling'])}$ (first order "
        f"${_num(finite['first_order'])}$)"
        + (", before the heavy-tail factor below" if finite.get("heavy_tail_factor") is not None else "")
        + f". With these corrections the slowest tangent mode's mean recursion "
        f"decays at ${_num(finite['decay_per_iteration'])}$ per iteration: the error's local rate at finite "
        "$\\eta$ (section 9's is the exact linear one)."
    ))  # fmt: skip
    blocks += [Prose(f"Accuracy: {note}.") for note in finite.get("accuracy_notes", [])]
    return blocks


def _kernel_constant_blocks(law: Distribution | None) -> list[Block]:
    """The friction kernel's two terms of the data law (:func:`.norm_coupling.kinetic_noise`)."""
    terms = (
        "The velocity is not Gaussian: it filters the noise $b_i$, whose fourth cumulant $q_i s_i^2$ adds "
        "$q_i s_i^2 \\eta^4 \\sum_m G_m^2 G_{m+\\ell}^2$ to $\\mathrm{cov}(w_{k-\\ell}^2, w_k^2)$ ($G$ the velocity's "
        "impulse response), and the norm's gain $-\\eta A_{11}$ is random and correlated with $b_i^2$, which adds "
        "$-2\\eta^3 \\delta\\, g_i \\lambda_1 s_i G_{\\ell-1}^2$ to $\\kappa_i(\\ell)$ for $\\ell \\ge 1$, with "
        "$q_i = E b_i^4/(E b_i^2)^2 - 3$ and $g_i = \\mathrm{cov}(-A_{11}, b_i^2)/(E[-A_{11}]\\,E b_i^2)$. Where the "
        "data's eighth moments are infinite, or $q_i$ exceeds the largest value at which these terms were checked "
        f"against simulation ({KERNEL_CUMULANT_MAX:g}, Student-t data with $\\nu = 9$), the kernel stays Gaussian. "
    )
    if law is None:
        return [Prose(terms + "For a sampler both are estimated from its moment samples.")]
    constants = kinetic_noise(law)
    return [Prose(terms + f"Under `{law.spec}` data:"), _eq(sp.Symbol("q_i"), constants.cumulant),
            _eq(sp.Symbol("g_i"), constants.gain)]  # fmt: skip


def _divergence_blocks(numbers: dict) -> list[Block]:
    """Section 11: the divergence risk."""
    risk = numbers["stability"]["divergence_risk"]
    if risk["fate"] in ("saturates", "blows up"):  # beyond the stability boundary of the mean
        text = risk["note"][0].upper() + risk["note"][1:] + "."
    elif risk["critical_impulse"] is None:
        text = ("No gradient impulse $K = |Y_1|\\,\\|Y_\\perp\\|$ in the range searched throws the noise-free "
                "delayed recursion of the mean map past its stability boundary. " + _excursion_sentence(risk)).rstrip()
    else:
        text = (
            "One gradient of size $K = |Y_1|\\,\\|Y_\\perp\\|$ throws the noise-free delayed recursion of the mean "
            f"map past its stability boundary once $K > K^* = {_num(risk['critical_impulse'])}$. Runs are carried off "
            "by smaller samples: one throws $v$ off the sphere and the next, multiplied by its raised norm, overshoot. "
            + _excursion_sentence(risk)
        ).rstrip()
    if risk["fate"] == "mean-square unstable" and risk["method"] == "direct":
        text += (" The second moments of the linearisation at $e_1$ grow here (mean-square unstable), and blow-ups are "
                 "frequent enough to be counted directly: runs of the exact recursion with the full data law from "
                 f"settled states blew up {risk['direct_blowups']} times, a probability "
                 f"${_num(risk['per_iteration'])}$ per iteration, so {_expected_fraction(risk)}.")  # fmt: skip
    elif risk["fate"] == "mean-square unstable":
        text += (" The second moments of the linearisation at $e_1$ grow here (mean-square unstable), so runs that meet "
                 "no large sample are followed too (the exact recursion from settled states): they blow up with "
                 f"probability ${_num(risk['without_events'])}$ per iteration"
                 + (", included above." if risk["paths"] else f"; in all, {_expected_fraction(risk)}."))  # fmt: skip
    if risk.get("from_e1") is not None:
        text += " " + _from_rest_sentence(risk)
    return [Heading("11. Divergence risk"), Prose(text)]


def _from_rest_sentence(risk: dict) -> str:
    """Runs from e_1 (and e_2) at rest counted directly, where the runs are shorter than the settling."""
    count = risk["from_e1"]
    text = (f"Runs from $e_1$ at rest take about {risk['settling']} iterations to settle, more than these "
            f"{risk['steps']}, so they were counted directly too: {count['blowups']} of {count['paths']} runs of the "
            f"exact recursion with the full data law blew up within {count['steps_run']} iterations, "
            f"{_percent(count)}")  # fmt: skip
    count = risk.get("from_e2")
    if count is not None:
        text += (f"; from $e_2$ at rest, the saddle that `simulate` starts from, {count['blowups']} of {count['paths']} "
                 f"runs blew up, {_percent(count)}")  # fmt: skip
    return text + "."


def _percent(count: dict) -> str:
    """A direct count's fraction with its 95% interval, in percent."""
    low, high = count["interval"]
    return (f"${_num(100 * count['fraction'])}\\%$ (95% interval ${_num(100 * low)}$ to "
            f"${_num(100 * high)}\\%$)")


def _excursion_sentence(risk: dict) -> str:
    """The rate of blow-ups from the excursions that large samples start, or its bound where no path was
    followed (events negligible); nothing where the blow-ups were counted directly."""
    if risk["method"] == "direct":
        return ""
    threshold = _num(risk["event_threshold"])
    if not risk["paths"]:
        quiet = risk["without_events"] if risk["fate"] == "mean-square unstable" else 0.0
        text = (f"Samples of size $\\|Y\\|^2 > {threshold}$, which start the excursions that carry runs off, come with "
                f"probability ${_num(risk['per_iteration'] - quiet)}$ per iteration at most")  # fmt: skip
        return text + (f": no run of {risk['steps']} iterations is expected to blow up." if not quiet else ".")
    return (
        f"Samples of size $\\|Y\\|^2 > {threshold}$ start excursions whose fate the exact recursion decides "
        f"(conditional Monte Carlo): a run blows up with probability ${_num(risk['per_iteration'])}$ per iteration, "
        f"so {_expected_fraction(risk)}."
    )


def _expected_fraction(risk: dict) -> str:
    """The expected fraction of runs that blow up, with its interval, in words."""
    low, high = risk["interval"]
    return (f"about ${_num(100 * risk['fraction'])}\\%$ (95% interval ${_num(100 * low)}$ to ${_num(100 * high)}\\%$) "
            f"of runs of {risk['steps']} iterations settled at $e_1$ are expected to blow up")  # fmt: skip


def _floor_for_this_problem(numbers: dict) -> str:
    """The diffusion floor's value, and where it describes no run, why (``stationary_error.note``)."""
    floors = numbers["stationary_error"]
    note = floors.get("note")
    return f"For this problem: ${_num(floors['diffusion'])}$." + (f" Note: {note}." if note else "")


def _signed(x: float) -> str:
    return f"+ {_num(x)}" if x >= 0 else f"- {_num(-x)}"


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            level = "#" if not b.text[0].isdigit() else "##"
            out.append(f"{level} {b.text}\n")
        elif isinstance(b, Prose):
            out.append(b.text + "\n")
        elif isinstance(b, Equation):
            out.append(f"$$\n{b.latex}\n$$\n")
        else:
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            out.extend("| " + " | ".join(r) + " |" for r in b.rows)
            out.append("")
    return "\n".join(out)


def to_latex(blocks: list[Block]) -> str:
    out = [
        r"\documentclass{article}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\allowdisplaybreaks",
        r"\begin{document}",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            if b.text[0].isdigit():
                out.append(rf"\section*{{{b.text}}}")
            else:
                out.append(rf"\title{{{b.text}}}\date{{}}\maketitle")
        elif isinstance(b, Prose):
            out.append(_latex_prose(b.text) + "\n")
        elif isinstance(b, Equation):
            out.append(r"\begin{equation*}" + "\n" + b.latex + "\n" + r"\end{equation*}")
        else:
            out.append(r"\begin{center}\begin{tabular}{" + "l" * len(b.header) + r"}")
            out.append(" & ".join(b.header).replace("_", r"\_") + r" \\ \hline")
            out.extend(" & ".join(f"${c}$" if c.startswith("e_") else c for c in r) + r" \\" for r in b.rows)
            out.append(r"\end{tabular}\end{center}")
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


#: Characters that LaTeX reads as commands in running text, and what stands for them there.
_LATEX_TEXT = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "<": "$<$", ">": "$>$", "^": r"\^{}"}


def _latex_prose(text: str) -> str:
    """Markdown inline code `x` becomes \\texttt{x}; outside code and ``$...$`` the characters of
    :data:`_LATEX_TEXT` are escaped (notes written for JSON, such as ``e_1`` or ``a < b``, appear in
    the text)."""
    parts = text.split("`")
    return "".join(
        rf"\texttt{{{_latex_text(part)}}}" if i % 2 else _outside_math(part) for i, part in enumerate(parts)
    )


def _outside_math(text: str) -> str:
    """``text`` with the pieces outside ``$...$`` escaped by :func:`_latex_text`."""
    pieces = text.split("$")
    return "$".join(piece if i % 2 else _latex_text(piece) for i, piece in enumerate(pieces))


def _latex_text(text: str) -> str:
    """Running text for LaTeX: each character of :data:`_LATEX_TEXT` not already escaped is replaced."""
    return re.sub(r"(?<!\\)[_%&#<>^]", lambda m: _LATEX_TEXT[m.group()], text)


def render(d: Derivation, fmt: str, numbers: dict) -> str:
    """The document in ``"markdown"`` or ``"latex"`` (``numbers``: see :func:`build_document`)."""
    if fmt not in ("markdown", "latex"):
        raise ProblemError(f"a document's format is markdown or latex, got {fmt!r}")
    blocks = [Prose(_math_numbers(b.text)) if isinstance(b, Prose) else b for b in build_document(d, numbers)]
    return to_markdown(blocks) if fmt == "markdown" else to_latex(blocks)


#: A number in Python's e-notation (``1.87159e-05``), which math would read as the letter e.
_E_NOTATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)e([+-])0*(\d+)\b")


def _math_numbers(text: str) -> str:
    """``text`` with the e-notation numbers inside ``$...$`` written as ``1.87159 \\times 10^{-5}``."""
    pieces = text.split("$")
    return "$".join(
        _E_NOTATION.sub(lambda m: rf"{m[1]} \times 10^{{{'-' if m[2] == '-' else ''}{m[3]}}}", piece) if i % 2 else piece
        for i, piece in enumerate(pieces)
    )
