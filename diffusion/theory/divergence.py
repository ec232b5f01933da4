"""Divergence risk: the critical impulse of the noise-free dynamics, the rate at which large samples
carry runs off, and what happens beyond the mean-dynamics boundary.

**Critical impulse.** Near e_1 a sample's gradient is ``g = s (Y − s v) ≈ Y_1 Y_⊥`` (orthogonal to e_1,
of size ``K = |Y_1| ‖Y_⊥‖``). One large gradient displaces v sideways, the norm of v grows, and the
radial restoring rate grows with it (``3 λ_1 ‖v‖² − λ_1`` along e_1, ``2 λ_1`` on the sphere): past some
size the delayed momentum dynamics of the norm is unstable and the run blows up. ``K*`` is the
smallest impulse ``η K e_2`` given at one step to the *noise-free* recursion of the mean map,
``v_{k+1} = v_k + μ (v_k − v_{k−1}) + η ḡ(v_{k−τ})`` started at e_1, after which that recursion blows up
(bisection on a batch of impulses, exact for this deterministic map at the problem's η, μ, τ and
spectrum; a random delay enters through its law, ``η Σ_j p_j ḡ(v_{k−j})``: the drift averaged over the
delay, which the mean dynamics' stability linearises).

**Rate.** Runs are carried off well below ``K*``: at the raised norm ``r`` a kick leaves, the next
samples multiply v by ``1 − η s²`` with ``s² ≈ r² (Yᵀv̂)²``, which overshoots for moderate samples.
The per-iteration probability ``p`` that a run blows up is therefore computed by conditional Monte
Carlo of the exact random recursion after a large sample (:mod:`.kick_fate`: the sample's size
``‖Y‖²`` drawn bin by bin from the data law's tail, the excursion it starts followed to its end, a
renewal correction for the steps spent in excursions), with its standard error; ``K*`` sets the
scale of the bins. Over N iterations the expected fraction of runs that blow up is ``1 − exp(−N p)``.
``p`` is the rate of runs settled at e_1: where N is shorter than the settling
(:func:`.kick_fate.settling_steps`; a long delay law's ring), runs from e_1 at rest are also counted
directly for N iterations (``from_e1``, :func:`.kick_fate.blowups_from_rest`), since a run still
settling meets another risk, and so are runs from e_2 at rest (``from_e2``), the saddle ``simulate``
starts from, which meet yet another while they escape and travel.

**Between the mean and the mean-square boundaries** the second moments of the linearisation grow, but
most runs stay near e_1 (the nonlinearity bounds the radial mode, whose growth it is); runs may also
be carried off there with no large sample, and the rate adds those blow-ups (``without_events``);
where blow-ups there are frequent (next to the mean τ*), ``p`` is instead their direct count in runs
of the exact recursion with the full data law (``method = "direct"``, ``direct_blowups``).

**Beyond the mean-dynamics boundary** (τ > τ*, or η or μ beyond theirs): the same noise-free recursion
from a small perturbation of e_1 either grows without bound (runs blow up) or settles on an oscillation
of bounded amplitude. The samples can still throw runs off that oscillation, so there the exact
recursion with the full data law is run from e_1 too (:func:`.kick_fate.blowups_from_rest`): the fraction
is its count (``beyond``), and the fate is "blows up" where at least half the runs do, else "saturates"
(runs stay at a high error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from amsgd.core.distributions import SampledDistribution
from amsgd.core.estimates import json_float
from amsgd.core.problem import Problem
from amsgd.diffusion.theory.kick_fate import (
    FATE_NORM,
    BlowupCount,
    blowups_from_rest,
    kick_fate,
    settling_steps,
)
from amsgd.diffusion.theory.linear_recursion import Delay, DelayLaw, delay_law, geometric_ratio

#: The seed of the Monte Carlo parts (reproducible numbers).
TAIL_SEED = 20181204
#: Iterations of the noise-free recursion, and the norm beyond which it counts as blown up.
FATE_ITERATIONS = 20_000
IMPULSE_ITERATIONS = 4_000
#: Impulses tried at once, and refinements of the bracket.
IMPULSE_BATCH = 48
IMPULSE_ROUNDS = 4


#: Which runs the fraction is for: the rate per iteration is that of runs settled at e_1; a run that spends a
#: good part of its iterations settling (from e_1 under a long delay law, say) meets another risk meanwhile.
SETTLED = "settled at e_1"

#: What the fraction is, in words (docs/linear-theory.md section 7 has the measurements).
ESTIMATE_NOTE = (
    "the fraction is a conditional Monte Carlo estimate over the excursions that large samples start (the exact "
    "data law and dynamics, the sample's size drawn from the law's tail); runs carried off with no sample beyond "
    "the event threshold are not counted"
)
POOL_NOTE = (
    "; the sample sizes come from the sampler's moment draws, whose tail beyond their largest is not seen (nor "
    "counted in the interval): for heavy-tailed samplers read the fraction as an order of magnitude"
)
BOUND_NOTE = (
    "no excursion was followed (samples beyond the event threshold are too rare to matter): the fraction is the "
    "chance that a run meets one such sample at all, an upper bound"
)


#: The same between the mean and the mean-square boundaries, where runs meeting no event are counted too.
MEAN_SQUARE_NOTE = (
    "the mean dynamics is stable but the second moments of the linearisation at e_1 grow (mean-square unstable); "
    "the fraction adds to the excursions' blow-ups those of runs that meet no large sample (direct Monte Carlo of "
    "the exact recursion from settled states: without_events per iteration)"
)
#: The same where blow-ups there are frequent enough to count directly.
DIRECT_NOTE = (
    "the mean dynamics is stable but the second moments of the linearisation at e_1 grow (mean-square unstable); "
    "blow-ups are frequent here and the fraction counts them directly (direct_blowups of them in runs of the exact "
    "recursion with the full data law from settled states)"
)


@dataclass(frozen=True)
class DivergenceRisk:
    """The noise-free critical impulse, the probability per iteration that a run blows up (with its
    Monte Carlo standard error), the expected fraction of runs of ``steps`` iterations that blow up,
    and the fate beyond the mean-dynamics boundary (with ``beyond``, the count of runs from e_1, where
    the noise-free recursion saturates); inside it, where ``steps`` is shorter than ``settling``, the
    counts of runs from e_1 and from e_2 at rest (``from_e1``, ``from_e2``)."""

    critical_impulse: float  # K*
    per_iteration: float
    steps: int
    fate: str  # "stable", "mean-square unstable", or beyond the mean boundary "saturates" or "blows up"
    standard_error: float = 0.0
    event_threshold: float = float("nan")  # the sample size ‖Y‖² beyond which a sample is an event
    undecided: float = 0.0  # the share of excursions neither settled nor blown up when followed no further
    background_blowups: float = 0.0  # the share of background paths that blew up during the burn-in
    paths: int = 0  # event paths followed (0: events negligible, the event rate is the rate, an upper bound)
    without_events: float = float("nan")  # the part of per_iteration from runs meeting no event (mean-square unstable)
    method: str = "excursions"  # or "direct": blow-ups counted directly with the full data law (kick_fate)
    direct_blowups: int = 0  # the direct count's blow-ups (mean-square unstable; 0 elsewhere)
    beyond: BlowupCount | None = None  # runs from e_1 beyond the mean boundary where the noise-free recursion saturates
    from_e1: BlowupCount | None = None  # runs from e_1 counted directly, where ``steps`` is shorter than ``settling``
    settling: int = 0  # the steps after which a run from e_1 counts as settled (kick_fate.settling_steps)
    from_e2: BlowupCount | None = None  # the same count from e_2 at rest, the saddle ``simulate`` starts from
    from_pool: bool = False  # the sample sizes' law from a user sampler's moment draws (its tail unseen beyond them)

    @property
    def mean_stable(self) -> bool:
        """Whether the mean dynamics is stable (the rate applies; beyond its boundary, the fate)."""
        return self.fate in ("stable", "mean-square unstable")

    @property
    def fraction(self) -> float:
        if self.beyond is not None:
            return self.beyond.fraction
        if not self.mean_stable:
            return 1.0 if self.fate == "blows up" else 0.0
        return self._fraction(self.per_iteration)

    @property
    def interval(self) -> tuple[float, float]:
        """The fraction at ``p ∓ 1.96`` standard errors (95% for the Monte Carlo part); where no event path
        was run (``paths`` 0 of the excursions' method: events negligible), the event rate in ``p`` is an
        upper bound and the lower end leaves it out; beyond the mean boundary, the count's interval (or
        the fate's 0 or 1)."""
        if self.beyond is not None:
            return self.beyond.interval
        if not self.mean_stable:
            return (self.fraction, self.fraction)
        spread = 1.96 * self.standard_error
        bound_only = self.paths == 0 and self.method == "excursions"
        low = (0.0 if np.isnan(self.without_events) else self.without_events) if bound_only else self.per_iteration
        return (self._fraction(max(low - spread, 0.0)), self._fraction(self.per_iteration + spread))

    def _fraction(self, p: float) -> float:
        return float(-np.expm1(-self.steps * p))

    def to_dict(self) -> dict:
        out = {
            "fraction": json_float(self.fraction),
            "interval": [json_float(x) for x in self.interval],
            "per_iteration": json_float(self.per_iteration),
            "standard_error": json_float(self.standard_error) if self.mean_stable else None,  # of per_iteration
            "steps": self.steps,
            "critical_impulse": json_float(self.critical_impulse),
            "event_threshold": json_float(self.event_threshold),
            "undecided": json_float(self.undecided),
            "background_blowups": json_float(self.background_blowups),
            "paths": self.paths,
            "without_events": json_float(self.without_events),
            "method": self.method,
            "direct_blowups": self.direct_blowups,
            "beyond": None if self.beyond is None else {"blowups": self.beyond.blowups, "paths": self.beyond.paths,
                                                        "steps_run": self.beyond.run},  # fmt: skip
            "from_e1": None if self.from_e1 is None else _count_dict(self.from_e1),
            "from_e2": None if self.from_e2 is None else _count_dict(self.from_e2),
            "settling": self.settling or None,
            "fate": self.fate,
        }
        if self.beyond is not None:
            out["note"] = self._beyond_note()
        elif self.fate == "blows up":
            out["note"] = "beyond the stability boundary the noise-free recursion blows up: every run diverges"
        elif self.fate == "mean-square unstable":
            out["note"] = f"{self._expected()}{DIRECT_NOTE if self.method == 'direct' else MEAN_SQUARE_NOTE}"
        elif self.per_iteration > 0:
            bound_only = self.paths == 0 and self.method == "excursions"
            pool = POOL_NOTE if self.from_pool and self.method == "excursions" else ""
            out["note"] = f"{self._expected()}{BOUND_NOTE if bound_only else ESTIMATE_NOTE}{pool}"
        counted = [c.fraction for c in (self.from_e1, self.from_e2) if c is not None]
        if self.from_e1 is not None and max(self.fraction, *counted) > 0.01:
            out["note"] = "; ".join(filter(None, [out.get("note"), self._from_rest_note()]))
        return out

    def _from_rest_note(self) -> str:
        """Runs from e_1 (and e_2) at rest, where the runs are shorter than the settling: their direct counts."""
        count = self.from_e1
        text = (f"runs from e_1 at rest take about {self.settling} iterations to settle, more than these {self.steps}: "
                f"{count.blowups} of {count.paths} such runs of the exact recursion with the full data law blew up within "
                f"{count.run} iterations {_share(count)}")  # fmt: skip
        if self.from_e2 is not None:
            count = self.from_e2
            text += (f", and {count.blowups} of {count.paths} runs from e_2 at rest, the saddle simulate starts from "
                     f"{_share(count)}")  # fmt: skip
        return text

    def _beyond_note(self) -> str:
        """Beyond the mean boundary, where the noise-free recursion saturates: what the runs from e_1 did."""
        count = self.beyond
        counted = (f"{count.blowups} of {count.paths} runs of the exact recursion with the full data law from e_1 "
                   f"blew up within {count.run} iterations")  # fmt: skip
        if count.run < self.steps:
            counted += f", the rest carried to {self.steps} at the rate of the run's second half"
        head = "beyond the stability boundary the noise-free recursion settles on a bounded oscillation"
        if self.fate == "blows up":
            return (f"{head}, but the samples carry runs off it: about {100 * self.fraction:.3g}% of runs of "
                    f"{self.steps} iterations are expected to blow up ({counted})")  # fmt: skip
        if self.fraction > 0.0:
            return (f"{head}: runs saturate at a high error, but the samples carry about {100 * self.fraction:.3g}% "
                    f"of runs of {self.steps} iterations off it, and they blow up ({counted})")  # fmt: skip
        return f"{head}: runs saturate at a high error rather than blow up ({counted})"

    def _expected(self) -> str:
        """The expected fraction in words where it exceeds 1%, with the mechanism behind most of it, else
        nothing."""
        if not self.fraction > 0.01:
            return ""
        if self.method == "direct":
            return f"about {100 * self.fraction:.1f}% of runs of {self.steps} iterations {SETTLED} are expected to blow up; "
        how = ("most runs are carried off with no large sample"
               if self.without_events > 0.5 * self.per_iteration else
               "one large gradient (heavy-tailed data, a large step or a long delay) throws v off the sphere, "
               "and the next samples, multiplied by its raised norm, carry it off")  # fmt: skip
        return f"about {100 * self.fraction:.1f}% of runs of {self.steps} iterations {SETTLED} are expected to blow up: {how}; "


def _share(count: BlowupCount) -> str:
    """A direct count's fraction and interval in percent, in brackets."""
    low, high = count.interval
    return f"({100 * count.fraction:.3g}%, 95% interval {100 * low:.3g}% to {100 * high:.3g}%)"


def _count_dict(count: BlowupCount) -> dict:
    """A direct count of runs from rest (``from_e1``, ``from_e2``) as JSON."""
    return {"fraction": json_float(count.fraction), "interval": [json_float(x) for x in count.interval],
            "blowups": count.blowups, "paths": count.paths, "steps_run": count.run}


def _noise_free(lam: np.ndarray, eta: float, mu: float, delay: Delay, start: np.ndarray, velocity: np.ndarray,
                iterations: int) -> np.ndarray:  # fmt: skip
    """Run the noise-free recursion of the mean map, averaged over the delay law, in eigen-coordinates
    (eigenvalues ``lam``) for a batch of starts ``(B, d)`` (history at e_1, then the start, then one
    extra step ``velocity``); returns whether each blew up (norm beyond FATE_NORM):
    :func:`.noise_free.noise_free_blowups`, over the lags the law gives mass, or for a geometric law
    (:func:`.linear_recursion.geometric_ratio`) its untruncated recursion, as the mean-square theory
    takes it."""
    from amsgd.diffusion.theory.noise_free import noise_free_blowups  # compiled: imported where first needed

    pmf = delay_law(delay).pmf
    ratio = geometric_ratio(pmf)
    lags = np.flatnonzero(pmf).astype(np.int64) if ratio is None else np.zeros(1, dtype=np.int64)
    start = np.ascontiguousarray(start, dtype=float)
    velocity = np.ascontiguousarray(np.broadcast_to(velocity, start.shape), dtype=float)
    lam = np.ascontiguousarray(lam, dtype=float)
    return noise_free_blowups(lam, float(eta), float(mu), lags, np.ascontiguousarray(pmf[lags]),
                              ratio or 0.0, start, velocity, int(iterations), float(FATE_NORM))  # fmt: skip


def critical_impulse(problem: Problem, delay: Delay) -> float:
    """``K*``: the smallest gradient impulse ``η K e_2`` after which the noise-free recursion blows up.

    The mean map acts coordinate-wise in eigen-coordinates (``v_i`` is multiplied by terms in ``λ_i``
    and the scalar ``vᵀΛv``), so a coordinate that starts at zero stays zero: from e_1 kicked along e_2
    the recursion lives in the first two coordinates, and runs there at any d (the same numbers: the
    zeros it leaves out add nothing to ``vᵀΛv`` or the norm).
    """
    plane = np.asarray(problem.eigenvalues, dtype=float)[:2]

    def blows_up(trial: np.ndarray) -> np.ndarray:
        kick = np.zeros((trial.size, 2))
        kick[:, 1] = problem.eta * trial
        e1 = np.broadcast_to(np.eye(2)[0], (trial.size, 2))
        return _noise_free(plane, problem.eta, problem.mu, delay, e1, kick, IMPULSE_ITERATIONS)

    return smallest_blowing_impulse(blows_up, 1e-2, 1e7)


def smallest_blowing_impulse(blows_up: Callable[[np.ndarray], np.ndarray], low: float, high: float) -> float:
    """The smallest impulse in ``[low, high]`` for which ``blows_up`` (whether a noise-free recursion
    kicked by each impulse of a batch blows up) is true: :data:`IMPULSE_BATCH` geometric trials,
    refined :data:`IMPULSE_ROUNDS` times around the first that blows up; ``inf`` when none does, the
    lowest trial when all do."""
    for _ in range(IMPULSE_ROUNDS):
        trial = np.geomspace(low, high, IMPULSE_BATCH)
        blown = blows_up(trial)
        if not blown.any():
            return float("inf")
        first = int(np.argmax(blown))
        if first == 0:
            return float(trial[0])
        low, high = trial[first - 1], trial[first]
    return float(high)


def noise_free_fate(problem: Problem, delay: Delay, stable: bool) -> str:
    """``"stable"`` when the mean dynamics is, else whether the noise-free recursion of the mean map from
    ``e_1 + 10⁻³`` (in every coordinate) blows up or stays bounded."""
    if stable:
        return "stable"
    start = (np.full(problem.dim, 1e-3) + np.eye(problem.dim)[0])[None, :]
    blown = _noise_free(problem.eigenvalues, problem.eta, problem.mu, delay, start, np.zeros_like(start),
                        FATE_ITERATIONS)
    return "blows up" if blown[0] else "saturates"


def divergence_risk(problem: Problem, law: DelayLaw, steps: int, mean_stable: bool, mean_square_stable: bool = True,
                    relaxation: float = float("inf")) -> DivergenceRisk:  # fmt: skip
    """The divergence risk of runs of ``steps`` iterations at the problem's η, μ and delay law: beyond
    the mean boundary the noise-free recursion's fate, and where it saturates the count of runs from e_1
    that the samples carry off; inside it the rate of :mod:`.kick_fate`
    (``relaxation``, the mean dynamics' ``1/(1 − ρ)``, sets its burn-in), which between the mean and
    the mean-square boundaries (``"mean-square unstable"``) counts runs that meet no event too, and
    where ``steps`` is shorter than the settling, the counts of runs from e_1 and e_2 at rest."""
    fate = noise_free_fate(problem, law, mean_stable)
    if fate == "saturates":  # the samples may still throw runs off the oscillation: count them
        count = blowups_from_rest(problem, law, int(steps), TAIL_SEED)
        fate = "blows up" if count.fraction >= 0.5 else "saturates"
        return DivergenceRisk(0.0, float("nan"), int(steps), fate, beyond=count)
    if fate != "stable":
        return DivergenceRisk(0.0, float("nan"), int(steps), fate)
    impulse = critical_impulse(problem, law)
    rate = kick_fate(problem, law, impulse, relaxation, int(steps), TAIL_SEED, quiet=not mean_square_stable)
    settling = settling_steps(problem, law, relaxation)
    short = steps < settling
    from_e1, from_e2 = (blowups_from_rest(problem, law, int(steps), TAIL_SEED, start) if short else None
                        for start in (0, 1))  # fmt: skip
    return DivergenceRisk(impulse, rate.per_iteration, int(steps), fate if mean_square_stable else "mean-square unstable",
                          rate.standard_error, rate.event_threshold, rate.undecided, rate.background_blowups,
                          rate.paths, rate.without_events, rate.method, rate.direct_blowups,
                          from_e1=from_e1, settling=settling, from_e2=from_e2,
                          from_pool=isinstance(problem.distribution, SampledDistribution))  # fmt: skip
