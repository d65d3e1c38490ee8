"""The exact mixture marginals: eigenbasis evaluation equals the direct Gaussian algebra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import gmm, sde as sde_lib

SDES = [sde_lib.VPSDE(), sde_lib.SubVPSDE(), sde_lib.VESDE(sigma_max=10.0), sde_lib.cosine_path()]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_marginal_log_prob_and_score_match_direct_mixture(sde, x64):
  mix = gmm.random_mixture(jax.random.key(0), 3, 4)
  x = 2.0 * jax.random.normal(jax.random.key(1), (16, 4))
  t = jax.random.uniform(jax.random.key(2), (16,), minval=1e-3, maxval=sde.T)
  a, s = sde.alpha_sigma(t)

  # Direct: per point, the mixture N(a mu_k, a^2 C_k + s^2 I) by Cholesky (compiled: eager
  # float64 dispatch of the per-point algebra cost a minute).
  @jax.jit
  @jax.vmap
  def direct(xi, ai, si):
    m = gmm.marginal(mix, ai, si)
    return m.log_prob(xi[None])[0], m.score(xi[None])[0]

  @jax.jit
  def eigenbasis(x, t):
    logp = gmm.marginal_log_prob(mix, sde, x, t)
    # The score is the gradient of the log-density.
    grad = jax.grad(lambda x: gmm.marginal_log_prob(mix, sde, x, t).sum())(x)
    return logp, gmm.marginal_score_fn(mix, sde)(x, t), grad

  direct_logp, direct_score = direct(x, a, s)
  logp, score, grad = eigenbasis(x, t)
  np.testing.assert_allclose(logp, direct_logp, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(score, direct_score, rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(score, grad, rtol=1e-9, atol=1e-9)
  assert logp.dtype == jnp.float64
