"""The Monte Carlo budget of a validation: replicates and iterations per kind of run, seed, threads."""

from __future__ import annotations

from dataclasses import dataclass

from amsgd.core import checks
from amsgd.core.errors import ProblemError


@dataclass(frozen=True)
class Budget:
    """Monte Carlo sizes: replicates and iterations per kind of run, the seed and the threads."""

    replicates: int = 1024
    transient_replicates: int = 2048
    stationary_steps: int = 20_000
    sweep_replicates: int = 256
    sweep_steps: int = 20_000
    rate_steps: int = 1_500
    seed: int = 2018
    threads: int = 2

    @classmethod
    def uniform(cls, replicates: int, steps: int, seed: int = 2018, threads: int = 2) -> Budget:
        """The same replicates for every kind of run and the same iterations for the long ones."""
        return cls(replicates=replicates, transient_replicates=replicates, stationary_steps=steps,
                   sweep_replicates=replicates, sweep_steps=steps, seed=seed, threads=threads)  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("stationary_steps", "sweep_steps", "rate_steps", "threads"):
            checks.positive_int(name, getattr(self, name))
        for name in ("replicates", "transient_replicates", "sweep_replicates"):  # every check is an interval
            if checks.positive_int(name, getattr(self, name)) < 2:
                option = " (--replicates)" if name == "replicates" else ""
                raise ProblemError(f"{name}{option} must be at least 2 (an interval needs two runs), got {getattr(self, name)}")
        checks.integer("seed", self.seed)
