"""The optimisation error of streaming PCA, ``sin²∠(h, e_1)``, for arrays of eigen-coordinates."""

from __future__ import annotations

import numpy as np


def sin2_error(h: np.ndarray) -> np.ndarray:
    """``Σ_{i>1} h_i² / ‖h‖²`` over the last axis: ``sin²`` of the angle between ``h`` and ``e_1``, with
    ``h`` first divided by its largest entry (so that a tiny or huge ``h`` does not under- or overflow).
    The tangent sum is formed directly: ``1 − h_1²/‖h‖²`` cancels to 0 once it falls below about 1e-16
    (at η = 1e-13 a floor of 4e-20 read 0, with an interval [0, 0]). The simulators' compiled loops form
    it the same way (:func:`amsgd.simulate.kernels.sin2`)."""
    h = np.asarray(h, dtype=float)
    h = h / np.max(np.abs(h), axis=-1, keepdims=True)
    tangent = np.einsum("...i,...i->...", h[..., 1:], h[..., 1:])
    return tangent / (h[..., 0] ** 2 + tangent)
