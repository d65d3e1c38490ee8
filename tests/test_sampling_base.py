"""The sampler protocol across the registries: every SDE with every sampler under jit, the time
schedules, the key -> x_T rule and x_init, and the NFE each sampler reports."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import gmm as G, sde as sde_lib
from score_sde.config_defaults import get_default_config
from score_sde.sampling import base, schedules
from score_sde.sampling.dispatch import SAMPLERS, get_sampler, nfe_of, sampler_from_config

MU, STD = np.array([1.0, -0.5], np.float32), 0.5
# Few steps: these tests check the protocol, not the accuracy (the mixture tests do that).
OPTS = {
  "pc": dict(num_steps=40),
  "ode": dict(rtol=1e-3, atol=1e-3),
  "edm_heun": dict(num_steps=10),
  "ddim": dict(num_steps=20),
}


def gaussian():
  return G.GaussianMixture(
    jnp.ones(1), jnp.asarray(MU)[None], jnp.asarray(STD**2 * np.eye(2, dtype=np.float32))[None]
  )


def opts_for(name, schedule=None):
  """Few-step options (a sampler added later runs with its own defaults); `schedule` where the
  sampler takes one."""
  opts = dict(OPTS.get(name, {}))
  entry = get_sampler(name)
  if (
    schedule is not None and "schedule" in inspect.signature(entry.loop or entry.sample).parameters
  ):
    opts["schedule"] = schedule
  return opts


# The fast suite runs two samplers through every check below, the slow stage all of them: "pc"
# (the release's loop and the SDEs' own discretisations) and "dpm_solver" (log-SNR and its
# inverse on every SDE, the exponential integrators' shared step weights).
FAST_SAMPLERS = ("pc", "dpm_solver")
EVERY_SAMPLER = [
  s if s in FAST_SAMPLERS else pytest.param(s, marks=pytest.mark.slow) for s in sorted(SAMPLERS)
]


@functools.lru_cache(maxsize=None)
def sampler_runs(sampler):
  """Everything the per-sampler tests below check, in one compilation (about half the compile time
  of one per test; the loops are built outside it, so the grids' weights are computed once, as
  constants, rather than compiled into every copy):
    'sdes': [(x, nfe)] on every SDE (sorted names), 256 samples, log-SNR grid, key 0;
    'key': samples on VP (16, same options) from keys 3 and 4;  'x_init': from x_init =
      initial_state(key 3) with keys 3 and 9;  'config': (x, nfe) of the default config's loop,
      3 samples, with the score evaluations it made counted in 'calls'."""
  entry = get_sampler(sampler)
  opts = opts_for(sampler, schedule="log_snr")
  sdes = [sde_lib.get_sde(n) for n in sorted(sde_lib.SDES)]
  sde_loops = [
    entry.loop(sde, G.marginal_score_fn(gaussian(), sde), (256, 2), **opts) for sde in sdes
  ]
  vp = sde_lib.VPSDE()
  score = G.marginal_score_fn(gaussian(), vp)
  x_init = base.initial_state(jax.random.key(3), vp, (16, 2))
  key_loop = entry.loop(vp, score, (16, 2), **opts)
  init_loop = entry.loop(vp, score, (16, 2), x_init=x_init, **opts)
  calls = []

  def counting(x, t):
    jax.debug.callback(lambda: calls.append(1))
    return score(x, t)

  cfg = get_default_config().sampling
  cfg.method = sampler
  # The exponential samplers' default number of steps: the grids' weights, computed eagerly, reuse
  # the operations compiled for the loops above (same shapes).
  cfg.num_steps = None if sampler == "ode" else 20
  config_loop = sampler_from_config(cfg, vp)(counting, (3, 2))

  def runs(k):
    draw = lambda loop: jax.vmap(lambda k: base.run_loop(loop, k)[0])
    return dict(
      sdes=[base.run_loop(loop, k) for loop in sde_loops],
      key=draw(key_loop)(jnp.stack([jax.random.key(3), jax.random.key(4)])),
      x_init=draw(init_loop)(jnp.stack([jax.random.key(3), jax.random.key(9)])),
      config=base.run_loop(config_loop, k),
    )

  out = jax.tree.map(np.asarray, jax.jit(runs)(jax.random.key(0)))
  jax.effects_barrier()
  return dict(out, calls=len(calls), config_loop=config_loop, cfg=cfg)


@pytest.mark.parametrize("sampler", EVERY_SAMPLER)
def test_every_sde_samples_with_every_sampler_under_jit(sampler):
  """2-D Gaussian data with its exact score: finite samples near the data mean and std, on every
  registered SDE. Grids uniform in log-SNR (uniform in t is far too coarse at low noise on the EDM
  path's [0, 80])."""
  for sde_name, (x, nfe) in zip(sorted(sde_lib.SDES), sampler_runs(sampler)["sdes"]):
    assert x.shape == (256, 2) and np.all(np.isfinite(x)), (sde_name, sampler)
    assert int(nfe) > 0, (sde_name, sampler)
    # 256 samples: the mean's standard error is 0.03; allow for the few steps' bias.
    np.testing.assert_allclose(x.mean(0), MU, atol=0.25, err_msg=f"{sde_name}, {sampler}")
    assert 0.5 * STD < x.std(0).mean() < 2.0 * STD, (sde_name, sampler)


@pytest.mark.parametrize("sampler", EVERY_SAMPLER)
def test_x_init_reproduces_the_key(sampler):
  """x_init = base.initial_state(key) with the same key gives the same samples (up to XLA's
  rounding of the fused prior draw); for a deterministic run, any key does."""
  runs = sampler_runs(sampler)
  (from_key, other_key), (from_init, other_init) = runs["key"], runs["x_init"]
  np.testing.assert_allclose(from_key, from_init, rtol=1e-5, atol=1e-6)
  if sampler in ("ode", "ddim", "edm_heun"):  # deterministic at these defaults
    np.testing.assert_array_equal(from_init, other_init)
  assert not np.array_equal(from_key, other_key)


@pytest.mark.parametrize("schedule", sorted(schedules.SCHEDULES))
@pytest.mark.parametrize("sde_name", sorted(sde_lib.SDES))
def test_schedules_are_monotone_with_exact_ends(schedule, sde_name):
  sde = sde_lib.get_sde(sde_name)
  eps = 1e-3
  ts = np.asarray(schedules.time_grid(sde, 12, eps, schedule))
  assert ts.shape == (13,)
  assert ts[0] == np.float32(sde.T) and ts[-1] == np.float32(eps)
  assert np.all(np.diff(ts) < 0)


def test_schedules_are_uniform_in_their_variable(x64):
  """uniform: equal steps in t; log_snr: equal steps in lambda; karras: in sigma^(1/rho)."""
  sde, eps, n = sde_lib.VPSDE(), 1e-3, 10
  ts = schedules.uniform(sde, n, eps)
  np.testing.assert_allclose(np.diff(ts), -(sde.T - eps) / n, rtol=1e-12)
  lam = sde.log_snr(schedules.log_snr(sde, n, eps))
  np.testing.assert_allclose(np.diff(lam), np.diff(lam)[0], rtol=1e-9)
  u = sde.sigma(schedules.karras(sde, n, eps, rho=7.0)) ** (1 / 7)
  np.testing.assert_allclose(np.diff(u), np.diff(u)[0], rtol=1e-9)


def test_unknown_names_list_the_choices():
  with pytest.raises(ValueError, match=r"unknown schedule 'no_such'; choose from \["):
    schedules.time_grid(sde_lib.VPSDE(), 5, 1e-3, "no_such")
  cfg = get_default_config().sampling
  cfg.schedule = "no_such"
  with pytest.raises(ValueError, match="unknown schedule 'no_such'"):
    sampler_from_config(cfg, sde_lib.VPSDE())
  with pytest.raises(ValueError, match=r"unknown sampling method 'no_such'; choose from \["):
    get_sampler("no_such")


def test_pc_steps_end_on_the_grid():
  """The predictor is evaluated at t_0 = T, ..., t_{n-1} and steps to t_n = eps: the step sizes
  add up to T - eps (the release's dt = -(T - eps)/n on linspace(T, eps, n) ends below eps)."""
  from score_sde.sampling import pc

  seen = []
  steps = []
  name = "test_record"

  def record(key, sde, score_fn, x, t, t_next, probability_flow=False):
    jax.debug.callback(
      lambda a, b: (seen.append(float(a[0])), steps.append(float(b[0] - a[0]))), t, t_next
    )
    return x, x

  pc.register_predictor(name, 0)(record)
  try:
    sde = sde_lib.VPSDE()
    x, _ = pc.pc_sample(
      jax.random.key(0), sde, lambda x, t: -x, (2, 2), predictor=name, num_steps=7, eps=1e-3
    )
    jax.block_until_ready(x)
    jax.effects_barrier()
  finally:
    del pc.PREDICTORS[name], pc.PREDICTOR_NFE[name]
  np.testing.assert_allclose(seen, np.linspace(1.0, 1e-3, 8)[:-1], rtol=1e-6)
  np.testing.assert_allclose(sum(steps), -(1.0 - 1e-3), rtol=1e-6)


@pytest.mark.parametrize("sampler", EVERY_SAMPLER)
def test_config_sampler_reports_its_nfe(sampler):
  """The table's NFE (steps x NFE per step) is what the run reports and the score calls made."""
  runs = sampler_runs(sampler)
  _, nfe = runs["config"]
  loop, cfg = runs["config_loop"], runs["cfg"]
  assert int(nfe) == runs["calls"]
  if loop.nfe is not None:
    assert loop.nfe == int(nfe)
    entry = get_sampler(sampler)
    assert (
      nfe_of(
        entry,
        num_steps=20,
        predictor=cfg.predictor,
        corrector=cfg.corrector,
        n_steps=cfg.n_steps_each,
        method=cfg.ode_method,
        denoise=cfg.noise_removal,
      )
      == loop.nfe
    )
