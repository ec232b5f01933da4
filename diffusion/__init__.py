"""The numeric stage: integrators of the limits (ODE, SDE/SME, exact OU, Brownian source,
convergence orders) and, in :mod:`amsgd.diffusion.theory`, the exact finite-η theory behind
``predict(problem)``. Nothing is imported here, so the subpackages load only what they need."""
