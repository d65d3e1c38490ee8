"""The forward SDEs: moment equations, Monte Carlo marginals, discrete chains, general-path form."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from score_sde import sde as sde_lib

SDES = {
    "vp": lambda: sde_lib.VPSDE(),
    "subvp": lambda: sde_lib.SubVPSDE(),
    "ve": lambda: sde_lib.VESDE(sigma_min=0.01, sigma_max=10.0),
    "cosine": lambda: sde_lib.cosine_path(),
}


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


@pytest.mark.parametrize("name", ["vp", "subvp", "ve"])
def test_general_path_form_agrees(name, x64):
  """VP, sub-VP and VE equal the GaussianPath built from their a(t), s(t) alone."""
  sde = SDES[name]()
  path = sde_lib.as_gaussian_path(sde)
  t = jnp.linspace(1e-3, 1.0, 50)
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
  # The cosine path's f = a'/a blows up as a(T) -> 0; stop where Euler-Maruyama is still accurate.
  t_end = 0.9 if name == "cosine" else sde.T
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
  np.testing.assert_allclose(G ** 2, beta, rtol=1e-5)
  np.testing.assert_allclose(f[:, 0], (np.sqrt(1 - beta) - 1) * 3.0, rtol=1e-4, atol=1e-6)  # float32 cancellation in sqrt(1 - beta) x - x
  np.testing.assert_allclose(sde.alphas_cumprod, np.cumprod(1 - beta), rtol=1e-4)


def test_ve_discretize_is_smld():
  """The VE chain adds variance sigma_i^2 - sigma_{i-1}^2, so after step i the variance is sigma_i^2."""
  sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0, N=100)
  sigmas = np.exp(np.linspace(np.log(0.01), np.log(50.0), 100))
  np.testing.assert_allclose(sde.discrete_sigmas, sigmas, rtol=1e-5)
  i = np.arange(sde.N)
  f, G = sde.discretize(jnp.ones((sde.N, 2)), jnp.asarray(i / 99, jnp.float32))
  assert np.all(np.asarray(f) == 0)
  np.testing.assert_allclose(np.cumsum(np.asarray(G, np.float64) ** 2), sigmas ** 2, rtol=1e-4)


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
  np.testing.assert_allclose(drift, f + (g ** 2)[:, None] * x, rtol=1e-6)
  drift, diff = sde.reverse(score_fn, probability_flow=True).sde(x, t)
  np.testing.assert_allclose(drift, f + 0.5 * (g ** 2)[:, None] * x, rtol=1e-6)
  assert np.all(np.asarray(diff) == 0)


def test_unknown_sde_lists_choices():
  with pytest.raises(ValueError, match=r"unknown SDE 'vp'; choose from \['cosine', 'subvpsde', 'vesde', 'vpsde'\]"):
    sde_lib.get_sde("vp")
