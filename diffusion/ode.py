"""The ODE (law-of-large-numbers) limit of Async-MSGD on streaming PCA.

In eigen-coordinates ``h = Qᵀ v`` and diffusion time ``t = k η``::

    dh/dt = (Λ h − (hᵀ Λ h) h) / (1 − μ).

With ``w(t) = exp(Λ t/(1 − μ)) h(0)`` (the linear flow) and ``h = φ w`` the scalar ``φ`` obeys
``d(φ⁻²)/dt = 2 wᵀΛw/(1 − μ) = d‖w‖²/dt``, hence the closed form, for any start::

    h(t) = w(t) / sqrt(1 − ‖h(0)‖² + ‖w(t)‖²),

which for ``‖h(0)‖ = 1`` is ``h_i(t) ∝ h_i(0) exp(λ_i t/(1 − μ))`` normalised. The unit sphere is
invariant and attracting (``d‖h‖²/dt = 2 hᵀΛh (1 − ‖h‖²)/(1 − μ)``). The optimisation error is
``sin²∠(v, e_1) = 1 − h_1²/‖h‖²``. Iterations and diffusion time are related by ``k = t/η``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import logsumexp

from amsgd.core import checks
from amsgd.core.angles import sin2_error
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem


@dataclass(frozen=True)
class ODETrajectory:
    """An ODE solution on a time grid.

    Attributes: ``t`` diffusion time ``(T,)``; ``iterations = t/η``; ``h`` eigen-coordinates ``(T, d)``;
    ``v = h Qᵀ`` original coordinates; ``error`` ``sin²`` of the angle to ``e_1`` ``(T,)``; ``method``.
    """

    t: np.ndarray
    iterations: np.ndarray
    h: np.ndarray
    v: np.ndarray
    error: np.ndarray
    method: str

    def to_dict(self) -> dict:
        """The trajectory as JSON-ready lists."""
        return {"method": self.method, "t": self.t.tolist(), "iterations": self.iterations.tolist(),
                "h": self.h.tolist(), "error": self.error.tolist()}  # fmt: skip

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimensions ``iteration`` and ``coordinate``."""
        import xarray as xr

        return xr.Dataset(
            {"h": (("iteration", "coordinate"), self.h), "v": (("iteration", "coordinate"), self.v),
             "error": ("iteration", self.error), "t": ("iteration", self.t)},
            coords={"iteration": self.iterations, "coordinate": np.arange(1, self.h.shape[1] + 1)},
            attrs={"method": self.method},
        )  # fmt: skip


#: The largest entry of a start that ``solve_ivp`` integrates: from 1e50 the collapse of the norm takes it a
#: tenth of a second, from 1e100 its step underflows, and near 1e150 its cubic term overflows and it hangs.
SOLVE_IVP_MAX_START = 1e50


def ode_closed_form(eigenvalues: np.ndarray, mu: float, h0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``h(t) = w(t)/sqrt(1 − ‖h0‖² + ‖w(t)‖²)``, ``w = exp(Λt/(1 − μ)) h0``; shape ``(len(t), d)``.

    Evaluated in logarithms, with the denominator written ``1 + Σ_i h0_i² (e^{2λ_i t/(1 − μ)} − 1)``, a sum
    of non-negative terms (``λ_i, t >= 0``): ``log|w_i| = log|h0_i| + λ_i t/(1 − μ)`` and each term's
    logarithm ``2 log|h0_i| + log expm1(2λ_i t/(1 − μ))``, so that no time overflows, no start underflows
    or overflows (one on a saddle, one with a tiny component along e_1, one of norm 1e-200 or 1e200)
    and ``1 − ‖h0‖² + ‖w‖²`` is never formed (at 1e200 ``‖h0‖²`` overflows).
    """
    lam = np.asarray(eigenvalues, dtype=float)
    h0 = np.asarray(h0, dtype=float)
    t = np.asarray(t, dtype=float)[:, None]
    if np.any(lam < 0) or np.any(t < 0):
        raise ProblemError("the closed form takes non-negative eigenvalues and times")
    growth = 2.0 * lam * t / (1.0 - mu)
    with np.errstate(divide="ignore"):  # log 0 = −inf: a zero entry, or no growth yet, adds nothing
        log_h0 = np.log(np.abs(h0))
        log_terms = 2.0 * log_h0 + np.where(growth > 0, growth + np.log(-np.expm1(-growth)), -np.inf)
    log_den_sq = np.logaddexp(0.0, logsumexp(log_terms, axis=-1, keepdims=True))
    return np.sign(h0) * np.exp(log_h0 + 0.5 * growth - 0.5 * log_den_sq)


def _tolerance(name: str, value: object) -> float | np.ndarray:
    """A tolerance of ``solve_ivp``: finite and >= 0, one number or one per coordinate (a NaN one made it
    loop for ever)."""
    tolerance = checks.real_array(name, value)
    if tolerance.ndim > 1 or not np.all(np.isfinite(tolerance)) or np.any(tolerance < 0):
        raise ProblemError(f"{name} must be finite and >= 0 (one number, or one per coordinate), got {value!r}")
    return float(tolerance) if tolerance.ndim == 0 else tolerance


def integrate_ode(
    problem: Problem,
    start: np.ndarray,
    times: np.ndarray,
    *,
    unit: str = "iterations",
    coordinates: str = "original",
    method: str = "closed-form",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> ODETrajectory:
    """The ODE limit from ``start`` on the grid ``times``.

    Parameters
    ----------
    start
        The initial point: ``v0`` in the problem's coordinates (``coordinates="original"``, converted
        by ``h0 = Qᵀ v0``) or ``h0`` directly (``coordinates="eigen"``).
    times
        Output grid, in iterations ``k`` (``unit="iterations"``) or diffusion time ``t = kη`` (``"time"``).
    method
        ``"closed-form"`` or ``"solve_ivp"`` (scipy's DOP853 on the equation in the original coordinates
        ``dV/dt = (ΣV − (VᵀΣV)V)/(1 − μ)``, an independent check of the closed form and of the basis).
    """
    if not isinstance(problem, Problem):
        raise ProblemError(f"integrate_ode needs a Problem, got {type(problem).__name__}")
    if unit not in ("iterations", "time"):
        raise ProblemError(f"unit must be 'iterations' or 'time', got {unit!r}")
    if coordinates not in ("original", "eigen"):
        raise ProblemError(f"coordinates must be 'original' or 'eigen', got {coordinates!r}")
    start = checks.real_array("start", start)
    if start.shape != (problem.dim,) or not np.all(np.isfinite(start)) or not np.any(start):
        raise ProblemError(f"start must be a finite non-zero vector of length {problem.dim}")
    grid = checks.real_array("times", times)
    if grid.ndim != 1 or grid.size < 1 or not np.all(np.isfinite(grid)) or np.any(grid < 0) or np.any(np.diff(grid) < 0):
        raise ProblemError("times must be a non-decreasing 1-D array of finite non-negative values")
    t = grid * problem.eta if unit == "iterations" else grid
    h0 = problem.to_eigen(start) if coordinates == "original" else start
    if method == "closed-form":
        h = ode_closed_form(problem.eigenvalues, problem.mu, h0, t)
    elif method == "solve_ivp":
        rtol, atol = _tolerance("rtol", rtol), _tolerance("atol", atol)
        if np.abs(start).max() > SOLVE_IVP_MAX_START:
            raise ProblemError(f"method 'solve_ivp' takes starts with entries up to {SOLVE_IVP_MAX_START:g} in size "
                               "(beyond, its cubic term overflows or its steps underflow); the closed form takes any")  # fmt: skip
        sigma, mu, q = problem.covariance, problem.mu, problem.basis

        def rhs(_, v):
            sv = sigma @ v
            return (sv - (v @ sv) * v) / (1.0 - mu)

        if t[-1] == 0.0:  # nothing to integrate (solve_ivp needs an interval)
            h = np.tile(h0, (t.size, 1))
        else:
            sol = solve_ivp(rhs, (0.0, float(t[-1])), q @ h0, method="DOP853", t_eval=t, rtol=rtol, atol=atol)
            if not sol.success:
                raise ProblemError(f"solve_ivp failed: {sol.message}")
            h = sol.y.T @ q
    else:
        raise ProblemError(f"method must be 'closed-form' or 'solve_ivp', got {method!r}")
    return ODETrajectory(t, t / problem.eta, h, problem.from_eigen(h), sin2_error(h), method)
