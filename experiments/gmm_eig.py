"""Exact marginal score and log-density of a Gaussian mixture with no LAPACK call per evaluation.

p_t(x) = sum_k w_k N(x; a mu_k, a^2 C_k + s^2 I) (score_sde.gmm). With C_k = Q_k diag(l_k) Q_k^T
computed once, every marginal covariance shares the eigenvectors:

    (a^2 C_k + s^2 I)^-1 = Q_k diag(1 / (a^2 l_k + s^2)) Q_k^T,   log det = sum log(a^2 l_k + s^2),

so inside an ODE solver's while loop the score needs matmuls only. (score_sde.gmm factorises the
covariance at every call; those Cholesky / triangular-solve custom calls inside jitted while loops
were where XLA:CPU hung for good in these experiments.) Same values as score_sde.gmm, checked by
`check_against`.
"""
import jax
import jax.numpy as jnp
import numpy as np

from score_sde import gmm as gmm_lib


class EigMixture:
  def __init__(self, g: gmm_lib.GaussianMixture):
    lam, q = np.linalg.eigh(np.asarray(g.covs, np.float64))
    dtype = g.means.dtype
    self.logw = jnp.log(g.weights)
    self.means = g.means
    self.lam = jnp.asarray(lam, dtype)        # [K, D]
    self.q = jnp.asarray(q, dtype)            # [K, D, D]

  def _comp(self, x, a, s):
    """Per sample: (component log-densities [B, K], whitened residual terms [B, K, D])."""
    var = bcast(a, 2) ** 2 * self.lam[None] + bcast(s, 2) ** 2              # [B, K, D]
    diff = x[:, None, :] - bcast(a, 2) * self.means[None]                   # [B, K, D]
    proj = jnp.einsum("kdj,bkd->bkj", self.q, diff)                         # Q^T diff
    d = x.shape[-1]
    logp = (self.logw[None] - 0.5 * jnp.sum(proj ** 2 / var, -1) - 0.5 * jnp.sum(jnp.log(var), -1)
            - 0.5 * d * jnp.log(2 * jnp.pi))
    return logp, proj / var

  def log_prob(self, sde, x, t):
    a, s = _coeffs(sde, t, x)
    return jax.nn.logsumexp(self._comp(x, a, s)[0], -1)

  def score_fn(self, sde):
    def score(x, t):
      a, s = _coeffs(sde, t, x)
      logp, white = self._comp(x, a, s)
      resp = jax.nn.softmax(logp, -1)                                       # [B, K]
      comp = -jnp.einsum("kij,bkj->bki", self.q, white)                     # -Sigma^-1 diff
      return jnp.einsum("bk,bki->bi", resp, comp)
    return score


def bcast(v, extra):
  return v.reshape(v.shape + (1,) * extra)


def _coeffs(sde, t, x):
  t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
  a, s = sde.alpha_sigma(t)
  return jnp.broadcast_to(a, t.shape), jnp.broadcast_to(s, t.shape)


def check_against(g, sde, x, t=0.3, rtol=1e-4):
  """Raises unless score and log-density agree with score_sde.gmm at time t."""
  e = EigMixture(g)
  tt = jnp.full(x.shape[:1], t, x.dtype)
  np.testing.assert_allclose(np.asarray(e.score_fn(sde)(x, tt)),
                             np.asarray(gmm_lib.marginal_score_fn(g, sde)(x, tt)), rtol=rtol, atol=rtol)
  np.testing.assert_allclose(np.asarray(e.log_prob(sde, x, t)),
                             np.asarray(gmm_lib.marginal_log_prob(g, sde, x, t)), rtol=rtol, atol=rtol)
