"""The radial friction's kernel against a linearised model of the norm and one tangent coordinate.

The finite-η floor's radial friction (:mod:`amsgd.diffusion.theory.norm_coupling`) is
``ε = Σ_j H_j [κ(j + 2) − κ(j)]/(2 γ^w(0))``, H the radial recursion's impulse response and κ the
covariance of the norm's forcing with the velocity energy ``w_k²`` of a tangent mode. A Gaussian
velocity would give κ by Isserlis (``cov(w_a², w_b²) = 2 γ^w(a − b)²``); the toolkit adds two terms
of the data law (:func:`~amsgd.diffusion.theory.norm_coupling.kernel_beyond_isserlis`). This study
checks them on a model small enough to simulate exactly, at τ = 0 on Σ = diag(λ_1, λ_2):

* the tangent coordinate ``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η (−a x_k + ξ_k)``, ``ξ = Y_1 Y_2``,
  ``a = λ_1 − λ_2``;
* the norm's excess δ, ``δ_{k+1} − δ_k = μ (δ_k − δ_{k−1}) − 2η g_k δ_k + w_{k+1}² + μ w_k²`` with
  ``w_k = x_k − x_{k−1}`` and the gain ``g_k = Y_{1,k}²`` (the algorithm's) or its mean λ_1;
* Y from the same draw for both, Gaussian or Rademacher coordinates.

The friction measured on it, ``E[−(δ_{k+1} − δ_{k−1}) w_k²/2]/E[w_k²]`` over the second half of the
run (a 95% interval by the delta method over runs), is set against three kernels, all computed by the
toolkit's functions:

* *Isserlis*: the Gaussian kernel alone;
* *cumulant*: with the noise's fourth cumulant, ``cov(w_a², w_b²) = 2 γ^w(a − b)² + κ_4 η⁴ Σ_m G_m² G_{m+|a−b|}²``
  (``G`` the velocity's impulse response, ``κ_4 = q s²``, ``s = λ_1 λ_2``, q the derived constant of
  :func:`amsgd.derivations.norm_coupling.kinetic_noise`: 6 for Gaussian data, −2 for Rademacher data);
* *both*: with also the gain's noise, whose forcing ``−2η (g_k − λ_1) δ_k`` adds
  ``−2η³ E δ · g λ_1 s G_{ℓ−1}²`` to κ(ℓ) for ℓ ≥ 1 (``g λ_1 s = E[(Y_1² − λ_1) ξ²]``; g = 2 for
  Gaussian data, 0 for Rademacher data; 0 for the fixed gain), E δ the model's mean. This is the
  toolkit's kernel.

docs/linear-theory.md (section 5) holds the table. About 15 seconds. Usage:
``python benchmarks/friction_kernel.py [--replicates R] [--out PATH]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from study_cli import run_study

from amsgd import parse_delay, parse_distribution
from amsgd.derivations.norm_coupling import kinetic_noise_functions
from amsgd.diffusion.theory.linear_recursion import ar_coefficients, delay_law
from amsgd.diffusion.theory.norm_coupling import (
    autocovariances,
    impulse_response,
    kernel_beyond_isserlis,
    radial_friction,
    velocity_autocovariance,
)

OUT = Path(__file__).resolve().parent / "friction_kernel.json"
#: Σ = diag(2, 1) at the three (η, μ) of floor_parts.py on it: η/(1 − μ) 0.02, 0.025 and 0.05.
LAMBDAS = (2.0, 1.0)
CASES = ((1e-2, 0.5), (5e-3, 0.8), (2.5e-3, 0.95))
#: The data laws of the study.
DATA = ("gaussian", "rademacher")
LAGS = 4000
SEED = 5800


def simulate_pair(eta: float, mu: float, data: str, random_gain: bool, replicates: int, steps: int,
                  seed: int) -> dict:  # fmt: skip
    """The model's friction with its 95% half-width, and its mean δ, from ``replicates`` runs of
    ``steps`` steps from rest (the second half as the window)."""
    lam1, lam2 = LAMBDAS
    rng = np.random.default_rng(seed)
    x, before, p, delta, earlier = (np.zeros(replicates) for _ in range(5))
    energy_now = np.zeros(replicates)  # w_k²
    pull, energy, level = np.zeros(replicates), np.zeros(replicates), 0.0
    for k in range(steps):
        z = rng.standard_normal((2, replicates)) if data == "gaussian" else rng.integers(0, 2, (2, replicates)) * 2.0 - 1.0
        y1, y2 = np.sqrt(lam1) * z[0], np.sqrt(lam2) * z[1]
        velocity = x - before
        new = x + mu * velocity + eta * ((lam2 - lam1) * x + y1 * y2)
        gain = y1**2 if random_gain else lam1
        p = mu * (p + energy_now) - eta * gain * delta  # p_k = h_k·w_{k+1} in the norm's identity
        energy_next = (new - x) ** 2
        after = delta + 2.0 * p + energy_next
        if k > steps // 2:
            pull -= 0.5 * (after - earlier) * velocity**2
            energy += velocity**2
            level += float(delta.mean())
        earlier, delta = delta, after
        before, x, energy_now = x, new, energy_next
    friction = float(pull.sum() / energy.sum())
    residual = pull - friction * energy
    half_width = 1.96 * float(residual.std(ddof=1)) / np.sqrt(replicates) / float(energy.mean())
    return {"friction": friction, "half_width": half_width, "delta": level / (steps - 1 - steps // 2)}


def law_constants(data: str) -> tuple[float, float]:
    """The derived ``(q, g)`` of the data law at the model's spectrum."""
    return tuple(float(f(*LAMBDAS)) for f in kinetic_noise_functions(parse_distribution(data)))


def kernel_friction(eta: float, mu: float, cumulant: float = 0.0, gain: float = 0.0, delta: float = 0.0) -> float:
    """ε of the toolkit's kernel for the model of the module docstring: Isserlis's, with
    :func:`~amsgd.diffusion.theory.norm_coupling.kernel_beyond_isserlis`'s terms for ``cumulant`` = q
    and ``gain`` = g (``E[(Y_1² − λ_1) ξ²]/(λ_1² λ_2)``) at the mean excess ``delta``."""
    lam1, lam2 = LAMBDAS
    noise = lam1 * lam2
    law = delay_law(parse_delay("constant:0"))
    tangent = ar_coefficients(lam1 - lam2, eta, mu, law)
    velocity = velocity_autocovariance(autocovariances(tangent, LAGS + 2)) * eta**2 * noise  # γ^w(0 .. LAGS + 1)
    radial = impulse_response(ar_coefficients(2.0 * lam1, eta, mu, law), LAGS)
    beyond = kernel_beyond_isserlis(tangent, LAGS + 2, (cumulant, gain), noise, eta, mu, lam1, delta)
    return radial_friction(velocity, radial, mu, beyond)


def study(replicates: int, steps: int = 3000) -> list[dict]:
    """Every case, data law and gain: the simulated friction beside the three kernels."""
    rows = []
    for j, (eta, mu) in enumerate(CASES):
        for data in DATA:
            for random_gain in (False, True):
                sim = simulate_pair(eta, mu, data, random_gain, replicates, steps, SEED + 4 * j + 2 * (data == "rademacher") + random_gain)
                cumulant, gain = law_constants(data)
                gain = gain if random_gain else 0.0
                rows.append({"eta": eta, "mu": mu, "data": data, "random_gain": random_gain, "replicates": replicates,
                             "steps": steps, **sim, "isserlis": kernel_friction(eta, mu),
                             "cumulant": kernel_friction(eta, mu, cumulant),
                             "both": kernel_friction(eta, mu, cumulant, gain, sim["delta"])})  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    """The Markdown table of docs/linear-theory.md, frictions times 1000."""
    lines = ["| η, μ | data | gain | simulated | Isserlis | with the cumulant | with the cumulant and the gain's noise |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['eta']:g}, {r['mu']:g} | {r['data']} | {'2η Y_1²' if r['random_gain'] else '2η λ_1'} | "
                     f"{1000 * r['friction']:+.3f} ± {1000 * r['half_width']:.3f} | {1000 * r['isserlis']:+.3f} | "
                     f"{1000 * r['cumulant']:+.3f} | {1000 * r['both']:+.3f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    run_study(__doc__.splitlines()[0], 16384, OUT, study, table)


if __name__ == "__main__":
    main()
