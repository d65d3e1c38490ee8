"""The forward SDEs: moment equations, Monte Carlo marginals, discrete chains, general-path form."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from score_sde import sde as sde_lib

# Every registered SDE with its defaults; VE with a smaller sigma_max (fewer Monte Carlo steps).
SDES = {name: (lambda name=name: sde_lib.get_sde(name)) for name in sde_lib.SDES}
SDES["vesde"] = lambda: sde_lib.VESDE(sigma_min=0.01, sigma_max=10.0)


@pytest.mark.parametrize("name", SDES)
def test_moment_equations(name, x64):
  """m = a x0 and v = s^2 solve m' = f m and v' = 2 f v + g^2 (notes 003)."""
  sde = SDES[name]()
  t = jnp.linspace(0.02, 0.95 * sde.T, 37)
  a = lambda t: sde.alpha_sigma(t)[0]
  v = lambda t: sde.alpha_sigma(t)[1] ** 2
  a_val, da = jax.jvp(a, (t,), (jnp.ones_like(t),))
  v_val, dv = jax.jvp(v, (t,), (jnp.ones_like(t),))
  np.testing.assert_allclose(da, sde.f(t) * a_val, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(dv, 2 * sde.f(t) * v_val + sde.g2(t), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", SDES)
def test_general_path_form_agrees(name, x64):
  """Every SDE's closed-form f, g^2 equal those derived by autodiff from its a(t), s(t) alone."""
  sde = SDES[name]()
  path = sde_lib.as_gaussian_path(sde)
  t = jnp.linspace(1e-3, 0.99, 50) * sde.T
  np.testing.assert_allclose(path.f(t), sde.f(t), rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(path.g2(t), sde.g2(t), rtol=1e-9, atol=1e-12)
  x = jnp.ones((50, 3))
  for u, w in zip(path.marginal_prob(x, t), sde.marginal_prob(x, t)):
    np.testing.assert_allclose(u, w, rtol=1e-12)


@pytest.mark.parametrize("name", SDES)
def test_monte_carlo_matches_marginal(name):
  """Euler-Maruyama paths of the forward SDE have the mean and std of marginal_prob."""
  sde = SDES[name]()
  n, steps, x0 = 20000, 1000, 1.5
  key = jax.random.key(0)
  s0 = sde.alpha_sigma(0.0)[1]  # VE starts from x0 + sigma_min z (see VESDE docstring)
  x = x0 + s0 * jax.random.normal(key, (n, 1))
  # Paths with a(T) -> 0 have f = a'/a blowing up there; stop where Euler-Maruyama is accurate.
  t_end = 0.9 * sde.T if float(sde.alpha_sigma(sde.T)[0]) < 0.01 else sde.T
  dt = t_end / steps

  def step(x, i):
    t = jnp.full((n,), i * dt)
    drift, g = sde.sde(x, t)
    z = jax.random.normal(jax.random.fold_in(key, i + 1), x.shape)
    return x + drift * dt + g[:, None] * math.sqrt(dt) * z, None

  x, _ = jax.lax.scan(step, x, jnp.arange(steps))
  mean, std = sde.marginal_prob(jnp.full((1, 1), x0), jnp.full((1,), t_end))
  mean, std = float(mean[0, 0]), float(std[0])
  # 5 standard errors of the Monte Carlo estimates, plus O(dt) discretisation bias.
  tol_mean = 5 * std / math.sqrt(n) + 2 * dt * (abs(mean) + std)
  tol_std = 5 * std / math.sqrt(2 * n) + 2 * dt * std
  assert abs(float(jnp.mean(x)) - mean) < tol_mean
  assert abs(float(jnp.std(x)) - std) < tol_std


def test_vp_discretize_is_ddpm():
  """The VP chain has DDPM's beta_i = beta_min/N + i/(N-1) (beta_max - beta_min)/N."""
  sde = sde_lib.VPSDE(beta_min=0.1, beta_max=20.0, N=1000)
  i = np.arange(sde.N)
  beta = 0.1 / 1000 + i / 999 * (20.0 - 0.1) / 1000
  x = jnp.full((sde.N, 2), 3.0)
  f, G = sde.discretize(x, jnp.asarray(i / 999 * sde.T, jnp.float32))
  np.testing.assert_allclose(G**2, beta, rtol=1e-5)
  np.testing.assert_allclose(
    f[:, 0], (np.sqrt(1 - beta) - 1) * 3.0, rtol=1e-4, atol=1e-6
  )  # float32 cancellation in sqrt(1 - beta) x - x
  np.testing.assert_allclose(sde.chain.alphas_cumprod, np.cumprod(1 - beta), rtol=1e-4)


def test_ve_discretize_is_smld():
  """The VE chain adds variance sigma_i^2 - sigma_{i-1}^2, so after step i the variance is sigma_i^2."""
  sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0, N=100)
  sigmas = np.exp(np.linspace(np.log(0.01), np.log(50.0), 100))
  np.testing.assert_allclose(sde.chain.sigmas, sigmas, rtol=1e-5)
  i = np.arange(sde.N)
  f, G = sde.discretize(jnp.ones((sde.N, 2)), jnp.asarray(i / 99, jnp.float32))
  assert np.all(np.asarray(f) == 0)
  np.testing.assert_allclose(np.cumsum(np.asarray(G, np.float64) ** 2), sigmas**2, rtol=1e-4)


@pytest.mark.parametrize("name", SDES)
def test_prior_logp_is_gaussian(name):
  sde = SDES[name]()
  z = sde.prior_sample(jax.random.key(1), (4, 3, 2))
  expected = stats.norm(0, sde.prior_std).logpdf(np.asarray(z)).reshape(4, -1).sum(1)
  np.testing.assert_allclose(sde.prior_logp(z), expected, rtol=1e-5)


def test_reverse_sde_drifts():
  """Reverse SDE drift is f x - g^2 score; the probability-flow ODE uses half of it and no noise."""
  sde = sde_lib.VPSDE()
  score_fn = lambda x, t: -x
  x, t = jnp.ones((2, 3)), jnp.array([0.3, 0.7])
  f, g = sde.sde(x, t)
  drift, diff = sde.reverse(score_fn).sde(x, t)
  np.testing.assert_allclose(drift, f + (g**2)[:, None] * x, rtol=1e-6)
  drift, diff = sde.reverse(score_fn, probability_flow=True).sde(x, t)
  np.testing.assert_allclose(drift, f + 0.5 * (g**2)[:, None] * x, rtol=1e-6)
  assert np.all(np.asarray(diff) == 0)


def test_unknown_sde_lists_choices():
  with pytest.raises(ValueError, match=r"unknown SDE 'no_such'; choose from \[") as err:
    sde_lib.get_sde("no_such")
  assert all(repr(name) in str(err.value) for name in sde_lib.SDES)


@pytest.mark.parametrize("name", SDES)
def test_sigma_and_log_snr_inverses_round_trip(name, x64):
  """t_of_sigma(sigma(t)) = t and t_of_log_snr(lambda(t)) = t, with sigma = s/a, lambda = log(a/s)."""
  sde = SDES[name]()
  t = jnp.linspace(1e-3, 0.99, 40) * sde.T
  a, s = sde.alpha_sigma(t)
  np.testing.assert_allclose(sde.sigma(t), s / a, rtol=1e-12)
  np.testing.assert_allclose(sde.log_snr(t), np.log(a) - np.log(s), rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(sde.t_of_sigma(sde.sigma(t)), t, rtol=1e-9, atol=1e-12 * sde.T)
  np.testing.assert_allclose(sde.t_of_log_snr(sde.log_snr(t)), t, rtol=1e-9, atol=1e-12 * sde.T)
  assert np.all(np.diff(np.asarray(sde.sigma(t))) > 0)


@pytest.mark.parametrize("name", SDES)
def test_generic_inverse_agrees_with_closed_form(name, x64):
  """The bisection of the interface reproduces each SDE's closed-form t(sigma)."""
  sde = SDES[name]()
  t = jnp.linspace(1e-2, 0.98, 9) * sde.T
  generic = sde_lib.LinearSDE.t_of_sigma(sde, sde.sigma(t))
  np.testing.assert_allclose(generic, sde.t_of_sigma(sde.sigma(t)), rtol=1e-9, atol=1e-12 * sde.T)


@pytest.mark.parametrize("name", SDES)
def test_prior_and_coefficients_under_jit(name):
  """Everything a sampler asks of the SDE traces under jit (the cosine prior failed there)."""
  sde = SDES[name]()
  t = jnp.full((3,), 0.5 * sde.T)
  out = jax.jit(
    lambda k, t: (
      sde.prior_sample(k, (3, 2)) * sde.prior_std,
      sde.sigma(t),
      sde.log_snr(t),
      sde.t_of_sigma(sde.sigma(t)),
      sde.noise_label(t),
      sde.g2(t),
      sde.f(t),
    )
  )(jax.random.key(0), t)
  assert all(np.all(np.isfinite(np.asarray(v))) for v in out)


def test_new_paths_closed_forms(x64):
  """linear: a = 1 - t, s = t, lambda = log((1 - t)/t); EDM: a = 1, s = t, g^2 = 2 t."""
  t = jnp.array([0.1, 0.5, 0.9])
  lin, edm = sde_lib.LinearPath(), sde_lib.EDMPath()
  np.testing.assert_allclose(lin.alpha_sigma(t), (1 - t, t), rtol=1e-15)
  np.testing.assert_allclose(lin.log_snr(t), np.log((1 - t) / t), rtol=1e-12)
  np.testing.assert_allclose(lin.g2(t), 2 * t / (1 - t), rtol=1e-12)
  np.testing.assert_allclose(edm.alpha_sigma(t * 80), (np.ones(3), t * 80), rtol=1e-15)
  np.testing.assert_allclose(edm.g2(t), 2 * t, rtol=1e-15)
  assert edm.T == edm.prior_std == 80.0


def test_cosine_std_is_cancellation_free_in_float32():
  """Deviation 5 of issue 11: s(t) of the cosine path at t = 1e-5 in float32 matches float64's
  sqrt(1 - a^2) (the old float32 form gave 0.959 of it), and s is increasing near 0."""
  off = 0.008
  u = lambda t: 0.5 * np.pi * (t + off) / (1 + off)
  exact = lambda t: np.sqrt(1 - (np.cos(u(t)) / np.cos(u(0.0))) ** 2)
  sde = sde_lib.CosinePath(offset=off)
  t = np.array([1e-5, 2e-5, 5e-5, 1e-4], np.float32)
  s = np.asarray(sde.alpha_sigma(jnp.asarray(t))[1])
  assert s.dtype == np.float32
  np.testing.assert_allclose(s, exact(t.astype(np.float64)), rtol=1e-5)
  assert np.all(np.diff(s) > 0)


def test_ve_discrete_label_is_the_release_level_index():
  """Deviation 1 of issue 11: a discretely trained VE network is labelled with the int32 level
  k = round((T - t)(N - 1)/T) (0 at sigma_max), as the 2021 release; continuous: sigma(t)."""
  from score_sde.models.noise_levels import label_sigma, sigma_table

  sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0, N=1000)
  t = jnp.array([1.0, 1e-5, 0.5])
  label = sde.noise_label(t, discrete=True)
  assert label.dtype == jnp.int32
  np.testing.assert_array_equal(label, [0, 999, 500])
  continuous = sde.noise_label(t)
  assert continuous.dtype == jnp.float32
  np.testing.assert_allclose(continuous, [50.0, 0.01 * 5000**1e-5, 0.01 * 5000**0.5], rtol=1e-5)
  # Step i of the SMLD chain (t_i = i T / (N - 1)) is level k = N - 1 - i, and the network's
  # table gives back the chain's sigma_i (float32 exp of two linspaces: a few ulps apart).
  i = np.arange(1000)
  k = sde.noise_label(jnp.asarray(i * sde.T / 999, jnp.float32), discrete=True)
  np.testing.assert_array_equal(k, 999 - i)
  np.testing.assert_allclose(label_sigma(k, 0.01, 50.0, 1000), sde.chain.sigmas, rtol=2e-6)
  release = np.exp(np.linspace(np.log(50.0), np.log(0.01), 1000))  # the release's get_sigmas
  np.testing.assert_allclose(sigma_table(0.01, 50.0, 1000), release, rtol=2e-6)
  # Float labels are sigma itself.
  np.testing.assert_array_equal(label_sigma(continuous, 0.01, 50.0, 1000), continuous)


def test_discrete_ddpm_std_is_the_chain_std():
  """Deviation 2 of issue 11: a discretely trained DDPM model reads eps with sqrt(1 - alpha_bar_i)
  of the chain (the release's continuous=False), not the continuous s(t)."""
  from score_sde.models import utils as mutils

  sde = sde_lib.VPSDE(beta_min=0.1, beta_max=20.0, N=1000)
  betas = np.linspace(0.1 / 1000, 20.0 / 1000, 1000)
  release = np.sqrt(1 - np.cumprod(1 - betas))
  t = jnp.array([1e-3, 0.5, 1.0])  # the last sampling step (t = eps), a middle one, the first
  np.testing.assert_allclose(sde.score_std(t, discrete=True), release[[0, 499, 999]], rtol=1e-4)
  x, eps_out = jnp.ones((3, 2)), jnp.full((3, 2), 0.5)
  score = mutils.score_fn_from_model(lambda x, label: eps_out, sde, discrete=True)(x, t)
  np.testing.assert_allclose(
    score, -0.5 / release[[0, 499, 999], None] * np.ones((3, 2)), rtol=1e-4
  )
  # The continuous s(eps) differs by several percent at the last step.
  assert abs(float(sde.alpha_sigma(1e-3)[1]) / release[0] - 1) > 0.02


def test_sde_from_config_fields():
  """Every registered SDE builds from the default config section; N comes from num_scales."""
  from score_sde.config_defaults import get_default_config

  fields = get_default_config().sde.to_dict()
  fields["num_scales"] = 77
  for name in sde_lib.SDES:
    sde = sde_lib.sde_from_fields(name, fields)
    assert sde.N == 77 and type(sde) is type(sde_lib.get_sde(name))
  with pytest.raises(ValueError, match="unknown SDE 'no_such'"):
    sde_lib.sde_from_fields("no_such", fields)
