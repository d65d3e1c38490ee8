"""Exact conversions between the prediction targets score, eps, x0 and v on a Gaussian path.

For x_t = a x0 + s eps (notes 003):
    score = -eps / s
    eps   = (x_t - a x0) / s,            x0 = (x_t - s eps) / a
    v     = a' x0 + s' eps               (the path's velocity dx_t/dt)
Eliminating x0 from v: v = f x_t + (s' - f s) eps with f = a'/a and s' - f s = g^2 / (2 s), so
    eps   = 2 s (v - f x_t) / g^2.
Every conversion goes through eps. Coefficients are per-sample `[B]`, arrays `[B, ...]`.
"""

from typing import NamedTuple

import jax

from score_sde.registry import lookup
from score_sde.sde import LinearSDE, bcast

TARGETS = ("score", "eps", "x0", "v")


class PathCoeffs(NamedTuple):
  """a(t), s(t), f(t) = a'/a and g(t)^2 at a batch of times, each [B]."""

  a: jax.Array
  s: jax.Array
  f: jax.Array
  g2: jax.Array


def path_coeffs(sde: LinearSDE, t: jax.Array) -> PathCoeffs:
  a, s = sde.alpha_sigma(t)
  return PathCoeffs(a, s, sde.f(t), sde.g2(t))


def _check(target):
  lookup({k: k for k in TARGETS}, target, "prediction target")


def to_eps(pred: jax.Array, x: jax.Array, c: PathCoeffs, target: str) -> jax.Array:
  """eps implied by a prediction of `target` at x_t = x."""
  _check(target)
  a, s, f, g2 = (bcast(v, x) for v in c)
  if target == "eps":
    return pred
  if target == "score":
    return -s * pred
  if target == "x0":
    return (x - a * pred) / s
  return 2.0 * s * (pred - f * x) / g2


def from_eps(eps: jax.Array, x: jax.Array, c: PathCoeffs, target: str) -> jax.Array:
  """The prediction of `target` equivalent to `eps` at x_t = x."""
  _check(target)
  a, s, f, g2 = (bcast(v, x) for v in c)
  if target == "eps":
    return eps
  if target == "score":
    return -eps / s
  if target == "x0":
    return (x - s * eps) / a
  return f * x + 0.5 * g2 / s * eps


def convert(pred: jax.Array, x: jax.Array, c: PathCoeffs, source: str, target: str) -> jax.Array:
  """Converts a prediction of `source` into the equivalent prediction of `target`."""
  return from_eps(to_eps(pred, x, c, source), x, c, target)


def score_error_scale(c: PathCoeffs, target: str) -> jax.Array:
  """k(t) with (score_pred - score_true) = k(t) (pred - true) for predictions of `target`.

  score: 1;  eps: -1/s;  x0: a/s^2;  v: -2/g^2.  Shape [B].
  """
  _check(target)
  if target == "score":
    return jax.numpy.ones_like(c.s)
  if target == "eps":
    return -1.0 / c.s
  if target == "x0":
    return c.a / c.s**2
  return -2.0 / c.g2
