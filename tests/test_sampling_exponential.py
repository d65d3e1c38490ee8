"""Exponential-integrator solvers (DPM-Solver, DPM-Solver++, UniPC, LMS) against exact answers.

For Gaussian data x0 ~ N(mu, diag(c)) the probability-flow ODE has the closed-form solution

    x_t = a(t) mu + sqrt(a(t)^2 c + s(t)^2) / sqrt(a(T)^2 c + s(T)^2) (x_T - a(T) mu)

(each coordinate keeps its standardized value), so a solver's error is measured against the exact
path; halving the step in log-SNR must divide it by 2^order.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import gmm as G
from score_sde.sampling import ddim_sample, exponential as ex, schedules
from score_sde.sampling.base import initial_state, run_loop
from score_sde.sampling.dispatch import sampler_from_config
from score_sde.sde import VESDE, VPSDE


def gaussian(dtype=jnp.float64):
  """Two coordinates with variances 0.04 and 4 (the ODE is not trivial for any path)."""
  mu = jnp.array([[0.5, -1.0]], dtype)
  c = jnp.array([0.04, 4.0], dtype)
  return G.GaussianMixture(jnp.ones(1, dtype), mu, jnp.diag(c)[None]), mu[0], c


def gaussian_score(sde, mu, c):
  """grad log N(x; a mu, a^2 c + s^2): the exact score of the Gaussian's marginal."""

  def score_fn(x, t):
    a, s = sde.alpha_sigma(t)
    a, s = a[:, None], s[:, None]
    return -(x - a * mu) / (a**2 * c + s**2)

  return score_fn


def exact_flow(sde, mu, c, x_T, t):
  a_T, s_T = sde.alpha_sigma(sde.T)
  a, s = sde.alpha_sigma(t)
  ratio = jnp.sqrt(a**2 * c + s**2) / jnp.sqrt(a_T**2 * c + s_T**2)
  return a * mu + ratio * (x_T - a_T * mu)


# (sampler, options, order of convergence claimed)
SOLVERS = {
  "dpm_solver_1": (ex.dpm_solver_sample, dict(order=1), 1),
  "dpm_solver_2M": (ex.dpm_solver_sample, dict(order=2), 2),
  "dpm_solver_3S": (ex.dpm_solver_sample, dict(order=3, multistep=False), 3),
  "dpm_solver_pp_2M_published": (ex.dpm_solver_pp_sample, dict(order=2, weights="published"), 2),
  "dpm_solver_pp_3M": (ex.dpm_solver_pp_sample, dict(order=3), 3),
  "unipc_2": (ex.unipc_sample, dict(order=2), 3),  # UniC raises the order by one
  "lms_3": (ex.lms_sample, dict(order=3), 3),
}
# The rest of the sweep (the same families at other orders or step kinds; one compilation each)
# runs in the slow stage.
SLOW_SOLVERS = {
  "dpm_solver_3M": (ex.dpm_solver_sample, dict(order=3), 3),
  "unipc_3": (ex.unipc_sample, dict(order=3), 3),  # (4 asymptotically; 3 claimed)
  "dpm_solver_2S": (ex.dpm_solver_sample, dict(order=2, multistep=False), 2),
  "dpm_solver_pp_2M": (ex.dpm_solver_pp_sample, dict(order=2), 2),
  "dpm_solver_pp_3S": (ex.dpm_solver_pp_sample, dict(order=3, multistep=False), 3),
  "unipc_1": (ex.unipc_sample, dict(order=1), 2),
  "lms_2": (ex.lms_sample, dict(order=2), 2),
  "lms_4": (ex.lms_sample, dict(order=4), 4),
}


def _convergence_errors(names):
  """{name: [err(48), err(96)]}, the RMS error against the exact flow at t = 1e-3 of n = 48 and
  96 steps on the VP path (uniform log-SNR grid, x64). All the solvers and both step counts in one
  compilation: about 2/3 of the compile time of one compilation per solver."""
  with jax.enable_x64(True):
    sde, (_, mu, c) = VPSDE(), gaussian()
    score_fn = gaussian_score(sde, mu, c)
    key, shape, eps = jax.random.key(0), (16, 2), 1e-3
    solvers = {**SOLVERS, **SLOW_SOLVERS}

    def runs(k):
      exact = exact_flow(sde, mu, c, initial_state(k, sde, shape), eps)
      return {
        name: [
          solvers[name][0](
            k, sde, score_fn, shape, num_steps=n, eps=eps, schedule="log_snr", **solvers[name][1]
          )[0]
          - exact
          for n in (48, 96)
        ]
        for name in names
      }

    errs = jax.tree.map(np.asarray, jax.jit(runs)(key))
    return {name: [float(np.sqrt(np.mean(e**2))) for e in es] for name, es in errs.items()}


@pytest.fixture(scope="module")
def convergence_errors():
  return _convergence_errors(sorted(SOLVERS))


@pytest.mark.parametrize(
  "name", sorted(SOLVERS) + [pytest.param(n, marks=pytest.mark.slow) for n in sorted(SLOW_SOLVERS)]
)
def test_convergence_order(name, request):
  """log2(err(n) / err(2n)) >= order - 1/2 (n = 48: the rates settle slowly, e.g. 2.1, 2.5, 2.75
  for LMS-3 from n = 12 to 96) on the VP path, uniform log-SNR grid, t in [1e-3, 1]."""
  order = {**SOLVERS, **SLOW_SOLVERS}[name][2]
  if name in SOLVERS:
    errs = request.getfixturevalue("convergence_errors")[name]
  else:
    errs = _convergence_errors([name])[name]
  rate = np.log2(errs[0] / errs[1])
  assert rate >= order - 0.5, (errs, rate)


@pytest.fixture(scope="module")
def order_1_runs():
  """{sde: [(x, nfe) of DDIM, DPM-Solver-1, DPM-Solver++-1]}, 7 Karras steps on the ring mixture
  (x64); one compilation for both SDEs."""
  with jax.enable_x64(True):
    sdes = {"vp": VPSDE(), "ve": VESDE(sigma_min=0.01, sigma_max=10.0)}
    g = G.ring_mixture(4)
    g = G.GaussianMixture(
      g.weights.astype(jnp.float64), g.means.astype(jnp.float64), g.covs.astype(jnp.float64)
    )
    fns = (ddim_sample, ex.dpm_solver_sample, ex.dpm_solver_pp_sample)
    opts = [{}, dict(order=1), dict(order=1)]

    def runs(k):
      return {
        name: [
          f(k, sde, G.marginal_score_fn(g, sde), (32, 2), num_steps=7, schedule="karras", **o)
          for f, o in zip(fns, opts)
        ]
        for name, sde in sdes.items()
      }

    return jax.tree.map(np.asarray, jax.jit(runs)(jax.random.key(1)))


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_dpm_solver_1_is_ddim(sde, order_1_runs):
  """Order 1 in either parametrization is DDIM at eta = 0 (Lu et al. 2022a, section 4.1)."""
  (ref, _), *runs = order_1_runs[sde]
  for x, nfe in runs:
    assert nfe == 7
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-10)


def test_dpm_solver_pp_2m_is_the_published_update_on_ve(x64):
  """Three steps on VE (a = 1, s = sigma, h_i = log(sigma_i / sigma_{i+1})), written out as in
  Lu et al. 2022b, Algorithm 2 (and k-diffusion's sample_dpmpp_2m):
    x_1 = (sigma_1 / sigma_0) x_0 - (e^{-h_0} - 1) D_0,        D_i = x0_hat(x_i, sigma_i)
    x_{i+1} = (sigma_{i+1} / sigma_i) x_i
              - (e^{-h_i} - 1) ((1 + 1/(2 r)) D_i - 1/(2 r) D_{i-1}),
    r = h_{i-1} / h_i.  Then x0_hat at the last point (noise removal)."""
  sde = VESDE(sigma_min=0.002, sigma_max=80.0)
  g = G.ring_mixture(8)
  g = G.GaussianMixture(
    g.weights.astype(jnp.float64), g.means.astype(jnp.float64), g.covs.astype(jnp.float64)
  )
  sf, key, shape = G.marginal_score_fn(g, sde), jax.random.key(2), (16, 2)
  n = 3
  sig = schedules.karras_sigmas(0.002, 80.0, n, 7.0)
  x = initial_state(key, sde, shape)

  def denoised(x, sigma):
    return x + sigma**2 * sf(x, jnp.full(shape[:1], sde.t_of_sigma(sigma)))

  old = None
  for i in range(n):
    d = denoised(x, sig[i])
    h = jnp.log(sig[i]) - jnp.log(sig[i + 1])
    if old is None:
      dd = d
    else:
      r = (jnp.log(sig[i - 1]) - jnp.log(sig[i])) / h
      dd = (1 + 1 / (2 * r)) * d - 1 / (2 * r) * old
    x = sig[i + 1] / sig[i] * x - jnp.expm1(-h) * dd
    old = d
  x = denoised(x, sig[n])
  opts = dict(num_steps=n, order=2, eps=0.0, schedule="karras", lower_order_final=False)
  (ours, nfe), (exact_w, _) = jax.jit(  # one compilation for both weightings
    lambda k: [
      ex.dpm_solver_pp_sample(k, sde, sf, shape, denoise=True, **opts, **w)
      for w in (dict(weights="published"), {})
    ]
  )(key)
  assert nfe == n + 1
  np.testing.assert_allclose(ours, x, rtol=0, atol=1e-9)
  assert float(jnp.max(jnp.abs(exact_w - x))) > 1e-4  # the check can tell the weights apart


SAMPLERS = {
  "dpm_solver_3M": (ex.dpm_solver_sample, dict(order=3)),
  "dpm_solver_3S": (ex.dpm_solver_sample, dict(order=3, multistep=False)),
  "dpm_solver_pp_2M": (ex.dpm_solver_pp_sample, dict(order=2)),
  "dpm_solver_pp_sde": (ex.dpm_solver_pp_sde_sample, dict(order=2)),
  "unipc_3": (ex.unipc_sample, dict(order=3)),
  "lms_4": (ex.lms_sample, dict(order=4)),
}


# x_init of the multistep samplers at their default orders (dpm_solver 3M, dpm_solver_pp 2M, the
# SDE variant, unipc 3, lms 4) is checked by test_sampling_base.py::test_x_init_reproduces_the_key;
# the singlestep loop is only reached here.
X_INIT_SAMPLERS = ["dpm_solver_3S"]
# The state without noise removal (the check can fail): the singlestep loop, and one multistep
# sampler (the one whose default is denoise=True); the other multistep samplers share its
# `denoise` branch (exponential.multistep_loop).
NOISY_SAMPLERS = ["dpm_solver_3S", "dpm_solver_pp_sde"]


@pytest.fixture(scope="module")
def tight_mixture_runs():
  """On components of std 1e-4 (VP, 20 steps to t_eps = 1e-2), for every sampler of SAMPLERS:
  {name: (x0_hat at the end, its nfe, the state at t_eps (NOISY_SAMPLERS, else None), the states
  at t_eps from x_init = initial_state(key) and from initial_state(another key) (X_INIT_SAMPLERS))}.
  One compilation for all."""
  sde, g = VPSDE(), G.ring_mixture(4, std=1e-4)
  sf, key, shape = G.marginal_score_fn(g, sde), jax.random.key(5), (64, 2)
  x_inits = jnp.stack([initial_state(k, sde, shape) for k in (key, jax.random.key(4))])

  def runs(k):
    out = {}
    for name, (fn, opts) in SAMPLERS.items():
      kw = dict(num_steps=20, eps=1e-2, **opts)
      x, nfe = fn(k, sde, sf, shape, denoise=True, **kw)
      noisy = fn(k, sde, sf, shape, denoise=False, **kw)[0] if name in NOISY_SAMPLERS else None
      out[name] = [x, nfe, noisy]
      if name in X_INIT_SAMPLERS:
        run = lambda x0: fn(k, sde, sf, shape, denoise=False, x_init=x0, **kw)[0]
        out[name].append(jax.vmap(run)(x_inits))
    return out

  return np.asarray(g.means), jax.tree.map(np.asarray, jax.jit(runs)(key))


@pytest.mark.parametrize("name", X_INIT_SAMPLERS)
def test_x_init_is_the_state_the_key_draws(name, tight_mixture_runs):
  """sample(key) = sample(key, x_init=initial_state(key)); another x_init changes the result."""
  _, runs = tight_mixture_runs
  _, _, a, (b, c) = runs[name]
  np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)  # float32; the batched copy fuses apart
  assert np.max(np.abs(a - c)) > 1e-2


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_noise_removal_ends_on_the_means(name, tight_mixture_runs):
  """Components of std 1e-4: x0_hat at the end is (up to 1e-3) a component mean, while the state
  at t_eps = 1e-2 on VP still carries noise of std ~ s(1e-2) ~ 0.1 * (its standardized value)."""
  means, runs = tight_mixture_runs
  x, nfe, x_noisy = runs[name][:3]

  def dist(x):
    return np.min(np.linalg.norm(x[:, None] - means[None], axis=-1), axis=1)

  assert np.max(dist(x)) < 1e-3
  assert int(nfe) == ex.nfe_per_step(**SAMPLERS[name][1]) * 20 + 1
  if name in NOISY_SAMPLERS:
    assert np.max(dist(x_noisy)) > 1e-2


def test_loop_in_chunks_equals_one_piece():
  """Running the loop in pieces (the runner's progress bar) gives bitwise the same samples."""
  sde, g = VPSDE(), G.ring_mixture(4)
  sf, key, shape = G.marginal_score_fn(g, sde), jax.random.key(6), (8, 2)
  # The loop is built inside each jit: its grid weights compile faster than they run eagerly.
  build = lambda: ex.unipc_loop(sde, sf, shape, num_steps=6, order=3, denoise=True)
  one = jax.jit(lambda k: run_loop(build(), k)[0])(key)
  carry, run = jax.jit(lambda k: build().init(k))(key), jax.jit(lambda c, i: build().run(c, i))
  for idx in (jnp.arange(0, 2), jnp.arange(2, 4), jnp.arange(4, 6)):
    carry = run(carry, idx)
  np.testing.assert_array_equal(carry[1], one)  # output(carry) = (carry[1], nfe)


def _cfg(**kw):
  from score_sde.config_defaults import get_default_config

  c = get_default_config().sampling
  for k, v in kw.items():
    c[k] = v
  return c


@pytest.mark.parametrize(
  "method", ["dpm_solver", "dpm_solver_pp", "dpm_solver_pp_sde", "unipc", "lms"]
)
def test_config_selects_the_sampler(method):
  """The config builds the method's loop (traced, not compiled: that the loops run and count their
  evaluations is test_sampling_base.py::test_config_sampler_reports_its_nfe)."""
  sde, g = VPSDE(), G.ring_mixture(4)
  build = sampler_from_config(_cfg(method=method, num_steps=5, schedule="log_snr"), sde)
  loops = []

  def run(k):
    loops.append(build(G.marginal_score_fn(g, sde), (4, 2)))
    return run_loop(loops[0], k)

  x, _ = jax.eval_shape(run, jax.random.key(0))
  assert x.shape == (4, 2)
  assert loops[0].nfe == 6  # noise_removal is on by default: one more evaluation
  with pytest.raises(ValueError, match="order"):
    sampler_from_config(_cfg(method=method, order=5), sde)


def test_schedule_file_round_trip(tmp_path):
  """A schedule written as sigmas is read back as the time grid with those sigmas; a file made
  for another number of steps or another SDE is refused before any compute."""
  sde = VESDE(sigma_min=0.002, sigma_max=80.0)
  sig = [80.0, 10.0, 1.0, 0.1, 0.002]
  path = str(tmp_path / "s.json")
  with open(path, "w") as f:
    json.dump(dict(sigmas=sig), f)
  ts = schedules.time_grid(sde, 4, 0.0, path)
  np.testing.assert_allclose(sde.sigma(ts), sig, rtol=1e-5)
  with pytest.raises(ValueError, match="steps"):
    schedules.time_grid(sde, 5, 0.0, path)
  with pytest.raises(ValueError, match="sigma"):
    schedules.time_grid(VESDE(), 4, 0.0, path)
  with pytest.raises(ValueError, match="does not exist"):
    sampler_from_config(_cfg(method="unipc", schedule=str(tmp_path / "missing.json")), sde)


@pytest.fixture(scope="module")
def older_sampler_runs():
  """{name: (x, nfe)} of DDIM (20 steps), EDM Heun and the Heun ODE (10 steps) with `denoise` on
  components of std 1e-4; one compilation for the three."""
  from score_sde.sampling import edm_heun_sample, ode_sample

  fns = {
    "ddim": lambda **kw: ddim_sample(num_steps=20, **kw),
    "edm_heun": lambda **kw: edm_heun_sample(num_steps=10, **kw),
    "ode_heun": lambda **kw: ode_sample(method="heun", num_steps=10, **kw),
  }
  sde, g = VPSDE(), G.ring_mixture(4, std=1e-4)
  sf, key, shape = G.marginal_score_fn(g, sde), jax.random.key(5), (64, 2)
  runs = jax.jit(
    lambda k: {
      n: f(key=k, sde=sde, score_fn=sf, shape=shape, eps=1e-2, denoise=True) for n, f in fns.items()
    }
  )(key)
  return np.asarray(g.means), jax.tree.map(np.asarray, runs)


@pytest.mark.parametrize("name", ["ddim", "edm_heun", "ode_heun"])
def test_noise_removal_ends_on_the_means_older_samplers(name, older_sampler_runs):
  """DDIM, EDM Heun and the ODE sampler with `denoise` also end on x0_hat (one more NFE)."""
  means, runs = older_sampler_runs
  x, nfe = runs[name]
  dist = np.min(np.linalg.norm(x[:, None] - means[None], axis=-1), axis=1)
  assert np.max(dist) < 1e-3
  assert int(nfe) == 21


def test_edm_to_zero_is_the_edm_sampler(x64):
  """to_zero with 18 steps on VE(0.002, 80): EDM Algorithm 1 as printed (sigma_18 = 0, last step
  Euler), 35 NFE."""
  from score_sde.sampling import edm_heun_sample

  sde = VESDE(sigma_min=0.002, sigma_max=80.0)
  g = G.ring_mixture(8)
  g = G.GaussianMixture(
    g.weights.astype(jnp.float64), g.means.astype(jnp.float64), g.covs.astype(jnp.float64)
  )
  sf, key, shape = G.marginal_score_fn(g, sde), jax.random.key(7), (16, 2)
  n = 18
  i = np.arange(n)
  sig = (80.0 ** (1 / 7) + i / (n - 1) * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
  sig = np.append(sig, 0.0)
  denoised = lambda x, s: x + s**2 * sf(x, jnp.full(shape[:1], sde.t_of_sigma(s)))

  x = initial_state(key, sde, shape)
  for k in range(n):
    d = (x - denoised(x, sig[k])) / sig[k]
    x_next = x + (sig[k + 1] - sig[k]) * d
    if k < n - 1:
      d2 = (x_next - denoised(x_next, sig[k + 1])) / sig[k + 1]
      x_next = x + (sig[k + 1] - sig[k]) * 0.5 * (d + d2)
    x = x_next
  ours, nfe = edm_heun_sample(key, sde, sf, shape, num_steps=n, eps=0.0, to_zero=True)
  assert nfe == 35
  np.testing.assert_allclose(ours, x, rtol=0, atol=1e-9)


def test_ancestral_beta_tilde_reproduces_a_gaussian():
  """DDPM ancestral sampling (1000 steps) with the posterior variance beta-tilde and the exact
  score of N(mu, diag(c)) returns that Gaussian: mean within 5 SE = 5 sqrt(c / n), variance within
  5 SE = 5 c sqrt(2 / n) plus 2% for the discretisation."""
  from score_sde.sampling import pc_sample

  sde, (_, mu, c) = VPSDE(), gaussian(jnp.float32)
  n = 20000
  x, _ = jax.jit(
    lambda k: pc_sample(
      k,
      sde,
      gaussian_score(sde, mu, c),
      (n, 2),
      predictor="ancestral_sampling",
      ancestral_variance="beta_tilde",
    )
  )(jax.random.key(8))
  x = np.asarray(x, np.float64)
  mu, c = np.asarray(mu), np.asarray(c)
  assert np.all(np.abs(x.mean(0) - mu) <= 5 * np.sqrt(c / n) + 0.02 * np.sqrt(c))
  cov = np.cov(x.T)
  assert np.all(np.abs(np.diag(cov) - c) <= 5 * c * np.sqrt(2 / n) + 0.02 * c)
  assert abs(cov[0, 1]) <= 5 * np.sqrt(c[0] * c[1] / n)


@pytest.mark.slow  # optimises a grid (many sampler runs); the schedule file round trip is fast
def test_optimized_schedule_lowers_the_path_error_and_loads(tmp_path):
  """Adam through a 4-step UniPC lowers the path error against the tight solve; the file it
  writes is a schedule `sampling.schedule` accepts, and gives the fitted error."""
  from score_sde.sampling import optimize_schedule as O

  sde, g = VESDE(sigma_min=0.002, sigma_max=80.0), G.ring_mixture(8)
  sf, shape = G.marginal_score_fn(g, sde), (32, 2)
  x_T = initial_state(jax.random.key(9), sde, shape)
  ref = jax.jit(lambda x: O.tight_solve(sde, sf, x, 0.0, tol=1e-5))(x_T)
  fn = O.sampler_with_grid("unipc", sde, sf, shape, num_steps=4, order=2, eps=0.0, denoise=True)
  sigmas, hist = O.optimize(fn, sde, x_T, ref, 4, 0.0, iters=30, lr=0.1)
  first, best = hist[0][1], min(h[1] for h in hist)
  assert best < 0.8 * first, (first, best)
  path = str(tmp_path / "s.json")
  O.write(path, sigmas)
  x, _ = jax.jit(
    lambda x_T: ex.unipc_sample(
      jax.random.key(0),
      sde,
      sf,
      shape,
      num_steps=4,
      order=2,
      eps=0.0,
      denoise=True,
      schedule=path,
      x_init=x_T,
    )
  )(x_T)
  np.testing.assert_allclose(float(jnp.mean(jnp.sum((x - ref) ** 2, -1))), best, rtol=1e-3)


def test_ode_reports_accepted_and_rejected_steps():
  """tsit5 makes 6 evaluations per step tried (+1 at the start, FSAL): NFE = 6 (accepted +
  rejected) + 1; the per-sample norm needs at least the steps of the batch RMS norm."""
  from score_sde.sampling import ode_sample

  sde, g = VPSDE(), G.ring_mixture(4)
  sf, key, shape = G.marginal_score_fn(g, sde), jax.random.key(10), (64, 2)
  run = jax.jit(  # one compilation for both norms
    lambda: [
      ode_sample(key, sde, sf, shape, rtol=1e-3, atol=1e-3, per_sample=per, return_stats=True)
      for per in (True, False)
    ]
  )
  (_, nfe, st), (_, _, st_batch) = run()
  assert int(nfe) == 6 * (int(st["accepted"]) + int(st["rejected"])) + 1
  assert int(st["accepted"]) >= int(st_batch["accepted"])
