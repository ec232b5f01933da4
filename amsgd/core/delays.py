"""Delay models for the stale gradient of Async-MSGD.

A delay model says how old the iterate is at which the k-th gradient is evaluated:
``g(v_{k−τ_k}, X_k)``. Models are parsed from the command-line spec ``KIND:ARGS``:

============================  ==========================================================
``constant:N``                τ_k = N for every k
``uniform:A-B``               τ_k i.i.d. uniform on {A, ..., B}
``geometric:MEAN``            τ_k i.i.d. geometric on {0, 1, ...} with the given mean
``poisson:MEAN``              τ_k i.i.d. Poisson with the given mean
``histogram:FILE``            τ_k i.i.d. with P(τ = i) = p_i read from a text or .npy file
``workers:M``                 round-robin parameter server with M workers: τ_k = M − 1
``ps:M[:DIST[:SIGMA]]``       event-driven parameter server with M workers whose compute times are
                              i.i.d. ``exp`` (default) or ``lognormal`` with log-scale SIGMA
============================  ==========================================================

Every model has a probability mass ``pmf()`` on {0, ..., max_delay}. The unbounded laws (geometric,
Poisson, and the event-driven server) are truncated where the tail mass left out falls below
:data:`TAIL_MASS` = 1e-12 and renormalised; the simulator samples i.i.d. delays from exactly this
truncated law (by inversion of its cumulative sum), so a delay beyond ``max_delay`` never occurs.

Constant, round-robin and i.i.d. delays follow the convention that the history before time 0 is the
start point, ``v_{k−τ} = v_0`` when ``τ > k``. For round robin this is exact: all M workers read
``v_0`` at time 0, so the first M − 1 updates are stale by 0, 1, ..., M − 2 and all read ``v_0``.

The event-driven server is not i.i.d.: the simulator runs its event queue (one per replicate) and
reports the staleness it measured. Its ``pmf()`` is the stationary law of the staleness: for
exponential compute times it is exactly geometric, ``P(τ = j) = (1/M)(1 − 1/M)^j`` (each write is
by a uniformly random worker, independent of the past, so the updates between a worker's read and
its next write are geometric; the k-th update, counted from 0, has this law truncated at τ = k,
since every worker read ``v_0`` at time 0); for log-normal times it is estimated from one long
event-queue run with a fixed seed. Its mean is M − 1 for any law of the compute times: over n
updates, ``Σ_k τ_k = (M − 1) n − Σ_w (n − r_w)`` exactly, where ``r_w`` is the version worker w
read last, and the correction stays bounded as n grows.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError, RunWarning

#: Probability mass left out when an unbounded delay distribution is truncated for storage.
TAIL_MASS = 1e-12
#: The longest delay a model may reach: a run keeps that many past iterates and the theory's
#: recursions have that order (10⁶ iterates of d = 4 for 100 replicates take 3.2 GB), so a law that
#: reaches further is refused when it is made, before any table of its probabilities is built.
MAX_DELAY = 1_000_000


def check_reach(spec: str, reach: float) -> None:
    """Refuse a delay model ``spec`` whose largest delay ``reach`` exceeds :data:`MAX_DELAY`."""
    if not reach <= MAX_DELAY:
        shown = f"{math.floor(reach)}" if math.isfinite(reach) and reach < 1e15 else f"{reach:.4g}"
        raise ProblemError(f"delay {spec} reaches {shown} iterations; a delay may reach at most {MAX_DELAY}")


def poisson_reach(mean: float) -> float:
    """The largest delay kept of the Poisson law with this mean: where its tail falls below TAIL_MASS.
    ``mean + 8 √mean`` lies beyond it from a mean of about 100 on (the normal tail at 1e-12 is 7.03
    standard deviations, the skew adds a few units); scipy (slow to import) is asked only where that
    bound alone would refuse a law that reaches at most :data:`MAX_DELAY`."""
    bound = mean + 8.0 * math.sqrt(mean)
    if bound <= MAX_DELAY or mean > MAX_DELAY:
        return bound
    from scipy import stats

    return float(stats.poisson.isf(TAIL_MASS, mean))


def geometric_reach(mean: float) -> float:
    """The largest delay kept of the geometric law with this mean, ``max_delay`` of its truncated table:
    the tail ``P(τ >= n) = q^n`` falls below TAIL_MASS at ``n = ⌈log TAIL_MASS / log q⌉``."""
    q = mean / (1.0 + mean)
    if q == 1.0:  # a mean so large that q rounds to 1: log q from log1p, not 0
        reach = math.log(TAIL_MASS) / -math.log1p(1.0 / mean)
        return reach if math.isfinite(reach) else math.inf
    return math.ceil(math.log(TAIL_MASS) / math.log(q)) - 1


def cumulative(pmf: np.ndarray) -> np.ndarray:
    """Cumulative sums of a probability vector, the last one set to exactly 1 (for sampling by inversion)."""
    c = np.cumsum(pmf)
    c[-1] = 1.0
    return c


class DelayModel:
    """Base class: ``spec`` round-trips through :func:`parse_delay` (but for a :class:`HistogramDelay`
    built in Python, which names no file: ``histogram:histogram``)."""

    spec: str

    @property
    def is_iid(self) -> bool:
        """True when τ_k are i.i.d. with the probability mass :meth:`pmf`."""
        return True

    def pmf(self) -> np.ndarray:
        """``p[i] = P(τ_k = i)`` for ``i = 0 .. max_delay`` (unbounded laws truncated at TAIL_MASS)."""
        raise NotImplementedError

    def cdf(self) -> np.ndarray:
        """:func:`cumulative` of :meth:`pmf`."""
        return cumulative(self.pmf())

    @property
    def fixed_delay(self) -> int | None:
        """The delay of every update where it is one number (constant, round robin), else None; known
        without :meth:`pmf`."""
        return None

    @property
    def max_delay(self) -> int:
        return int(self.pmf().size - 1)

    @property
    def mean(self) -> float:
        p = self.pmf()
        return float(np.arange(p.size) @ p)

    def to_dict(self) -> dict:
        return {"spec": self.spec, "mean": self.mean, "max_delay": self.max_delay}


@dataclass(frozen=True)
class ConstantDelay(DelayModel):
    tau: int

    def __post_init__(self) -> None:
        checks.integer("tau", self.tau)
        check_reach(self.spec, self.tau)

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"constant:{self.tau}"

    @property
    def fixed_delay(self) -> int:
        return self.tau

    def pmf(self) -> np.ndarray:
        p = np.zeros(self.tau + 1)
        p[self.tau] = 1.0
        return p


@dataclass(frozen=True)
class UniformDelay(DelayModel):
    low: int
    high: int

    def __post_init__(self) -> None:
        checks.integer("delay uniform:A-B, A", self.low)
        checks.integer("delay uniform:A-B, B", self.high)
        if self.high < self.low:
            raise ProblemError(f"delay uniform:A-B needs A <= B, got {self.low}-{self.high}")
        check_reach(self.spec, self.high)

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"uniform:{self.low}-{self.high}"

    def pmf(self) -> np.ndarray:
        p = np.zeros(self.high + 1)
        p[self.low :] = 1.0 / (self.high - self.low + 1)
        return p


@dataclass(frozen=True)
class GeometricDelay(DelayModel):
    """P(τ = i) = (1 − q) q^i with mean q/(1 − q)."""

    mean_delay: float

    def __post_init__(self) -> None:
        checks.positive("delay geometric:MEAN, MEAN", self.mean_delay)
        check_reach(self.spec, geometric_reach(self.mean_delay))

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"geometric:{checks.spec_number(self.mean_delay)}"

    def pmf(self) -> np.ndarray:
        # Deferred import: scipy.stats costs most of the command line's start-up time.
        from scipy import stats

        q = self.mean_delay / (1.0 + self.mean_delay)
        p = stats.geom.pmf(np.arange(geometric_reach(self.mean_delay) + 1) + 1, 1.0 - q)
        return p / p.sum()


@dataclass(frozen=True)
class PoissonDelay(DelayModel):
    mean_delay: float

    def __post_init__(self) -> None:
        checks.positive("delay poisson:MEAN, MEAN", self.mean_delay)
        check_reach(self.spec, poisson_reach(self.mean_delay))

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"poisson:{checks.spec_number(self.mean_delay)}"

    def pmf(self) -> np.ndarray:
        from scipy import stats

        top = int(stats.poisson.isf(TAIL_MASS, self.mean_delay))
        p = stats.poisson.pmf(np.arange(top + 1), self.mean_delay)
        return p / p.sum()


@dataclass(frozen=True, eq=False)
class HistogramDelay(DelayModel):
    """An empirical delay law: ``probabilities[i] = P(τ = i)``, summing to one."""

    probabilities: tuple[float, ...]
    source: str = "histogram"

    def __post_init__(self) -> None:
        p = checks.real_array("delay histogram", self.probabilities, "a list of probabilities")
        if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1.0 + 1e-6):
            raise ProblemError("delay histogram must be a non-empty list of probabilities in [0, 1]")
        if abs(p.sum() - 1.0) > 1e-6:
            raise ProblemError(f"delay histogram must sum to one (within 1e-6), got sum {p.sum():.12g}")
        check_reach(self.spec, np.flatnonzero(p).max())

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"histogram:{self.source}"

    def pmf(self) -> np.ndarray:
        p = np.trim_zeros(np.asarray(self.probabilities, dtype=float), "b")
        return p / p.sum()


@dataclass(frozen=True)
class RoundRobinDelay(DelayModel):
    """M workers taking turns: each applies a gradient read M − 1 updates earlier (τ_k = M − 1)."""

    workers: int

    def __post_init__(self) -> None:
        checks.positive_int("delay workers:M, M", self.workers)
        check_reach(self.spec, self.workers - 1)

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"workers:{self.workers}"

    @property
    def fixed_delay(self) -> int:
        return self.workers - 1

    def pmf(self) -> np.ndarray:
        return ConstantDelay(self.workers - 1).pmf()


#: Updates (about) of the fixed-seed run that estimates a log-normal server's staleness law.
EVENT_QUEUE_UPDATES = 1_000_000


#: The largest log-scale spread of lognormal compute times: ``exp(SIGMA Z)`` stays finite and nonzero in
#: double precision for every normal Z a run draws (|Z| < 9 at 1e-19), 20 · 9 = 180 < 709.
MAX_LOGNORMAL_SIGMA = 20.0


@dataclass(frozen=True)
class EventDrivenDelay(DelayModel):
    """A parameter server with M workers of random compute times.

    Each worker reads the parameters, computes for a random time and writes its gradient; the
    staleness of an update is the number of updates applied between its read and its write. The
    delays are not i.i.d.; they come from simulating the event queue. Compute times are standard
    exponential (``exp``) or ``exp(SIGMA Z)`` with Z standard normal (``lognormal``); their scale
    does not matter, only their order.
    """

    workers: int
    compute: str = "exp"
    sigma: float = 1.0

    def __post_init__(self) -> None:
        checks.positive_int("delay ps:M, M", self.workers)
        if self.compute not in ("exp", "lognormal"):
            raise ProblemError(
                f"delay ps:M:DIST needs DIST in exp, lognormal; got {self.compute!r}"
            )
        checks.positive("delay ps:M:lognormal:SIGMA, SIGMA", self.sigma)
        if self.compute == "exp" and self.sigma != 1.0:  # exponential times have no spread to set
            raise ProblemError(f"delay ps:M:exp takes no SIGMA (the spread is that of lognormal times); got "
                               f"sigma = {float(self.sigma)!r}")  # fmt: skip
        if self.sigma > MAX_LOGNORMAL_SIGMA:
            raise ProblemError(
                f"delay ps:M:lognormal:SIGMA needs SIGMA <= {MAX_LOGNORMAL_SIGMA:g}, got {float(self.sigma)!r}: compute "
                "times exp(SIGMA Z) beyond that overflow double precision in the queue (SIGMA = 250 gave a "
                "staleness of mean 2.2 for 4 workers instead of 3)"
            )
        if self.workers > 1:  # staleness about geometric with mean M − 1
            check_reach(self.spec, geometric_reach(self.workers - 1.0))

    @property
    def spec(self) -> str:  # type: ignore[override]
        if self.compute == "exp":
            return f"ps:{self.workers}"
        return f"ps:{self.workers}:{self.compute}:{checks.spec_number(self.sigma)}"

    @property
    def is_iid(self) -> bool:
        return False

    def pmf(self) -> np.ndarray:
        """The stationary staleness law (exact geometric for ``exp``, estimated for ``lognormal``)."""
        if self.workers == 1:
            return np.ones(1)
        if self.compute == "exp":
            return GeometricDelay(float(self.workers - 1)).pmf()
        return _lognormal_server_pmf(self.workers, self.sigma)

    @property
    def mean(self) -> float:
        """M − 1, the long-run mean staleness whatever the law of the compute times."""
        return float(self.workers - 1)

    def to_dict(self) -> dict:
        return {"spec": self.spec, "mean": self.mean, "workers": self.workers, "compute": self.compute}


#: The estimated staleness law of a log-normal server whose mean falls further below M − 1 than this
#: share gets a warning: the run of EVENT_QUEUE_UPDATES updates did not reach the long-run law.
UNSETTLED_SHARE = 0.02


@lru_cache(maxsize=32)
def _lognormal_server_pmf(workers: int, sigma: float) -> np.ndarray:
    """The staleness law of a server with log-normal compute times, from one long fixed-seed run.

    Over n updates ``Σ_k τ_k = (M − 1) n − Σ_w (n − r_w)`` (r_w the version worker w read last): with
    a large spread a worker can hold one job for much of the run, so the mean falls below M − 1 at any
    run length one can afford; a warning says so when it is more than :data:`UNSETTLED_SHARE` below."""
    rng = np.random.default_rng(20180604)
    jobs = _jobs_per_worker(workers)
    staleness = server_staleness(rng.lognormal(0.0, sigma, (workers, jobs)))
    counts = np.bincount(staleness)
    spec = f"ps:{workers}:lognormal:{sigma:g}"
    check_reach(spec, counts.size - 1)  # its tail reaches further than the geometric law of mean M − 1
    p = counts / counts.sum()
    p.setflags(write=False)
    mean = float(np.arange(p.size) @ p)
    if mean < (1.0 - UNSETTLED_SHARE) * (workers - 1):
        warnings.warn(f"delay {spec}: the staleness law estimated from {EVENT_QUEUE_UPDATES:.0e} updates "
                      f"({jobs} jobs per worker) has mean {mean:.3g}, not M - 1 = {workers - 1}: with compute "
                      "times this spread a worker can hold one job for much of a run, so runs (and the theory, "
                      "which uses this law) see less staleness than the long-run mean; a smaller SIGMA, or fewer "
                      "workers (more jobs each), settles", RunWarning, stacklevel=2)  # fmt: skip
    return p


def _jobs_per_worker(workers: int) -> int:
    """Jobs per worker so that the run holds about EVENT_QUEUE_UPDATES updates (every worker busy)."""
    return int(1.25 * EVENT_QUEUE_UPDATES / workers) + 64


def server_staleness(durations: np.ndarray) -> np.ndarray:
    """Staleness of the updates of an event-driven server whose worker w runs jobs ``durations[w]``.

    Worker w finishes its j-th job at ``T[w, j] = durations[w, 0] + ... + durations[w, j]``; the
    writes, sorted by finish time, are the updates k = 0, 1, .... A worker reads the parameters when
    it starts a job: at time 0 (version 0) for its first, right after its previous write otherwise,
    so the write at update k has staleness ``k`` for a first job and ``k − k_prev − 1`` after a
    write at update ``k_prev``. Only updates before the time every worker is still busy at are
    returned (later ones could be preceded by writes beyond the drawn jobs).
    """
    finish = np.cumsum(np.asarray(durations, dtype=float), axis=1)
    horizon = finish[:, -1].min()
    order = np.argsort(finish, axis=None, kind="stable")
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    update = position.reshape(finish.shape)  # the update number of every write
    previous = np.concatenate([np.full((finish.shape[0], 1), -1), update[:, :-1]], axis=1)
    staleness = (update - previous - 1).ravel()[order]
    return staleness[: int(np.count_nonzero(finish < horizon))]


def read_histogram(path: str | Path) -> HistogramDelay:
    """Read delay probabilities from ``.npy`` or a whitespace/comma separated text file."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"delay histogram:FILE: {str(path)!r} does not exist or is not a file")
    try:
        with warnings.catch_warnings():  # an empty text file: no warning, the empty list is refused below
            warnings.simplefilter("ignore", UserWarning)
            if path.suffix.lower() == ".npy":
                raw = np.load(path)
                p = raw if np.iscomplexobj(raw) else np.asarray(raw, dtype=float)
            else:
                text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) dropped
                numbers = "".join(line.partition("#")[0] for line in text.splitlines())
                p = np.loadtxt(io.StringIO(text), delimiter="," if "," in numbers else None)
    except UnicodeDecodeError:
        raise ProblemError(f"delay histogram:FILE: {str(path)!r} is not UTF-8 text (save it as UTF-8, or as .npy)") from None
    except (OSError, ValueError, TypeError):
        raise ProblemError(
            f"delay histogram:FILE: {str(path)!r} is not a list of probabilities (.npy, or numbers separated "
            "by spaces or commas)"
        ) from None
    if np.iscomplexobj(p):  # NumPy would drop the imaginary parts with a warning
        raise ProblemError(f"delay histogram:FILE: {str(path)!r} holds complex numbers; probabilities must be real")
    if sum(n > 1 for n in np.shape(p)) > 1:
        raise ProblemError(f"delay histogram:FILE: {str(path)!r} holds a table of shape {np.shape(p)}; give the "
                           "probabilities as one row or one column")  # fmt: skip
    return HistogramDelay(tuple(np.atleast_1d(p).astype(float).ravel()), source=str(path))


def as_delay_model(delay: object) -> DelayModel:
    """A delay as a problem takes it: a :class:`DelayModel`, its spec (``"workers:4"``) or an integer
    τ (``constant:τ``)."""
    if isinstance(delay, str):
        delay = parse_delay(delay)
    elif checks.is_whole_number(delay) and not isinstance(delay, bool):
        delay = ConstantDelay(int(delay))
    if not isinstance(delay, DelayModel):
        raise ProblemError(f"delay must be a DelayModel, its spec or an integer, got {delay!r}")
    return delay


def parse_delay(spec: str) -> DelayModel:
    """Parse a delay spec (see the module docstring for the grammar)."""
    if not isinstance(spec, str):
        raise ProblemError(f"a delay spec is a string such as 'constant:10' or 'uniform:0-20', got {spec!r}")
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "constant":
        name = "delay constant:N, N"
        return ConstantDelay(checks.integer(name, checks.parse_int(name, rest)))
    if kind == "uniform":
        sign = "-" if rest.strip().startswith("-") else ""  # a negative A, refused by its own check below
        low, sep, high = rest.strip().removeprefix(sign).partition("-")
        low = sign + low
        if not sep:
            raise ProblemError(f"delay uniform:A-B needs two integers A-B, got {rest!r}")
        return UniformDelay(checks.parse_int("delay uniform:A-B, A", low), checks.parse_int("delay uniform:A-B, B", high))
    if kind == "geometric":
        return GeometricDelay(checks.parse_real("delay geometric:MEAN, MEAN", rest))
    if kind == "poisson":
        return PoissonDelay(checks.parse_real("delay poisson:MEAN, MEAN", rest))
    if kind == "histogram":
        if not rest:
            raise ProblemError("delay histogram:FILE needs a file name")
        return read_histogram(rest)
    if kind == "workers":
        return RoundRobinDelay(checks.parse_int("delay workers:M, M", rest))
    if kind == "ps":
        parts = rest.split(":")
        workers = checks.parse_int("delay ps:M, M", parts[0])
        compute = parts[1].lower() if len(parts) > 1 else "exp"
        sigma = checks.parse_real("delay ps:M:lognormal:SIGMA, SIGMA", parts[2]) if len(parts) > 2 else 1.0
        if len(parts) > 3:
            raise ProblemError(f"delay ps:M[:DIST[:SIGMA]] has too many fields: {spec!r}")
        if compute == "exp" and len(parts) > 2:  # exponential times have no spread to set
            raise ProblemError(f"delay ps:M:exp takes no SIGMA (the spread is that of lognormal times); got {spec!r}")
        return EventDrivenDelay(workers, compute, sigma)
    raise ProblemError(
        f"unknown delay spec {spec!r}; allowed: constant:N, uniform:A-B, geometric:MEAN, "
        "poisson:MEAN, histogram:FILE, workers:M, ps:M[:exp|lognormal[:SIGMA]]"
    )
