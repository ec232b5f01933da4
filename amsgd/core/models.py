"""Models other than streaming PCA: a loss and its data, validated once at the boundary.

A :class:`ModelProblem` is Async-MSGD on a loss ``L(x) = E ℓ(x; ξ)`` over a finite data set, with
minibatches of B examples drawn uniformly with replacement:

    x_{k+1} = x_k + μ (x_k − x_{k−1}) − η ∇ℓ_B(x_{k−τ_k}),    ℓ_B = (1/B) Σ_{b ≤ B} ℓ(x; ξ_b) + (l2/2) ‖W‖²

where W are the weights (never the intercepts). The models:

* ``least-squares``: ``ℓ = ½ (wᵀz + c − y)²`` (real targets);
* ``logistic``: multinomial logistic regression, ``ℓ = −log softmax(zᵀW + c)_y`` (integer labels);
* ``mlp``: one hidden layer of H units (tanh or ReLU) and a softmax output (integer labels).

Features are standardised with the training split's mean and standard deviation; a seeded
permutation holds out a validation split. Real targets stay in their own units (the losses are
reported in them); where a run is judged diverged, distances are measured in the targets' standard
deviation from their mean at the intercept, so the judgement does not depend on the targets' units. This module only describes the problem; the JAX
programs that compute with it live in :mod:`amsgd.simulate.models`.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amsgd.core import checks
from amsgd.core.delays import ConstantDelay, DelayModel, as_delay_model
from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.files import check_input_file

MODELS = ("least-squares", "logistic", "mlp")
ACTIVATIONS = ("tanh", "relu")
#: Fraction of the examples held out for validation, and the seed of the permutation that picks them.
VALIDATION_FRACTION = 0.2
SPLIT_SEED = 0
#: The step size of each model when none is given. On the bundled digits (the default data) least squares
#: at μ 0.9 is mean-square unstable from about η 0.0025 by its full second moments (radius 0.80 at 0.002,
#: 1.97 at 0.005, 17.9 at 0.05, where every run diverges); logistic regression and the MLP are stable at
#: 0.05 up to μ 0.99 with one worker (``amsgd advise``).
DEFAULT_MODEL_ETAS = {"least-squares": 2e-3, "logistic": 0.05, "mlp": 0.05}
#: A CSV's first row 0,1,...,n−1 (pandas' names for unnamed columns) is taken as names from this many
#: columns on; in a narrower table it is an example as plausible as a header, and is kept (with a warning).
PANDAS_NAMES_MIN_COLUMNS = 4
#: The ridge penalty on the weights when none is given (a classifier on separable data needs one).
DEFAULT_L2 = 1e-3
#: Hidden units of an MLP when none are given.
DEFAULT_HIDDEN = 32


@dataclass(frozen=True, eq=False)
class Dataset:
    """Standardised features and their targets (as given), split into training and validation examples.

    ``classes`` is the number of classes (labels 0 .. classes − 1), or 0 for real targets.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: int

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def examples(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def target_mean(self) -> float:
        """The training targets' mean for real targets (0 for class labels)."""
        return float(np.mean(self.y_train)) if self.classes == 0 else 0.0

    @property
    def target_scale(self) -> float:
        """The training targets' standard deviation for real targets (1 where they are constant, and for
        class labels): the unit in which a run's distance from the minimum is judged (the divergence ball).
        Computed on the targets divided by their largest magnitude, so that it stays finite for any."""
        peak = float(np.abs(self.y_train).max()) if self.classes == 0 else 0.0
        spread = peak * float(np.std(self.y_train / peak)) if peak > 0 else 0.0
        return spread if spread > 0 else 1.0

    def to_dict(self) -> dict:
        return {"name": self.name, "train": self.examples, "validation": int(self.x_val.shape[0]),
                "features": self.features, "classes": self.classes}  # fmt: skip


def load_data(source: str, *, classification: bool = True, validation: float = VALIDATION_FRACTION) -> Dataset:
    """The data named by ``--data``: ``digits`` (scikit-learn's bundled set), ``FILE.npz`` with arrays
    ``X`` (n, p) and ``y`` (n,), or ``FILE.csv`` with the target in the last column (a first row of
    column names is skipped)."""
    if source == "digits":
        from sklearn.datasets import load_digits  # bundled with the package: no download

        bunch = load_digits()
        x, y = bunch.data.astype(float), bunch.target
    else:
        path = check_input_file(source, "--data")
        x, y = _read_table(path)
    return split_data(source, x, y, classification=classification, validation=validation)


def _read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    raise ProblemError(f"--data must be digits, FILE.npz or FILE.csv; got {str(path)!r}")


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rewrite = "write it with numpy.savez(FILE, X=X, y=y)"
    unreadable = f"--data {path}: not a readable .npz file; {rewrite}"
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # EOFError: an empty file
        raise ProblemError(unreadable) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # numpy.save's one array under an .npz name
        raise ProblemError(f"--data {path}: holds one array (a .npy file), not arrays X and y; {rewrite}")
    with loaded as archive:
        names = sorted(archive.files)
        if "X" not in names or "y" not in names:
            raise ProblemError(f"--data {path}: an .npz needs arrays X and y, found {names}; {rewrite}")
        try:
            return np.asarray(archive["X"]), np.asarray(archive["y"])  # checked by split_data
        except ValueError as exc:  # object arrays are pickles, which are not loaded
            what = ("X or y is an array of Python objects; save numeric arrays" if "allow_pickle" in str(exc)
                    else "X or y is not readable (a damaged archive)")  # fmt: skip
            raise ProblemError(f"--data {path}: {what}: {rewrite}") from None
        except (OSError, EOFError, zipfile.BadZipFile):
            raise ProblemError(unreadable) from None


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Comma-separated numbers, the target in the last column; a first row of column names is skipped, and
    lines of comments (``#``) or blank before it."""
    first, before = _first_line(path)
    separator = _other_separator(first)
    if separator:
        decimal = " and its decimal marks are commas; write decimal points and" if "," in first else ";"
        raise ProblemError(f"--data {path}: its fields are separated by {separator!r}{decimal} separate them with commas")
    header = _header_rows(first)
    if _default_column_names(first):  # names a wide table's row hardly ever spells; a narrow one's might
        wide = first.count(",") + 1 >= PANDAS_NAMES_MIN_COLUMNS
        header = 1 if wide else header
        kept = ("is read as column names, not as an example" if wide else
                "is read as an example; if it names the columns, remove it or give them names")  # fmt: skip
        warnings.warn(f"--data {path}: its first row, {first.strip()}, looks like the names pandas gives unnamed "
                      f"columns (0, 1, 2, ...) and {kept}", RunWarning, stacklevel=2)  # fmt: skip
    try:
        with warnings.catch_warnings():  # an empty table is refused below, in words
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=before + header, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProblemError(f"--data {path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except ValueError as exc:
        raise ProblemError(f"--data {path}: not a numeric CSV table ({_csv_reason(str(exc))})") from None
    if table.shape[0] == 0:
        raise ProblemError(f"--data {path}: the CSV holds no rows of data")
    if table.shape[1] < 2:
        raise ProblemError(f"--data {path}: a CSV needs at least one feature column and the target last")
    if header and not first.split(",")[0].strip() and np.array_equal(table[:, 0], np.arange(table.shape[0])):
        raise ProblemError(f"--data {path}: its first column is unnamed and counts 0, 1, 2, ...: the index pandas "
                           "writes (DataFrame.to_csv without index=False), not a feature; remove it")  # fmt: skip
    return table[:, :-1], table[:, -1]


def _csv_reason(numpy_reason: str) -> str:
    """NumPy's reason a CSV is not numbers, said for the file: its row counted from 1 among the rows of
    numbers (NumPy counts from 0, leaving out blank and comment lines and the column names), and what
    quoted fields are."""
    reason = numpy_reason.split("; use `usecols`")[0].rstrip(".")  # NumPy's advice is for its own callers
    reason = re.sub(r"at row (\d+), column (\d+)",
                    lambda m: f"in row {int(m[1]) + 1} of the numbers, column {m[2]}", reason)  # fmt: skip
    return reason + ("; its fields are quoted: write the numbers without quotes" if '"' in reason else "")


def _first_line(path: Path) -> tuple[str, int]:
    """The CSV's first line that is neither blank nor a comment (``#``), without a byte-order mark
    (spreadsheets write one; it is not a name), and how many lines come before it."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for before, line in enumerate(handle):
            if line.strip() and not line.lstrip().startswith("#"):
                return line, before
    return "", 0


def _other_separator(first: str) -> str:
    """The semicolon, tab or space that separates the fields of the CSV's ``first`` line when it has no
    comma (a CSV as another locale's spreadsheets, or ``numpy.savetxt`` by default, write it), the
    semicolon of a line of decimal commas (``0,5;1,25``), else ``""``."""
    if "," not in first:
        return next((c for c in ";\t " if c in first.strip()), "")
    return ";" if ";" in first and all(_is_number(f.replace(",", ".")) for f in first.split(";")) else ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: What tables write for a missing value: in a first line of numbers these mark an example, not names.
MISSING_VALUES = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "--", "."})


def _header_rows(first: str) -> int:
    """1 when the CSV's ``first`` line holds a name: a field that is neither a number nor a missing value
    (column names, some of them may be numbers), or it is ``,0,1,...`` (pandas' names of an index and of
    unnamed columns); else 0: a line of numbers with a missing one (``0.5,NA,1``) is an example, refused
    where it is read, not skipped as names."""
    fields = [field.strip() for field in first.split(",")]
    if fields[0] == "" and _default_column_names(",".join(fields[1:])):
        return 1
    return int(any(not _is_number(field) and field.lower() not in MISSING_VALUES for field in fields))


def _default_column_names(first: str) -> bool:
    """Whether the CSV's ``first`` line is ``0,1,...,n−1``: the names pandas gives the unnamed columns of
    a frame built from an array, which are numbers and would otherwise be read as an example."""
    fields = [field.strip() for field in first.split(",")]
    return len(fields) >= 2 and fields == [str(i) for i in range(len(fields))]


def split_data(name: str, x: np.ndarray, y: np.ndarray, *, classification: bool = True,
               validation: float = VALIDATION_FRACTION) -> Dataset:  # fmt: skip
    """Check ``(x, y)``, hold out ``validation`` of it by the seeded rule, standardise the features.

    A classifier's labels are checked on the training examples (every class 0 .. C − 1 must have one
    there) and the held-out labels must be among them."""
    x = checks.real_array(f"data {name}: X", x, "a numeric (n, p) array")
    y = checks.real_array(f"data {name}: y", y, "numeric (integer class labels or real targets)")
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] < 4 or x.shape[1] < 1:
        raise ProblemError(f"data {name}: X must be (n, p) and y (n,) with n >= 4 and p >= 1; "
                           f"got {x.shape} and {y.shape}")  # fmt: skip
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ProblemError(f"data {name}: X and y must be finite")
    peak = 0.0 if classification else float(np.abs(y).max())
    if peak > 1e150 or 0 < peak < 1e-150:  # features are rescaled there; the loss's unit is the targets'
        raise ProblemError(f"data {name}: the targets y are at most {peak:.3g} in magnitude, whose square "
                           "overflows or underflows double precision; divide them by a scale (the loss is in "
                           "their units squared)")  # fmt: skip
    validation = checks.real("validation fraction", validation)
    if not 0 < validation < 1:
        raise ProblemError(f"validation fraction must lie in (0, 1), got {validation!r}")
    order = np.random.default_rng(SPLIT_SEED).permutation(x.shape[0])
    held = max(1, int(round(validation * x.shape[0])))
    if x.shape[0] - held < 2:
        raise ProblemError(f"data {name}: holding out {validation:g} of {x.shape[0]} examples leaves "
                           f"{x.shape[0] - held} to train on; lower the validation fraction")  # fmt: skip
    val, train = order[:held], order[held:]
    classes = _classes(name, y[train], y[val]) if classification else 0
    x = _standardised(x, train)
    y = y.astype(np.int32) if classification else y
    return Dataset(name, x[train], y[train], x[val], y[val], classes)


def _standardised(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``(x − m)/s`` with the training rows' mean m and standard deviation s per feature (constant
    features stay constant, at zero). A feature whose squares overflow or underflow (magnitudes beyond
    1e150 or below 1e-150) is first divided by its largest magnitude, which leaves the result the same."""
    peak = np.abs(x).max(axis=0)
    extreme = (peak > 1e150) | ((peak > 0) & (peak < 1e-150))
    x = np.where(extreme, x / np.where(extreme, peak, 1.0), x)
    centre, scale = x[train].mean(axis=0), x[train].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return (x - centre) / scale


def _classes(name: str, train: np.ndarray, held: np.ndarray) -> int:
    """The number of classes C of the training labels ``train``, which must be the integers 0 .. C − 1,
    each present (a class without a training example has no finite minimum: its intercept is not
    penalised); the ``held``-out labels must be among them."""
    labels = np.concatenate([train, held])
    if not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise ProblemError(f"data {name}: a classifier needs integer labels 0 .. C-1 in y")
    present = np.unique(train)
    if present.size < 2:
        raise ProblemError(f"data {name}: a classifier needs at least two classes among its training examples, "
                           f"got labels {present.astype(int).tolist()}")  # fmt: skip
    classes = present.size
    if present[-1] != classes - 1 or labels.max() > classes - 1:
        # the first few labels below the largest without a training example (never a list as long as a label)
        missing = np.setdiff1d(np.arange(min(labels.max(), classes + 5) + 1), present)[:5].astype(int).tolist()
        raise ProblemError(f"data {name}: a classifier needs labels 0 .. C-1 with every class among the training "
                           f"examples (the held-out ones are drawn by a fixed rule); labels {missing}"
                           f"{' ...' if labels.max() > classes + 5 else ''} have no training example "
                           "(relabel with numpy.unique(y, return_inverse=True)[1])")  # fmt: skip
    return int(classes)


def model_momentum(mu: object) -> float:
    """A model's momentum as a float, refused outside (-1, 1) (negative momentum is allowed for models)."""
    value = checks.real("mu", mu)
    if not -1 < value < 1:
        raise ProblemError(f"mu must lie in (-1, 1) for a model (negative momentum allowed), "
                           f"got {checks.spec_number(value)}")  # fmt: skip
    return value


@dataclass(frozen=True, eq=False)
class ModelProblem:
    """Async-MSGD on ``model`` over ``data`` (see the module docstring for the update).

    Parameters
    ----------
    model
        ``least-squares``, ``logistic`` or ``mlp``.
    data
        The :class:`Dataset` (least squares needs real targets, the classifiers labels).
    eta, mu, delay
        Step size η > 0 (default: the model's :data:`DEFAULT_MODEL_ETAS`), momentum μ in (−1, 1) (negative
        momentum allowed), the delay model (default: none): a :class:`~amsgd.core.delays.DelayModel`, its
        spec (``"workers:4"``) or an integer τ, as :class:`~amsgd.core.problem.Problem` takes it.
    batch
        Minibatch size B >= 1 (examples drawn with replacement).
    l2
        Ridge penalty on the weights, >= 0.
    hidden, activation
        Hidden units (default :data:`DEFAULT_HIDDEN`) and their activation (default ``tanh``): ``mlp``
        only; given for another model they are refused (that model has no hidden layer).
    """

    model: str
    data: Dataset
    eta: float | None = None
    mu: float = 0.9
    delay: DelayModel = field(default_factory=lambda: ConstantDelay(0))
    batch: int = 32
    l2: float = DEFAULT_L2
    hidden: int | None = None
    activation: str | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ProblemError(f"model must be one of {', '.join(MODELS)} (streaming PCA is amsgd.Problem); "
                               f"got {self.model!r}")  # fmt: skip
        if not isinstance(self.data, Dataset):
            raise ProblemError(f"data must be a Dataset (load_data or split_data), got {type(self.data).__name__}")
        if (self.model == "least-squares") != (self.data.classes == 0):
            need = "real targets" if self.model == "least-squares" else "integer class labels"
            raise ProblemError(f"model {self.model} needs {need} in the data")
        eta = DEFAULT_MODEL_ETAS[self.model] if self.eta is None else self.eta
        object.__setattr__(self, "eta", checks.positive("eta", eta))
        object.__setattr__(self, "mu", model_momentum(self.mu))
        object.__setattr__(self, "delay", as_delay_model(self.delay))  # a spec or an integer τ, as Problem takes it
        object.__setattr__(self, "batch", checks.positive_int("batch", self.batch))
        object.__setattr__(self, "l2", checks.real("l2", self.l2))
        if self.l2 < 0:
            raise ProblemError(f"l2 must be >= 0, got {self.l2!r}")
        self._check_hidden_layer()

    def _check_hidden_layer(self) -> None:
        if self.model != "mlp":
            if self.hidden is not None or self.activation is not None:
                raise ProblemError(f"hidden and activation are for the mlp model; {self.model} has no hidden layer")
            return
        hidden = DEFAULT_HIDDEN if self.hidden is None else checks.positive_int("hidden", self.hidden)
        activation = ACTIVATIONS[0] if self.activation is None else self.activation
        if activation not in ACTIVATIONS:
            raise ProblemError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {self.activation!r}")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "activation", activation)

    @property
    def outputs(self) -> int:
        """Output units: 1 for least squares, the number of classes otherwise."""
        return max(1, self.data.classes)

    def replace(self, **changes) -> ModelProblem:
        """A copy with some of the data, η, μ, delay, batch, l2, hidden, activation replaced (checked again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ProblemError(f"ModelProblem.replace takes the fields of the problem; got {', '.join(unknown)}")
        if changes.get("model", self.model) != self.model:  # the hidden layer does not carry to another model
            changes = {"hidden": None, "activation": None, **changes}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = {"model": self.model, "data": self.data.to_dict(), "eta": self.eta, "mu": self.mu,
               "delay": self.delay.to_dict(), "batch": self.batch, "l2": self.l2}  # fmt: skip
        if self.model == "mlp":
            out.update(hidden=self.hidden, activation=self.activation)
        return out
