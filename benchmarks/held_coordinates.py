"""The held-norm floor with a delay, fitted in ratio and in angle coordinates.

The best linear model in each coordinate, fitted to the algorithm, beside the toolkit's ratio
recursion and a Gaussian closure in the angle. The coupled floor's misses with a delay (floor_parts.py: the ratios at a held norm, μ 0.95) are
studied here on Σ = diag(2, 1), η 2.5e-3, μ 0.95 (τ* = 5) with the norm held at 1, constant delays
0, 2, 3, 4, Rademacher and Gaussian data: Async-MSGD with every new iterate rescaled to the unit
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

    θ_{k+1} = θ_k + μ Δ_k − (μ/6 + μ²/2 + μ³/3) Δ_k³ + η G(φ) + …

(the omitted terms carry ``η G (φ − θ_k)`` or ``η² G²``). The momentum acts on the angle itself,
and the restoring force and the noise on the stale angle alone. A Gaussian closure in the angle (φ
normal with variance v, Stein's lemma for the drift): the delayed rate ``(λ_1 − λ_2) e^{−2v}``, the noise
``η² [s (1 + e^{−8v})/2 + C (1 − e^{−8v})/8]`` (``s = E[Y_1² Y_2²]``, ``C = Var(Y_1² − Y_2²)``, the
linearisation's additive noise and coupling) and the momentum change ``m = −(μ/2 + 3μ²/2 + μ³) W``
(``Δ³ → 3 W Δ``, W the velocity's variance), solved with v; the floor is ``E sin² θ = (1 − e^{−2v})/2``.

Against both the toolkit's held floor: :func:`~amsgd.diffusion.theory.norm_coupling.norm_coupled_floor`
at δ = 0 without the radial friction (the norm does not move), whose recursion has ``b`` the restoring
split, ``d = λ_1 − λ_2 − b − c`` and ``m = 0``.

Writes ``benchmarks/held_coordinates.json`` and prints the two tables of docs/linear-theory.md
(section 5). About 2.5 minutes with the default R = 65536. Usage:
``python benchmarks/held_coordinates.py [--replicates R] [--out PATH]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from floor_parts import _draw, parts_case
from study_cli import run_study

from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.lyapunov import autocovariance
from amsgd.diffusion.theory.norm_coupling import norm_coupled_floor
from amsgd.diffusion.theory.second_moments import finite_eta_floor

OUT = Path(__file__).resolve().parent / "held_coordinates.json"
SPECTRUM, ETA, MU = (2.0, 1.0), 2.5e-3, 0.95
DELAYS = (0, 2, 3, 4)
DATA = ("rademacher", "gaussian")
#: Blocks of runs for the fits' standard errors.
BLOCKS = 8
#: The fits keep steps whose angles stay within this bound.
ANGLE_BOUND = 1.0
SEED = 6100
#: Updates of the angle closure's fixed point (a contraction: from 20 on the floor no longer moves).
CLOSURE_UPDATES = 60


def simulate(tau: int, data: str, replicates: int, seed: int) -> dict:
    """The held runs' floor (mean and 95% half-width over runs) and the fits in both coordinates."""
    case = parts_case(SPECTRUM, ETA, MU, tau, data, seed)
    root = np.sqrt(np.asarray(SPECTRUM))
    rng = np.random.default_rng(seed)
    h = np.zeros((replicates, 2))
    h[:, 0] = 1.0
    ring = [h.copy() for _ in range(tau + 2)]  # h_{k−τ−1} .. h_k
    steps, start = case.steps, case.steps // 2
    error = np.zeros(replicates)
    sums = {name: _Sums(3 if tau else 2) for name in ("ratio", "angle")}
    block = np.arange(replicates) % BLOCKS
    for k in range(steps):
        now, before, stale = ring[-1], ring[-2], ring[-1 - tau]
        y = _draw(rng, data, replicates, 2) * root
        s = np.einsum("rd,rd->r", y, stale)
        new = now + MU * (now - before) + ETA * (y * s[:, None] - (s * s)[:, None] * stale)
        new /= np.sqrt(np.einsum("rd,rd->r", new, new))[:, None]
        ring = ring[1:] + [new]
        if k + 1 > start:
            error += 1.0 - new[:, 0] ** 2
            ratios = [q[:, 1] / q[:, 0] for q in (new, now, before, stale)]
            angles = [np.arctan(q) for q in ratios]
            kept = np.all(np.abs(angles) < ANGLE_BOUND, axis=0)
            sums["ratio"].add(ratios, kept, block, tau)
            sums["angle"].add(angles, kept, block, tau)
    floors = error / (steps - start)
    half_width = 1.96 * float(floors.std(ddof=1)) / float(np.sqrt(replicates))
    return {"tau": tau, "data": data, "replicates": replicates, "steps": steps, "floor": float(floors.mean()),
            "half_width": half_width, **{name: fit.result(tau) for name, fit in sums.items()}}  # fmt: skip


class _Sums:
    """Per block of runs, the least-squares sums of ``x_{k+1} − (1 + μ) x_k + μ x_{k−1}`` on the regressors."""

    def __init__(self, regressors: int) -> None:
        self.xx = np.zeros((BLOCKS, regressors, regressors))
        self.xy, self.yy, self.n = np.zeros((BLOCKS, regressors)), np.zeros(BLOCKS), np.zeros(BLOCKS)

    def add(self, values: list[np.ndarray], kept: np.ndarray, block: np.ndarray, tau: int) -> None:
        new, now, before, stale = (np.where(kept, q, 0.0) for q in values)
        target = new - (1.0 + MU) * now + MU * before
        x = np.stack([now, stale, now - before] if tau else [now, now - before])
        for b in range(BLOCKS):
            part = block == b
            self.xx[b] += x[:, part] @ x[:, part].T
            self.xy[b] += x[:, part] @ target[part]
            self.yy[b] += target[part] @ target[part]
            self.n[b] += np.count_nonzero(kept[part])

    def result(self, tau: int) -> dict:
        """current b, stale d, momentum m and noise/η², each with its standard error over the blocks."""
        per_block = [self._coefficients(self.xx[b], self.xy[b], self.yy[b], self.n[b], tau) for b in range(BLOCKS)]
        whole = self._coefficients(self.xx.sum(0), self.xy.sum(0), self.yy.sum(), self.n.sum(), tau)
        errors = np.std(per_block, axis=0, ddof=1) / np.sqrt(BLOCKS)
        names = ("current", "stale", "momentum", "noise")
        return {**dict(zip(names, map(float, whole))), **{f"{n}_se": float(e) for n, e in zip(names, errors)}}

    @staticmethod
    def _coefficients(xx: np.ndarray, xy: np.ndarray, yy: float, n: float, tau: int) -> np.ndarray:
        beta = np.linalg.solve(xx, xy)
        noise = (yy - beta @ xy) / n / ETA**2
        if tau:
            return np.array([-beta[0] / ETA, -beta[1] / ETA, beta[2], noise])
        return np.array([-beta[0] / ETA, 0.0, beta[1], noise])


def toolkit_held(tau: int, data: str) -> dict:
    """The toolkit's floor at a held norm (δ = 0, no radial friction) and its recursion's rates."""
    problem = parts_case(SPECTRUM, ETA, MU, tau, data).problem()
    c = coefficients_for(problem)
    first = finite_eta_floor(c, ETA, MU, problem.delay, coupled=False)
    held = norm_coupled_floor(c.rates, c.coupling, c.additive, ETA, MU, delay_law(problem.delay),
                              np.array(first.variances), delta=0.0, friction=False)  # fmt: skip
    current = held.restoring_split
    return {"floor": held.value, "current": current, "stale": float(c.rates[1] - current - held.ratio_drift[0])}


def angle_closure(tau: int, data: str) -> dict:
    """The Gaussian closure in the angle (module docstring): its floor, delayed rate and momentum change."""
    c = coefficients_for(parts_case(SPECTRUM, ETA, MU, tau, data).problem())
    rate, additive, coupling = float(c.rates[1]), float(c.additive[1]), float(c.coupling[1, 1])
    v, change = 0.0, 0.0
    for _ in range(CLOSURE_UPDATES):
        rows = np.zeros(max(tau, 1) + 1)  # x_{k+1} = Σ_j rows_j x_{k−j}
        rows[0], rows[1] = 1.0 + MU + change, -(MU + change)
        rows[tau] -= ETA * rate * np.exp(-2.0 * v)
        noise = ETA**2 * (additive * (1.0 + np.exp(-8.0 * v)) / 2.0 + coupling * (1.0 - np.exp(-8.0 * v)) / 8.0)
        gamma = autocovariance(rows, noise)
        v = float(gamma[0])
        change = -(MU / 2.0 + 1.5 * MU**2 + MU**3) * 2.0 * float(gamma[0] - gamma[1])
    return {"floor": float(1.0 - np.exp(-2.0 * v)) / 2.0, "stale": rate * float(np.exp(-2.0 * v)), "momentum": change}


def study(replicates: int) -> list[dict]:
    """Every delay and data law: the simulated floor and fits beside the toolkit and the angle closure."""
    rows = []
    for j, (data, tau) in enumerate((d, t) for d in DATA for t in DELAYS):
        row = simulate(tau, data, replicates, SEED + j)
        rows.append({**row, "toolkit": toolkit_held(tau, data), "closure": angle_closure(tau, data)})
    return rows


def table(rows: list[dict]) -> str:
    """The two Markdown tables of docs/linear-theory.md: the floors (errors = simulated/predicted − 1),
    and the fitted recursions beside the toolkit's and the closure's (momentum changes times 10⁴)."""
    floors = ["| τ | data | simulated floor | toolkit (ratio recursion) | angle closure |", "|---|---|---|---|---|"]
    fits = ["| τ | data | ratio fit: b, d, 10⁴ m | toolkit: b, d, 10⁴ m | angle fit: b, d, 10⁴ m | closure: d, 10⁴ m |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        sim, tool, closure = r["floor"], r["toolkit"], r["closure"]
        floors.append(f"| {r['tau']} | {r['data']} | {sim:.5f} ± {100 * r['half_width'] / sim:.2f}% | "
                      f"{_error(sim, tool['floor'])} | {_error(sim, closure['floor'])} |")  # fmt: skip
        fits.append(f"| {r['tau']} | {r['data']} | {_fit(r['ratio'], r['tau'])} | {tool['current']:.3f}, {tool['stale']:.3f}, 0 | "
                    f"{_fit(r['angle'], r['tau'])} | {closure['stale']:.3f}, {1e4 * closure['momentum']:+.1f} |")  # fmt: skip
    return "\n".join(floors) + "\n\n" + "\n".join(fits)


def _error(simulated: float, predicted: float) -> str:
    return f"{predicted:.5f} ({100 * (simulated / predicted - 1):+.2f}%)"


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
