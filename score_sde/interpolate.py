"""Encoding, decoding and latent interpolation with the probability-flow ODE (paper sec. 4.3).

The probability-flow ODE is a deterministic, invertible map between data at t = eps and latents
at t = T. Its latent code is "uniquely identifiable": it depends only on the data distribution
(through the score), not on the architecture, up to the score model's error. `encode` runs the
ODE forward (eps -> T), `decode` backward (T -> eps); decode(encode(x)) = x up to the solver's
tolerance. `slerp` interpolates latents on great circles, which keeps the interpolants at the
typical norm of N(0, s^2 I) latents (linear mixing would shrink it and decode to blurry images).

Shapes: `x, z: [B, ...]`.
"""

from typing import Tuple

import jax
import jax.numpy as jnp

from score_sde import ode
from score_sde.sde import LinearSDE, ScoreFn

Array = jax.Array


def encode(
  sde: LinearSDE, score_fn: ScoreFn, x: Array, *, eps: float = 1e-5, **solver_kwargs
) -> Tuple[Array, Array]:
  """Data x (at t = eps) -> latent z = x(T) along the probability-flow ODE; returns (z, nfe)."""
  return ode.solve_probability_flow(sde, score_fn, x, eps, sde.T, **solver_kwargs)


def decode(
  sde: LinearSDE, score_fn: ScoreFn, z: Array, *, eps: float = 1e-5, **solver_kwargs
) -> Tuple[Array, Array]:
  """Latent z (at t = T) -> data x(eps) along the probability-flow ODE; returns (x, nfe)."""
  return ode.solve_probability_flow(sde, score_fn, z, sde.T, eps, **solver_kwargs)


def slerp(z0: Array, z1: Array, alphas: Array) -> Array:
  """Spherical interpolation between latents: z0, z1: [B, ...], alphas: [A] -> [A, B, ...].

      z(a) = sin((1 - a) theta) / sin(theta) z0 + sin(a theta) / sin(theta) z1,
      cos(theta) = <z0, z1> / (|z0| |z1|)  (per sample, over all non-batch axes)

  (Shoemake 1985). Nearly parallel pairs (sin theta ~ 0) fall back to linear interpolation.
  """
  alphas = jnp.asarray(alphas, z0.dtype)
  flat0 = z0.reshape(z0.shape[0], -1)
  flat1 = z1.reshape(z1.shape[0], -1)
  cos = jnp.sum(flat0 * flat1, -1) / (
    jnp.linalg.norm(flat0, axis=-1) * jnp.linalg.norm(flat1, axis=-1)
  )
  theta = jnp.arccos(jnp.clip(cos, -1.0, 1.0))  # [B]
  a = alphas[:, None]  # [A, 1]
  sin_t = jnp.sin(theta)
  small = sin_t < 1e-6
  safe = jnp.where(small, 1.0, sin_t)
  w0 = jnp.where(small, 1.0 - a, jnp.sin((1.0 - a) * theta) / safe)  # [A, B]
  w1 = jnp.where(small, a, jnp.sin(a * theta) / safe)
  expand = lambda w: w.reshape(w.shape + (1,) * (z0.ndim - 1))
  return expand(w0) * z0[None] + expand(w1) * z1[None]


def interpolate(
  sde: LinearSDE,
  score_fn: ScoreFn,
  x0: Array,
  x1: Array,
  alphas: Array,
  *,
  eps: float = 1e-5,
  **solver_kwargs,
) -> Tuple[Array, Array]:
  """Encodes x0, x1 [B, ...], slerps the latents at `alphas` [A], decodes: ([A, B, ...], nfe).

  Row a of the result is the decoded interpolant z(alphas[a]); for an image grid, the rows of
  one column morph x0[b] into x1[b]. Encoding both endpoints is one solve over the stacked batch.
  """
  z, nfe_enc = encode(sde, score_fn, jnp.concatenate([x0, x1]), eps=eps, **solver_kwargs)
  b = x0.shape[0]
  zs = slerp(z[:b], z[b:], alphas)  # [A, B, ...]
  flat = zs.reshape((-1,) + x0.shape[1:])
  xs, nfe_dec = decode(sde, score_fn, flat, eps=eps, **solver_kwargs)
  return xs.reshape(zs.shape), nfe_enc + nfe_dec
