"""The pictures of amsgd, as PNG, drawn from the results of the other stages (nothing is computed
here): trajectories against the ODE, stationary histograms against the OU law, escape times, error
against delay per momentum, the stability phase diagram, the local rate, the momentum–asynchrony
comparison, a sweep's heat maps and a convergence study. Each function takes results and a path
and returns the path written; :func:`amsgd.figures.validation.draw_validation` draws a whole
validation report and :func:`amsgd.figures.standard.standard_figures` the standard set.
"""
