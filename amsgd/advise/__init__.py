"""``advise(problem, workers, mus) -> Advice``: the momentum to use with M asynchronous workers.

See :mod:`amsgd.advise.advice`. Importing this package loads neither SciPy nor JAX.
"""

from __future__ import annotations

from amsgd.advise.advice import DEFAULT_MUS, DEFAULT_STEPS, DEFAULT_WORKERS, Advice, advise

__all__ = ["DEFAULT_MUS", "DEFAULT_STEPS", "DEFAULT_WORKERS", "Advice", "advise"]
