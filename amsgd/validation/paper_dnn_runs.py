"""The design and the runs of the paper-dnn validation: one task of the sweep machinery per cell.

A cell is one (protocol, delay kind, number of workers M, momentum μ) of :class:`DnnSetup`; it runs
``replicates`` independent runs of ``steps`` iterations and records each run's final training loss,
validation loss and validation accuracy. The cells run as a :class:`~amsgd.sweep.run.Job` on Dask
(:func:`~amsgd.sweep.run.run_sweep`): each is persisted as it finishes, an interrupted validation
continues from the cells stored, and a finished one is reused when the same setup runs again.

Seeding: every cell with M workers simulates with the seed ``seed + M``, whatever its protocol,
delay kind and μ, so the runs of one worker count are paired across μ (the same minibatch stream and
the same start points); the numbers do not depend on the number of Dask workers or on the order the
cells finish in.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.delays import DelayModel, EventDrivenDelay, RoundRobinDelay
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem
from amsgd.sweep.dataset import load_netcdf
from amsgd.sweep.points import data_digests, shared_data
from amsgd.sweep.store import canonical

if TYPE_CHECKING:
    import xarray

PROTOCOLS = ("fixed-eta", "fixed-effective")
DELAYS = ("workers", "ps")
#: Bumped when the meaning of a stored cell changes, so that old cells are never reused.
FORMAT_VERSION = 1
#: The per-run outcomes a cell records, in the order of the Dataset's variables.
OUTCOMES = ("train_loss", "validation_loss", "validation_accuracy")


@dataclass(frozen=True)
class DnnSetup:
    """The experiment's parameters (the defaults are the committed report's)."""

    eta: float = 0.2
    effective_eta: float = 0.4  # η/(1 − μ) of the fixed-effective protocol
    steps: int = 2000
    replicates: int = 32
    hidden: int = 32
    batch: int = 32
    l2: float = 1e-3
    seed: int = 2018
    workers: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    mus: tuple[float, ...] = (-0.3, 0.0, 0.3, 0.5, 0.7, 0.9)
    delays: tuple[str, ...] = DELAYS
    protocols: tuple[str, ...] = PROTOCOLS

    def eta_for(self, protocol: str, mu: float) -> float:
        """η of a cell: the fixed η, or η_eff (1 − μ) under the fixed-effective protocol."""
        return self.eta if protocol == "fixed-eta" else self.effective_eta * (1.0 - mu)

    def cells(self) -> list[tuple[str, str, int, float]]:
        """Every (protocol, delay kind, M, μ), in C order over the four axes: the cells' numbers."""
        return list(itertools.product(self.protocols, self.delays, self.workers, self.mus))

    def seed_for(self, workers: int) -> int:
        """The seed of every cell with ``workers`` workers (paired across μ, protocol and delay kind)."""
        return self.seed + workers


def delay_law(kind: str, workers: int) -> DelayModel:
    """The delays of ``workers`` asynchronous workers: round-robin (τ = M − 1) or an event-driven server."""
    return RoundRobinDelay(workers) if kind == "workers" else EventDrivenDelay(workers)


@dataclass(frozen=True, eq=False)
class CellTask:
    """One cell, ready to run on a worker."""

    index: int
    problem: ModelProblem
    steps: int
    replicates: int
    seed: int


def run_cell(task: CellTask) -> dict:
    """Simulate one cell (on a worker): each run's final losses and accuracy (NaN where it diverged)."""
    from amsgd.simulate.model_engine import simulate_model

    problem = dataclasses.replace(task.problem, data=shared_data(task.problem.data))
    run = simulate_model(problem, task.steps, task.replicates, rng=task.seed, record_every=task.steps, progress=False)
    record: dict = {"index": task.index}
    for name in OUTCOMES:
        record[name] = [float(v) for v in run.values[name][:, -1]]
    record["diverged_fraction"] = float(run.diverged_fraction)
    return record


@dataclass(frozen=True, eq=False)
class DnnRuns:
    """The cells of ``setup`` on the model ``base`` (its η, μ and delay are set per cell), as a
    :class:`~amsgd.sweep.run.Job`; its Dataset has the per-run outcomes over (protocol, delay, workers,
    mu, replicate)."""

    setup: DnnSetup
    base: ModelProblem

    @property
    def fields(self) -> tuple[str, ...]:
        return ("index", *OUTCOMES, "diverged_fraction")

    @property
    def size(self) -> int:
        return len(self.setup.cells())

    @property
    def task_work(self) -> int:
        return self.setup.replicates * self.setup.steps

    @property
    def compute(self) -> Callable[[CellTask], dict]:
        return run_cell

    def manifest(self) -> dict:
        """The setup, the model and the SHA-256 of its data: a stored cell is reused only under the same."""
        model = {"name": self.base.model, "activation": self.base.activation}
        return canonical({"format": FORMAT_VERSION, "preset": "paper-dnn", "setup": dataclasses.asdict(self.setup),
                          "model": model, "data": data_digests(self.base.data)})  # fmt: skip

    def tasks(self, indices: Iterable[int]) -> list[CellTask]:
        cells, s = self.setup.cells(), self.setup
        out = []
        for index in indices:
            protocol, delay, m, mu = cells[index]
            problem = self.base.replace(eta=s.eta_for(protocol, mu), mu=mu, delay=delay_law(delay, m))
            out.append(CellTask(index, problem, s.steps, s.replicates, s.seed_for(m)))
        return out

    def assemble(self, records: Mapping[int, dict]) -> xarray.Dataset:
        import xarray as xr

        s = self.setup
        shape = (len(s.protocols), len(s.delays), len(s.workers), len(s.mus))
        dims = ("protocol", "delay", "workers", "mu")
        ordered = [records[i] for i in range(self.size)]
        data = {name: ((*dims, "replicate"), np.array([r[name] for r in ordered], dtype=float).reshape(*shape, -1))
                for name in OUTCOMES}  # fmt: skip
        data["diverged_fraction"] = (dims, np.array([r["diverged_fraction"] for r in ordered]).reshape(shape))
        data["eta"] = (("protocol", "mu"), np.array([[s.eta_for(p, mu) for mu in s.mus] for p in s.protocols]))
        coords = {"protocol": list(s.protocols), "delay": list(s.delays), "workers": np.array(s.workers),
                  "mu": np.array(s.mus, dtype=float), "replicate": np.arange(s.replicates)}  # fmt: skip
        ds = xr.Dataset(data, coords=coords)
        for name in OUTCOMES:
            ds[name].attrs["description"] = f"final {name.replace('_', ' ')} of each run (NaN: the run diverged)"
        ds["diverged_fraction"].attrs["description"] = "fraction of the cell's runs that diverged"
        ds["eta"].attrs["description"] = "step size of the cell: eta, or effective_eta (1 - mu) for fixed-effective"
        ds["delay"].attrs["description"] = "workers: round-robin (tau = M - 1); ps: event-driven parameter server"
        ds.attrs.update(title="amsgd validate --preset paper-dnn: the runs of every cell",
                        manifest=json.dumps(self.manifest()),
                        seeding="every cell with M workers simulates with the seed seed + M (paired across mu)")  # fmt: skip
        return ds

    def read(self, path: Path) -> xarray.Dataset:
        source, ds = load_netcdf(path, "runs file", "amsgd validate --preset paper-dnn",
                                 "move it away, or choose another --out",
                                 "remove it and run the validation again")  # fmt: skip
        if "manifest" not in ds.attrs or "train_loss" not in ds:
            raise ProblemError(f"{str(source)!r} is a NetCDF file but not the runs of amsgd validate --preset paper-dnn; "
                               "move it away, or choose another --out")  # fmt: skip
        return ds
