"""Every bad-input rule of the command line: the arguments, a fragment the message must contain, the
files the arguments name, and the table of docs/errors.md rendered from what the commands print.

``python tests/helpers/bad_inputs.py`` rewrites docs/errors.md; tests/test_bad_input.py checks each
rule and that the page is the one these rules produce.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: the tests folder holds the helpers package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.cli import run_in_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "errors.md"

#: (arguments, a fragment of the expected message)
CASES: list[tuple[str, str]] = [
    ("simulate --eta -1", "eta must be a finite number > 0"),
    ("simulate --eta 0", "eta must be a finite number > 0"),
    ("simulate --eta abc", "invalid float value"),
    ("simulate --mu 1", "0 <= mu < 1"),
    ("simulate --mu -1.5", "0 <= mu < 1"),
    ("advise --mu 0.5,0.9", "momenta as a list: amsgd advise --mus LIST"),
    ("simulate --spectrum 4,x", "comma-separated numbers"),
    ("simulate --spectrum 4", "at least two eigenvalues"),
    ("simulate --spectrum 4,-1", "finite and > 0"),
    ("simulate --covariance missing.npy", "does not exist"),
    ("simulate --covariance=", "--covariance needs a file name"),
    ("figures --out f --sweep=", "--sweep needs a file name"),
    ("simulate --model least-squares --data=", "--data needs a file name"),
    ("simulate --covariance cov.txt", "numpy.save"),
    ("simulate --covariance nonsym.npy", "symmetric"),
    ("simulate --covariance notpd.npy", "positive definite"),
    ("simulate --covariance vector.npy", "square (d, d) matrix"),
    ("simulate --covariance complex.npy", "must be real"),
    ("simulate --spectrum 1e12,1", "above 1e-10 times its largest in magnitude (1e+12); its smallest eigenvalue is 1"),
    ("simulate --spectrum 1e120,1e119", "must lie in [1e-100, 1e+100]"),
    ("simulate --distribution cauchy", "unknown distribution"),
    ("simulate --distribution student-t:x", "NU > 2"),
    ("simulate --distribution student-t:2", "NU > 2"),
    ("simulate --tau -1", "non-negative integer"),
    ("simulate --tau 1 --delay constant:2", "not allowed with"),
    ("simulate --delay uniform:5-2", "A <= B"),
    ("simulate --delay uniform:-1-3", "A must be a non-negative integer, got -1"),
    ("simulate --mu 1.0000000001", "got 1.0000000001"),
    ("simulate --delay geometric:-1", "> 0"),
    ("simulate --delay poisson:abc", "must be a number"),
    ("simulate --delay geometric:3e7", "a delay may reach at most"),
    ("simulate --delay constant:1000000000000", "a delay may reach at most"),
    ("simulate --delay workers:0", "positive integer"),
    ("simulate --delay ps:4:weird", "exp, lognormal"),
    ("derive --delay ps:4:lognormal:250", "SIGMA <= 20"),
    ("derive --delay ps:4:lognormal:20.0000001", "got 20.0000001"),
    ("derive --delay ps:4:exp:3", "takes no SIGMA"),
    ("derive --spectrum 4,,1", "spectrum has an empty entry"),
    ("advise --workers 1,", "LIST must be comma-separated values or START:STOP:STEP ranges"),
    ("advise --mus 0.5,0.5", "LIST lists a value twice"),
    ("advise --spectrum 3,3,1", "needs an eigengap λ1 > λ2"),
    ("advise --spectrum 4,3.9999999999", "λ2 = 3.9999999999 (a gap below 1e-10 × λ1 counts as none)"),
    ("integrate --convergence-study --reference-factor 1000000", "use a smaller reference factor (--reference-factor)"),
    ("advise --mus 0.9:0.5:0.1", "has STOP < START"),
    ("integrate --steps 200 --dt 1e-300", "(limit 1e+08); use a larger dt"),
    ("integrate --paths 100000000", "(limit 2 GiB); use fewer paths"),
    ("integrate --convergence-study --window 0.3", "--window does not apply to a --convergence-study"),
    ("advise --steps 100", "--steps does not apply to streaming PCA"),
    ("simulate --delay histogram:missing.npy", "does not exist"),
    ("simulate --delay histogram:words.txt", "not a list of probabilities"),
    ("derive --delay histogram:empty.txt", "non-empty list of probabilities"),
    ("derive --delay histogram:letters.npy", "not a list of probabilities"),
    ("derive --delay histogram:nonsym.npy", "give the probabilities as one row or one column"),
    ("derive --delay histogram:complex.npy", "holds complex numbers; probabilities must be real"),
    ("derive --delay histogram:huge.txt", "probabilities in [0, 1]"),
    ("derive --delay histogram:far.txt", "got sum 1.000002"),
    ("derive --delay histogram:utf16.txt", "is not UTF-8 text"),
    ("derive --delay poisson:993500", "reaches 1000520 iterations"),
    ("derive --delay ps:20000:lognormal:1", "ps:20000:lognormal:1 reaches 1256790 iterations"),
    ("simulate --delay bogus:3", "unknown delay spec"),
    ("simulate --steps 0", "positive integer"),
    ("simulate --replicates 0", "positive integer"),
    ("simulate --replicates 1000000000 --steps 1000000000", "more than this machine's"),
    ("simulate --delay geometric:1e16", "a delay may reach at most 1000000"),
    ("simulate --record-every -1", "positive integer"),
    ("simulate --window 1.5", "[0, 1)"),
    ("simulate --window-start 20000 --steps 100", "0..steps"),
    ("simulate --start e9", "J in 1..4"),
    ("simulate --start 1,2", "4 finite numbers"),
    ("simulate --start nowhere", "random"),
    ("simulate --divergence-norm 0", "> 1"),
    ("simulate --threads 0", "positive integer"),
    ("simulate --seed -1", "integer >= 0"),
    ("simulate --out nodir/x.nc", "create it first"),
    ("simulate --out somedir", "give a file name"),
    ("simulate --out a.txt", "the file is written as NetCDF; give a name ending in .nc"),
    ("sweep --tau 0 --seed 1 --out a.txt", "the file is written as NetCDF"),
    ("simulate --model resnet", "invalid choice"),
    ("simulate --model mlp --data missing.npz", "does not exist"),
    ("simulate --model logistic --data nan.csv", "finite"),
    ("simulate --model logistic --data onelabel.npz", "two classes"),
    ("simulate --model logistic --data threes.npz", "two classes"),
    ("simulate --model logistic --data gaplabels.npz", "every class among the training examples"),
    ("simulate --model logistic --data hugelabel.npz", "labels [2, 3, 4, 5, 6] ... have no training example"),
    ("simulate --model logistic --data heldlabel.npz", "labels [2] have no training example"),
    ("simulate --model logistic --data complexdata.npz", "X must be real"),
    ("simulate --model least-squares --data nofeatures.npz", "p >= 1"),
    ("simulate --model logistic --data wordlabels.npz", "must be numeric"),
    ("simulate --model logistic --data dates.npz", "got dates of shape (10, 3)"),
    ("simulate --model logistic --data noX.npz", "arrays X and y"),
    ("simulate --model logistic --data broken.npz", "numpy.savez"),
    ("simulate --model least-squares --data text.csv", "numeric CSV"),
    ("simulate --model least-squares --data names.csv", "no rows of data"),
    ("simulate --model least-squares --data semicolons.csv", "separate them with commas"),
    ("simulate --model least-squares --data spaces.csv", "separate them with commas"),
    ("simulate --model least-squares --data decimalcommas.csv", "its decimal marks are commas"),
    ("simulate --model logistic --data emptyfile.npz", "not a readable .npz file"),
    ("simulate --model logistic --data onearray.npz", "holds one array (a .npy file)"),
    ("simulate --model logistic --data objects.npz", "an array of Python objects"),
    ("simulate --model logistic --data missingfirst.csv", "could not convert string 'NA' to float64 in row 1 of the numbers, column 2"),
    ("simulate --model logistic --data pandasindex.csv", "the index pandas writes"),
    ("simulate --model logistic --data quoted.csv", "its fields are quoted"),
    ("simulate --model logistic --data latin1.csv", "not UTF-8 text"),
    ("simulate --model least-squares --data hugetargets.csv", "whose square overflows or underflows double precision"),
    ("integrate --model least-squares --limit ode --dt 3", "--dt does not apply to --limit ode"),
    ("integrate --model least-squares --limit ode --paths 5", "--paths does not apply to --limit ode"),
    ("simulate --model mlp --hidden 0", "positive integer"),
    ("simulate --model mlp --batch 0", "positive integer"),
    ("simulate --model logistic --l2 -1", ">= 0"),
    ("derive --model least-squares --l2 1e300", "lower it"),
    ("derive --eta 1e200", "moments overflow double precision"),
    ("advise --model least-squares --eta 1e200", "moments overflow double precision"),
    ("simulate --model mlp --start e1", "--model pca only"),
    ("derive --model logistic --spectrum 5,2,1", "--spectrum does not apply to --model logistic"),
    ("derive --model logistic --delta-sq 1", "--delta-sq does not apply to --model logistic"),
    ("simulate --model least-squares --hidden 8 --activation relu", "--hidden, --activation do not apply"),
    ("advise --data digits", "--data does not apply to --model pca"),
    ("simulate --svag 0", "positive integer"),
    ("simulate --svag 2 --delay uniform:0-4", "constant delay"),
    ("simulate --svag 2 --distribution rademacher", "Gaussian data"),
    ("simulate --svag 2 --coordinates all", "does not apply to --svag"),
    ("simulate --svag 2 --model logistic", "--model pca only"),
    ("simulate --svag 65537", "at most 65536"),
    ("simulate --svag 3 --tau 400000", "a delay may reach at most 1000000"),
    ("derive --format yaml", "invalid choice"),
    ("derive --delta-sq 2", "0 < δ² < 1/2"),
    ("derive --gamma 0.9", "0 < gamma <= 1/2"),
    ("derive --epsilon -1", "0 < ε < 1"),
    ("derive --epsilon 0.0434", "epsilon = 0.0434 is at or below the finite-eta stationary error floor 0.0444463"),
    ("derive --spectrum 1,1", "eigengap"),
    ("derive --eta 1e-16", "rounding errors above 1e-6"),
    ("derive --spectrum 3,2,1 --eta 1e-9 --mu 0.99", "raise eta"),
    ("derive --model least-squares --eta 1e-12", "cannot resolve this model's slow modes"),
    ("derive --distribution student-t:3", "NU > 4"),
    ("derive --distribution student-t:1e308", "takes NU up to 1e+300"),
    ("derive --tradeoff-mu 0.5,x", "LIST: 'x' is not a number"),
    ("derive --tradeoff-mu=-0.5,0.2", "must lie in [0, 1) for streaming PCA"),
    ("derive --tradeoff-mus 0.5", "amsgd derive: error: unrecognized arguments: --tradeoff-mus (did you mean --tradeoff-mu?)"),
    ("-q simulate --steps 30", "amsgd simulate: error: unrecognized arguments: -q (given before simulate: options go after it, amsgd simulate -q)"),
    ("derive --tradeoff-workers 1,100000", "give at most 2001"),
    ("derive --sections stabilty", "unknown sections ['stabilty']: the JSON has problem, recursion"),
    ("derive --sections stability --format latex", "the latex document needs every section"),
    ("derive --sections stability,problem,stability", "--sections names stability more than once"),
    ("validate --out vdir --only ode,ode", "--only names ode more than once: 'ode,ode'"),
    ("derive --model logistic --sections phases", "unknown sections ['phases']: the JSON has problem, point"),
    ("simulate --format json", "unrecognized arguments: --format (an option of derive, advise, not of simulate)"),
    ("derive --delay uniform:0-2001", "its runs can be simulated (amsgd simulate), its theory cannot"),
    ("derive --delay geometric:724", "beyond the 20000 lags the linear numerics support for a law with a geometric tail"),
    ("derive --delay ps:2001", "for a law with a geometric tail"),
    ("derive --delay constant:-1", "delay constant:N, N must be a non-negative integer"),
    ("derive --model mlp --format markdown", "models give json"),
    ("derive --out nodir/d.json", "create it first"),
    ("integrate --model least-squares --limit sdde", "are for streaming PCA"),
    ("integrate --paths 0", "integer >= 2"),
    ("integrate --scheme rk4", "milstein, weak2, sdeint-euler, sdeint-sri2, euler-jit"),
    ("integrate --convergence-study --scheme euler,euler-jit", "euler-jit runs ensembles"),
    ("integrate --steps 200 --dt 399", "not a whole number of steps of dt = 399"),
    ("integrate --window 1", "window must be a fraction of the run in [0, 1), got 1.0"),
    ("integrate --convergence-study --scheme euler,milstein,euler", "listed more than once: euler"),
    ("integrate --convergence-study --reference-factor 1", "reference_factor must be an integer >= 2"),
    ("integrate --convergence-study --reference-factor 0", "reference_factor must be an integer >= 2"),
    ("integrate --dt 0", "> 0"),
    ("integrate --convergence-study --plot nodir/p.png", "create it first"),
    ("integrate --convergence-study --plot p.txt", "a figure format matplotlib writes"),
    ("integrate --limit ode", "the ODE has no noise"),
    ("integrate --limit sdde --tau 7 --dt 2", "not a whole number of SDE steps"),
    ("integrate --limit sdde --tau 60", "unstable beyond s*"),
    ("integrate --limit sdde --delay uniform:0-4", "needs a constant delay"),
    ("integrate --limit sdde --delay uniform:3-3", "uniform:3-3 is one delay: give it as constant:3"),
    ("integrate --limit sdde --scheme weak2", "for --limit sdde"),
    ("sweep --tau 0 --out a.nc", "required: --seed"),
    ("sweep --tau 0:x --seed 1 --out a.nc", "not a number"),
    ("sweep --mu 0.5 --mu 0.9 --tau 0 --seed 1 --out a.nc", "--mu is given more than once, and only the last"),
    ("derive --eta=1e-3 --eta 2e-3", "--eta is given more than once"),
    ("simulate --steps 50 --step 0", "--steps is given more than once"),
    ("simulate --steps 1e19 --seed 1", "steps must be at most 2^63 - 1"),
    ("derive --out results/", "ends in a slash, which names a folder"),
    ("advise --plot advice.pgf", "a figure format matplotlib writes"),
    ("derive --tradeoff-mu 0.5,0.99999999999999", "tradeoff momenta (--tradeoff-mu): at mu = 0.99999999999999, eta·(λ1 − λ2)"),
    ("sweep --model logistic --mu -0.3,0.5 --tau 0 --seed 1 --out a.nc", "written with '=': --mu=-0.3"),
    ("sweep --tau 5:1 --seed 1 --out a.nc", "STOP < START"),
    ("sweep --eta 0:1:1e-7 --tau 0 --seed 1 --out a.nc", "an axis takes at most"),
    ("sweep --eta 0:1:1e-320 --tau 0 --seed 1 --out a.nc", "more than 1e15 values"),
    ("sweep --tau 0 --seed 1 --out a.nc --connect-timeout 3", "--connect-timeout does not apply to a local cluster"),
    ("sweep --tau 0 --seed 1 --out a.nc --scheduler tcp://127.0.0.1:9 --local-threads", "do not apply with --scheduler"),
    ("sweep --tau 0:9999,10000 --seed 1 --out a.nc", "--tau lists more than 10000 values"),
    ("sweep --tau 0 --seed 18446744073709551616 --out a.nc", "seed must be at most 2^63 - 1"),
    ("sweep --tau 0:4 --workers 2 --seed 1 --out a.nc", "not allowed with"),
    ("sweep --mu 0.5,1.2 --tau 0 --seed 1 --out a.nc", "0 <= mu < 1"),
    ("sweep --eta 0 --tau 0 --seed 1 --out a.nc", "> 0"),
    ("sweep --distribution cauchy --tau 0 --seed 1 --out a.nc", "unknown distribution"),
    ("sweep --model logistic --distribution rademacher --tau 0 --seed 1 --out a.nc", "--distribution applies to --model pca only"),
    ("sweep --model mlp --start e1 --tau 0 --seed 1 --out a.nc", "--start applies to --model pca only"),
    ("sweep --model logistic --distribution gaussian --tau 0 --seed 1 --out a.nc", "--distribution applies to --model pca only"),
    ("simulate --model least-squares --start e2", "apply to --model pca only"),
    ("advise --mu 0.5", "--mu does not apply to advise"),
    ("advise --model least-squares --delay geometric:3", "--delay does not apply to advise"),
    ("derive --model least-squares --delta-sq 0.1", "--delta-sq does not apply to --model least-squares"),
    ("integrate --model logistic --delta-sq 0.1", "--delta-sq does not apply to --model logistic"),
    ("integrate --levels 3", "--levels does not apply to an ensemble"),
    ("integrate --model least-squares --steps 20 --dt 3", "does not divide the intervals between recorded"),
    ("integrate --model least-squares --eta 1e155 --steps 10 --paths 2", "eta·λ_max = 7.35e+155 is above 1e+50"),
    ("simulate --model logistic --batch 1000000000 --steps 1 --replicates 1", "use a smaller --batch"),
    ("advise --model mlp --hidden 1000000000 --workers 1,2 --mus 0.5", "use a smaller --hidden"),
    ("advise --model mlp --l2 1e300 --workers 1,2 --mus 0.5", "conditioned beyond double precision; lower it"),
    ("advise --workers 1,2 --mus 0.5 --out a.png --plot a.png", "name the same file"),
    ("derive --covariance cov.npy --out cov.npy", "is the file --covariance reads"),
    ("derive --delay histogram:delays.txt --out ./delays.txt", "is the file --delay reads"),
    ("derive --model logistic --data blobs.csv --out ./blobs.csv", "is the file --data reads"),
    ("sweep --model logistic --data missing.npz --tau 0 --seed 1 --out a.nc", "does not exist"),
    ("sweep --tau 0 --seed 1 --out existing.nc", "--resume"),
    ("sweep --tau 0 --seed 1 --out a.nc --local-workers 0", "positive integer"),
    ("sweep --tau 0 --seed 1 --out a.nc --local-threads --local-processes", "not allowed with"),
    ("sweep --tau 0 --seed 1 --out a.nc --scheduler tcp://127.0.0.1:9 --connect-timeout 0.5", "no Dask scheduler"),
    ("validate --preset paper-dnn --out v --scheduler tcp://127.0.0.1:9 --threads 2", "does not apply with --scheduler"),
    ("sweep --tau 0 --seed 1 --out a.nc --scheduler tcp://127.0.0.1:9 --connect-timeout 0", "> 0"),
    ("sweep --tau 100 --seed 1 --out a.nc --steps 10 --window-start 11", "0..steps"),
    ("validate --out vdir --preset nope", "invalid choice"),
    ("validate --out vdir --only bogus", "unknown experiment"),
    ("validate --out vdir --perturb x", "NAME=FACTOR"),
    ("validate --out vdir --only stationary --perturb knee-mu-0.9=2", "names no check of the experiments chosen"),
    ("validate --out vdir --model mlp --only ode", "does not apply to --model mlp"),
    ("validate --out vdir --model logistic --steps 0", "--steps must be a positive integer"),
    ("validate --out vdir --steps 100", "--steps applies only with --model"),
    ("validate --out vdir --eta 0.01 --tau 5 --only ode", "would have no prediction to check"),
    ("validate --out vdir --eta 0.5 --only ode", "no delay is stable"),
    ("validate --out file.txt", "not a folder"),
    ("validate --out nodir/v", "create it first"),
    ("validate --preset paper-dnn --out vdir --only ode", "--only does not apply to --preset paper-dnn"),
    ("validate --preset default --eta -1 --out vdir", "--eta does not apply to --preset default"),
    ("validate --preset paper-pca --spectrum 4,x --out vdir", "--spectrum does not apply to --preset paper-pca"),
    ("validate --preset default --hidden 3 --out vdir", "--hidden does not apply to --preset default"),
    ("validate --preset paper-dnn --data blobs.csv --mu 0.3 --out vdir", "--mu does not apply to --preset paper-dnn"),
    ("validate --preset paper-dnn --svag 1,2 --out vdir", "--svag does not apply to --preset paper-dnn"),
    ("validate --only , --out vdir", "--only needs experiment names"),
    ("validate --out vdir --svag 2,4", "including 1"),
    ("validate --out vdir --svag 1,0", "positive integers"),
    ("validate --out vdir --svag 1,2 --svag-replicates 1", "an interval needs two runs"),
    ("validate --out vdir --svag 1,2 --only ode", "--only does not apply to --svag"),
    ("validate --out vdir --svag 1,2 --svag-steps 10", "shorter than two relaxation times"),
    ("validate --out vdir --svag 1,2 --eta 1", "no delay is stable"),
    ("validate --out vdir --svag 1,2 --delay ps:4", "constant delay"),
    ("validate --out vdir --svag 1,2 --svag-replicates 0", "--svag-replicates must be a positive integer"),
    ("validate --out vdir --svag 1,2 --replicates 8", "--replicates does not apply to --svag"),
    ("validate --out vdir --replicates 0", "must be a positive integer"),
    ("validate --out vdir --replicates 1", "replicates (--replicates) must be at least 2 (an interval needs two runs)"),
    ("figures --out figs --replicates 1", "replicates (--replicates) must be at least 2 (an interval needs two runs)"),
    ("validate --out vdir --svag-steps 4000", "applies only with --svag"),
    ("figures --out figs --sweep junk.nc", "not a NetCDF file"),
    ("figures --out figs --sweep missing.nc", "does not exist"),
    ("figures --out figs --mus 1.2", "[0, 1)"),
    ("figures --out figs --replicates 2 --tau 2001", "beyond the 2000 the linear numerics support"),
    ("figures --out file.txt", "not a folder"),
    ("figures --out cov.txt/figs", "the parent folder 'cov.txt' is not a folder"),
    ("derive --out cov.txt/d.json", "the folder 'cov.txt' is not a folder"),
    ("figures --model logistic --out figs", "--model pca only"),
    ("advise --workers 0", "integers >= 1"),
    ("advise --workers 1,x", "LIST: 'x' is not a number"),
    ("advise --workers 4,1,1", "lists a value twice"),
    ("advise --mus 1.5", "0 <= mu < 1"),
    ("advise --model least-squares --steps 0", "positive integer"),
    ("advise --format csv", "invalid choice"),
    ("advise --out nodir/a.txt", "create it first"),
    ("advise --plot a.txt", "a figure format matplotlib writes"),
    ("advise --workers 1,2000000", "a delay may reach at most"),
    ("advise --model logistic --data missing.npz", "does not exist"),
]


def make_files(folder: Path) -> None:
    """The files the cases name, in ``folder`` (the working directory of the cases)."""
    (folder / "cov.txt").write_text("1 2 3\n")
    (folder / "words.txt").write_text("one two three\n")
    (folder / "empty.txt").write_text("")
    (folder / "huge.txt").write_text("1e308 1e308\n")
    (folder / "far.txt").write_text("0.5 0.500002\n")
    (folder / "utf16.txt").write_text("0.25 0.75\n", encoding="utf-16")
    np.save(folder / "letters.npy", np.array(["a", "b"]))
    np.save(folder / "nonsym.npy", np.array([[1.0, 2.0], [0.0, 1.0]]))
    np.save(folder / "notpd.npy", np.array([[1.0, 2.0], [2.0, 1.0]]))
    np.save(folder / "vector.npy", np.ones(3))
    np.save(folder / "complex.npy", np.array([[2.0, 0.5j], [-0.5j, 1.0]]))
    rows = np.random.default_rng(0).standard_normal((10, 3))
    rows[4, 1] = np.nan
    rows[:, 2] = np.arange(10) % 2
    np.savetxt(folder / "nan.csv", rows, delimiter=",")
    np.savez(folder / "onelabel.npz", X=np.ones((10, 3)), y=np.zeros(10))
    np.savez(folder / "threes.npz", X=np.ones((10, 3)), y=np.full(10, 3))
    np.savez(folder / "gaplabels.npz", X=np.ones((10, 3)), y=np.arange(10) % 2 * 7)
    np.savez(folder / "hugelabel.npz", X=np.ones((10, 3)), y=np.r_[np.arange(9) % 2, 10**18])  # not a 1e18 list
    from amsgd.core.models import SPLIT_SEED

    held_out = np.random.default_rng(SPLIT_SEED).permutation(10)[0]  # the first example held out
    np.savez(folder / "heldlabel.npz", X=np.ones((10, 3)), y=np.where(np.arange(10) == held_out, 2, np.arange(10) % 2))
    np.savez(folder / "complexdata.npz", X=np.ones((10, 3)) + 1j, y=np.arange(10) % 2)
    np.savez(folder / "nofeatures.npz", X=np.ones((10, 0)), y=np.ones(10))
    np.savez(folder / "wordlabels.npz", X=np.ones((10, 3)), y=np.array(["cat", "dog"] * 5))
    np.savez(folder / "dates.npz", X=np.datetime64("2026-01-01") + np.arange(30).reshape(10, 3), y=np.arange(10) % 2)
    np.savez(folder / "noX.npz", y=np.zeros(10))
    (folder / "broken.npz").write_bytes(b"PK\x03\x04 not an archive")
    (folder / "text.csv").write_text("a,b,c\nx,y,z\n")
    (folder / "names.csv").write_text("a,b,c\n")
    (folder / "semicolons.csv").write_text("1;2;0\n3;4;1\n")
    (folder / "spaces.csv").write_text("1.5 2 0\n3 4 1\n")
    (folder / "decimalcommas.csv").write_text("1,5;2;0\n3;4,25;1\n")
    (folder / "emptyfile.npz").write_bytes(b"")
    with open(folder / "onearray.npz", "wb") as handle:
        np.save(handle, np.ones((10, 3)))  # numpy.save's format under an .npz name
    np.savez(folder / "objects.npz", X=np.ones((10, 3)).astype(object), y=np.arange(10) % 2)
    (folder / "missingfirst.csv").write_text("0.5,NA,1\n" + "".join(f"{i},0.5,{i % 2}\n" for i in range(9)))
    (folder / "pandasindex.csv").write_text(",a,label\n" + "".join(f"{i},{i * 0.3},{i % 2}\n" for i in range(10)))
    (folder / "quoted.csv").write_text("".join(f'"{i}","{i % 2}"\n' for i in range(10)))
    (folder / "hugetargets.csv").write_text("".join(f"{i},{i * 1e200}\n" for i in range(10)))
    (folder / "latin1.csv").write_bytes("größe,label\n1,0\n2,1\n".encode("latin-1"))
    (folder / "somedir").mkdir()
    (folder / "junk.nc").write_text("junk")
    (folder / "existing.nc").write_text("x")
    (folder / "file.txt").write_text("x")
    np.save(folder / "cov.npy", np.diag([2.0, 1.0]))
    (folder / "delays.txt").write_text("0.5 0.5\n")
    blobs = np.random.default_rng(1).standard_normal((40, 3))
    blobs[:, 2] = np.arange(40) % 2
    blobs[:, 0] += 3.0 * blobs[:, 2]
    np.savetxt(folder / "blobs.csv", blobs, delimiter=",")


def run_case(arguments: str) -> tuple[int, list[str]]:
    """Run ``amsgd ARGUMENTS`` in this process: its exit status and the non-empty lines of stderr."""
    run = run_in_process(arguments.split())
    return run.returncode, [line for line in run.stderr.splitlines() if line.strip()]


def render(results: list[tuple[str, int, list[str]]]) -> str:
    """docs/errors.md from the cases' results (arguments, status, stderr lines)."""
    head = [
        "# Error messages and exit statuses",
        "",
        "Every `amsgd` command ends with one of these exit statuses:",
        "",
        "| status | meaning |",
        "|---|---|",
        "| 0 | done |",
        "| 1 | `validate`: at least one check failed (the report and stdout name it) |",
        "| 2 | bad input: one line on stderr names the option, what it must be and what to do |",
        "| 3 | no estimate: every replicate diverged (stderr says so in words); a sweep exits 3 where that happened at every point, and otherwise 0, counting the points where it did (`all_diverged`, and a warning) |",
        "| 130 | interrupted (Ctrl-C): stderr says what was kept and how to continue. Once the command has ended (its output written), a Ctrl-C or SIGTERM while the process exits ends it with the command's status |",
        "| 143 | terminated (SIGTERM: `kill`, a batch scheduler's time limit): handled as Ctrl-C is, what was kept "
        "said the same way |",
        "| 141 | standard output was closed before all of it was written (`| head`); the work was done. Where the reader stops partway through an output larger than the pipe's buffer (64 KiB) the system can end the write short without an error, and the status is then 0 |",
        "",
        "Warnings (`amsgd COMMAND: warning: ...`, for example a delay longer than half the run, or a",
        "stationary window that is not stationary) do not change the status; each text is printed once",
        "(a sweep's points with the same warning give one line), and a delay longer than half the run only",
        "the first time (a sweep names its grid's longest delay once, not each delay of the grid).",
        "",
        f"The {len(results)} bad inputs below are the test suite's cases "
        "(`tests/helpers/bad_inputs.py`); the messages are what the commands print, regenerated with "
        "`python tests/helpers/bad_inputs.py`. Files named in them are small examples of the mistake "
        "(a text file where NumPy's `.npy` is expected, an archive without `X`, ...).",
        "",
        "| command | status | message on stderr |",
        "|---|---|---|",
    ]
    rows = [f"| `amsgd {args}` | {status} | {_cell(' / '.join(lines))} |" for args, status, lines in results]
    return "\n".join(head + rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def collect(folder: Path) -> list[tuple[str, int, list[str]]]:
    """Run every case with ``folder`` as the working directory (its files made first)."""
    make_files(folder)
    here = os.getcwd()
    os.chdir(folder)
    try:
        return [(args, *run_case(args)) for args, _ in CASES]
    finally:
        os.chdir(here)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        PAGE.write_text(render(collect(Path(tmp))))
    print(f"wrote {PAGE}", file=sys.stderr)
