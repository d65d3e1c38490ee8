"""Deterministic and fast samplers (probability-flow ODE, EDM Heun, DDIM) against exact answers.

The exact mixture score (score_sde.gmm) stands in for a network, so a sampler's error is its own:
the samples must reproduce the mixture (same tolerances as the PC tests, from the sample size),
the fixed-step solvers must converge at their order, and the ODE must be invertible.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_sampling_pc import N_SAMPLES, SDES, assert_reproduces, separated_mixture

from score_sde import gmm as G, ode
from score_sde.sampling import ddim_sample, edm_heun_sample, ode_sample, schedules
from score_sde.sde import VPSDE, SubVPSDE

SAMPLERS = {
  "ode_tsit5": lambda k, sde, sf, shape: ode_sample(k, sde, sf, shape, rtol=1e-4, atol=1e-4),
  "edm_heun": lambda k, sde, sf, shape: edm_heun_sample(k, sde, sf, shape, num_steps=40),
  "edm_heun_churn": lambda k, sde, sf, shape: edm_heun_sample(
    k, sde, sf, shape, num_steps=80, s_churn=20.0, s_min=0.05, s_max=50.0
  ),
  "ddim_eta0": lambda k, sde, sf, shape: ddim_sample(k, sde, sf, shape, num_steps=200),
  "ddim_eta1": lambda k, sde, sf, shape: ddim_sample(k, sde, sf, shape, num_steps=300, eta=1.0),
}


# Each sampler on one SDE in the fast suite (every SDE at least twice); the other pairs in the
# slow stage.
FAST_PAIRS = (
  ("ddim_eta0", "vp"),
  ("ddim_eta1", "ve"),
  ("edm_heun", "ve"),
  ("edm_heun_churn", "subvp"),
  ("ode_tsit5", "subvp"),
  ("ode_tsit5", "vp"),
)
SLOW_PAIRS = tuple(
  (name, sde_name)
  for name in sorted(SAMPLERS)
  for sde_name in sorted(SDES)
  if (name, sde_name) not in FAST_PAIRS
)


def _mixture_runs(pairs, ode_half=False):
  """{(sampler, sde): (x, nfe)} and, with ode_half, the ODE stopped halfway (t_eps = 0.3, VP)
  under ("ode_half", "vp"): one compilation for all (less compile time than one per pair)."""
  g = separated_mixture(2)
  scores = {n: G.marginal_score_fn(g, sde) for n, sde in SDES.items()}

  def runs(k):
    out = {(name, n): SAMPLERS[name](k, SDES[n], scores[n], (N_SAMPLES, 2)) for name, n in pairs}
    if ode_half:
      out["ode_half", "vp"] = ode_sample(k, SDES["vp"], scores["vp"], (N_SAMPLES, 2), eps=0.3)
    return out

  return g, jax.tree.map(np.asarray, jax.jit(runs)(jax.random.key(3)))


@pytest.fixture(scope="module")
def mixture_samples():
  return _mixture_runs(FAST_PAIRS, ode_half=True)


@pytest.fixture(scope="module")
def slow_mixture_samples():
  return _mixture_runs(SLOW_PAIRS)


def _check_pair(sampler, sde_name, runs, g):
  x, nfe = runs[sampler, sde_name]
  assert int(nfe) > 0
  try:
    assert_reproduces(g, x)
  except AssertionError as e:
    raise AssertionError(f"{sampler} on {sde_name}: {e}") from e


@pytest.mark.parametrize("sampler,sde_name", FAST_PAIRS)
def test_sampler_reproduces_the_mixture(sampler, sde_name, mixture_samples):
  g, runs = mixture_samples
  _check_pair(sampler, sde_name, runs, g)


@pytest.mark.slow
@pytest.mark.parametrize("sampler,sde_name", SLOW_PAIRS)
def test_sampler_reproduces_the_mixture_on_every_sde(sampler, sde_name, slow_mixture_samples):
  g, runs = slow_mixture_samples
  _check_pair(sampler, sde_name, runs, g)


def test_sampler_check_can_fail(mixture_samples):
  """Stopping the ODE halfway leaves visibly noisier samples: the mixture check must reject them."""
  g, runs = mixture_samples
  with pytest.raises(AssertionError):
    assert_reproduces(g, runs["ode_half", "vp"][0])


def _order(errors, step_sizes):
  """Slope of log error against log step size (the observed convergence order)."""
  return np.polyfit(np.log(step_sizes), np.log(errors), 1)[0]


FIXED_STEP_METHODS = (("euler", 1, 0.85, 1.2), ("heun", 2, 1.75, 2.3), ("rk4", 4, 3.3, 4.6))
FIXED_STEPS = np.array([32, 64, 128, 256])


@functools.lru_cache(maxsize=None)
def fixed_step_errors():
  """{sde: [method][level] max error} of the fixed-step solves against dopri8 (x64). The step
  count is traced: one compilation for every n, both SDEs and their references."""
  jax.config.update("jax_enable_x64", True)
  try:
    g = separated_mixture(2)
    sdes = {"vp": VPSDE(), "subvp": SubVPSDE()}
    problems = {
      name: (G.marginal_score_fn(g, sde), sde.prior_sample(jax.random.key(0), (256, 2)))
      for name, sde in sdes.items()
    }

    def pf(sde, name, **kw):
      score_fn, x_T = problems[name]
      return ode.solve_probability_flow(sde, score_fn, x_T, sde.T, 0.05, **kw)[0]

    def errors(n):
      out = {}
      for name, sde in sdes.items():
        ref = pf(sde, name, method="dopri8", rtol=1e-12, atol=1e-12)
        out[name] = [
          jnp.max(jnp.abs(pf(sde, name, method=m, num_steps=n) - ref))
          for m, *_ in FIXED_STEP_METHODS
        ]
      return out

    run = jax.jit(errors)
    errs = [jax.tree.map(float, run(int(n))) for n in FIXED_STEPS]
    return {name: np.array([e[name] for e in errs]).T for name in sdes}
  finally:
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("sde", ["vp", "subvp"])
def test_fixed_step_solvers_converge_at_their_order(sde):
  """Same x_T, fixed steps n = 32..256 from T to eps = 0.05: Euler's error halves per halving of
  the step (order 1), Heun's quarters (order 2), RK4 drops 16x (order 4), against a tight dopri8
  reference. eps keeps the problem out of the stiff region near t = 0, where the asymptotic
  regime would need far more steps. (VE, uniform in t, reaches it only beyond ~500 Euler steps:
  its sigma(t) spans three decades.)"""
  for (method, order, lo, hi), e in zip(FIXED_STEP_METHODS, fixed_step_errors()[sde]):
    assert lo <= _order(e, 1.0 / FIXED_STEPS) <= hi, (method, e)


def test_edm_heun_is_second_order(x64):
  """The EDM sampler (deterministic) on the Karras schedule: error / 4 per doubling of the steps."""
  sde = VPSDE()
  g = separated_mixture(2)
  score_fn = G.marginal_score_fn(g, sde)
  key = jax.random.key(0)
  steps = np.array([64, 128, 256, 512])
  # The reference (4096 steps) and every level in one compilation (cheaper than one each).
  ref, *runs = jax.jit(
    lambda: [
      edm_heun_sample(key, sde, score_fn, (256, 2), num_steps=int(n), eps=0.05)[0]
      for n in (4096, *steps)
    ]
  )()
  err = np.array([float(jnp.max(jnp.abs(x - ref))) for x in runs])
  assert 1.75 <= _order(err, 1.0 / steps) <= 2.4, err


@functools.lru_cache(maxsize=None)
def round_trips():
  """{sde: (x0, z, back)}: x0 -> x_T -> x0 along the probability-flow ODE (x64, rtol = atol =
  1e-9); the end times are traced: one compilation for both ways and every SDE."""
  jax.config.update("jax_enable_x64", True)
  try:
    g = separated_mixture(2)
    x0 = g.sample(jax.random.key(1), 128).astype(jnp.float64)

    def solve(xs, t0, t1):
      return {
        name: ode.solve_probability_flow(
          sde, G.marginal_score_fn(g, sde), xs[name], t0, t1, rtol=1e-9, atol=1e-9
        )[0]
        for name, sde in SDES.items()
      }

    run = jax.jit(solve)
    assert all(sde.T == 1.0 for sde in SDES.values())
    z = run({n: x0 for n in SDES}, 1e-3, 1.0)
    back = run(z, 1.0, 1e-3)
    return {n: (np.asarray(x0), np.asarray(z[n]), np.asarray(back[n])) for n in SDES}
  finally:
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_probability_flow_encode_decode_round_trip(sde_name):
  """x0 -> x_T -> x0 along the same ODE returns the input to solver tolerance."""
  x0, z, back = round_trips()[sde_name]
  assert np.max(np.abs(z - x0)) > 0.5  # it went somewhere
  np.testing.assert_allclose(back, x0, atol=1e-5)


def test_ode_and_ddim_eta0_are_deterministic():
  sde, g = SDES["vp"], separated_mixture(2)
  sf = G.marginal_score_fn(g, sde)
  run = jax.jit(  # one compilation for both samplers, called twice
    lambda k: [ode_sample(k, sde, sf, (64, 2))[0], ddim_sample(k, sde, sf, (64, 2))[0]]
  )
  for a, b in zip(run(jax.random.key(5)), run(jax.random.key(5))):
    np.testing.assert_array_equal(a, b)


def test_karras_sigmas_endpoints_and_monotone():
  s = schedules.karras_sigmas(0.002, 80.0, 18, rho=7.0)
  assert s.shape == (19,)
  np.testing.assert_allclose([s[0], s[-1]], [80.0, 0.002], rtol=1e-5)
  assert bool(jnp.all(jnp.diff(s) < 0))


def test_ddim_eta1_noise_is_the_posterior_variance():
  """With eta = 1 and the exact x0, one DDIM step samples q(x_t' | x_t, x0): for a point mass at 0
  (score = -x / s^2), x_t' = (s'^2 a / (s^2 a')) ... reduces to variance s'^2 (1 - a^2 s'^2/(a'^2 s^2))
  + mean from the x0 = 0 prediction; check the per-step mean and variance on many draws."""
  sde = VPSDE()
  score_fn = lambda x, t: -x / sde.alpha_sigma(t)[1][:, None] ** 2  # data = a point mass at 0
  # From the prior with one step to eps: mean 0, variance s(eps)^2 (exact for a point mass).
  x, _ = jax.jit(
    lambda k: ddim_sample(k, sde, score_fn, (20000, 1), num_steps=1, eta=1.0, eps=0.5)
  )(jax.random.key(0))
  s_eps = float(sde.alpha_sigma(0.5)[1])
  np.testing.assert_allclose(float(jnp.mean(x)), 0.0, atol=5 * s_eps / np.sqrt(20000))
  np.testing.assert_allclose(float(jnp.var(x)), s_eps**2, rtol=5 * np.sqrt(2 / 20000))


def test_invalid_inputs_fail_clearly():
  sde, g = SDES["vp"], separated_mixture(2)
  sf = G.marginal_score_fn(g, sde)
  with pytest.raises(ValueError, match="num_steps"):
    edm_heun_sample(jax.random.key(0), sde, sf, (4, 2), num_steps=0)
  with pytest.raises(ValueError, match="num_steps"):
    ddim_sample(jax.random.key(0), sde, sf, (4, 2), num_steps=0)
  with pytest.raises(ValueError, match="unknown ODE solver"):
    ode_sample(jax.random.key(0), sde, sf, (4, 2), method="no_such")
  with pytest.raises(ValueError, match="fixed-step"):
    ode_sample(jax.random.key(0), sde, sf, (4, 2), method="heun")


@pytest.mark.parametrize("sde_name", ["ve", "vp", pytest.param("subvp", marks=pytest.mark.slow)])
def test_fixed_step_ode_default_grid_is_edms(sde_name):
  """Heun, 25 steps, the same x_T, against a tight tsit5 solve on data of std 0.03 (where the
  grid's steps at small t decide the error): the default grid (EDM's, `karras`) beats
  the uniform t grid by over 5x (RMS) on VP and VE (measured: 23x and 45x) and is within 25% of
  it on sub-VP (measured: 1.06x)."""
  g = G.GaussianMixture(
    jnp.array([0.5, 0.3, 0.2]),
    jnp.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]]),
    jnp.stack([jnp.eye(2) * 0.03**2] * 3),
  )
  sde = SDES[sde_name]
  sf = G.marginal_score_fn(g, sde)

  def errors(key):
    x_T = sde.prior_sample(key, (256, 2))
    ref = ode.solve_probability_flow(sde, sf, x_T, sde.T, 1e-3, rtol=1e-6, atol=1e-6)[0]

    def rms(**kw):
      x = ode_sample(key, sde, sf, (256, 2), method="heun", num_steps=25, x_init=x_T, **kw)[0]
      return jnp.sqrt(jnp.mean(jnp.square(x - ref)))

    return rms(), rms(schedule="uniform")

  default, uniform = map(float, jax.jit(errors)(jax.random.key(0)))
  bound = 1.25 * uniform if sde_name == "subvp" else uniform / 5
  assert default < bound, (sde_name, default, uniform)
