"""Default settings of the derivation, importable without loading SymPy."""

#: The phases switch when h_1² crosses δ² (escape) and 1 − δ² (travel).
DEFAULT_DELTA_SQ = 0.1
#: Default accuracy ε of the convergence phase, as a multiple of the stationary error floor.
DEFAULT_EPSILON_FACTOR = 2.0
#: γ of the quoted delay conditions, in (0, 1/2] so that it is valid for both.
DEFAULT_GAMMA = 0.25
#: Momenta at which τ* is tabulated against 1 − μ (those of the published experiment).
SCALING_MUS = (0.7, 0.8, 0.85, 0.9, 0.95)
#: Default grid of the momentum–asynchrony tradeoff (round-robin workers, τ = M − 1).
TRADEOFF_MUS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
TRADEOFF_WORKERS = (1, 2, 4, 8, 16, 32, 64)
