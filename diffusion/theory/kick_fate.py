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
(``max(L + 1, min(CALM_MEMORY/(1 − μ), CALM_MAX))`` consecutive norms below the radius: the delay's
ring and the momentum's memory). An event that meets a raised run belongs to that run's excursion; one
that meets a run not raised starts an excursion of its own. By the renewal-reward theorem the blow-ups per step
are

    p = (P(E > e_max) + Σ_b P_b q_b) / (1 + Σ_b P_b ℓ_b),

over :data:`BINS` geometric bins ``b`` of E between ``e_min`` and ``e_max = 2 TOP_SCALE K*`` (a larger
sample is counted as a blow-up): ``P_b`` the bin's probability, ``q_b`` the probability that its
excursion blows up, ``ℓ_b`` its mean number of raised steps (those in which an event joins it instead
of starting a new one).

``q_b`` and ``ℓ_b`` come from paths of the exact recursion (the problem's data law, η, μ and delay law,
in eigen-coordinates). A *background* of :data:`BACKGROUND_PATHS` paths runs :func:`burn_in` steps from
e_1 at rest with the full data law; its settled states are the starts, those of them that also stay
calm for a calm span when run on without events (:func:`_calm_ahead`). Each path takes one sample
conditioned on E in its bin, then runs on: raised, with the full law; otherwise with the law without
events, its weight multiplied by ``P(E ≤ e_min)`` per step (the event it leaves out is counted as an
excursion of its own). For Gaussian and Student-t data the scalar that sets E given the Gaussian part
ζ (``w`` of the χ²_ν, or ``z_1``) is drawn exactly in its interval, and ζ by resampling
:data:`RESAMPLE` candidates per path with weight ``P(E ∈ bin | ζ)`` (exact as the candidates grow;
few carry the weight where E's bin is far out and several eigenvalues are close to λ_1, the case of
Gaussian data that blow up with negligible probability); for Rademacher data and user samplers, rows
of a pool of draws in the bin. A path undecided when its window ends counts as settled (``undecided``
reports their share). A pilot of 1/:data:`PILOT_SHARE` of the paths, even over the bins, sets the
Neyman allocation of the rest (``n_b ∝ P_b sqrt(q_b (1 − q_b))``), and the standard error is the
binomial one at each bin's share with half a blow-up added (so that a bin without blow-ups still
counts) together with the bins' probabilities' own errors.

Runs that blow up with no event are left out where the linearisation at e_1 is mean-square stable
(``background_blowups`` reports the fraction of background paths that blew up during the burn-in,
events included). Where it is not (``quiet``), its second moments grow and runs can be carried off by
ordinary samples: the settled background states then run on for :func:`quiet_steps` steps with the law
without events (a path that blows up starts again from a settled state), and their blow-ups per step,
times ``P(E ≤ e_min)``, join the numerator of ``p`` beside ``P(E > e_max)`` (blow-ups between the
excursions), with the Poisson error of their count (half a blow-up added).

There blow-ups can be frequent, and the renewal count, which takes each excursion to start from a
settled background, falls short where runs relax slowly (next to the mean τ*, an excursion that has
settled by the norm rule still leaves the run displaced for the next event). So the settled states
first run :func:`quiet_steps` steps with the *full* data law, events included (up to
:data:`DIRECT_ROUNDS` times as many, until :data:`DIRECT_PRECISE` blow-ups, where the count is on
course to reach :data:`DIRECT_MIN`); where they blow up at least :data:`DIRECT_MIN` times, ``p`` is
that count over the path-steps (``method = "direct"``, the Poisson error of the count): the exact
recursion counted directly, with no renewal. With fewer, the estimate above stands (``method =
"excursions"``). The renewal estimate's own standard error can understate its error badly there
(seeds of one case spread it five times wider than it says), so the two are not weighed against each
other by their errors.

Beyond the mean-dynamics boundary, where the noise-free recursion settles on a bounded oscillation,
the samples can still throw runs off it (streaming PCA at η = 0.26, μ = 0: the oscillation is bounded,
every run blows up within 200 steps). :func:`blowups_from_rest` counts that directly: paths of the exact
recursion from e_1 at rest with the full data law, for the run's steps (at most :data:`BEYOND_STEPS`,
the blow-ups per surviving path-step of the second half carrying the count to the run's end). The same
count from e_2 at rest, the saddle ``simulate`` starts from, follows runs through their escape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from math import nan

import numpy as np
from scipy import special

from amsgd.core.distributions import Gaussian, SampledDistribution, StudentT
from amsgd.core.estimates import proportion_interval
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
PATHS_PER_BIN = 4096
MIN_PATHS = 4
#: Caps on path-dimension-steps of the excursions (taken as EXCURSION_STEPS long), and on the floats
#: of a ring of past states (the excursions' and the background's).
WORK_CAP = 4e8
EXCURSION_STEPS = 200
MEMORY_CAP = 2e7
#: Paths of the background (its settled states are drawn from for the events' starts), and the cap
#: on its path-dimension-steps.
BACKGROUND_PATHS = 2048
BACKGROUND_WORK = 1e8
#: The cap on path-dimension-steps of the background's run without events (``quiet``), its least steps,
#: and the fewest paths it runs (settled states drawn again where there are fewer).
QUIET_WORK = 3e7
QUIET_MIN = 200
SETTLED_MIN_PATHS = 256
#: Blow-ups of the direct count with the full law from which ``p`` is that count (relative error 20%);
#: the count runs further rounds of :func:`quiet_steps` (at most DIRECT_ROUNDS in all) until it has
#: DIRECT_PRECISE (10%), where it is on course to reach DIRECT_MIN.
DIRECT_MIN = 25
DIRECT_PRECISE = 100
DIRECT_ROUNDS = 4
#: Paths from e_1 beyond the mean boundary (fewer where they pass BACKGROUND_WORK or their ring MEMORY_CAP,
#: at least BEYOND_MIN_PATHS), and the most steps they run.
BEYOND_PATHS, BEYOND_MIN_PATHS, BEYOND_STEPS = 256, 32, 20_000
#: Runs of ``steps`` iterations that meet an event with less than this probability are not followed.
NEGLIGIBLE = 1e-9
#: Burn-in: this many relaxation times ``1/(1 − ρ)`` of the mean dynamics, within [BURN_MIN, BURN_MAX].
BURN_RELAXATIONS = 5.0
BURN_MIN, BURN_MAX = 50, 3000
#: Steps after the event before a path counts as undecided (WINDOW, or WINDOW_CALMS calm spans if
#: longer); the settling radius's floor, its margin over a quantile of the background's norms, the
#: momentum memories a settled run stays calm, and the most steps that asks for (reached at μ = 0.9999:
#: closer to 1 the calm rule covers fewer memories, where it would otherwise ask for 3/(1 − μ) steps of
#: every path and excursion).
WINDOW = 4000
WINDOW_CALMS = 4
SETTLE_RADIUS = 1.1
SETTLE_MARGIN = 1.2
SETTLE_QUANTILE = 0.99
CALM_MEMORY = 3.0
CALM_MAX = 30_000
#: Draws of the pool behind the quantile of E and the conditioned samples of other laws (at most
#: POOL_FLOATS numbers; a user sampler's moment draws instead).
POOL = 50_000
POOL_FLOATS = 5e6
POOL_MIN = 1000
#: Draws behind the probability of each bin (weights only, no recursion).
PROBABILITY_DRAWS = 50_000
#: Draws of the Gaussian part per path kept, for the resampling of the conditioned draws.
RESAMPLE = 16
#: Paths are dropped from the arrays once decided, every this many steps.
COMPACT_EVERY = 32
#: Rounds of drawing again for the law without events.
REDRAW_ROUNDS = 100
#: The first stage runs 1/PILOT_SHARE of the paths, evenly over the bins; the rest follow the Neyman
#: allocation from its blow-up shares.
PILOT_SHARE = 4


@dataclass(frozen=True)
class KickFate:
    """The per-iteration blow-up probability ``p`` with its Monte Carlo standard error, the event
    threshold ``e_min``, the fraction of event paths still undecided when their window ended, the
    fraction of background paths that blew up during the burn-in, the number of event paths
    followed (0 where none is run: :func:`kick_fate`), the part of ``per_iteration`` from runs that
    meet no event (NaN where not estimated: mean-square stable, or counted directly), how ``p`` was
    estimated and the direct count's blow-ups."""

    per_iteration: float
    standard_error: float
    event_threshold: float
    undecided: float
    background_blowups: float
    paths: int
    without_events: float = nan
    method: str = "excursions"  # or "direct": the blow-ups of the full law counted directly (module docstring)
    direct_blowups: int = 0  # the direct count's blow-ups (0 where it did not run: mean-square stable)


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
                self._pool = self.draw(self._rows(POOL))
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

    def probabilities(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``P(E ∈ (e_j, e_{j+1}])`` for consecutive ``edges`` (the last bin open to infinity) and their
        standard errors: the mean of ``P(E ∈ bin | ζ)`` over one set of :data:`PROBABILITY_DRAWS` draws of
        the Gaussian part (at most :data:`POOL_FLOATS` numbers), or the pool's shares."""
        upper = np.append(edges[1:], np.inf)
        if isinstance(self.dist, (StudentT, Gaussian)):
            zeta = self._gaussian_part(self._rows(PROBABILITY_DRAWS))
            chances = np.array([self._bin_chance(zeta, lo, hi) for lo, hi in zip(edges, upper)])
        else:
            e = sample_sizes(self.pool)
            chances = np.array([(e > lo) & (e <= hi) for lo, hi in zip(edges, upper)], dtype=float)
        return chances.mean(axis=1), chances.std(axis=1) / np.sqrt(chances.shape[1])

    def _rows(self, rows: int) -> int:
        """``rows`` draws, fewer where they would pass :data:`POOL_FLOATS` numbers (at least :data:`POOL_MIN`)."""
        return int(max(POOL_MIN, min(rows, POOL_FLOATS // self.lam.size)))

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
    a ring of the last ``L + 1`` states (``L`` the largest delay, at least 1): ``ring[now]`` is v_k."""

    def __init__(self, ring: np.ndarray, now: int, problem: Problem, law: DelayLaw, rng: np.random.Generator) -> None:
        self.eta, self.mu, self.law, self.rng = problem.eta, problem.mu, law, rng
        self.slots = law.order + 1
        self.ring, self.now = ring, now

    @classmethod
    def at_rest(cls, paths: int, problem: Problem, law: DelayLaw, rng: np.random.Generator, start: int = 0
                ) -> _Recursion:  # fmt: skip
        """Paths at rest at the eigenvector ``e_{start + 1}`` (eigen-coordinates: e_1 by default)."""
        ring = np.zeros((law.order + 1, paths, problem.dim))
        ring[:, :, start] = 1.0
        return cls(ring, 0, problem, law, rng)

    @property
    def paths(self) -> int:
        return self.ring.shape[1]

    def step(self, y: np.ndarray) -> np.ndarray:
        """One step with the draws ``y`` (one row per path); returns the new norms."""
        from amsgd.diffusion.theory.fate_kernel import delayed_step

        if y.shape != self.ring.shape[1:]:  # the compiled step does not check its bounds
            raise ValueError(f"draws of shape {y.shape} for paths of shape {self.ring.shape[1:]}")
        if self.law.constant is not None:
            lags = np.full(self.paths, self.law.constant)
        else:
            lags = self.law.cdf.searchsorted(self.rng.random(self.paths), side="right")
        norms = delayed_step(self.ring, self.now, lags, y, self.eta, self.mu)
        self.now = (self.now + 1) % self.slots
        return norms

    def keep(self, rows: np.ndarray) -> None:
        self.ring = self.ring[:, rows]


def calm_span(problem: Problem, law: DelayLaw) -> int:
    """Steps with every norm below the settling radius that end an excursion: the ring's ``L + 1`` and
    the momentum's memory :data:`CALM_MEMORY` ``/(1 − μ)`` (at most :data:`CALM_MAX`), whichever is longer."""
    return int(max(law.order + 1, min(CALM_MAX, np.ceil(CALM_MEMORY / (1.0 - problem.mu)))))


def burn_in(relaxation: float) -> int:
    """Background steps: :data:`BURN_RELAXATIONS` relaxation times, within [BURN_MIN, BURN_MAX]."""
    if not np.isfinite(relaxation):
        return BURN_MAX
    return int(np.clip(np.ceil(BURN_RELAXATIONS * relaxation), BURN_MIN, BURN_MAX))


def settling_steps(problem: Problem, law: DelayLaw, relaxation: float) -> int:
    """The steps after which the background counts a path from e_1 at rest as settled: its burn-in
    (:func:`burn_in`) or the calm span (:func:`calm_span`), whichever is longer."""
    return max(burn_in(relaxation), calm_span(problem, law))


def ring_paths(dim: int, slots: int) -> float:
    """How many paths' rings of ``slots`` past states in ``dim`` coordinates fit :data:`MEMORY_CAP` floats."""
    return MEMORY_CAP / (dim * slots)


def path_budget(dim: int, slots: int) -> int:
    """Event paths in all: :data:`PATHS_PER_BIN` per bin at d ≤ 8, fewer where the excursions' work or
    the ring would pass their caps, at least :data:`MIN_PATHS` per bin."""
    by_dim = PATHS_PER_BIN * 8 // max(dim, 8)
    by_work = int(WORK_CAP / (BINS * dim * EXCURSION_STEPS))
    by_memory = int(ring_paths(dim, slots) / BINS)
    return BINS * max(MIN_PATHS, min(by_dim, by_work, by_memory))


def kick_fate(problem: Problem, law: DelayLaw, critical: float, relaxation: float, steps: int,
              seed: int, quiet: bool = False) -> KickFate:  # fmt: skip
    """The per-iteration probability that a run blows up in an excursion started by an event (module
    docstring), for the problem's data law, η, μ and delay ``law``; ``critical`` is ``K*`` of the
    noise-free recursion (inf: none blows it up), ``relaxation`` the mean dynamics' ``1/(1 − ρ)``;
    with ``quiet`` (the linearisation is not mean-square stable) the blow-ups of runs that meet no
    event are added. No event path is run where runs of ``steps`` iterations meet an event with
    probability below :data:`NEGLIGIBLE` (the event rate, an upper bound, is its part) or where every
    event lies beyond ``e_max`` (each counted as a blow-up: the event rate is its part)."""
    rng = np.random.default_rng(seed)
    data = _DataLaw(problem, rng)
    critical = 2.0 * min(critical, 1e7)  # E ≥ 2K: the size of the smallest sample with K = K*
    e_min = max(critical / EVENT_SCALE, data.quantile(EVENT_QUANTILE))
    edges = np.geomspace(e_min, max(TOP_SCALE * critical, e_min), BINS + 1)
    (*probabilities, tail), (*errors, tail_error) = data.probabilities(edges)  # beyond e_max: a blow-up
    probabilities, errors = np.array(probabilities), np.array(errors)
    events = float(probabilities.sum() + tail)
    negligible = steps * events < NEGLIGIBLE or e_min >= edges[-1]
    if negligible and not quiet:
        return KickFate(events, float(np.sqrt(np.sum(errors**2) + tail_error**2)), e_min, 0.0, 0.0, 0)
    settling = settling_steps(problem, law, relaxation)
    background = _background(problem, law, data, settling, calm_span(problem, law), rng)
    direct = _direct_count(problem, law, background, e_min, seed) if quiet else None
    if direct is not None and direct.direct_blowups >= DIRECT_MIN:
        return direct
    still, still_error = _without_events(problem, law, data, background, e_min, 1.0 - events) if quiet else (nan, 0.0)
    counted = 0 if direct is None else direct.direct_blowups
    if negligible:
        return KickFate(events + still, float(np.sqrt(np.sum(errors**2) + tail_error**2 + still_error**2)), e_min,
                        0.0, background.blowups, 0, still, direct_blowups=counted)  # fmt: skip
    starts = _calm_ahead(problem, law, background, e_min, seed)
    excursions = _Excursions(problem, law, data, starts, edges, 1.0 - events)
    budget = path_budget(problem.dim, law.order + 1)
    excursions.run(np.full(BINS, max(MIN_PATHS, budget // (BINS * PILOT_SHARE))))
    excursions.run(_neyman(probabilities, excursions, budget - excursions.paths))
    if quiet:  # blow-ups with no event share the numerator with those of samples beyond e_max
        tail, tail_error = tail + still, float(np.hypot(tail_error, still_error))
    estimate, variance = excursions.rate(probabilities, errors, tail, tail_error)
    return KickFate(estimate, float(np.sqrt(variance)), e_min, excursions.undecided / excursions.paths,
                    background.blowups, excursions.paths, still, direct_blowups=counted)  # fmt: skip


def _direct_count(problem: Problem, law: DelayLaw, background: _Background, e_min: float, seed: int) -> KickFate:
    """``p`` as the blow-ups per step of the settled states run with the full data law
    (:func:`_settled_blowups`, on a stream of its own so that the other estimates' draws do not change)."""
    full = _DataLaw(problem, np.random.default_rng([seed, 1]))
    rate, error, count = _settled_blowups(problem, law, background, full.draw, full.rng, _count_on)
    return KickFate(rate, error, e_min, 0.0, background.blowups, 0, nan, "direct", count)


def _count_on(blowups: int, rounds: int) -> bool:
    """Whether the direct count runs another round: fewer than :data:`DIRECT_PRECISE` blow-ups so far, fewer
    than :data:`DIRECT_ROUNDS` rounds, and on course to reach :data:`DIRECT_MIN` by the last."""
    return blowups < DIRECT_PRECISE and rounds < DIRECT_ROUNDS and blowups * DIRECT_ROUNDS >= DIRECT_MIN * rounds


def _neyman(probabilities: np.ndarray, pilot: _Excursions, budget: int) -> np.ndarray:
    """Paths per bin for the second stage: ``budget`` split in proportion to ``P_b sqrt(q̃_b (1 − q̃_b))``
    (Neyman allocation; ``q̃_b`` the pilot's blow-up share with half a blow-up added, never 0 or 1)."""
    share = probabilities * np.sqrt(pilot.shrunk * (1.0 - pilot.shrunk))
    if budget <= 0 or not share.sum() > 0:
        return np.zeros(BINS, dtype=int)
    return np.floor(budget * share / share.sum()).astype(int)


@dataclass(frozen=True)
class _Background:
    ring: np.ndarray  # the settled states, (L + 1, paths, d)
    now: int  # the ring's slot of the current state
    radius: float  # the settling radius
    calm: int  # the calm span (calm_span)
    blowups: float  # the fraction of paths that blew up during the burn-in (restarted at e_1)


def _background(problem: Problem, law: DelayLaw, data: _DataLaw, steps: int, calm: int,
                rng: np.random.Generator) -> _Background:  # fmt: skip
    """:data:`BACKGROUND_PATHS` paths (fewer where their work would pass :data:`BACKGROUND_WORK` or their
    ring :data:`MEMORY_CAP` floats; at least :data:`MIN_PATHS`) run ``steps`` steps (:func:`settling_steps`;
    at least ``calm``) from e_1 at rest with
    the full data law (a path that blows up is restarted at e_1).
    The settling radius is the larger of :data:`SETTLE_RADIUS` and :data:`SETTLE_MARGIN` times the
    :data:`SETTLE_QUANTILE` quantile of the last norms; a path is kept as a start where its last
    ``calm`` norms lie below it, the rule that ends an excursion (all are kept if none
    does)."""
    total = max(steps, calm)
    by_work, by_memory = BACKGROUND_WORK / (problem.dim * total), ring_paths(problem.dim, law.order + 1)
    paths = max(MIN_PATHS, min(BACKGROUND_PATHS, int(by_work), int(by_memory)))
    recursion = _Recursion.at_rest(paths, problem, law, rng)
    highest = np.zeros(paths)  # the largest norm of each path over the last ``calm`` steps
    blew = np.zeros(paths, dtype=bool)
    for k in range(total):
        norms = recursion.step(data.draw(paths))
        wild = ~(norms < FATE_NORM)
        if wild.any():
            blew |= wild
            recursion.ring[:, wild] = 0.0
            recursion.ring[:, wild, 0] = 1.0
            norms[wild] = np.inf  # a restarted path is not settled
        if k >= total - calm:
            np.maximum(highest, norms, out=highest)
    finite = norms[np.isfinite(norms)]  # none where every path blew up at the last step
    radius = max(SETTLE_RADIUS, SETTLE_MARGIN * float(np.quantile(finite, SETTLE_QUANTILE)) if finite.size else 0.0)
    settled = highest < radius
    ring = recursion.ring[:, settled] if settled.any() else recursion.ring
    return _Background(ring, recursion.now, radius, calm, float(blew.mean()))


def _calm_ahead(problem: Problem, law: DelayLaw, background: _Background, e_min: float, seed: int) -> _Background:
    """The excursions' starts: the background's states whose continuation without events stays below
    the settling radius for a calm span. Under a delay a state can pass the norm rule in the middle of
    an excursion's oscillation, its stale iterates pointing elsewhere: with no event at all it is raised
    within a few steps (and may blow up), and drawn again and again as a settled start it would add its
    own blow-ups to many events'. One continuation per state, on a random stream of its own (the states
    kept are unchanged, so where every state stays calm nothing else changes); all are kept where none
    does."""
    data = _DataLaw(problem, np.random.default_rng([seed, 4]))
    recursion = _Recursion(background.ring.copy(), background.now, problem, law, data.rng)
    calm = np.ones(recursion.paths, dtype=bool)
    for _ in range(background.calm):
        calm &= recursion.step(data.below(recursion.paths, e_min)) < background.radius
    if calm.all() or not calm.any():
        return background
    return replace(background, ring=background.ring[:, calm])


def quiet_steps(dim: int, paths: int) -> int:
    """Steps of the background's run without events: :data:`QUIET_WORK` path-dimension-steps, at least
    :data:`QUIET_MIN`."""
    return max(QUIET_MIN, int(QUIET_WORK / (dim * paths)))


def _without_events(problem: Problem, law: DelayLaw, data: _DataLaw, background: _Background, e_min: float,
                    no_event: float) -> tuple[float, float]:  # fmt: skip
    """The blow-ups per step of runs that meet no event, and their standard error: the settled background
    states run :func:`quiet_steps` steps with the law without events (``E ≤ e_min``; :func:`_settled_blowups`),
    the rate times ``no_event = P(E ≤ e_min)``."""
    rate, error, _ = _settled_blowups(problem, law, background, lambda n: data.below(n, e_min), data.rng)
    return rate * no_event, error * no_event


def _settled_blowups(problem: Problem, law: DelayLaw, background: _Background, draw: Callable[[int], np.ndarray],
                     rng: np.random.Generator, more: Callable[[int, int], bool] | None = None,
                     ) -> tuple[float, float, int]:  # fmt: skip
    """The settled background states run :func:`quiet_steps` steps with the samples ``draw(paths)``, and as
    many again while ``more(blow-ups, rounds run)`` says so; a path that blows up starts again from a
    settled state drawn with ``rng`` (which draws the delays too). Fewer than :data:`SETTLED_MIN_PATHS`
    settled states (a background that mostly blows up) are drawn with replacement up to that many paths:
    a handful of paths run for :func:`quiet_steps` steps cost a Python step each (η = 0.1 on the default
    problem: three paths, 2.5 million steps, 150 s). Returns the blow-ups per path-step, the Poisson error
    of that count plus half a blow-up, and the count."""
    starts = background.ring
    few = starts.shape[1] < SETTLED_MIN_PATHS
    paths = starts[:, rng.integers(starts.shape[1], size=SETTLED_MIN_PATHS)] if few else starts.copy()
    recursion = _Recursion(paths, background.now, problem, law, rng)
    steps = quiet_steps(problem.dim, recursion.paths)
    blowups, rounds = 0, 0
    while rounds == 0 or (more is not None and more(blowups, rounds)):
        for _ in range(steps):
            norms = recursion.step(draw(recursion.paths))
            wild = np.flatnonzero(~(norms < FATE_NORM))
            if wild.size:
                blowups += wild.size
                picked = starts[:, rng.integers(starts.shape[1], size=wild.size)]
                recursion.ring[:, wild] = np.roll(picked, recursion.now - background.now, axis=0)  # v_k in slot now
        rounds += 1
    scale = 1.0 / (rounds * steps * recursion.paths)
    return blowups * scale, float(np.sqrt(blowups + 0.5)) * scale, blowups


@dataclass(frozen=True)
class BlowupCount:
    """Runs of the exact recursion from rest (:func:`blowups_from_rest`): how many of ``paths`` blew up within
    the ``run`` steps they ran, the fraction expected to blow up within the requested steps, and its 95%
    interval."""

    blowups: int
    paths: int
    run: int
    fraction: float
    interval: tuple[float, float]


def blowups_from_rest(problem: Problem, law: DelayLaw, steps: int, seed: int, start: int = 0) -> BlowupCount:
    """:data:`BEYOND_PATHS` paths (fewer where their work would pass :data:`BACKGROUND_WORK` or their ring
    :data:`MEMORY_CAP` floats; at least :data:`BEYOND_MIN_PATHS`) of the exact recursion at rest at the
    eigenvector ``e_{start + 1}`` (e_1 by default, e_2 with ``start=1``; each start its own random stream)
    with the full data law, for ``min(steps, BEYOND_STEPS)`` steps; a path
    blows up when its norm reaches :data:`FATE_NORM` (or is not finite). The fraction is the share that
    blew up (Clopper–Pearson 95% interval); where the run is shorter than ``steps``, the survivors go on
    blowing up at the rate per path-step of the run's second half, ``h`` (its Poisson error carried into
    the interval): ``1 − (1 − f) exp(−(steps − run) h)``."""
    run = int(min(steps, BEYOND_STEPS))
    by_memory = ring_paths(problem.dim, law.order + 1)
    paths = int(np.clip(min(BACKGROUND_WORK / (problem.dim * run), by_memory), BEYOND_MIN_PATHS, BEYOND_PATHS))
    rng = np.random.default_rng([seed, 2 + start])
    data = _DataLaw(problem, rng)
    recursion = _Recursion.at_rest(paths, problem, law, rng, start)
    alive = np.ones(paths, dtype=bool)
    late_blowups, late_steps = 0, 0
    for k in range(run):
        norms = recursion.step(data.draw(paths))
        blown = alive & ~(norms < FATE_NORM)
        if 2 * k >= run:
            late_blowups += int(blown.sum())
            late_steps += int(alive.sum())
        alive &= ~blown
        recursion.ring[:, blown] = 0.0
        recursion.ring[:, blown, 0] = 1.0  # at rest at e_1: no overflow while the others run on
    blowups = paths - int(alive.sum())
    share = proportion_interval(blowups, paths)
    low, high = share.ci_low, share.ci_high
    rest = steps - run
    if rest == 0 or late_steps == 0:
        return BlowupCount(blowups, paths, run, blowups / paths, (low, high))
    rate, error = late_blowups / late_steps, np.sqrt(late_blowups + 0.5) / late_steps

    def carried(share: float, h: float) -> float:
        return float(1.0 - (1.0 - share) * np.exp(-rest * h))

    interval = (carried(low, max(rate - 1.96 * error, 0.0)), carried(high, rate + 1.96 * error))
    return BlowupCount(blowups, paths, run, carried(blowups / paths, rate), interval)


class _Excursions:
    """The excursions of event paths, bin by bin: each path starts from a settled background state drawn
    at random, takes one sample conditioned on E in its bin, and runs on (:meth:`run`). Per bin, the
    blow-ups (weighted: module docstring) and the raised steps of every path run so far."""

    def __init__(self, problem: Problem, law: DelayLaw, data: _DataLaw, background: _Background, edges: np.ndarray,
                 no_event: float) -> None:  # fmt: skip
        self.problem, self.law, self.data, self.background = problem, law, data, background
        self.bins = list(zip(edges[:-1], edges[1:]))
        self.no_event = no_event
        self.blown: list[list[np.ndarray]] = [[] for _ in self.bins]
        self.busy: list[list[np.ndarray]] = [[] for _ in self.bins]
        self.paths = self.undecided = 0

    def run(self, counts: np.ndarray) -> None:
        """``counts[b]`` more paths in bin b."""
        if counts.sum() == 0:
            return
        rng = self.data.rng
        rows = rng.integers(self.background.ring.shape[1], size=int(counts.sum()))
        recursion = _Recursion(self.background.ring[:, rows], self.background.now, self.problem, self.law, rng)
        kicks = np.concatenate([self.data.conditioned(int(n), lo, hi) for n, (lo, hi) in zip(counts, self.bins) if n])
        e_min = self.bins[0][0]
        blown, busy, undecided = _fates(recursion, self.data, kicks, self.background, e_min, self.no_event)
        for b, part in enumerate(np.split(np.arange(blown.size), np.cumsum(counts)[:-1])):
            self.blown[b].append(blown[part])
            self.busy[b].append(busy[part])
        self.paths += blown.size
        self.undecided += undecided

    def _per_bin(self, values: list[list[np.ndarray]]) -> list[np.ndarray]:
        return [np.concatenate(v) if v else np.zeros(0) for v in values]

    @property
    def shrunk(self) -> np.ndarray:
        """Each bin's blow-up share with half a blow-up added to its paths' sum: ``(Σ x + ½)/(n + 1)``."""
        return np.array([(x.sum() + 0.5) / (x.size + 1.0) for x in self._per_bin(self.blown)])

    def rate(self, probabilities: np.ndarray, errors: np.ndarray, tail: float, tail_error: float) -> tuple[float, float]:
        """The renewal rate ``(tail + Σ_b P_b q_b)/(1 + Σ_b P_b ℓ_b)`` of blow-ups per step and its
        variance ``(Σ_b P_b² q̃_b (1 − q̃_b)/n_b + Σ_b q_b² se(P_b)² + se(tail)²)/(1 + Σ_b P_b ℓ_b)²``: the
        binomial variance at the shrunk share (a bin without blow-ups still counts), the bins'
        probabilities' own errors, the raised steps' error left out (they shift the denominator by
        Σ_b P_b ℓ_b, a few percent)."""
        blown, busy = self._per_bin(self.blown), self._per_bin(self.busy)
        counts = np.array([x.size for x in blown], dtype=float)
        share = np.array([x.mean() if x.size else 0.0 for x in blown])
        raised = np.array([x.mean() if x.size else 0.0 for x in busy])
        shrunk = self.shrunk
        denominator = 1.0 + probabilities @ raised
        variance = (np.sum(probabilities**2 * shrunk * (1 - shrunk) / np.maximum(counts, 1.0))
                    + np.sum(share**2 * errors**2) + tail_error**2)  # fmt: skip
        return float((tail + probabilities @ share) / denominator), float(variance / denominator**2)


def _fates(recursion: _Recursion, data: _DataLaw, kicks: np.ndarray, background: _Background, e_min: float,
           no_event: float) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """One step with the conditioned ``kicks``, then on until each path blows up or settles (its last
    ``background.calm`` norms below the settling radius ``background.radius``) or the window passes (:data:`WINDOW` steps,
    :data:`WINDOW_CALMS` calm spans if longer): the excursion the event starts. A path is *raised* from
    its first norm at or beyond the radius until it settles; a raised path draws from the full law (an
    event then is part of this excursion), any other from the law without events, its weight multiplied
    by ``no_event`` (an event there starts an excursion of its own, counted from the background).
    Returns each path's weight if it blew up (else 0), its raised steps (weighted alike), and the number
    of paths undecided. Decided paths are frozen at 0 and dropped every :data:`COMPACT_EVERY` steps."""
    total = recursion.paths
    blown, busy = np.zeros(total), np.zeros(total)
    weight = np.ones(total)
    alive = np.arange(total)  # the original index of each path still followed
    calm = np.zeros(total, dtype=int)  # consecutive norms below the settling radius
    raised = np.zeros(total, dtype=bool)
    decided = np.zeros(total, dtype=bool)
    norms = recursion.step(kicks)
    settle_radius, span = background.radius, background.calm
    for k in range(max(WINDOW, WINDOW_CALMS * span)):
        out = ~(norms < FATE_NORM) & ~decided
        blown[alive[out]] = weight[out]
        raised |= ~(norms < settle_radius)
        calm = np.where(norms < settle_radius, calm + 1, 0)
        ends = ~decided & (out | (calm >= span))
        decided |= ends
        raised &= ~decided
        if decided.all():
            return blown, busy, 0
        if k % COMPACT_EVERY == COMPACT_EVERY - 1:
            keep = ~decided
            recursion.keep(keep)
            alive, calm, raised, weight, decided = alive[keep], calm[keep], raised[keep], weight[keep], decided[keep]
        else:
            recursion.ring[:, ends] = 0.0
        busy[alive[raised]] += weight[raised]
        weight[~raised] *= no_event
        draws = np.empty((recursion.paths, data.lam.size))  # a user sampler is never asked for 0 draws
        if not raised.all():
            draws[~raised] = data.below(int(np.count_nonzero(~raised)), e_min)
        if raised.any():
            draws[raised] = data.draw(int(np.count_nonzero(raised)))
        norms = recursion.step(draws)
    return blown, busy, int(np.count_nonzero(~decided))
