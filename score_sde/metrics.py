"""Sample-quality distances between point clouds (toy data, Gaussian mixtures).

sliced_wasserstein: SW_2(X, Y)^2 = E_theta[W_2(theta.X, theta.Y)^2] over random unit directions,
each 1-D W_2 computed exactly by sorting. mmd: squared MMD with a Gaussian (RBF) kernel,
unbiased U-statistic.
"""

import jax
import jax.numpy as jnp


def sliced_wasserstein(
  key: jax.Array, x: jax.Array, y: jax.Array, num_projections: int = 256
) -> jax.Array:
  """Sliced Wasserstein-2 distance between x: [N, D] and y: [N, D] (equal N), a scalar."""
  if x.shape != y.shape:
    raise ValueError(f"sliced_wasserstein needs equal shapes, got {x.shape} and {y.shape}")
  x = x.reshape(x.shape[0], -1)
  y = y.reshape(y.shape[0], -1)
  theta = jax.random.normal(key, (x.shape[1], num_projections), x.dtype)
  theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
  px = jnp.sort(x @ theta, axis=0)
  py = jnp.sort(y @ theta, axis=0)
  return jnp.sqrt(jnp.mean((px - py) ** 2))


def mmd(x: jax.Array, y: jax.Array, bandwidth: float = 1.0) -> jax.Array:
  """Unbiased squared MMD with k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2)); x: [N, D], y: [M, D]."""

  def k(a, b):
    d2 = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2 * a @ b.T
    return jnp.exp(-d2 / (2 * bandwidth**2))

  n, m = x.shape[0], y.shape[0]
  kxx = (jnp.sum(k(x, x)) - n) / (n * (n - 1))
  kyy = (jnp.sum(k(y, y)) - m) / (m * (m - 1))
  return kxx + kyy - 2 * jnp.mean(k(x, y))
