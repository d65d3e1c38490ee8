"""Gaussian mixtures and their exact marginals, scores and log-densities under a linear SDE.

If x0 ~ sum_k w_k N(mu_k, C_k) and p_t(x | x0) = N(a(t) x0, s(t)^2 I), then

    p_t(x) = sum_k w_k N(x; a mu_k, a^2 C_k + s^2 I)

in closed form, so the true score grad log p_t(x) is known exactly. Samplers and likelihoods
are tested against it, and `experiments/` uses it as a noise-free "perfect network".
Shapes: `x: [B, D]`, `t: [B]`; means `[K, D]`, covariances `[K, D, D]`, weights `[K]`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from score_sde.sde import LinearSDE


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """Mixture sum_k weights[k] N(means[k], covs[k])."""

  weights: jax.Array  # [K]
  means: jax.Array  # [K, D]
  covs: jax.Array  # [K, D, D]

  @property
  def dim(self) -> int:
    return self.means.shape[-1]

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n exact samples, [n, D]."""
    kc, kz = jax.random.split(key)
    comp = jax.random.categorical(kc, jnp.log(self.weights), shape=(n,))
    chol = jnp.linalg.cholesky(self.covs)
    z = jax.random.normal(kz, (n, self.dim), dtype=self.means.dtype)
    return self.means[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)

  def component_logps(self, x: jax.Array) -> jax.Array:
    """log w_k + log N(x; mu_k, C_k), [B, K]."""
    d = self.dim
    chol = jnp.linalg.cholesky(self.covs)  # [K, D, D]
    diff = x[:, None, :] - self.means[None]  # [B, K, D]
    sol = jax.scipy.linalg.solve_triangular(chol[None], diff[..., None], lower=True)[
      ..., 0
    ]  # [B, K, D]
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    return (
      jnp.log(self.weights)
      - 0.5 * jnp.sum(sol**2, -1)
      - 0.5 * logdet
      - 0.5 * d * jnp.log(2 * jnp.pi)
    )

  def log_prob(self, x: jax.Array) -> jax.Array:
    """log p(x), [B]."""
    return jax.nn.logsumexp(self.component_logps(x), axis=-1)

  def score(self, x: jax.Array) -> jax.Array:
    """grad_x log p(x) = sum_k r_k(x) C_k^{-1} (mu_k - x), r the responsibilities; [B, D]."""
    resp = jax.nn.softmax(self.component_logps(x), axis=-1)  # [B, K]
    prec = jnp.linalg.inv(self.covs)  # [K, D, D]
    comp = jnp.einsum("kij,bkj->bki", prec, self.means[None] - x[:, None, :])
    return jnp.einsum("bk,bki->bi", resp, comp)


def marginal(gmm: GaussianMixture, a: jax.Array, s: jax.Array) -> GaussianMixture:
  """The mixture of a x0 + s eps for scalar a, s: means a mu_k, covs a^2 C_k + s^2 I."""
  eye = jnp.eye(gmm.dim, dtype=gmm.means.dtype)
  return GaussianMixture(gmm.weights, a * gmm.means, a**2 * gmm.covs + s**2 * eye)


def _marginal_parts(gmm: GaussianMixture, sde: LinearSDE):
  """log p_t's pieces from one eigendecomposition C_k = U_k diag(lam_k) U_k^T, made here, once.

  The marginal covariance a^2 C_k + s^2 I = U_k diag(a^2 lam_k + s^2) U_k^T shares the
  eigenvectors, so inside a sampler's or solver's loop every evaluation is einsums only: no
  Cholesky or triangular solve per step (XLA:CPU has hung on those inside long while loops).
  Returns f(x: [B, D], t) -> (component log-densities [B, K], component scores [B, K, D]).
  """
  lam, u = jnp.linalg.eigh(gmm.covs)  # [K, D], [K, D, D]
  log_w = jnp.log(gmm.weights)

  def parts(x, t):
    t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
    a, s = sde.alpha_sigma(t)
    a = jnp.broadcast_to(a, t.shape)[:, None, None]
    s = jnp.broadcast_to(s, t.shape)[:, None, None]
    var = a**2 * lam[None] + s**2  # [B, K, D]
    y = jnp.einsum("kji,bkj->bki", u, x[:, None, :] - a * gmm.means[None])
    logps = (
      log_w - 0.5 * jnp.sum(y**2 / var + jnp.log(var), -1) - 0.5 * gmm.dim * jnp.log(2 * jnp.pi)
    )
    scores = -jnp.einsum("kij,bkj->bki", u, y / var)
    return logps, scores

  return parts


def marginal_score_fn(gmm: GaussianMixture, sde: LinearSDE):
  """Exact score_fn(x: [B, D], t: [B]) -> [B, D] of p_t for data distributed as `gmm`:
  sum_k r_k(x) (a^2 C_k + s^2 I)^{-1} (a mu_k - x), r the posterior component probabilities."""
  parts = _marginal_parts(gmm, sde)

  def score_fn(x, t):
    logps, scores = parts(x, t)
    return jnp.einsum("bk,bki->bi", jax.nn.softmax(logps, axis=-1), scores)

  return score_fn


def marginal_class_logits(gmm: GaussianMixture, sde: LinearSDE):
  """Exact noisy classifier for "class = component": logits_fn(x: [B, D], t: [B]) -> [B, K] with
  log_softmax(logits)[b, k] = log p_t(k | x_b) = log w_k N(x_b; a mu_k, a^2 C_k + s^2 I)
  - log p_t(x_b), the posterior component probabilities of the noised mixture."""
  parts = _marginal_parts(gmm, sde)
  return lambda x, t: parts(x, t)[0]


def component_score_fn(gmm: GaussianMixture, sde: LinearSDE):
  """Exact conditional score_fn(x: [B, D], t: [B], y: [B] int) -> [B, D] of p_t(x | y), class y
  being component y: (a^2 C_y + s^2 I)^{-1} (a mu_y - x)."""
  parts = _marginal_parts(gmm, sde)

  def score_fn(x, t, y):
    scores = parts(x, t)[1]  # [B, K, D]
    return jnp.take_along_axis(scores, y[:, None, None], axis=1)[:, 0]

  return score_fn


def marginal_log_prob(gmm: GaussianMixture, sde: LinearSDE, x: jax.Array, t) -> jax.Array:
  """Exact log p_t(x), `x: [B, D]`, `t` scalar or [B] -> [B]."""
  return jax.nn.logsumexp(_marginal_parts(gmm, sde)(x, t)[0], axis=-1)


def random_mixture(
  key: jax.Array,
  num_components: int,
  dim: int,
  *,
  scale: float = 2.0,
  min_std: float = 0.15,
  max_std: float = 0.5,
) -> GaussianMixture:
  """A random well-conditioned mixture: means ~ N(0, scale^2), random rotations and axis stds."""
  kw, km, ks, kr = jax.random.split(key, 4)
  weights = jax.random.dirichlet(kw, jnp.full((num_components,), 5.0))
  means = scale * jax.random.normal(km, (num_components, dim))
  stds = jax.random.uniform(ks, (num_components, dim), minval=min_std, maxval=max_std)
  q, _ = jnp.linalg.qr(jax.random.normal(kr, (num_components, dim, dim)))
  covs = jnp.einsum("kij,kj,klj->kil", q, stds**2, q)
  return GaussianMixture(weights, means, covs)


def ring_mixture(
  num_components: int = 8, radius: float = 2.0, std: float = 0.3, dim: int = 2
) -> GaussianMixture:
  """Equal-weight isotropic components on a circle in the first two coordinates."""
  angles = np.arange(num_components) * 2 * np.pi / num_components
  means = np.zeros((num_components, dim), np.float32)
  means[:, 0] = radius * np.cos(angles)
  means[:, 1] = radius * np.sin(angles)
  covs = np.broadcast_to(std**2 * np.eye(dim, dtype=np.float32), (num_components, dim, dim))
  return GaussianMixture(
    jnp.full((num_components,), 1.0 / num_components), jnp.asarray(means), jnp.asarray(covs)
  )
