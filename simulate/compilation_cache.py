"""JAX's compiled programs kept between processes.

Every process compiles a model's programs afresh: the simulator's step, the measurements, the
per-example gradients and Hessian products of the theory (`amsgd simulate --model mlp --steps 2000
--replicates 8` takes 8.2 s without them kept, 6.5 s with them, on the 2-core machine of
docs/performance.md). :func:`keep_compilations`
points JAX's persistent compilation cache at ``jax/`` in the folder of the stored derivations
(:func:`amsgd.derivations.stored.cache_root`: ``$AMSGD_CACHE_DIR``, else ``$XDG_CACHE_HOME/amsgd``,
else ``~/.cache/amsgd``; ``AMSGD_CACHE_DIR=off`` keeps nothing), so that a later process loads a
program an earlier one compiled instead of compiling it again. Every program is kept, however short its compilation (most of
a model's take a tenth of a second), and the folder is held under :data:`MAX_BYTES`, the least
recently used programs removed first. JAX keys each program by its own text, its shapes, the JAX
version and the machine, so a stale entry is never used.

A cache folder set for JAX itself (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left as it
is; a folder that cannot be written, or a JAX without a bounded cache, leaves every process
compiling its own programs, as without this module.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from amsgd.derivations.stored import cache_root

#: The most the folder of compiled programs may hold (the test suite's 808 programs: 2 to 180 kB each,
#: 9 MB in all).
MAX_BYTES = 256 * 2**20
#: The folder below :func:`cache_root` that holds them.
FOLDER = "jax"


@functools.lru_cache(maxsize=1)
def keep_compilations() -> Path | None:
    """Point JAX's persistent compilation cache at the folder of compiled programs (module
    docstring), once per process, before the first compilation; returns the folder JAX uses, or None
    where programs are not kept."""
    import jax

    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return Path(chosen)
    root = cache_root()
    if root is None:
        return None
    folder = root / FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return None
    try:
        import filelock  # noqa: F401  JAX bounds the folder under a file lock
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    except (ImportError, AttributeError, KeyError):  # a cache that cannot be bounded: keep nothing
        return None
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder
