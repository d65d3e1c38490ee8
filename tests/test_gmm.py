"""The exact mixture marginals: eigenbasis evaluation equals the direct Gaussian algebra."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import gmm, sde as sde_lib

SDES = [sde_lib.VPSDE(), sde_lib.SubVPSDE(), sde_lib.VESDE(sigma_max=10.0), sde_lib.cosine_path()]


def _random_mixture(seed=0, k=3, d=4, scale=2.0, min_std=0.15, max_std=0.5):
  """A random well-conditioned mixture (random rotations and axis stds), drawn in NumPy: drawn
  with jax.random op by op, the Dirichlet weights alone cost seconds of eager dispatch."""
  rng = np.random.default_rng(seed)
  q = np.linalg.qr(rng.normal(size=(k, d, d)))[0]
  stds = rng.uniform(min_std, max_std, (k, d))
  covs = (q * stds[:, None] ** 2) @ q.transpose(0, 2, 1)
  return rng.dirichlet(np.full(k, 5.0)), scale * rng.normal(size=(k, d)), covs


@jax.jit
@functools.partial(jax.vmap, in_axes=(None, 0, 0, 0))
def _direct(mixture_arrays, xi, ai, si):
  """Direct: per point, the mixture N(a mu_k, a^2 C_k + s^2 I) by Cholesky (compiled once for
  every SDE: eager float64 dispatch of the per-point algebra cost a minute)."""
  m = gmm.marginal(gmm.GaussianMixture(*mixture_arrays), ai, si)
  return m.log_prob(xi[None])[0], m.score(xi[None])[0]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_marginal_log_prob_and_score_match_direct_mixture(sde, x64):
  arrays = tuple(jnp.asarray(v) for v in _random_mixture())
  mix = gmm.GaussianMixture(*arrays)
  rng = np.random.default_rng(1)
  x = jnp.asarray(2.0 * rng.normal(size=(16, 4)))
  t = jnp.asarray(rng.uniform(1e-3, sde.T, 16))

  @jax.jit
  def eigenbasis(x, t):
    logp = gmm.marginal_log_prob(mix, sde, x, t)
    # The score is the gradient of the log-density.
    grad = jax.grad(lambda x: gmm.marginal_log_prob(mix, sde, x, t).sum())(x)
    return logp, gmm.marginal_score_fn(mix, sde)(x, t), grad, sde.alpha_sigma(t)

  logp, score, grad, (a, s) = eigenbasis(x, t)
  direct_logp, direct_score = _direct(arrays, x, a, s)
  np.testing.assert_allclose(logp, direct_logp, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(score, direct_score, rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(score, grad, rtol=1e-9, atol=1e-9)
  assert logp.dtype == jnp.float64
