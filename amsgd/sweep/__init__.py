"""Parameter sweeps on Dask, from a laptop to a cluster: a grid of problems simulated and predicted
point by point, persisted as it goes, assembled into one xarray Dataset (NetCDF).

:class:`~amsgd.sweep.sweep.Sweep` describes a sweep (streaming PCA or any other model; what differs
between them is in :mod:`amsgd.sweep.points`), :func:`~amsgd.sweep.run.run_sweep` runs it and
:func:`~amsgd.sweep.dataset.read_dataset` reads its file back.
"""
