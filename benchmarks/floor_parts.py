"""The coupled finite-η floor taken apart against simulation: the ratios at a norm held fixed, the norm
balance's δ, and the norm's motion (a slow study beside floor_accuracy.py).

Each case (spectrum, η, μ, constant delay τ, data law) is simulated twice from e_1 with the same random
stream, R runs for 80 relaxation times ``(1 − μ)/(η (λ_1 − λ_2))``, the floor being each run's time
average of sin² over the second half. The study has its own vectorised loop: ``amsgd.simulate`` has no
held norm and no shared stream for a pair of runs (a test checks the free runs against it).

* *free*: Async-MSGD itself, ``h_{k+1} = h_k + μ (h_k − h_{k−1}) + η (Y Yᵀ h' − (Y·h')² h')`` with
  ``h' = h_{k−τ}``; beside its floor, its mean ``‖h‖² − 1`` (the measured δ);
* *held*: the same with every new iterate rescaled to ``‖h_{k+1}‖² = 1 + δ`` (δ the free runs'), so that
  the norm does not move and the velocity ``h_k − h_{k−1}`` has no radial part beyond second order: the
  ratios ``h_i/h_1`` at a fixed norm.

Against them the coupled floor of :func:`~amsgd.diffusion.theory.norm_coupling.norm_coupled_floor` in
three forms: ``T`` as the toolkit gives it, ``T_0`` without the radial friction (its own δ), and
``T_δ`` without the friction at the measured δ. The parts, each a relative error:

* ``ratios = held/T_δ − 1``: the ratio recursion at a fixed norm;
* ``delta = T_δ/T_0 − 1``: what the measured δ in place of the norm balance's does to the floor;
* ``motion = free/held − 1`` (measured; its 95% interval from the paired runs) beside
  ``friction = T/T_0 − 1`` (the radial friction's share in the toolkit);
* ``total = free/T − 1``, the error of the floor, with ``1 + total`` the product of
  ``1 + ratios``, ``1 + delta`` and ``(1 + motion)/(1 + friction)``;
* ``friction_measured`` (the free runs' friction on h_2's velocity, :func:`run_floors`) beside
  ``friction_toolkit``, the ε_2 the toolkit puts in its momentum ``μ (1 + ε_2)``, and
  ``friction_unchecked``, the same with the kernel's data-law terms at any ``q_i``
  (``cumulant_max=np.inf``: beyond ``KERNEL_CUMULANT_MAX`` the toolkit's kernel is Isserlis's).

The grid is five (spectrum, η, μ) of floor_accuracy.py, each at τ = 0 and 0.3, 0.6 and 0.85 of its
mean-dynamics τ*, with Rademacher and Gaussian data, and nine Student-t cases at τ = 0 (:data:`HEAVY`;
their floors times the heavy-tail factor, runs that blow up left out with their pairs). Writes
``benchmarks/floor_parts.json`` and prints the two Markdown tables that docs/linear-theory.md
(section 5) holds. About 7 minutes on 2 cores with the
default R = 8192. Usage: ``python benchmarks/floor_parts.py [--replicates R] [--predict-only] [--out PATH]``;
``--predict-only`` keeps the stored simulations and recomputes the predictions.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from floor_accuracy import Case, tau_star

from amsgd import parse_delay
from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.heavy_tails import heavy_tail_factor
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.norm_coupling import norm_coupled_floor
from amsgd.diffusion.theory.second_moments import finite_eta_floor

OUT = Path(__file__).resolve().parent / "floor_parts.json"
#: (spectrum, η, μ) from floor_accuracy.py: η/(1 − μ) 0.01 to 0.05, μ 0.5 to 0.95.
COMBOS = (
    ((2.0, 1.0), 2.5e-3, 0.95), ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95), ((3.0, 2.0, 1.0, 0.5), 1e-3, 0.95),
    ((2.0, 1.0), 5e-3, 0.8), ((2.0, 1.0), 1e-2, 0.5),
)  # fmt: skip
#: The delays, as shares of τ*.
SHARES = (0.0, 0.3, 0.6, 0.85)
DATA = ("rademacher", "gaussian")
#: Heavy tails at τ = 0: (spectrum, η, μ, data), Student-t 6 where the floor misses most and 10 beside it,
#: at μ 0.7 and at μ 0.95 (the largest Student-t 10 miss of floor_accuracy.py); then Student-t 6 at a floor
#: of 0.17 (η/(1 − μ) = 0.01), where the floor misses by 5–7%; then Student-t 9 and 12 at μ 0.95, either
#: side of ν = 10, 9 just above ν = 8, where the data's eighth moments and the kernel's q_i turn finite,
#: and Student-t 8.5, whose q_i lies beyond the kernel's checked range (``KERNEL_CUMULANT_MAX``).
HEAVY = (
    ((4.0, 3.0, 2.0, 1.0), 1.5e-3, 0.7, "student-t:6"), ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.9, "student-t:6"),
    ((4.0, 3.0, 2.0, 1.0), 1.5e-3, 0.7, "student-t:10"), ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95, "student-t:10"),
    ((4.0, 3.0, 2.0, 1.0), 1e-3, 0.9, "student-t:6"), ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95, "student-t:6"),
    ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95, "student-t:9"), ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95, "student-t:12"),
    ((4.0, 3.0, 2.0, 1.0), 5e-4, 0.95, "student-t:8.5"),
)  # fmt: skip
SEED = 3100
#: A run whose mean ‖h‖² over the window exceeds this has blown up.
BLOWN = 1e6


def parts_case(spectrum: tuple[float, ...], eta: float, mu: float, tau: int, data: str, seed: int = 0) -> Case:
    """A case of this study: floor_accuracy's :class:`Case` with the constant delay τ."""
    return Case("parts", tuple(spectrum), eta, mu, f"constant:{tau}", data, seed)


def grid() -> list[Case]:
    """Every (spectrum, η, μ) at each share of its τ* (rounded, at least 1 for a positive share), both data
    laws, each case with a seed of its own."""
    cases = []
    for spectrum, eta, mu in COMBOS:
        star = tau_star(spectrum, eta, mu)
        taus = [0 if share == 0 else max(1, round(share * star)) for share in SHARES]
        cases += [(spectrum, eta, mu, tau, data) for data in DATA for tau in taus]
    cases += [(spectrum, eta, mu, 0, data) for spectrum, eta, mu, data in HEAVY]
    return [parts_case(*case, seed=SEED + j) for j, case in enumerate(cases)]


class Runs(NamedTuple):
    """What :func:`run_floors` measures: each run's floor, and over the runs that did not blow up and the
    window, the mean ``‖h‖²`` and the radial friction of the coordinate h_2 (the first tangent mode)."""

    floors: np.ndarray
    norm: float
    friction: float
    friction_half_width: float  # 95%, the delta method for the ratio of the runs' sums


def run_floors(case: Case, replicates: int, held: float | None = None) -> Runs:
    """Per run, the time average of sin² over the second half of ``case.steps`` iterations from e_1, and
    the mean ``‖h‖²`` over runs and window; with ``held`` every new iterate is rescaled to ``‖h‖² = held``.
    Beside them the friction the norm's motion puts on h_2's velocity ``w_k = h_{2,k} − h_{2,k−1}``,
    ``E[−(‖h_{k+1}‖² − ‖h_{k−1}‖²) w_k²/2]/E[w_k²]`` over the window: the norm part of
    ``E[(ρ_k − 1) w_k²]/E[w_k²]``, ``ρ_k = h_{1,k−1}/h_{1,k+1}``, which the toolkit's ε_2 models (0 for
    held runs, whose norm does not move).
    Diagonal Σ: ``Y = sqrt(λ) z`` with z standard normal, Rademacher, or Student-t (``z = sqrt((ν − 2)/w) ζ``,
    ζ standard normal, ``w ~ χ²_ν`` shared by the coordinates), one draw per run and step. A run that
    blows up (a non-finite error or ``‖h‖²`` above :data:`BLOWN`) has NaN for its floor and is left out
    of the mean norm."""
    steps, start = case.steps, case.steps // 2
    error, norm = np.zeros(replicates), np.zeros(replicates)
    pull, energy = np.zeros(replicates), np.zeros(replicates)  # Σ −(n_{k+1} − n_{k−1}) w_k²/2 and Σ w_k²
    n_before = n_now = np.full(replicates, 1.0 if held is None else held)  # ‖h_{k−1}‖², ‖h_k‖²
    for k, new, now, before, _, _ in iterate(case, replicates, held):
        velocity = now[:, 1] - before[:, 1]  # w_k
        squared = np.einsum("rd,rd->r", new, new)  # ‖h_{k+1}‖²
        if k + 1 > start:
            error += 1.0 - new[:, 0] ** 2 / squared
            norm += squared
            pull -= 0.5 * (squared - n_before) * velocity**2
            energy += velocity**2
        n_before, n_now = n_now, squared
    window = steps - start
    kept = np.isfinite(error) & np.isfinite(norm) & (norm < BLOWN * window)
    friction, spread = 0.0, 0.0
    if held is None:
        friction = float(pull[kept].sum() / energy[kept].sum())
        spread = _half_width(pull[kept] - friction * energy[kept]) / float(energy[kept].mean())
    return Runs(np.where(kept, error / window, np.nan), float(norm[kept].mean()) / window, friction, spread)


def iterate(case: Case, replicates: int, held: float | None = None, after: float | None = None
            ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """The runs of a case from e_1 at rest (at ``‖h‖² = held`` where held), one draw per run and step
    from the case's seed: for k = 0 .. steps − 1, ``(k, h_{k+1}, h_k, h_{k−1}, h_{k−τ}, y_k)`` (rows are
    runs; :func:`step`, with the norm held at ``held``, and at ``after`` from the window's first step
    ``steps // 2`` on where given). The arrays yielded for k are not changed later but the stale
    iterate: a slot of the ring of past states, which h_{k+1} takes once the loop goes on, so it is to
    be used before asking for the next step."""
    lam, tau = np.asarray(case.spectrum), parse_delay(case.delay).tau
    rng = np.random.default_rng(case.seed)
    h = np.zeros((replicates, lam.size))
    h[:, 0] = 1.0 if held is None else np.sqrt(held)
    before, ring = h.copy(), np.repeat(h[None], tau + 1, axis=0)  # h_{k−τ} .. h_k
    start = case.steps // 2
    for k in range(case.steps):
        stale = ring[(k - tau) % (tau + 1)]
        y = _draw(rng, case.data, replicates, lam.size) * np.sqrt(lam)
        new = step(h, before, stale, y, case.eta, case.mu, held if after is None or k < start else after)
        yield k, new, h, before, stale, y
        before, h = h, new
        ring[(k + 1) % (tau + 1)] = h


def step(now: np.ndarray, before: np.ndarray, stale: np.ndarray, y: np.ndarray, eta: float, mu: float,
         held: float | None = None) -> np.ndarray:  # fmt: skip
    """One iteration of every run (rows): ``h_{k+1} = h_k + μ (h_k − h_{k−1}) + η (Y (Yᵀh') − (Yᵀh')² h')``,
    ``h'`` the stale iterate and ``Y`` the run's row of ``y``; with ``held`` rescaled to ``‖h_{k+1}‖² = held``."""
    s = np.einsum("rd,rd->r", y, stale)
    new = now + mu * (now - before) + eta * (y * s[:, None] - (s * s)[:, None] * stale)
    if held is not None:
        new *= np.sqrt(held / np.einsum("rd,rd->r", new, new))[:, None]
    return new


def _draw(rng: np.random.Generator, data: str, replicates: int, d: int) -> np.ndarray:
    """One step's standardised data ``z`` of every run (unit variances): Gaussian, Rademacher or Student-t."""
    if data == "gaussian":
        return rng.standard_normal((replicates, d))
    if data == "rademacher":
        return rng.integers(0, 2, (replicates, d)) * 2.0 - 1.0
    nu = float(data.removeprefix("student-t:"))
    return rng.standard_normal((replicates, d)) * np.sqrt((nu - 2.0) / rng.chisquare(nu, replicates))[:, None]


def measure(case: Case, replicates: int) -> dict:
    """Simulate the free and the held runs of one case (its seed's stream for both) and set the
    predictions beside them."""
    free, norm, friction, friction_half_width = run_floors(case, replicates)
    held = run_floors(case, replicates, held=norm).floors
    kept = np.isfinite(free) & np.isfinite(held)  # pairs whose free run did not blow up
    diverged = 1.0 - float(kept.mean())
    free, held = free[kept], held[kept]
    f, g = float(free.mean()), float(held.mean())
    paired = free - (f / g) * held  # the delta method for f/g with paired runs
    row = {"spectrum": list(case.spectrum), "eta": case.eta, "mu": case.mu, "tau": parse_delay(case.delay).tau,
           "data": case.data, "replicates": replicates, "diverged": diverged, "free": f, "free_half_width": _half_width(free),
           "held": g, "held_half_width": _half_width(held), "delta_measured": norm - 1.0,
           "motion": f / g - 1.0, "motion_half_width": _half_width(paired) / g,
           "friction_measured": friction, "friction_measured_half_width": friction_half_width}  # fmt: skip
    return row | predicted(row)


def _half_width(samples: np.ndarray) -> float:
    """The 95% half-width of the mean of independent runs."""
    return float(1.96 * samples.std(ddof=1) / np.sqrt(samples.size))


def predicted(row: dict) -> dict:
    """The three forms of the coupled floor (module docstring) for a simulated case, and the parts; for
    Student-t data each form times the heavy-tail factor, as ``predict`` reports the floor."""
    case = parts_case(row["spectrum"], row["eta"], row["mu"], row["tau"], row["data"])
    args, constants, factor = coupled(case)
    full, still = norm_coupled_floor(*args, constants=constants), norm_coupled_floor(*args, friction=False)
    unchecked = norm_coupled_floor(*args, constants=constants, cumulant_max=np.inf)
    measured = norm_coupled_floor(*args, delta=row["delta_measured"], friction=False)
    scale = 1.0 if factor is None else factor
    t, t0, td = scale * full.value, scale * still.value, scale * measured.value
    return {"toolkit": t, "no_friction": t0, "measured_delta": td, "heavy_tail_factor": factor,
            "delta_toolkit": full.norm_excess, "total": row["free"] / t - 1.0, "ratios": row["held"] / td - 1.0,
            "delta": td / t0 - 1.0, "friction": t / t0 - 1.0, "friction_toolkit": full.friction[0],
            "friction_unchecked": unchecked.friction[0]}  # fmt: skip


def coupled(case: Case) -> tuple[tuple, np.ndarray, float | None]:
    """The arguments of ``norm_coupled_floor`` for a case (its first-order variances included), the
    tangent modes' kinetic constants, and the heavy-tail factor (None but for Student-t data)."""
    problem = case.problem()
    c = coefficients_for(problem)
    law = delay_law(problem.delay)
    first = finite_eta_floor(c, case.eta, case.mu, problem.delay, coupled=False)
    factor = heavy_tail_factor(problem.distribution, c.rates[c.tangent], first.variances, case.eta, case.mu, law)
    return (c.rates, c.coupling, c.additive, case.eta, case.mu, law, np.array(first.variances)), c.tangent_kinetic, factor


def toolkit_friction(case: Case) -> float:
    """The toolkit's radial friction ε_2 of the first tangent mode (h_2), as the coupled floor uses it."""
    args, constants, _ = coupled(case)
    return float(norm_coupled_floor(*args, constants=constants).friction[0])


def table(rows: list[dict]) -> str:
    """The Markdown table of docs/linear-theory.md: per case and delay, Rademacher / Gaussian, in percent."""
    lines = ["| case | τ | total | ratios at a held norm | measured δ | norm's motion, measured | friction | δ: measured, balance "
             "| 1000 ε_2: measured (toolkit) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    by_key: dict = {}
    for r in rows:
        if r["data"] in DATA:
            by_key.setdefault((tuple(r["spectrum"]), r["eta"], r["mu"], r["tau"]), {})[r["data"]] = r
    for (spectrum, eta, mu, tau), pair in by_key.items():
        rad, gau = pair["rademacher"], pair["gaussian"]

        def both(name: str, rad: dict = rad, gau: dict = gau) -> str:
            return f"{_percent(rad[name])} / {_percent(gau[name])}"

        motion = f"{both('motion')} (±{100 * max(rad['motion_half_width'], gau['motion_half_width']):.1f})"
        deltas = f"{rad['delta_measured']:.4f} / {gau['delta_measured']:.4f}, {gau['delta_toolkit']:.4f}"
        lines.append(f"| {_name(spectrum, eta, mu)} | {tau} | {both('total')} | {both('ratios')} | {both('delta')} | "
                     f"{motion} | {both('friction')} | {deltas} | {_epsilon(rad)} / {_epsilon(gau)} |")  # fmt: skip
    return "\n".join(lines)


def heavy_table(rows: list[dict]) -> str:
    """The Markdown table of the Student-t cases (τ = 0), in percent, the floors with the heavy-tail factor."""
    lines = ["| case | data | total | ratios at a held norm | norm's motion, measured | friction "
             "| 1000 ε_2: measured (toolkit) | runs blown up |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["data"] not in DATA:
            motion = f"{_percent(r['motion'])} (±{100 * r['motion_half_width']:.1f})"
            lines.append(f"| {_name(r['spectrum'], r['eta'], r['mu'])} | {r['data']} | {_percent(r['total'])} | "
                         f"{_percent(r['ratios'])} | {motion} | {_percent(r['friction'])} | {_epsilon(r)} | "
                         f"{round(r['diverged'] * r['replicates'])} of {r['replicates']} |")  # fmt: skip
    return "\n".join(lines)


def _name(spectrum, eta: float, mu: float) -> str:
    return f"({', '.join(f'{x:g}' for x in spectrum)}), η {eta:g}, μ {mu:g}"


def _epsilon(row: dict) -> str:
    """The measured friction of h_2 with its half-width and the toolkit's ε_2 beside it, both times 1000."""
    return (f"{1000 * row['friction_measured']:+.2f} ± {1000 * row['friction_measured_half_width']:.2f} "
            f"({1000 * row['friction_toolkit']:+.2f})")


def _percent(x: float) -> str:
    """``x`` in percent with a sign and one decimal (no "-0.0")."""
    return f"{round(100.0 * x, 1) + 0.0:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--predict-only", action="store_true",
                        help="recompute the predictions of the cases stored in --out, keeping their simulations")
    args = parser.parse_args()
    began = time.perf_counter()
    if args.predict_only:
        record = json.loads(args.out.read_text())
        rows = [r | predicted(r) for r in record["cases"]]
        seconds = record["seconds"]
    else:
        rows = []
        for case in grid():
            rows.append(measure(case, args.replicates))
            r = rows[-1]
            print(f"{case}: total {100 * r['total']:+.2f}%, ratios {100 * r['ratios']:+.2f}%, δ {100 * r['delta']:+.2f}%, "
                  f"motion {100 * r['motion']:+.2f}% (friction {100 * r['friction']:+.2f}%)", flush=True)  # fmt: skip
        seconds = time.perf_counter() - began
    print(table(rows))
    print(heavy_table(rows))
    args.out.write_text(json.dumps({"seconds": seconds, "cases": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
