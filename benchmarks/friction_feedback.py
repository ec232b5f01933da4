"""The radial friction measured in runs, taken apart: the norm's response to the kinetic energy (the open
loop, which the toolkit's ε_i models) and the kinetic energy's response to the norm (the feedback).

On Σ = diag(2, 1) the free runs of floor_parts.py give the friction of h_2's velocity ``w_k = h_{2,k} −
h_{2,k−1}``,

    ε = E[−(n_{k+1} − n_{k−1}) w_k²/2] / E[w_k²],      n_k = ‖h_k‖²,

a covariance of the norm's change with the kinetic energy. It has two sources. The kinetic energy
pushes the norm (``n_{k+1} − n_k ≈ w_{k+1}² + …``), and the norm's later fall is the friction the
toolkit's kernel gives at a fixed norm. And the kinetic energy follows the norm's slow swings: h_2's
velocity scales with the norm, and a norm away from its mean n* changes the momentum the tangent sees
(a held norm n: ``μ (1 + 2ηλ_1 (n − n*))``, docs/linear-theory.md section 5) and with it the floor.
Writing that second path as a linear response, ``E[w_k² | n] − E[w²] = Σ_{L ≥ 0} g_L (n_{k−L} − n*)``,
its part of ε is

    ε_feedback = −Σ_L g_L (C(L + 1) − C(|L − 1|)) / (2 E[w²]),

with C the norm's autocovariance in the free runs. ``g`` is measured on runs with the norm held at n*
(floor_parts' held runs) that switch to ``n* ± δ`` at the start of the window: the difference of their
mean ``w_k²`` per unit of norm is the step response S_L, and ``g_L = S_L − S_{L−1}`` (the same random
stream for the three held runs). The rest, ``ε − ε_feedback``, is the open loop, set beside the
toolkit's ε_2 (:func:`floor_parts.toolkit_friction`). Last, the free runs' floor against the toolkit's
coupled floor as it is and with ε_2 replaced by the measured friction (``norm_coupled_floor(...,
friction=ε/ε_2)``): what the friction alone would mend. A second table takes the norm's fluctuation
apart as a recursion with its mean gain (:func:`norm_model`): the additive drive, and the gain's
noise's share ``m`` where that noise were white and uncorrelated with the drive.

Cases: η 2.5e-3, μ 0.95 at τ = 0, 2, 3, 4 (τ* = 5) and η 5e-3, μ 0.8 at τ = 0, 4, 7, 10 (τ* = 12),
Rademacher and Gaussian data, R runs each (default 8192) from e_1 for floor_parts' 80 relaxation times,
the second half as the window; standard errors over 8 blocks of runs. Writes
``benchmarks/friction_feedback.json`` and prints the Markdown tables of docs/linear-theory.md (section 5).
About 5 minutes on 2 cores. Usage: ``python benchmarks/friction_feedback.py [--replicates R] [--out PATH]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from floor_parts import BLOWN, coupled, iterate, parts_case, toolkit_friction
from held_coordinates import CASES, DATA, SPECTRUM  # the same grid: (η, μ, delays) on Σ = diag(2, 1)
from study_cli import run_study

from amsgd import parse_delay
from amsgd.diffusion.theory.linear_recursion import ar_coefficients
from amsgd.diffusion.theory.norm_coupling import impulse_response, norm_coupled_floor

OUT = Path(__file__).resolve().parent / "friction_feedback.json"
#: The held norm's switch, ``n* ± SWITCH``; the lags of the sums; the blocks of runs for the errors.
SWITCH = 0.05
LAGS = 400
BLOCKS = 8
SEED = 5200
#: The norm's recursion: the lags of its drive's autocovariance, and the length of its impulse response.
NORM_LAGS = 200
HORIZON = 40_000


def window_series(case, replicates: int, held: float | None = None, switch: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Over the second half of the runs (:func:`floor_parts.iterate`): ``n_{k+1} = ‖h_{k+1}‖²`` and
    ``w_k²``, one row per step k, one column per run, each run's floor (its mean sin² there), and the
    gains ``s_k² = (Y_kᵀ h_{k−τ})²`` (rows). With ``held`` the norm is held there, and with ``switch`` it
    is held at ``held + switch`` from the window's first step on."""
    start = case.steps // 2
    norms, energies, gains, error = [], [], [], np.zeros(replicates)
    after = None if held is None or switch is None else held + switch
    for k, new, now, before, stale, y in iterate(case, replicates, held, after):
        if k >= start:
            norms.append(np.einsum("rd,rd->r", new, new))
            energies.append((now[:, 1] - before[:, 1]) ** 2)
            gains.append(np.einsum("rd,rd->r", y, stale) ** 2)
            error += 1.0 - new[:, 0] ** 2 / norms[-1]
    return np.array(norms), np.array(energies), error / len(norms), np.array(gains)


def friction(norms: np.ndarray, energies: np.ndarray) -> float:
    """``E[−(n_{k+1} − n_{k−1}) w_k²/2]/E[w_k²]`` over a window (rows ``n_{k+1}`` and ``w_k²``)."""
    return float(np.mean(-(norms[2:] - norms[:-2]) * energies[2:] / 2.0) / np.mean(energies[2:]))


def autocovariance(norms: np.ndarray, mean: float, lags: int) -> np.ndarray:
    """``C(L) = E[(n_{k+L} − n*)(n_k − n*)]`` for L = 0 .. lags over the window (rows), pooled over runs."""
    x = norms - mean
    return np.array([np.mean(x[lag:] * x[: x.shape[0] - lag]) for lag in range(lags + 1)])


def step_response(up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """``S_L``, the mean ``w²`` per unit of held norm L steps after the switch: the window's first row
    ``w_k²`` comes before the switched iterate ``h_{k+1}`` (equal in both, left out)."""
    return (up[1:].mean(axis=1) - down[1:].mean(axis=1)) / (2.0 * SWITCH)


def feedback(response: np.ndarray, covariance: np.ndarray, energy: float) -> float:
    """``−Σ_L g_L (C(L + 1) − C(|L − 1|))/(2 E[w²])`` with ``g_L = S_L − S_{L−1}`` from the step response S
    (module docstring), over the lags both cover."""
    g = np.diff(response, prepend=0.0)
    lags = min(g.size, covariance.size - 1)
    return float(-sum(g[lag] * (covariance[lag + 1] - covariance[abs(lag - 1)]) for lag in range(lags)) / (2.0 * energy))


def measure(eta: float, mu: float, tau: int, data: str, replicates: int, seed: int) -> dict:
    """One case: the measured friction, its feedback part and the open loop (block means and standard
    errors), the norm's variance, the kinetic energy's static response to the norm, and the toolkit's ε_2."""
    case = parts_case(SPECTRUM, eta, mu, tau, data, seed=seed)
    norms, energies, floors, gains = window_series(case, replicates)
    kept = np.all(np.isfinite(norms) & (norms < BLOWN), axis=0)
    norms, energies, free = norms[:, kept], energies[:, kept], float(floors[kept].mean())
    mean = float(norms.mean())
    up = window_series(case, replicates, held=mean, switch=SWITCH)[1][:, kept]
    down = window_series(case, replicates, held=mean, switch=-SWITCH)[1][:, kept]
    parts = []
    for block in np.array_split(np.arange(norms.shape[1]), BLOCKS):
        n, w = norms[:, block], energies[:, block]
        response = step_response(up[:, block], down[:, block])
        total = friction(n, w)
        part = feedback(response, autocovariance(n, mean, LAGS), float(w.mean()))
        parts.append((total, part, total - part))
    values, errors = np.mean(parts, axis=0), np.std(parts, axis=0, ddof=1) / np.sqrt(BLOCKS)
    response = step_response(up, down)
    late = response[response.size // 2 :].mean() / float(energies.mean())
    toolkit = toolkit_friction(case)
    return {"eta": eta, "mu": mu, "tau": tau, "data": data, "replicates": int(kept.sum()),
            "norm_mean": mean, "norm_variance": float(norms.var()), "static_response": float(late),
            "measured": values[0], "measured_se": errors[0], "feedback": values[1], "feedback_se": errors[1],
            "open_loop": values[2], "open_loop_se": errors[2], "toolkit": toolkit, "free_floor": free,
            "floor_toolkit": floor_with(case, 1.0), "floor_measured": floor_with(case, values[0] / toolkit)
            } | norm_model(case, norms, gains[:, kept])  # fmt: skip


def norm_model(case, norms: np.ndarray, gains: np.ndarray) -> dict:
    """The norm's fluctuation against its recursion with the mean gain, ``δ_{k+1} = Σ_i c_i δ_{k−i} + D_k``
    (``δ = ‖h‖² − n*``, ``c`` the mean dynamics' coefficients at the rate ``2 E s²``, H its impulse
    response): the identity ``Var δ = Σ_{i,j} H_i H_j Cov(D_{k−i}, D_{k−j})`` on the measured drive D (a
    check of the lags), the same on D less the gain's noise ``−2η (s_k² − E s²) δ_{k−τ}`` (the additive
    drive alone), and ``m = 4η² Var(s²) Σ H²``, the share of Var δ that noise adds where it is white and
    uncorrelated with the rest (then ``Var δ = additive/(1 − m)``)."""
    tau = parse_delay(case.delay).tau
    d, gain = norms - norms.mean(), float(gains.mean())
    c = ar_coefficients(2.0 * gain, case.eta, case.mu, parse_delay(case.delay))
    rows, first = d.shape[0], c.size  # d[j] = δ_{k+1}: δ_{k−i} is d[j − 1 − i]
    drive = d[first:] - sum(c[i] * d[first - 1 - i : rows - 1 - i] for i in range(c.size))
    noise = -2.0 * case.eta * (gains[first:] - gain) * d[first - 1 - tau : rows - 1 - tau]
    h = impulse_response(c, HORIZON)
    weights = np.array([h @ h] + [2.0 * (h[:-lag] @ h[lag:]) for lag in range(1, NORM_LAGS + 1)])
    identity = float(weights @ autocovariance(drive, float(drive.mean()), NORM_LAGS))
    additive = drive - noise
    alone = float(weights @ autocovariance(additive, float(additive.mean()), NORM_LAGS))
    share = 4.0 * case.eta**2 * float(gains.var()) * float(weights[0])
    return {"norm_identity": identity, "norm_additive": alone, "gain_noise": share}


def floor_with(case, scale: float) -> float:
    """The toolkit's coupled floor with its friction ε_2 times ``scale`` (1: as it is)."""
    args, constants, _ = coupled(case)
    return float(norm_coupled_floor(*args, constants=constants, friction=scale).value)


def table(rows: list[dict]) -> str:
    """The Markdown table of docs/linear-theory.md: frictions times 1000 with their standard errors."""
    lines = ["| η, μ | τ | data | Var ‖h‖² | ∂ ln E w²/∂n | measured | feedback | open loop | toolkit ε_2 "
             "| floor's error: with ε_2 / with the measured friction |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        def value(name: str, r: dict = r) -> str:
            return f"{1000 * r[name]:+.2f} ± {1000 * r[name + '_se']:.2f}"

        lines.append(f"| {r['eta']:g}, {r['mu']:g} | {r['tau']} | {r['data']} | {r['norm_variance']:.2e} | "
                     f"{r['static_response']:.2f} | {value('measured')} | {value('feedback')} | {value('open_loop')} | "
                     f"{1000 * r['toolkit']:+.2f} | {_error(r, 'floor_toolkit')} / {_error(r, 'floor_measured')} |")  # fmt: skip
    return "\n".join(lines)


def norm_table(rows: list[dict]) -> str:
    """The Markdown table of the norm's fluctuation (:func:`norm_model`) in docs/linear-theory.md."""
    lines = ["| η, μ | τ | data | Var ‖h‖², runs | the recursion's identity | its additive drive alone "
             "| that over 1 − m | m |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        m = r["gain_noise"]
        over = f"{r['norm_additive'] / (1.0 - m):.2e}" if m < 1.0 else "∞"
        lines.append(f"| {r['eta']:g}, {r['mu']:g} | {r['tau']} | {r['data']} | {r['norm_variance']:.2e} | "
                     f"{r['norm_identity']:.2e} | {r['norm_additive']:.2e} | {over} | {m:.3f} |")  # fmt: skip
    return "\n".join(lines)


def tables(rows: list[dict]) -> str:
    """Both tables, as the study prints them."""
    return table(rows) + "\n\n" + norm_table(rows)


def _error(row: dict, name: str) -> str:
    """The free runs' floor over the toolkit's, less 1, in percent."""
    return f"{100 * (row['free_floor'] / row[name] - 1):+.1f}%"


def study(replicates: int) -> list[dict]:
    """Every case of the grid, each with a seed of its own."""
    return [measure(eta, mu, tau, data, replicates, SEED + 1000 * j + 10 * tau + DATA.index(data))
            for j, (eta, mu, delays) in enumerate(CASES) for tau in delays for data in DATA]  # fmt: skip


def main() -> None:
    run_study(__doc__.splitlines()[0], 8192, OUT, study, tables)


if __name__ == "__main__":
    main()
