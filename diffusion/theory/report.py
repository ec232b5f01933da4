"""The JSON document of ``amsgd derive`` from a :class:`~amsgd.diffusion.theory.predictions.Predictions`:
each derived formula as text beside its value, then the exact finite-η, finite-τ numbers."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from amsgd.core.distributions import StudentT
from amsgd.core.estimates import json_float
from amsgd.derivations.indexed import FULL_LISTING_DIM, IndexedPCA, mode_formula_templates
from amsgd.derivations.norm_coupling import KERNEL_CUMULANT_MAX
from amsgd.diffusion.theory.delay_family import SEARCH_SUPPORT
from amsgd.diffusion.theory.phases import worst_saddle
from amsgd.diffusion.theory.sections import PCA_SECTIONS, build_sections
from amsgd.diffusion.theory.tradeoff import tradeoff_floor_note

if TYPE_CHECKING:
    from amsgd.diffusion.theory.predictions import Predictions

#: The tradeoff fields of the JSON (the full table is ``Predictions.tradeoff``).
TRADEOFF_KEYS = (
    "mus", "workers", "floor", "stable", "max_workers", "max_workers_mean", "max_workers_is_lower_bound",
    "best_mu_floor", "best_mu_rate", "error_rate", "error_rate_exact_linear", "radial_rate",
)  # fmt: skip


def predictions_dict(p: Predictions, sections: Sequence[str] | None = None) -> dict:
    """``problem``, ``recursion``, ``ode``, ``sde``, ``stationary_error``, ``stability``, ``phases``,
    ``delay_conditions``, ``tradeoff`` and ``sdde``; rates per unit of diffusion time, durations in
    iterations. Only the ``sections`` named are computed, all where None (:func:`.sections.build_sections`;
    the sampled phase laws take most of the time)."""
    d = p.derivation
    formulas = functools.cache(d.to_dict)  # the derivation's formulas as text, once, where a section needs them
    builders = {
        "problem": lambda: p.problem.to_dict(),
        "recursion": lambda: formulas()["recursion"],
        "ode": lambda: ode_dict(p, formulas()["ode"]),
        "sde": lambda: sde_list(p),
        "stationary_error": lambda: {
            "diffusion": p.diffusion_floor,
            "diffusion_formula": formulas()["stationary_error"]["diffusion_formula"],
            "linearized": linearized_dict(p),
            "finite_eta": finite_eta_dict(p),
            **({"note": note} if (note := floor_note(p)) else {}),
        },
        "stability": lambda: stability_dict(p, formulas()["tau_max_delay_differential_formula"]),
        "phases": lambda: p.phases.to_dict(),
        "delay_conditions": lambda: p.delay_conditions.to_dict(),
        "tradeoff": lambda: tradeoff_dict(p),
        "sdde": lambda: sdde_dict(p, formulas()["sdde"]),
    }
    if d.indexed is not None:
        builders["sde_formulas"] = lambda: sde_formulas(d.indexed) | (
            {"moment_symbols": d.moment_symbols} if d.moment_symbols else {}
        )
    return build_sections(builders, sections, PCA_SECTIONS)


def tradeoff_dict(p: Predictions) -> dict:
    """The ``tradeoff`` section: the fields :data:`TRADEOFF_KEYS` of the momentum–asynchrony table."""
    table = p.tradeoff.to_dict()
    note = tradeoff_floor_note(p.problem.distribution)
    return {**{k: table[k] for k in TRADEOFF_KEYS}, **({"floor_note": note} if note else {})}


def ode_dict(p: Predictions, ode: dict) -> dict:
    """The ``ode`` section: the time scale (its formula and value), the drift and the modified drift."""
    return {
        "time_scale": ode["time_scale"],
        "time_scale_value": float(p.derivation.timing.drift_scale.subs(p.derivation.values)),
        "drift": ode["drift"],
        "drift_latex": ode["drift_latex"],
        **({"drift_note": ode["drift_note"]} if "drift_note" in ode else {}),
        "modified_drift_scalar": ode["modified_drift_scalar"],
    }


def sde_list(p: Predictions) -> list[dict]:
    """Every stationary point with its modes: all of them up to ``FULL_LISTING_DIM`` coordinates; above,
    all modes of e_1 and of the worst saddle and, at every other point, the modes 1, 2, j, d and the
    fastest (the rest follow ``sde_formulas``), so that the list grows linearly in d."""
    points, dim = p.points, p.problem.dim
    if dim <= FULL_LISTING_DIM or p.derivation.indexed is None:
        return [point.to_dict() for point in points]
    full = {1, worst_saddle(points)}
    return [
        point.to_dict(range(1, dim + 1) if point.j in full else sorted({1, 2, point.j, dim, point.fastest.i}))
        for point in points
    ]


def sde_formulas(indexed: IndexedPCA) -> dict:
    """The OU limit of mode i at ±e_j in indexed form, the texts every listed mode instantiates."""
    templates = mode_formula_templates(indexed)
    drift, noise = indexed.pair
    return {
        kind: {"drift_rate_formula": rate, "diffusion_formula": diffusion}
        for kind, (rate, diffusion) in templates.items()
        if kind != "tangent_before"
    } | {
        "pair": {"drift": str(drift), "noise": str(noise)},
        "note": "mode i at e_j in lambda_j, lambda_i: tangent for i != j, radial for i = j; two modes i != k are "
        "uncoupled (pair: A_ik and (B B^T)_ik)",
    }


def sdde_dict(p: Predictions, formulas: dict) -> dict:
    """The finite-delay (SDDE) limit at ``s = τ η``: its floor beside the τ-free diffusion floor, and
    the boundary ``s*`` with the mode that sets it."""
    floor = p.sdde
    out = {
        **floor.to_dict(),
        "limiting_mode": p.modes.describe(floor.limiting_mode),
        "formula": formulas["floor_formula"],
        "formulas": {k: v for k, v in formulas.items() if k != "floor_formula"},
    }
    if floor.distributed:
        out["delay_time_note"] = RANDOM_DELAY_NOTE.format(spec=p.problem.delay.spec, mean=p.delay_law.mean)
    if floor.unresolved:
        out["note"] = f"not computed: {floor.unresolved}"
    elif not floor.stable:
        out["note"] = (
            "the distributed-delay limit has no stationary law: for a mode, lambda + c E[exp(-lambda tau eta)] "
            "has a zero with Re lambda >= 0" if floor.distributed else
            f"s = {floor.delay_time:.6g} is beyond s* = {floor.critical_delay_time:.6g}: the SDDE has no "
            "stationary law"
        )  # fmt: skip
    return out


#: What the ``sdde`` entry is for a random delay: the limit spreads the delay over its law.
RANDOM_DELAY_NOTE = (
    "delay {spec} is not constant: the limit spreads it over its law, dX = -c sum_k p_k X(t - k eta) dt + b dW "
    "per mode (a distributed-delay equation: stability by the argument principle, the variance by the spectral "
    "integral); delay_time is eta times its mean delay {mean:.4g}, and critical_delay_time that of one constant "
    "delay, for comparison (a spread delay can be stable beyond it)"
)


def linearized_dict(p: Predictions) -> dict:
    """The floor of the additive linear theory at the problem's delay."""
    floor = p.linearized
    return {
        "value": json_float(floor.floor),
        "ratio_to_diffusion": json_float(floor.ratio),
        "stable": floor.stable,
        "per_mode": [json_float(v) for v in floor.variances],
    }


def floor_note(p: Predictions) -> str | None:
    """Which floors describe no run, where some do not: none when the second moments at e_1 are
    unstable; the small-noise floors (sums of variances, no curvature of sin²) when they reach
    ``1 − 1/d``, the error of a direction drawn at random (None otherwise)."""
    if not p.mean_square.stable:
        return ("the iteration is not mean-square stable at e_1 (stability.mean_square): there is no floor; "
                "diffusion and linearized are the small-noise formulas' values and describe no run here")  # fmt: skip
    largest, random = max(p.diffusion_floor, p.linearized.floor), 1.0 - 1.0 / p.problem.dim
    if largest >= random:
        return (f"diffusion and linearized, sums of variances without the curvature of sin^2, reach {largest:.4g}, "
                f"at least 1 - 1/d = {random:.4g} (the error of a direction drawn at random): at this noise level "
                "finite_eta is the floor to use")  # fmt: skip
    return None


def finite_eta_dict(p: Predictions) -> dict:
    """The toolkit's most accurate floor: value, parts, per mode, and what it assumes."""
    out = p.finite_eta.to_dict()
    out["method"] = (
        "random-coefficient linearisation at e_1 in the ratio coordinates h_i/h_1 (exact second moments, "
        "multiplicative noise included), then E[S/(1+S)] of sin^2 for Gaussian ratios"
        + ("; times heavy_tail_factor, the same under the ratios' heavy-tailed law (Gaussian given the data's "
           "per-step scales)" if p.finite_eta.heavy_tail is not None else "")
        + ("; with the norm of h coupled in (restoring-force split, radial friction)" if p.finite_eta.coupling else
           "; first order (with the norm coupling the second moments have no stationary law)")
    )
    if not p.coefficients.diagonal:
        out["note"] = "the data law correlates eigen-coordinates; their cross-covariances are neglected"
    out["accuracy_notes"] = coupling_accuracy_notes(p)
    return out


#: Beyond this ``2ηλ_1/(1 − μ)²`` (the norm's relaxation per step over the momentum's) the radial
#: friction was not checked against simulation; the grid of linear-theory.md section 5 reaches 4.8.
QUASI_STATIC_LIMIT = 5.0
#: From this fraction of τ* on, the coupled floor's error with a delay grows (linear-theory.md section 5).
NEAR_TAU_STAR = 0.8
#: Student-t data with fewer degrees of freedom get an accuracy note: from ν = 16 on the floor with the
#: heavy-tail factor was within 0.5% of its error for Gaussian data (ν = 16 in benchmarks/floor_accuracy.py;
#: ν = 16, 30 and 100 on Σ = diag(3, 2, 1) at η 0.01, μ 0.5; linear-theory.md section 5), while at ν = 10
#: it was 1.3% below simulation at μ 0.95, and at ν = 9 2.5%.
STUDENT_T_ACCURATE_NU = 16
#: The largest floor and the largest step ``ηλ_1/(1 − μ)`` (in units of the radial relaxation) of the
#: grid the coupled floor was checked on (benchmarks/floor_accuracy.py: Gaussian and Rademacher floors
#: 0.02 to 0.14, steps to 0.1), and the largest share of its family's mean-square boundary of a random
#: delay there (uniform delays to 0.5); beyond them the notes give what was measured (linear-theory.md
#: section 5).
CHECKED_FLOOR_MAX = 0.15
CHECKED_STEP_MAX = 0.1
CHECKED_FAMILY_SHARE_MAX = 0.5
#: From this step ``ηλ_1/(1 − μ)`` on, a delay well below τ* gets a note too: there the floor has been
#: off by up to 2.1% (Σ = diag(2, 1) at 0.04, 0.05 and 0.1 and the μ = 0.95 cases in
#: benchmarks/floor_accuracy.py; diag(3, 1, 0.5) at 0.05 and diag(10, 6, 3, 1, 0.5) at 0.1;
#: linear-theory.md section 5).
DELAY_STEP_NOTE = 0.03


class AccuracyNote(NamedTuple):
    """Where the coupled finite-η floor lies outside the range its accuracy was measured on: ``topic`` in
    a few words, ``text`` what was measured there."""

    topic: str
    text: str


def coupling_accuracy_notes(p: Predictions) -> list[str]:
    """Where the coupled finite-η floor is outside the range its accuracy was measured on, in words
    (``derive``'s ``accuracy_notes``)."""
    return [note.text for note in accuracy_notes(p)]


def accuracy_notes(p: Predictions) -> list[AccuracyNote]:
    """:func:`coupling_accuracy_notes` with a topic each."""
    if p.finite_eta.coupling is None:
        return []
    eta, mu, lambda_1 = p.problem.eta, p.problem.mu, 0.5 * p.coefficients.rates[0]  # rates[0] = 2 lambda_1
    notes = []
    if p.finite_eta.value > CHECKED_FLOOR_MAX:
        notes.append(AccuracyNote(
            f"a floor above {CHECKED_FLOOR_MAX:g}",
            f"the floor {p.finite_eta.value:.3g} is above {CHECKED_FLOOR_MAX:g} (the Gaussian and Rademacher "
            "floors it was checked on reach 0.14), and its error is of relative order the floor: at 0.21 "
            "(Sigma = diag(4, 3, 2, 1), eta = 0.02, mu = 0) it was 4.3% to 4.7% above simulation (three seeds)"))  # fmt: skip
    step = eta * lambda_1 / (1.0 - mu)
    if step >= CHECKED_STEP_MAX * (1 - 1e-9):
        notes.append(AccuracyNote(
            f"a step eta lambda_1/(1-mu) of {CHECKED_STEP_MAX:g} or more",
            f"eta lambda_1/(1-mu) = {step:.3g} is at or above {CHECKED_STEP_MAX:g}, the largest step it was "
            "checked on: for Sigma = diag(10, 1), mu = 0.5, tau = 0 it was 0.4%, 1.8% and 5.4% above "
            "simulation at 0.1, 0.2 and 0.4, and for Sigma = diag(10, 6, 3, 1, 0.5), mu = 0.5, tau = 0 "
            "1.7% at 0.1 (a floor of 0.12)"))  # fmt: skip
    ratio = 2.0 * lambda_1 * eta / (1.0 - mu) ** 2
    if ratio > QUASI_STATIC_LIMIT:
        notes.append(AccuracyNote(
            "a norm relaxing much faster than the momentum forgets",
            f"2 eta lambda_1/(1-mu)^2 = {ratio:.3g} > {QUASI_STATIC_LIMIT:g}: the norm relaxes much faster "
            "than the momentum forgets, beyond the range the radial friction was checked on; at 6, 8 and 80 "
            "(mu = 0.98, 0.99, 0.999) the floor was 1.7%, 1.2% and 7.5% below simulation, the first-order "
            "floor at 8 and 80 3.4% and 8.3% above"))  # fmt: skip
    notes += _delay_accuracy_notes(p, step)
    if isinstance(p.problem.distribution, StudentT) and p.problem.distribution.nu < STUDENT_T_ACCURATE_NU:
        nu = p.problem.distribution.nu
        notes.append(AccuracyNote(f"Student-t data with nu = {nu:g}",
                                  f"Student-t data (nu = {nu:g}): with the heavy-tail factor the floor has been "
                                  + _student_t_measured(nu) + _kernel_note(nu, p.finite_eta.coupling.kernel)))
    return notes


def _student_t_measured(nu: float) -> str:
    """What the study measured for Student-t data on the side of ν = 8 where ``nu`` lies: at ν ≤ 8 the
    data's eighth moments are infinite and the floor has been above simulation, by more the heavier
    the tail; above, within 0.4% at μ ≤ 0.9 and below simulation at μ = 0.95 (ν = 9 and 10)."""
    growth = "by 2.6% at nu = 8 for Sigma = diag(3, 2, 1), eta = 0.01, mu = 0.5 (0.6% for Gaussian data there)"
    if nu <= 8:
        return ("above simulation at tau = 0 by 40% at nu = 4.5 and 7.7% at nu = 5 (Sigma = diag(4, 3, 2, 1), "
                "eta = 5e-4, mu = 0.9), by 0.7% to 1.3% at nu = 6 (5.2% to 7.5% where the floor reaches 0.17 at "
                "eta/(1-mu) = 0.01, benchmarks/floor_parts.py) and 0.1% to 0.4% at nu = 8 where eta/(1-mu) <= 0.01 "
                f"(benchmarks/floor_accuracy.py), {growth}, and by 6.1% to 6.7% at nu = 6 for Sigma = diag(10, 1), "
                "eta = 5e-3, mu = 0.5 (0.4% for Gaussian data there): the error grows with eta lambda_1/(1-mu)")
    return ("0.1% to 0.4% above simulation at tau = 0 at nu = 8 where eta/(1-mu) <= 0.01 (Sigma = diag(4, 3, 2, 1), "
            f"benchmarks/floor_accuracy.py) and {growth}: the error grows with eta lambda_1/(1-mu); at nu = 10 it "
            "was within 0.2% at mu <= 0.9 and 1.3% below simulation at mu = 0.95 (Sigma = diag(4, 3, 2, 1), "
            "eta = 5e-4), where the ratios at a norm held fixed lay 1.4% above the heavy-tail factor's floor, and "
            "at nu = 9 0.3% to 0.7% below at mu <= 0.9 and 2.5% below at mu = 0.95: there the friction's kernel "
            f"takes the data's eighth moments (q_i = {KERNEL_CUMULANT_MAX:g}), and the floor falls by 8.7% from "
            "nu = 8 to 9 where the runs' fell by 6.2%")


def _kernel_note(nu: float, kernel: tuple[tuple[float, ...], tuple[float, ...]] | None) -> str:
    """Where the friction's kernel stays Isserlis's for Student-t data: at ν ≤ 8 the norm's motion, which
    the floor takes through the kinetic energy's variance, rests on the data's eighth moments, which are
    infinite there (linear-theory.md section 5); above ν = 8, where they are finite but their cumulant
    ``q_i`` lies beyond :data:`~amsgd.derivations.norm_coupling.KERNEL_CUMULANT_MAX`, the kernel stays
    Isserlis's too; "" where it takes them."""
    if nu > 8:
        if kernel is None or all(math.isfinite(q) for q in kernel[0]):
            return ""
        return (f"; at nu = {nu:g} the data's eighth moments are finite but their cumulant in the friction's kernel "
                f"lies above the {KERNEL_CUMULANT_MAX:g} at which its terms were checked against the runs: they grow "
                "without bound as nu -> 8 (at nu = 8.5 they gave 1.7 times the runs' friction), so the kernel stays "
                "Isserlis's as at nu <= 8, and the floor rests on the same cancellation: at nu = 8.5, mu = 0.95 it was "
                "0.2% above simulation")  # fmt: skip
    return ("; at nu <= 8 the norm's motion, which moves the floor through the variance of the kinetic energy, "
            "rests on the data's eighth moments, which are infinite: measured, it lowered the floor by 4.8% to 5.4% "
            "at nu = 6 where the model's radial friction says 0.1% to 0.4%, while at a norm held fixed the runs' floor "
            "lay 3.4% to 4.2% above the model's: the floor's error at nu = 6 is what is left of the two; where the "
            "floor reaches 0.17 the held runs lie 2.7% to 3.4% below the model's and the two errors add")  # fmt: skip


def _delay_accuracy_notes(p: Predictions, step: float) -> list[AccuracyNote]:
    """The accuracy notes of a delay near its boundary (a constant one near τ*, a random one beyond the
    share of its family's mean-square boundary it was checked at), or of any delay at a step
    ``ηλ_1/(1 − μ)`` of at least :data:`DELAY_STEP_NOTE`."""
    tau, tau_star = p.delay_law.constant, p.tau_max
    if tau and tau_star and tau >= NEAR_TAU_STAR * tau_star:
        return [AccuracyNote(
            f"a delay within {1 - NEAR_TAU_STAR:g} tau* of tau*",
            f"tau = {tau} is within {1 - NEAR_TAU_STAR:g} tau* of tau* = {tau_star}: there the floor has been "
            "up to 9% below simulation, the simulated floor 10% above it (first_order up to 4.5% above)")]  # fmt: skip
    family = p.family_boundary
    share = None if family is None else family.fraction
    if share is not None and share > CHECKED_FAMILY_SHARE_MAX and family.beyond_search:  # share: an upper bound
        return [AccuracyNote(
            "a random delay whose family's mean-square boundary lies beyond the search",
            f"the mean-square boundary of {family.family} lies beyond {family.parameter} = {family.largest_stable:.4g}, "
            f"where the search stops (laws of {SEARCH_SUPPORT} lags), so how near {p.delay_law.spec} lies to it is "
            f"not known; random delays were checked up to {CHECKED_FAMILY_SHARE_MAX:g} of theirs")]  # fmt: skip
    if share is not None and share > CHECKED_FAMILY_SHARE_MAX:
        return [AccuracyNote(
            "a random delay near its family's mean-square boundary",
            f"{p.delay_law.spec} lies at {share:.2f} of the mean-square boundary of {family.family} "
            f"({family.parameter} = {family.largest_stable:.4g}); random delays were checked up to "
            f"{CHECKED_FAMILY_SHARE_MAX:g} of theirs, and at 0.72 (geometric:16, Sigma = diag(4, 3, 2, 1), "
            "eta = 5e-4, mu = 0.95) the floor was 1.6% below simulation")]  # fmt: skip
    if p.delay_law.mean > 0 and step >= DELAY_STEP_NOTE:
        return [AccuracyNote(
            f"a delay at a step eta lambda_1/(1-mu) of {DELAY_STEP_NOTE:g} or more",
            f"with a delay at eta lambda_1/(1-mu) = {step:.3g} ({DELAY_STEP_NOTE:g} or more) the floor has been off "
            "by up to 2.1% below 0.8 tau*: above simulation by up to 0.8% at mu <= 0.9 (Sigma = diag(2, 1) at "
            "0.04 and 0.05 from 0.3 tau*, diag(4, 3, 2, 1) at 0.04, diag(3, 2, 1, 0.5) at 0.03), by 0.8% to 1.0% "
            "for diag(3, 1, 0.5) at 0.05 (tau 8, ps:8, geometric:7) and 1.2% to 1.7% for diag(10, 6, 3, 1, 0.5) "
            "at 0.1 (geometric:2); below it at mu = 0.95 from 0.6 tau* on: 0.3% for diag(4, 3, 2, 1) at 0.04, "
            "0.7% for diag(3, 2, 1, 0.5) at 0.06, 1.5% to 2.1% for diag(2, 1) at 0.1")]  # fmt: skip
    return []


def mean_square_dict(p: Predictions) -> dict:
    """Mean-square stability of the random-coefficient linearisation, every mode included."""
    ms = p.mean_square
    out = {
        "tau_max": ms.tau_max,
        "tau_max_is_lower_bound": ms.lower_bound,
        "stable": ms.stable,
        "limiting_mode": None if ms.limiting_mode is None else p.modes.describe(ms.limiting_mode),
        "radius": json_float(ms.radius),
        "radius_mode": p.modes.describe(ms.radius_mode),
    }
    if p.family_boundary is not None:  # a random delay: the largest stable member of its family
        out["family_boundary"] = p.family_boundary.to_dict()
    return out


def stability_dict(p: Predictions, dde_formula: str) -> dict:
    """τ*, the mode that sets it, the spectral radius at the problem's delay, mean-square stability
    and the τ* scaling."""
    report = p.stability
    modes = p.modes
    out = {
        "tau_max": report.tau_max,
        "limiting_mode": modes.describe(report.limiting_mode),
        "spectral_radius": report.spectral_radius,
        "stable": report.stable,
        "slowest_mode": modes.describe(report.slowest_mode),
        "decay_per_iteration": json_float(report.decay_per_iteration),
        "tau_max_delay_differential": p.tau_max_delay_differential(),
        "tau_max_delay_differential_formula": dde_formula,
        "scaling": p.tau_scaling,
        "mean_square": mean_square_dict(p),
        "divergence_risk": p.divergence.to_dict(),
    }
    if not p.problem.delay.is_iid:
        out["delay_law"] = (
            f"{p.problem.delay.spec} taken as i.i.d. with its stationary staleness law (mean "
            f"{p.delay_law.mean:.4g}): an approximation, its delays are correlated in time"
        )
    if report.tau_max is None:
        out["note"] = (
            f"no delay is stable at eta = {p.problem.eta:g}: the fastest mode needs "
            f"eta * {modes.rates.max():g} < 2 (1 + mu) even without delay"
        )
    elif not report.stable:
        out["note"] = f"delay {p.problem.delay.spec} is beyond the largest stable delay"
    elif not p.mean_square.stable:
        out["note"] = (
            "stable refers to the mean dynamics; the second moments are not stable here (mean_square.stable "
            "is false, as tradeoff.stable, which is the mean-square verdict): no floor is predicted; "
            "divergence_risk gives the fraction of runs that blow up, and the others fluctuate at an error the "
            "linearisation does not give"
        )
    return out
