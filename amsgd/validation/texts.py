"""The prose of the validation report, one template per section (``str.format`` fields in braces).

What each experiment compares, in words; the numbers come from the experiment when the section is
built (:mod:`amsgd.validation.sections`).
"""

ODE = (
    "{replicates} runs from h₀ ∝ (1,…,1). The mean error is compared with the ODE closed form at the "
    "iterations where the ODE error falls to 3/4, 1/2 and 1/4 of its start (grey lines), evaluated "
    "μ/(1−μ) = {lag:.3g} iterations late because the first step has no momentum. The tolerance is the "
    "O(η) part the ODE leaves out: the noise's contribution (up to the diffusion floor) and the first "
    "modified-equation correction."
)

PHASES = (
    "{replicates} runs from the saddle e₂. The derived escape time is when the unstable OU variance makes "
    "E h₁² = δ²; it is compared with the crossing of δ² by the mean of h₁²/‖h‖² over runs. The per-run first "
    "passage (right panel) is later on average: E log(1/χ²₁) = γ + log 2 adds about 1.27/(2a) to a first "
    "passage. The OU limit's own first-passage distribution, sampled exactly, is drawn beside the "
    "simulation's. Travel is the per-run time from sin² ≤ 1 − δ² to sin² ≤ δ²."
)

RATE = (
    "Two sets of {replicates} runs with the same random numbers, from e₁ and tilted by sin² = {tilt:.3g} "
    "(the smaller of 0.02 and half the linear floor) toward the slowest tangent mode; the mean of their difference in that coordinate is the mean dynamics of the "
    "linear recursion. Its fitted decay rate (bootstrap interval) is compared with the finite-η rate, −log ρ "
    "of the ratio's mean recursion with its drift away from e₁ (c_i = η s_i/(1 − μ_i)), the restoring-force "
    "split and the radial friction; the exact linear rate and the OU rate η(λ₁ − λᵢ)/(1 − μ) are shown "
    "beside it."
)

RATE_SKIPPED = "skipped: delay {delay} is not i.i.d."

STATIONARY = (
    "{replicates} runs of {steps} iterations from e₁; each run's time average of sin² over the second half "
    "is one sample. The diffusion floor is checked at τ = 0; the exact linear floor at τ = 0 and at the "
    "problem's delay. The histograms show U_i = h_i/√η over the window against the OU stationary law."
)

FINITE_ETA = (
    "The finite-η floor (exact second moments of the random-coefficient linearisation in the ratios h_i/h_1, "
    "then the curvature of sin²) for the same Σ with Rademacher and Student-t (ν = 8) data and with Gaussian "
    "data at the large step η = {eta:g} (μ = 0), {replicates} runs from e₁ each; tolerance: the floor's stated "
    "accuracy, 2.5%. Divergence risk: Student-t data with ν = 6 at 0.3 τ* and 0.6 τ*, at the large step "
    "at 0.5 τ*, and (where there is one) halfway between their mean-square τ* and the mean τ*, the predicted "
    "fraction of runs of 40 000 iterations that blow up against the simulated one (Clopper–Pearson interval, "
    "widened by the half-width of the prediction's own 95% interval)."
)

KNEE = (
    "Measured knee (operational, from the simulations alone): on a grid of constant delays containing 0, "
    "the smallest τ at which more than half of the replicates diverge, or the mean stationary error of the "
    "others exceeds K = 1.5 times its value at τ = 0, times the rise of the exact linear floor from τ = 0 "
    "to that τ where it rises (up to τ*): the error's predicted rise is not a breakdown. The exact linear "
    "theory predicts a finite floor up to τ* and none beyond (there the threshold is K alone); up to τ* that "
    "floor is at most about 1.35 times its τ = 0 value for the published problem (1.69 at 0.8 τ* on "
    "Σ = diag(10, 1), η 2e-4, μ 0.9), so the prediction is a knee just above τ*. Just beyond τ* the norm of v oscillates "
    "with an amplitude growing with τ − τ_c and held by the nonlinear terms, so the error rises "
    "continuously and crosses K a little later. The check accepts a measured knee in (τ*, 1.25 τ* + Δτ] "
    "(Δτ the grid step): the margin is that continuous rise, stated as a tolerance, not measured. With "
    "heavy-tailed data most runs can blow up before τ*: where the predicted divergence risk over the runs' "
    "length may pass one half (its 95% interval reaches above) at a grid delay up to τ*, the accepted knee runs "
    "from that delay (the first such) to the first delay whose whole interval lies above one half, or to "
    "1.25 τ* + Δτ where none does."
)

STABILITY = (
    "Constant delays at the problem's η and μ; predicted τ* = {tau_star}. " + KNEE + " Stability checks at the "
    "problem's (η, μ): at τ = ⌊0.8 τ*⌋ no more replicates diverge than the predicted divergence risk allows "
    "(none without heavy tails) and the error ratio to τ = 0 stays below the knee's threshold there "
    "(with its whole interval), and the error matches the finite-η floor (the exact linear one where the "
    "finite-η theory has none); at τ = ⌈1.5 τ*⌉ the run breaks "
    "down: more than half diverge or the ratio's interval lies above K."
)

SWEEP = (
    "η = {eta:g} (the paper does not give its step size), {replicates} runs of {steps} iterations per (μ, τ) "
    "from random starts on the sphere; the stationary error is each run's time average over the second "
    "half. " + KNEE
)
SWEEP_LONGER = (
    "Runs last at least {relaxations} relaxation times (1 − μ)/(η (λ_1 − λ_2)) of the escaping mode, at most "
    "{cap} times the budget, so that runs from a random start have left the saddle before the averaging half: "
    "{runs}."
)

MOMENTUM = (
    "With M workers and geometric staleness of mean M − 1 (P(τ = j) = (1 − q) q^j, q = 1 − 1/M), Async-SGD "
    "at step η is claimed to behave like Sync-MSGD with momentum 1 − 1/M at step η/M (Mitliagkas et al.); "
    "Liu et al. argue that asynchrony adds no momentum. For one linear mode the mean of the asynchronous "
    "recursion has the characteristic equation z² − (1 + q − (η/M) a) z + q = 0: exactly the momentum "
    "recursion with μ = q and step η/M, so the mean dynamics (the local rates) are identical. The second "
    "moments are not: the spread of the random delay feeds back as extra noise, so the exact linear floor "
    "of Async-SGD is higher, while the diffusion limit gives both the floor η Σ s_i²/(2 a_i). Checked: each "
    "floor against its finite-η floor (the exact linear one where that has none), each rate against its finite-η "
    "rate (the mean dynamics of the linear recursions are identical, their finite-η corrections nearly so), "
    "and the difference of the two floors (async − sync) "
    "against the difference of their finite-η floors, within 2F relative to it; {pairing}. The comparison runs at the problem's "
    "effective step η_eff = η/(1 − μ) = {eta_eff:.3g} (Async-SGD step η_eff, Sync-MSGD step η_eff/M): both "
    "then share the problem's diffusion limit."
)

MOMENTUM_SHARED = (
    "the two floor runs share their samples (common random numbers: replicate r of both sees the same data), so "
    "the difference is measured per replicate, 13 to 31 times more precisely than from independent runs"
)
MOMENTUM_UNSHARED = (
    "the two floor runs are paired by replicate but do not share their samples (this data law is drawn on the "
    "stream that also draws the delays), so the pairing gains nothing over independent runs"
)

SDDE_LIMIT = (
    "The finite-delay limit holds the delay time s = τη fixed as η → 0; its floor (the SDDE's, "
    "Σ_i b_i² (1 + sin c_i s)/(2 c_i cos c_i s)) is proportional to η, so the compared quantity is the floor "
    "per unit step, E sin²/η, which the SDDE gives independently of η. Here s = {s:.4g} ({fraction:g} of the "
    "SDDE's boundary s* = {s_star:.4g}, set by the {mode} mode, rounded to τ = {tau} at the coarsest step η = {eta:g}); "
    "Async-MSGD runs from e₁ at the steps {eta:g}/m (m = {divisors}) with τ = m·{tau} and m·{steps} iterations "
    "(the same diffusion time; the discarded first half lasts at least {relaxations} relaxation times of the "
    "slowest mode), {replicates} runs each; each run's average of sin² over its second half is one sample. "
    "Checked: the finite-η floor at every step (tolerance 2.5%; the exact linear one, tolerance 2F, where the "
    "finite-η theory has none); the weighted quadratic in η through the "
    "measured floors per step, extrapolated to η = 0, against the SDDE floor (tolerance: how far the same fit "
    "through the theory's floors misses it); the distance to the SDDE floor smaller at the finest step than at "
    "the coarsest; the SDDE floor inside the finest step's interval widened by the finite-η gap the theory "
    "predicts there; and, at the finest step, the measured floor above the τ-free diffusion floor. The knee "
    "needs no simulation: the exact critical delay τ_c of the discrete recursion (τ* = ⌈τ_c⌉ − 1) gives "
    "τ_c η → s*, checked by Richardson extrapolation from the two finest steps and by the order of the gap "
    "s* − τ_c η (1: it shrinks like η)."
)
