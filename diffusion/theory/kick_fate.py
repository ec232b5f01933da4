"""The fate of a run after one large sample: conditional Monte Carlo of the exact random recursion.

A run of streaming PCA near e_1 blows up when a large sample throws v off the sphere and the next
samples carry it off: at a norm ``r`` they act through ``s = Yᵀ v`` of size ``r ‖Y‖``, so the step
``−η s² v`` multiplies v by ``1 − η s²``, a heavy-tailed factor that overshoots (``|1 − η s²| > 1``)
for moderate samples once ``η r² ‖Y‖²`` is of order 2. The noise-free recursion of the mean map behind
:func:`.divergence.critical_impulse` misses this second stage; it needs a kick ``K*`` several times
larger than the samples that start most blow-ups.

*Events* are samples whose size ``E = ‖Y‖²`` exceeds ``e_min``, the larger of ``2K*/``:data:`EVENT_SCALE`
(``E ≥ 2 |Y_1| ‖Y_⊥‖``) and the :data:`EVENT_QUANTILE` quantile of E: rare steps. An event met by a
settled run starts an *excursion*: the run is *raised* from its first norm at or beyond the settling
radius, and the excursion ends when the run blows up (its norm reaches :data:`FATE_NORM`) or settles
(``max(L + 1, CALM_MEMORY/(1 − μ))`` consecutive norms below the radius: the delay's ring and the
momentum's memory). An event that meets a raised run belongs to that run's excursion; one that meets
a run not raised starts an excursion of its own. By the renewal-reward theorem the blow-ups per step
are

    p = (P(E > e_max) + Σ_b P_b q_b) / (1 + Σ_b P_b ℓ_b),

over :data:`BINS` geometric bins ``b`` of E between ``e_min`` and ``e_max = 2 TOP_SCALE K*`` (a larger
sample is counted as a blow-up): ``P_b`` the bin's probability, ``q_b`` the probability that its
excursion blows up, ``ℓ_b`` its mean number of raised steps (those in which an event joins it instead
of starting a new one).

``q_b`` and ``ℓ_b`` come from paths of the exact recursion (the problem's data law, η, μ and delay law,
in eigen-coordinates). A *background* of :data:`BACKGROUND_PATHS` paths runs :func:`burn_in` steps from
e_1 at rest with the full data law; its settled states are the starts. Each path takes one sample
conditioned on E in its bin, then runs on: raised, with the full law; otherwise with the law without
events, its weight multiplied by ``P(E ≤ e_min)`` per step (the event it leaves out is counted as an
excursion of its own). For Gaussian and Student-t data the conditioned sample is exact: the Gaussian
part ζ is drawn, resampled with weight ``P(E ∈ bin | ζ)``, and the one scalar that sets E (``w`` of
the χ²_ν, or ``z_1``) drawn in its interval; for Rademacher data and user samplers, rows of a pool of
draws in the bin. A path undecided after :data:`WINDOW` steps counts as settled (``undecided``
reports their share). The standard error comes from :data:`GROUPS` interleaved groups of paths. Left
out: runs that blow up with no event (``background_blowups`` reports the fraction of background paths
that blew up during the burn-in, events included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from amsgd.core.distributions import Gaussian, SampledDistribution, StudentT
from amsgd.core.problem import Problem
from amsgd.diffusion.theory.linear_recursion import DelayLaw

#: The norm beyond which a path counts as blown up (also the noise-free recursion's, :mod:`.divergence`).
FATE_NORM = 1e3
#: Events are samples with ``E`` beyond ``2K*/EVENT_SCALE`` and beyond this quantile of E (a rare step).
EVENT_SCALE = 30.0
EVENT_QUANTILE = 0.99
#: Samples with ``E`` beyond ``2 TOP_SCALE K*`` count as blown up; the range between is cut into BINS bins.
TOP_SCALE = 10.0
BINS = 16
#: Paths per bin at d ≤ 8; fewer in higher dimension (work and memory caps below), at least MIN_PATHS.
PATHS_PER_BIN = 1024
MIN_PATHS = 8
#: Caps on path-dimension-steps of the excursions (taken as EXCURSION_STEPS long), and on the floats
#: of the ring of past states.
WORK_CAP = 4e8
EXCURSION_STEPS = 200
MEMORY_CAP = 2e7
#: Paths of the background (its settled states are drawn from for the events' starts), and the cap
#: on its path-dimension-steps.
BACKGROUND_PATHS = 2048
BACKGROUND_WORK = 1e8
#: Runs of ``steps`` iterations that meet an event with less than this probability are not followed.
NEGLIGIBLE = 1e-9
#: Burn-in: this many relaxation times ``1/(1 − ρ)`` of the mean dynamics, within [BURN_MIN, BURN_MAX].
BURN_RELAXATIONS = 5.0
BURN_MIN, BURN_MAX = 50, 3000
#: Steps after the event before a path counts as undecided; the settling radius's floor, its margin
#: over a quantile of the background's norms, and the momentum memories a settled run stays calm.
WINDOW = 4000
SETTLE_RADIUS = 1.5
SETTLE_MARGIN = 1.2
SETTLE_QUANTILE = 0.99
CALM_MEMORY = 3.0
#: Draws of the pool behind the quantile of E and the conditioned samples of other laws (at most
#: POOL_FLOATS numbers; a user sampler's moment draws instead).
POOL = 50_000
POOL_FLOATS = 5e6
#: Draws behind the probability of each bin (weights only, no recursion).
PROBABILITY_DRAWS = 50_000
#: Draws of the Gaussian part per path kept, for the resampling of the conditioned draws.
RESAMPLE = 16
#: Paths are dropped from the arrays once decided, every this many steps.
COMPACT_EVERY = 32
#: Rounds of drawing again for the law without events.
REDRAW_ROUNDS = 100
#: Interleaved groups of paths whose estimates give the standard error.
GROUPS = 8


@dataclass(frozen=True)
class KickFate:
    """The per-iteration blow-up probability ``p`` with its Monte Carlo standard error, the event
    threshold ``e_min``, the fraction of event paths still undecided after :data:`WINDOW` steps and the
    fraction of background paths that blew up during the burn-in, and the number of event paths
    followed (0 where events are negligible and the event rate, an upper bound, is the rate)."""

    per_iteration: float
    standard_error: float
    event_threshold: float
    undecided: float
    background_blowups: float
    paths: int


def sample_sizes(y: np.ndarray) -> np.ndarray:
    """``E = ‖Y‖²`` of each row of the eigen-coordinate draws ``y``."""
    return np.sum(y**2, axis=1)


class _DataLaw:
    """Draws of ``Y`` in eigen-coordinates: plain, and conditioned on ``E = ‖Y‖²`` in a bin; the
    probability of a bin."""

    def __init__(self, problem: Problem, rng: np.random.Generator) -> None:
        self.problem, self.rng = problem, rng
        self.lam = np.asarray(problem.eigenvalues, dtype=float)
        self.dist = problem.distribution
        self.basis = problem.basis if self.dist.needs_basis else None
        self._pool: np.ndarray | None = None

    def draw(self, n: int) -> np.ndarray:
        return self.dist.sample(self.rng, n, self.lam, self.basis)

    @property
    def pool(self) -> np.ndarray:
        """Draws of the data law, or a user sampler's moment draws (drawn once)."""
        if self._pool is None:
            if isinstance(self.dist, SampledDistribution):
                self._pool = self.dist.moment_samples_for(self.lam, self.problem.basis)
            else:
                self._pool = self.draw(int(min(POOL, POOL_FLOATS // self.lam.size)))
        return self._pool

    def below(self, n: int, e_min: float) -> np.ndarray:
        """``n`` draws given ``E ≤ e_min``: rows beyond are drawn again (``e_min`` lies at or beyond the
        :data:`EVENT_QUANTILE` quantile of E, so a few rounds do)."""
        y = self.draw(n)
        for _ in range(REDRAW_ROUNDS):
            again = sample_sizes(y) > e_min
            if not again.any():
                return y
            y[again] = self.draw(int(again.sum()))
        raise RuntimeError(f"draws with |Y|^2 <= {e_min:g}: {REDRAW_ROUNDS} rounds did not suffice")

    def quantile(self, q: float) -> float:
        return float(np.quantile(sample_sizes(self.pool), q))

    def probabilities(self, edges: np.ndarray) -> np.ndarray:
        """``P(E ∈ (e_j, e_{j+1}])`` for consecutive ``edges`` (the last bin open to infinity): the mean of
        ``P(E ∈ bin | ζ)`` over one set of :data:`PROBABILITY_DRAWS` draws of the Gaussian part (at most
        :data:`POOL_FLOATS` numbers), or the pool's shares."""
        upper = np.append(edges[1:], np.inf)
        if isinstance(self.dist, (StudentT, Gaussian)):
            zeta = self._gaussian_part(int(min(PROBABILITY_DRAWS, POOL_FLOATS // self.lam.size)))
            return np.array([self._bin_chance(zeta, lo, hi).mean() for lo, hi in zip(edges, upper)])
        e = sample_sizes(self.pool)
        return np.array([np.mean((e > lo) & (e <= hi)) for lo, hi in zip(edges, upper)])

    def conditioned(self, n: int, low: float, high: float) -> np.ndarray:
        """``n`` draws of ``Y`` given ``E ∈ (low, high]`` (zeros where the bin has no probability). For
        Gaussian and Student-t data the Gaussian part ζ is drawn :data:`RESAMPLE` times over and ``n`` of
        those kept with probability ``P(E ∈ (low, high] | ζ)`` (sampling–importance resampling), then
        the one scalar that sets E is drawn given ζ; other laws take rows of the pool in the bin."""
        if not isinstance(self.dist, (StudentT, Gaussian)):
            return self._from_pool(n, low, high)
        zeta = self._gaussian_part(RESAMPLE * n)
        chance = self._bin_chance(zeta, low, high)
        if not chance.sum() > 0:
            return np.zeros((n, self.lam.size))
        zeta = zeta[self.rng.choice(zeta.shape[0], size=n, p=chance / chance.sum())]
        return self._student_t(zeta, low, high) if isinstance(self.dist, StudentT) else self._gaussian(zeta, low, high)

    def _gaussian_part(self, n: int) -> np.ndarray:
        """``ζ = Λ^{1/2} z``, z standard normal."""
        return self.rng.standard_normal((n, self.lam.size)) * np.sqrt(self.lam)

    def _bin_chance(self, zeta: np.ndarray, low: float, high: float) -> np.ndarray:
        """``P(E ∈ (low, high] | ζ)``: through ``w`` for Student-t data, through ``z_1`` for Gaussian data."""
        if isinstance(self.dist, StudentT):
            f_low, f_high = self._chi2_interval(zeta, low, high)
            return f_high - f_low
        tail_a, tail_b = (special.erfc(x / np.sqrt(2.0)) for x in self._z1_interval(zeta, low, high))
        return tail_a - tail_b

    def _chi2_interval(self, zeta: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """``Y = sqrt((ν − 2)/w) ζ`` has ``E = c/w``, ``c = (ν − 2) ‖ζ‖²``: ``E ∈ (low, high]`` is
        ``w ∈ [c/high, c/low)``; the χ²_ν distribution function at its ends."""
        c = (self.dist.nu - 2.0) * np.sum(zeta**2, axis=1)
        return special.chdtr(self.dist.nu, c / high), special.chdtr(self.dist.nu, c / low)

    def _z1_interval(self, zeta: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """``E = λ_1 z_1² + Q``, ``Q = Σ_{i>1} λ_i z_i²``: given ``Q``, ``|z_1|`` lies in
        ``[sqrt((low − Q)⁺/λ_1), sqrt((high − Q)⁺/λ_1))``."""
        rest = np.sum(zeta[:, 1:] ** 2, axis=1)
        return (np.sqrt(np.maximum(low - rest, 0.0) / self.lam[0]), np.sqrt(np.maximum(high - rest, 0.0) / self.lam[0]))

    def _student_t(self, zeta: np.ndarray, low: float, high: float) -> np.ndarray:
        """``w`` drawn in its interval by inverting the χ²_ν distribution function."""
        nu = self.dist.nu
        f_low, f_high = self._chi2_interval(zeta, low, high)
        w = 2.0 * special.gammaincinv(nu / 2.0, f_low + self.rng.uniform(size=zeta.shape[0]) * (f_high - f_low))
        return zeta * np.sqrt((nu - 2.0) / np.maximum(w, np.finfo(float).tiny))[:, None]

    def _gaussian(self, zeta: np.ndarray, low: float, high: float) -> np.ndarray:
        """``|z_1|`` drawn in its interval by inverting the two-sided normal tail ``erfc(x/√2)``, with a
        random sign."""
        a, b = self._z1_interval(zeta, low, high)
        tail_a, tail_b = special.erfc(a / np.sqrt(2.0)), special.erfc(b / np.sqrt(2.0))
        u = tail_b + self.rng.uniform(size=zeta.shape[0]) * (tail_a - tail_b)
        z1 = np.clip(np.sqrt(2.0) * special.erfcinv(np.maximum(u, np.finfo(float).tiny)), a, b)
        out = zeta.copy()
        out[:, 0] = np.sign(self.rng.uniform(size=zeta.shape[0]) - 0.5) * np.sqrt(self.lam[0]) * z1
        return out

    def _from_pool(self, n: int, low: float, high: float) -> np.ndarray:
        """Rows of a pool of :data:`POOL` draws with E in the bin, drawn at random."""
        e = sample_sizes(self.pool)
        rows = np.flatnonzero((e > low) & (e <= high))
        if rows.size == 0:
            return np.zeros((n, self.lam.size))
        return self.pool[self.rng.choice(rows, size=n)].copy()


class _Recursion:
    """Paths of ``v_{k+1} = v_k + μ (v_k − v_{k−1}) + η s (Y − s v_{k−τ_k})``, ``s = Yᵀ v_{k−τ_k}``, in
    a ring of the last ``L + 1`` states (``L`` the largest delay, at least 1), all from e_1 at rest."""

    def __init__(self, paths: int, dim: int, eta: float, mu: float, law: DelayLaw, rng: np.random.Generator) -> None:
        self.eta, self.mu, self.law, self.rng = eta, mu, law, rng
        self.slots = law.order + 1
        #: Steps with every norm below the settling radius that end an excursion: the ring's L + 1 and
        #: the momentum's memory CALM_MEMORY/(1 − μ), whichever is longer.
        self.calm = max(self.slots, int(np.ceil(CALM_MEMORY / (1.0 - mu))))
        self.ring = np.zeros((self.slots, paths, dim))
        self.ring[:, :, 0] = 1.0
        self.now = 0  # the slot of v_k

    @property
    def paths(self) -> int:
        return self.ring.shape[1]

    def step(self, y: np.ndarray) -> np.ndarray:
        """One step with the draws ``y`` (one row per path); returns the new norms."""
        n = self.paths
        if self.law.constant is not None:
            stale = self.ring[(self.now - self.law.constant) % self.slots]
        else:
            delay = self.rng.choice(self.law.pmf.size, size=n, p=self.law.pmf)
            stale = self.ring[(self.now - delay) % self.slots, np.arange(n)]
        current, previous = self.ring[self.now], self.ring[(self.now - 1) % self.slots]
        s = np.einsum("ij,ij->i", y, stale)
        with np.errstate(over="ignore", invalid="ignore"):
            new = current + self.mu * (current - previous) + self.eta * s[:, None] * (y - s[:, None] * stale)
            self.now = (self.now + 1) % self.slots
            self.ring[self.now] = new
            return np.sqrt(np.einsum("ij,ij->i", new, new))

    def keep(self, rows: np.ndarray) -> None:
        self.ring = self.ring[:, rows]


def burn_in(relaxation: float) -> int:
    """Background steps: :data:`BURN_RELAXATIONS` relaxation times, within [BURN_MIN, BURN_MAX]."""
    if not np.isfinite(relaxation):
        return BURN_MAX
    return int(np.clip(np.ceil(BURN_RELAXATIONS * relaxation), BURN_MIN, BURN_MAX))


def paths_per_bin(dim: int, slots: int) -> int:
    """:data:`PATHS_PER_BIN` at d ≤ 8, fewer where the excursions' work or the ring would pass their caps."""
    by_dim = PATHS_PER_BIN * 8 // max(dim, 8)
    by_work = int(WORK_CAP / (BINS * dim * EXCURSION_STEPS))
    by_memory = int(MEMORY_CAP / (BINS * dim * slots))
    return max(MIN_PATHS, min(by_dim, by_work, by_memory))


def kick_fate(problem: Problem, law: DelayLaw, critical: float, relaxation: float, steps: int,
              seed: int) -> KickFate:  # fmt: skip
    """The per-iteration probability that a run blows up in an excursion started by an event (module
    docstring), for the problem's data law, η, μ and delay ``law``; ``critical`` is ``K*`` of the
    noise-free recursion (inf: none blows it up), ``relaxation`` the mean dynamics' ``1/(1 − ρ)``.
    Where events are so rare that runs of ``steps`` iterations meet one with probability below
    :data:`NEGLIGIBLE`, the event rate itself is returned (an upper bound) without running paths."""
    rng = np.random.default_rng(seed)
    data = _DataLaw(problem, rng)
    critical = 2.0 * min(critical, 1e7)  # E ≥ 2K: the size of the smallest sample with K = K*
    top = TOP_SCALE * critical
    e_min = max(critical / EVENT_SCALE, data.quantile(EVENT_QUANTILE))
    edges = np.geomspace(e_min, max(top, e_min), BINS + 1)
    bins = list(zip(edges[:-1], edges[1:]))
    *probabilities, tail = data.probabilities(edges)  # beyond the last bin: counted as blowing up
    probabilities = np.array(probabilities)
    if steps * (probabilities.sum() + tail) < NEGLIGIBLE or e_min >= top:
        return KickFate(float(probabilities.sum() + tail), 0.0, e_min, 0.0, 0.0, 0)
    per_bin, burn = paths_per_bin(problem.dim, law.order + 1), burn_in(relaxation)
    background_paths = max(MIN_PATHS, min(BACKGROUND_PATHS, BINS * per_bin, int(BACKGROUND_WORK / (problem.dim * burn))))
    recursion = _Recursion(background_paths, problem.dim, problem.eta, problem.mu, law, rng)
    background = _background(recursion, data, burn, BINS * per_bin, rng)
    draws = np.concatenate([data.conditioned(per_bin, lo, hi) for lo, hi in bins])
    blown, raised, undecided = _fates(recursion, data, draws, background.radius, e_min, 1.0 - probabilities.sum() - tail)
    hits, busy = blown.reshape(BINS, per_bin), raised.reshape(BINS, per_bin)
    estimate = _rate(probabilities, tail, hits, busy)
    groups = [_rate(probabilities, tail, hits[:, g::GROUPS], busy[:, g::GROUPS]) for g in range(GROUPS)]
    error = float(np.std(groups, ddof=1) / np.sqrt(GROUPS))
    return KickFate(estimate, error, e_min, undecided, background.blowups, int(blown.size))


def _rate(probabilities: np.ndarray, tail: float, hits: np.ndarray, busy: np.ndarray) -> float:
    """The renewal rate ``(tail + Σ_b P_b q_b)/(1 + Σ_b P_b ℓ_b)`` of blow-ups per step, from each bin's
    weighted blow-ups (mean ``q_b``) and raised steps (mean ``ℓ_b``) of its paths."""
    return float((tail + probabilities @ hits.mean(axis=1)) / (1.0 + probabilities @ busy.mean(axis=1)))


@dataclass(frozen=True)
class _Background:
    radius: float  # the settling radius
    blowups: float  # the fraction of paths that blew up during the burn-in (restarted at e_1)


def _background(recursion: _Recursion, data: _DataLaw, steps: int, paths: int, rng: np.random.Generator) -> _Background:
    """Run the paths ``steps`` steps with the full data law (a path that blows up is restarted at e_1),
    then keep settled ones: the settling radius is the larger of :data:`SETTLE_RADIUS` and
    :data:`SETTLE_MARGIN` times the :data:`SETTLE_QUANTILE` quantile of the last norms, and a path with a
    norm in its ring at or beyond it (in an excursion of its own) is left out: ``paths`` states are
    drawn at random from the others (all of them if none is settled)."""
    blew = np.zeros(recursion.paths, dtype=bool)
    for _ in range(steps):
        norms = recursion.step(data.draw(recursion.paths))
        wild = ~(norms < FATE_NORM)
        if wild.any():
            blew |= wild
            recursion.ring[:, wild] = 0.0
            recursion.ring[:, wild, 0] = 1.0
    last = np.sqrt(np.sum(recursion.ring**2, axis=2))  # (L + 1, paths)
    radius = max(SETTLE_RADIUS, SETTLE_MARGIN * float(np.quantile(last[recursion.now], SETTLE_QUANTILE)))
    settled = np.flatnonzero(np.all(last < radius, axis=0))
    recursion.keep(rng.choice(settled if settled.size else np.arange(recursion.paths), size=paths))
    return _Background(radius, float(blew.mean()))


def _fates(recursion: _Recursion, data: _DataLaw, kicks: np.ndarray, settle_radius: float, e_min: float,
           no_event: float) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """One step with the conditioned ``kicks``, then on until each path blows up or settles (its last
    :attr:`_Recursion.calm` norms below ``settle_radius``) or :data:`WINDOW` steps pass: the excursion
    the event starts. A path is *raised* from its first norm at or beyond the radius until it settles;
    a raised path draws from the full law (an event then is part of this excursion), any other from the
    law without events, its weight multiplied by ``no_event`` (an event there starts an excursion of its
    own, counted from the background). Returns each path's weight if it blew up (else 0), its raised
    steps, and the share of paths undecided. Decided paths are dropped every :data:`COMPACT_EVERY` steps, frozen at 0 until then."""
    total = recursion.paths
    blown, busy = np.zeros(total), np.zeros(total, dtype=int)
    weight = np.ones(total)
    alive = np.arange(total)  # the original index of each path still followed
    calm = np.zeros(total, dtype=int)  # consecutive norms below the settling radius
    raised = np.zeros(total, dtype=bool)
    decided = np.zeros(total, dtype=bool)
    norms = recursion.step(kicks)
    for k in range(WINDOW):
        out = ~(norms < FATE_NORM) & ~decided
        blown[alive[out]] = weight[out]
        raised |= ~(norms < settle_radius)
        calm = np.where(norms < settle_radius, calm + 1, 0)
        decided |= out | (calm >= recursion.calm)
        raised &= ~decided
        if decided.all():
            return blown, busy, 0.0
        if k % COMPACT_EVERY == COMPACT_EVERY - 1:
            keep = ~decided
            recursion.keep(keep)
            alive, calm, raised, weight, decided = alive[keep], calm[keep], raised[keep], weight[keep], decided[keep]
        else:
            recursion.ring[:, decided] = 0.0
        busy[alive[raised]] += 1
        weight[~raised] *= no_event
        draws = data.below(recursion.paths, e_min)
        if raised.any():
            draws[raised] = data.draw(int(raised.sum()))
        norms = recursion.step(draws)
    return blown, busy, float(np.count_nonzero(~decided) / total)


