"""The travel and the convergence of single runs: from the escape (error ``1 − δ²``) to the arrival
(error ``δ²``), and from there to the first error ``<= ε``.

The ODE carries the iterate from the saddle e_j to e_1 in the plane of the two, its ratio
``h_1/h_j`` growing exactly exponentially, and travels between the two levels in
``log((1 − δ²)²/δ⁴)/(2a)`` (``a = (λ_1 − λ_j)/(1 − μ)``). A run does not:

* **the other coordinates** ``y_i`` (i ∉ {1, j}) are not 0 but fluctuate about the floor's share
  they carry; the error counts them, so a run arrives only once the plane's own part is below
  ``δ² − U``, ``U = Σ y_i²``: later, by about ``log(δ²/(δ² − U))/(2a)`` (15 iterations of 440 on
  the default problem), and earlier when U dips;
* **the plane's own noise** moves the angle at both ends, where the ODE's drift is slowest.

The per-run law is the first passage of a reduced model that keeps both, with the momentum and the
delay: the plane's angle θ (``h_1 = sin θ``, ``h_j = cos θ``), whose mean force is the ODE's
``(a/2) sin 2θ`` exactly, and the orthogonal coordinates, linear about the current point: their
restoring rate is ``λ_{1,j} − λ_i`` weighted by the shares ``sin² θ`` and ``cos² θ``, i.e.
``hᵀΣh − λ_i``, exact for the mean. Every noise is Gaussian, with the data's variance at the current
angle (the stale step's; one delay per step):

* the plane's, ``Var[(yᵀh)(yᵀe)] = S cos² 2θ + (V/4) sin² 2θ`` exactly (``e`` the direction of
  travel, ``S = E[Y_1² Y_j²]`` the escaping mode's noise, ``V = Var(Y_1² − Y_j²)`` the escape's
  multiplicative coupling, :func:`.coupling.escape_coupling`): the term ``(Y_1² − Y_j²) sin θ cos θ``
  is the escape's multiplicative noise carried along. Rademacher-type data have ``V = 0``, so their
  runs travel the middle almost without noise and their travels are narrower;
* the orthogonal coordinates', ``E[(yᵀh)² Y_i²]``, linear in the shares: the derived OU limit's at the
  saddle and at e_1 (the modes there) weighted by ``cos² θ`` and ``sin² θ``; at e_1 the phases set it
  so that each coordinate's stationary variance is the finite-η theory's (multiplicative noise in).

Both forms are derived from the fourth moments in :mod:`amsgd.derivations.travel_noise`.

Left out: the norm's motion and the orthogonal coordinates' multiplicative noise. The model starts
where a run does, at rest at the saddle, so at the escape it has a run's state there, the velocity
and the other coordinates included; followed on to ε, it gives a run's own phase III, which starts
moving, unlike a run started at the travel's end point at rest. Followed past every passage and
averaged per iteration (:func:`mean_error_curve`), its runs give the mean error of runs from the
saddle, whose crossing of ε is :attr:`.phases.Phases.settled_iterations`.

Measured against 8192 simulated runs on 16 problems (docs/linear-theory.md, section 7), the travel's
mean is within 1.6% of the runs' (the ODE's 2–9% short), the convergence's within 1.4 iterations or
4%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.first_passage import SEED, FirstPassageLaw
from amsgd.diffusion.theory.linear_recursion import Delay, check_parameters, delay_law

#: A path whose other coordinates reach ``U = Σ y_i² > LOST`` (the error within 1e-6 of 1) has blown up
#: and never arrives; it is given up.
LOST = 1e6
#: The most iterations followed, in multiples of the mean curve's escape and travel together.
TRAVEL_REACH = 20.0
#: Where the floor is at or above δ² (a run's error then reaches δ² on a dip, if at all), the largest
#: share of escaped runs that may not have reached δ² within the iterations followed for the travel to
#: count as ending; where it is at or above NO_ARRIVAL_FLOOR, the error stays nowhere near e_1 and the
#: arrivals are not followed.
MAX_UNARRIVED = 0.01
NO_ARRIVAL_FLOOR = 0.5


@dataclass(frozen=True, eq=False)
class PlaneModel:
    """The coefficients of the reduced model (module docstring), before the time scaling: the plane's
    rate ``λ_1 − λ_j``, its noise ``S = E[Y_1² Y_j²]`` and coupling ``V = Var(Y_1² − Y_j²)``, and one row
    per orthogonal coordinate (none for d = 2) of its restoring rate and noise variance at the saddle
    (column 0) and at e_1 (column 1)."""

    plane_rate: float
    plane_noise: float
    plane_coupling: float
    rates: np.ndarray
    noise: np.ndarray

    def __post_init__(self) -> None:
        if not (np.isfinite(self.plane_rate) and self.plane_rate > 0):
            raise ProblemError(f"the plane's rate λ_1 − λ_j must be a finite number > 0, got {self.plane_rate!r}")
        rates = _pairs("rates", self.rates)
        noise = _pairs("noise", self.noise, rates.shape[0])
        plane = np.array([self.plane_noise, self.plane_coupling], dtype=float)
        if not np.all(np.isfinite(plane)) or np.any(plane < 0) or np.any(noise < 0):
            raise ProblemError(f"noise variances must be finite and >= 0, got {plane.tolist()} and {noise.tolist()}")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "noise", noise)


@dataclass(frozen=True, eq=False)
class SaddleRuns:
    """Per sampled path, the iteration of its escape (error ``<= 1 − δ²``), of its arrival (then error
    ``<= δ²``) and, when ε was given, of its first error ``<= ε`` after the escape (after the arrival
    where ε < δ²; on the travel where ε >= δ², at or before the arrival); NaN where a path had not got
    there within the iterations followed."""

    escape: np.ndarray
    arrival: np.ndarray
    converged: np.ndarray | None = None
    iterations: int = 0  # the iterations followed from the saddle
    followed: int | None = None  # how many paths were followed where the sampling gave up (None: all of them)

    @property
    def unarrived(self) -> tuple[int, int]:
        """How many paths escaped, and how many of them had not arrived."""
        escaped = np.isfinite(self.escape)
        return int(escaped.sum()), int(np.isnan(self.arrival[escaped]).sum())

    @property
    def travel(self) -> FirstPassageLaw:
        """The iterations from a run's escape to its arrival."""
        return FirstPassageLaw(self.arrival - self.escape)

    @property
    def convergence(self) -> FirstPassageLaw:
        """The iterations from a run's arrival to its convergence (0 where ε >= δ²: it has converged
        when it arrives)."""
        return FirstPassageLaw(np.maximum(self._converged - self.arrival, 0.0))

    @property
    def reach(self) -> FirstPassageLaw:
        """The iterations from a run's escape to its first error ``<= ε``: its travel and convergence."""
        return FirstPassageLaw(self._converged - self.escape)

    @property
    def _converged(self) -> np.ndarray:
        if self.converged is None:
            raise ProblemError("these runs were not followed to ε; sample them with saddle_runs(..., epsilon=ε)")
        return self.converged


def _pairs(name: str, values, rows: int | None = None) -> np.ndarray:
    """``values`` as a ``(rows, 2)`` array of finite numbers: each row's value at the saddle and at e_1."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        array = array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2 or rows not in (None, array.shape[0]) or not np.all(np.isfinite(array)):
        raise ProblemError(f"{name} must be pairs of finite numbers (at the saddle, at e_1), got {values!r}")
    return array


def saddle_runs(model: PlaneModel, eta: float, mu: float, delay: Delay, delta_sq: float, paths: int,
                iterations: int, epsilon: float | None = None, arrive: bool = True,
                give_up: int | None = None) -> SaddleRuns:  # fmt: skip
    """``paths`` runs of the reduced ``model`` (module docstring) from rest at the saddle, followed for
    ``iterations``: each one's escape, arrival and, with ``epsilon``, first error ``<= ε`` after its
    escape (after its arrival where ε < δ²); with ``arrive`` false only the escape (the arrivals NaN).
    An i.i.d. delay is drawn afresh every step, one for the plane and the other coordinates. With
    ``give_up``, the sampling stops after the path that makes more than ``give_up`` escaped paths
    unarrived (the later paths NaN, ``followed`` says how many were): every path before it is the one
    the full sampling draws."""
    delta_sq = _checked_delta_sq(delta_sq)
    if epsilon is not None and not (np.isfinite(epsilon) and epsilon > 0.0 and arrive):
        raise ProblemError(f"epsilon must be a number > 0 for runs that arrive, got {epsilon!r}")
    early = epsilon is not None and epsilon >= delta_sq  # reached on the travel, before δ²
    levels = [1.0 - delta_sq] + ([delta_sq] if arrive else [])
    if epsilon is not None:
        levels.insert(1 if early else 2, epsilon)  # the passages are taken in this order
    times, followed = _passages(model, eta, mu, delay, levels, paths, iterations, np.zeros(0),
                                -1 if give_up is None or not arrive else int(give_up), 2 if early else 1)  # fmt: skip
    arrival = times[2 if early else 1] if arrive else np.full(times.shape[1], np.nan)
    converged = None if epsilon is None else times[1 if early else 2]
    return SaddleRuns(times[0], arrival, converged, int(iterations), followed if followed < paths else None)


def mean_error_curve(model: PlaneModel, eta: float, mu: float, delay: Delay, delta_sq: float, paths: int,
                     iterations: int) -> np.ndarray:  # fmt: skip
    """The mean error over ``paths`` runs of the reduced ``model`` from rest at the saddle, after each of
    the first ``iterations`` steps (entry k: after step k, at iteration k + 1). Runs escape at widely
    spread times, so this mean falls later and more slowly than a single run's error: it is the
    mean curve of the runs that a simulation averages."""
    curve = np.zeros(checks.positive_int("iterations", iterations))
    delta_sq = _checked_delta_sq(delta_sq)
    _passages(model, eta, mu, delay, [1.0 - delta_sq], paths, iterations, curve)
    return curve / paths


def _passages(model: PlaneModel, eta: float, mu: float, delay: Delay, levels: list[float], paths: int,
              iterations: int, curve: np.ndarray, give_up: int = -1, arrival: int = 1) -> tuple[np.ndarray, int]:  # fmt: skip
    """:func:`~.passage_kernel.travel_passages` from the fixed seed at the ``levels`` (of a checked δ²,
    the arrival at δ² the level ``arrival``): the passages and how many paths were followed."""
    from amsgd.diffusion.theory.passage_kernel import travel_passages
    from amsgd.simulate.ziggurat import replicate_states

    eta, mu = check_parameters(eta, mu)
    paths = checks.positive_int("paths", paths)
    law = delay_law(delay, as_iid=True)
    constant = -1 if law.constant is None else law.constant
    state = replicate_states(np.random.SeedSequence(SEED), 1)[0].copy()
    return travel_passages(paths, float(model.plane_rate), float(model.plane_noise), float(model.plane_coupling),
                           model.rates, model.noise, eta, mu, constant, law.cdf, np.array(levels, dtype=float),
                           int(iterations), LOST, state, curve, give_up, arrival)  # fmt: skip


def _checked_delta_sq(delta_sq: float) -> float:
    if not (np.isfinite(delta_sq) and 0.0 < delta_sq < 0.5):
        raise ProblemError(f"delta_sq must satisfy 0 < δ² < 1/2, got {delta_sq!r}")
    return float(delta_sq)
