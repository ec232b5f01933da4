"""The held-norm floor with a delay, fitted in ratio and in angle coordinates.

The best linear model in each coordinate, fitted to the algorithm, beside the toolkit's ratio
recursion and a Gaussian closure in the angle. The coupled floor's misses with a delay
(floor_parts.py: the ratios at a held norm) are studied here on Σ = diag(2, 1) at η 2.5e-3, μ 0.95
(τ* = 5; delays 0, 2, 3, 4) and η 5e-3, μ 0.8 (τ* = 12; delays 0, 4, 7, 10) with the norm held at 1,
Rademacher and Gaussian data: Async-MSGD with every new iterate rescaled to the unit
circle, ``h_k = (cos θ_k, sin θ_k)``, R runs from e_1 for 80 relaxation times, the floor each run's
mean sin² over the second half (floor_parts.run_floors' runs, the same draws).

*The fits.* In a coordinate x (the ratio ``r = h_2/h_1`` or the angle ``θ = atan r``) the toolkit's
recursions have the form ``x_{k+1} = (1 + μ + m − η b) x_k − (μ + m) x_{k−1} − η d x_{k−τ} + noise``:
a current restoring rate b, a delayed one d, a change m of the momentum and a noise variance. Least
squares of ``x_{k+1} − (1 + μ) x_k + μ x_{k−1}`` on ``(x_k, x_{k−τ}, x_k − x_{k−1})`` over the window
gives the best such model (the residual's mean square its noise); standard errors from
:data:`BLOCKS` blocks of runs. Steps where an angle leaves ``|θ| < 1`` are left out of the fits.

*The angle closure.* At a held norm the step is tangent to the circle at the stale iterate
``h' = (cos φ, sin φ)``, ``φ = θ_{k−τ}``: ``η G e_φ^⊥`` with ``G = Y_1 Y_2 cos 2φ − (Y_1² − Y_2²) sin 2φ/2``.
The new angle is ``θ_k + arg[(1 + μ) − μ e^{−iΔ_k} + i η G e^{i(φ − θ_k)}]``, ``Δ_k = θ_k − θ_{k−1}``:

    θ_{k+1} = θ_k + μ Δ_k − (μ/6 + μ²/2 + μ³/3) Δ_k³ + η G cos(φ − θ_k) + η² G² (φ − θ_k) + …

(the omitted terms are smaller by a further ``η G``, ``Δ_k`` or ``φ − θ_k``). The momentum acts on the
angle itself; the restoring force and the noise act on the stale angle, tilted by the angle moved
since. A Gaussian closure in the angle (``(θ_k, φ)`` normal with variance v and covariance γ, Stein's
lemma for the drift, ``a = λ_1 − λ_2``): the current rate ``b = a (e^{−(v+γ)} − e^{−(5v−3γ)})/4 + η E G²``
and the delayed one ``d = a (e^{−(v+γ)} + 3 e^{−(5v−3γ)})/4 − η E G²`` (together ``a e^{−2v}`` at τ = 0),
the noise ``η² E G² (1 + e^{−4(v−γ)})/2`` with ``E G² = s (1 + e^{−8v})/2 + C (1 − e^{−8v})/8``
(``s = E[Y_1² Y_2²]``, ``C = Var(Y_1² − Y_2²)``, the linearisation's additive noise and coupling), and
the momentum change ``m = −(μ/2 + 3μ²/2 + μ³) W`` (``Δ³ → 3 W Δ``, W the velocity's variance), solved
with v and γ; the floor is ``E sin² θ = (1 − e^{−2v})/2``.

Against both the toolkit's held floor: :func:`~amsgd.diffusion.theory.norm_coupling.norm_coupled_floor`
at δ = 0 without the radial friction (the norm does not move), whose recursion has ``b`` the restoring
split, ``d = λ_1 − λ_2 − b − c`` and ``m = 0``.

Writes ``benchmarks/held_coordinates.json`` and prints the two tables of docs/linear-theory.md
(section 5). About 8 minutes with the default R = 65536. Usage:
``python benchmarks/held_coordinates.py [--replicates R] [--out PATH]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from floor_parts import iterate, parts_case
from study_cli import run_study

from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.lyapunov import autocovariance
from amsgd.diffusion.theory.norm_coupling import norm_coupled_floor
from amsgd.diffusion.theory.second_moments import finite_eta_floor

OUT = Path(__file__).resolve().parent / "held_coordinates.json"
SPECTRUM = (2.0, 1.0)
#: (η, μ, delays): μ 0.95 with τ* = 5 and μ 0.8 with τ* = 12 (floor_parts.py's delays on Σ = diag(2, 1)).
CASES = ((2.5e-3, 0.95, (0, 2, 3, 4)), (5e-3, 0.8, (0, 4, 7, 10)))
DATA = ("rademacher", "gaussian")
#: Blocks of runs for the fits' standard errors.
BLOCKS = 8
#: The fits keep steps whose angles stay within this bound.
ANGLE_BOUND = 1.0
SEED = 6100
#: Updates of the angle closure's fixed point (a contraction: from 20 on the floor no longer moves).
CLOSURE_UPDATES = 60


def simulate(eta: float, mu: float, tau: int, data: str, replicates: int, seed: int) -> dict:
    """The held runs' floor (mean and 95% half-width over runs) and the fits in both coordinates."""
    case = parts_case(SPECTRUM, eta, mu, tau, data, seed)
    steps, start = case.steps, case.steps // 2
    error = np.zeros(replicates)
    sums = {name: _Sums(tau, eta, mu, replicates) for name in ("ratio", "angle")}
    for k, new, now, before, stale, _ in iterate(case, replicates, held=1.0):
        if k + 1 > start:
            error += 1.0 - new[:, 0] ** 2
            ratios = [q[:, 1] / q[:, 0] for q in (new, now, before, stale)]
            angles = [np.arctan(q) for q in ratios]
            kept = np.all(np.abs(angles) < ANGLE_BOUND, axis=0)
            sums["ratio"].add(ratios, kept)
            sums["angle"].add(angles, kept)
    floors = error / (steps - start)
    half_width = 1.96 * float(floors.std(ddof=1)) / float(np.sqrt(replicates))
    return {"eta": eta, "mu": mu, "tau": tau, "data": data, "replicates": replicates, "steps": steps, "floor": float(floors.mean()),
            "half_width": half_width, **{name: fit.result() for name, fit in sums.items()}}  # fmt: skip


class _Sums:
    """Per block of runs (run r in block ``r mod BLOCKS``), the least-squares sums of
    ``x_{k+1} − (1 + μ) x_k + μ x_{k−1}`` on ``(x_k, x_{k−τ}, x_k − x_{k−1})`` (without ``x_{k−τ}`` at τ = 0)."""

    def __init__(self, tau: int, eta: float, mu: float, runs: int) -> None:
        self.tau, self.eta, self.mu = tau, eta, mu
        self.parts = [np.arange(runs) % BLOCKS == b for b in range(BLOCKS)]
        regressors = 3 if tau else 2
        self.xx = np.zeros((BLOCKS, regressors, regressors))
        self.xy, self.yy, self.n = np.zeros((BLOCKS, regressors)), np.zeros(BLOCKS), np.zeros(BLOCKS)

    def add(self, values: list[np.ndarray], kept: np.ndarray) -> None:
        """One step of every run: ``values`` = (x_{k+1}, x_k, x_{k−1}, x_{k−τ}), the runs ``kept`` only."""
        new, now, before, stale = (np.where(kept, q, 0.0) for q in values)
        target = new - (1.0 + self.mu) * now + self.mu * before
        x = np.stack([now, stale, now - before] if self.tau else [now, now - before])
        for b, part in enumerate(self.parts):
            self.xx[b] += x[:, part] @ x[:, part].T
            self.xy[b] += x[:, part] @ target[part]
            self.yy[b] += target[part] @ target[part]
            self.n[b] += np.count_nonzero(kept[part])

    def result(self) -> dict:
        """current b, stale d, momentum m and noise/η², each with its standard error over the blocks."""
        per_block = [self._coefficients(self.xx[b], self.xy[b], self.yy[b], self.n[b]) for b in range(BLOCKS)]
        whole = self._coefficients(self.xx.sum(0), self.xy.sum(0), self.yy.sum(), self.n.sum())
        errors = np.std(per_block, axis=0, ddof=1) / np.sqrt(BLOCKS)
        names = ("current", "stale", "momentum", "noise")
        return {**dict(zip(names, map(float, whole))), **{f"{n}_se": float(e) for n, e in zip(names, errors)}}

    def _coefficients(self, xx: np.ndarray, xy: np.ndarray, yy: float, n: float) -> np.ndarray:
        beta, eta = np.linalg.solve(xx, xy), self.eta
        noise = (yy - beta @ xy) / n / eta**2
        if self.tau:
            return np.array([-beta[0] / eta, -beta[1] / eta, beta[2], noise])
        return np.array([-beta[0] / eta, 0.0, beta[1], noise])


def toolkit_held(eta: float, mu: float, tau: int, data: str) -> dict:
    """The toolkit's floor at a held norm (δ = 0, no radial friction) and its recursion's rates."""
    problem = parts_case(SPECTRUM, eta, mu, tau, data).problem()
    c = coefficients_for(problem)
    first = finite_eta_floor(c, eta, mu, problem.delay, coupled=False)
    held = norm_coupled_floor(c.rates, c.coupling, c.additive, eta, mu, delay_law(problem.delay),
                              np.array(first.variances), delta=0.0, friction=False)  # fmt: skip
    current = held.restoring_split
    return {"floor": held.value, "current": current, "stale": float(c.rates[1] - current - held.ratio_drift[0])}


def angle_closure(eta: float, mu: float, tau: int, data: str) -> dict:
    """The Gaussian closure in the angle (module docstring): its floor, current and delayed rates and
    momentum change."""
    c = coefficients_for(parts_case(SPECTRUM, eta, mu, tau, data).problem())
    rate, additive, coupling = float(c.rates[1]), float(c.additive[1]), float(c.coupling[1, 1])
    v, lagged, change = 0.0, 0.0, 0.0
    for _ in range(CLOSURE_UPDATES):
        near, far = np.exp(-(v + lagged)), np.exp(-(5.0 * v - 3.0 * lagged))  # E cos(φ + θ), E cos(3φ − θ)
        squared = additive * (1.0 + np.exp(-8.0 * v)) / 2.0 + coupling * (1.0 - np.exp(-8.0 * v)) / 8.0  # E G²
        current = rate * (near - far) / 4.0 + eta * squared
        delayed = rate * (near + 3.0 * far) / 4.0 - eta * squared
        rows = np.zeros(max(tau, 1) + 1)  # x_{k+1} = Σ_j rows_j x_{k−j}
        rows[0], rows[1] = 1.0 + mu + change - eta * current, -(mu + change)
        rows[tau] -= eta * delayed
        gamma = autocovariance(rows, eta**2 * squared * (1.0 + np.exp(-4.0 * (v - lagged))) / 2.0)
        v, lagged = float(gamma[0]), float(gamma[tau])
        change = -(mu / 2.0 + 1.5 * mu**2 + mu**3) * 2.0 * float(gamma[0] - gamma[1])
    return {"floor": float(1.0 - np.exp(-2.0 * v)) / 2.0, "current": float(current), "stale": float(delayed),
            "momentum": change}  # fmt: skip


def study(replicates: int) -> list[dict]:
    """Every (η, μ), delay and data law: the simulated floor and fits beside the toolkit and the angle closure."""
    rows = []
    settings = [(eta, mu, tau, data) for eta, mu, delays in CASES for data in DATA for tau in delays]
    for j, (eta, mu, tau, data) in enumerate(settings):
        row = simulate(eta, mu, tau, data, replicates, SEED + j)
        rows.append({**row, "toolkit": toolkit_held(eta, mu, tau, data), "closure": angle_closure(eta, mu, tau, data)})
    return rows


def table(rows: list[dict]) -> str:
    """The two Markdown tables of docs/linear-theory.md: the floors (errors = simulated/predicted − 1),
    and the fitted recursions beside the toolkit's and the closure's (momentum changes times 10⁴)."""
    floors = ["| η, μ | τ | data | simulated floor | toolkit (ratio recursion) | angle closure |", "|---|---|---|---|---|---|"]
    fits = ["| η, μ | τ | data | ratio fit: b, d, 10⁴ m | toolkit: b, d, 10⁴ m | angle fit: b, d, 10⁴ m | closure: b, d, 10⁴ m |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        sim, tool, closure = r["floor"], r["toolkit"], r["closure"]
        case = f"| {r['eta']:g}, {r['mu']:g} | {r['tau']} | {r['data']} |"
        floors.append(f"{case} {sim:.5f} ± {100 * r['half_width'] / sim:.2f}% | {_error(sim, tool['floor'])} | "
                      f"{_error(sim, closure['floor'])} |")  # fmt: skip
        fits.append(f"{case} {_fit(r['ratio'], r['tau'])} | {tool['current']:.3f}, {tool['stale']:.3f}, 0 | "
                    f"{_fit(r['angle'], r['tau'])} | {_rates(closure, r['tau'])}, {1e4 * closure['momentum']:+.1f} |")  # fmt: skip
    return "\n".join(floors) + "\n\n" + "\n".join(fits)


def _error(simulated: float, predicted: float) -> str:
    return f"{predicted:.5f} ({100 * (simulated / predicted - 1):+.2f}%)"


def _rates(closure: dict, tau: int) -> str:
    """The closure's b and d (their sum alone at τ = 0, where the two are one rate)."""
    if not tau:
        return f"{closure['current'] + closure['stale']:.3f}, –"
    return f"{closure['current']:.3f}, {closure['stale']:.3f}"


def _fit(fit: dict, tau: int) -> str:
    """b, d (± their errors; b alone at τ = 0, where the two are one rate) and 10⁴ m ± its error."""
    momentum = f"{1e4 * fit['momentum']:+.1f} ± {1e4 * fit['momentum_se']:.1f}"
    if not tau:
        return f"{fit['current']:.3f} ± {fit['current_se']:.3f}, –, {momentum}"
    return f"{fit['current']:.3f} ± {fit['current_se']:.3f}, {fit['stale']:.3f} ± {fit['stale_se']:.3f}, {momentum}"


def main() -> None:
    run_study(__doc__.splitlines()[0], 65536, OUT, study, table)


if __name__ == "__main__":
    main()
