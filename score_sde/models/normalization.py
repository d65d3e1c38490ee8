"""Normalization layers of NCSN (Song & Ermon 2019) and NCSNv2 (Song & Ermon 2020), NHWC.

With per-image, per-channel statistics over the spatial axes,
    mu_c = mean_{h,w} x_{hwc},   s_c^2 = var_{h,w} x_{hwc},
  InstanceNorm:      y = gamma_c (x - mu_c) / sqrt(s_c^2 + eps) + beta_c
  InstanceNorm++:    y = gamma_c [(x - mu_c) / sqrt(s_c^2 + eps) + alpha_c (mu_c - m) / sqrt(v + eps)] + beta_c
                     where m, v are the mean and (biased) variance of mu_c over the channels: plain
                     instance norm discards each channel's mean, which shifts colours in samples;
                     the alpha term puts the standardized channel means back.
  VarianceNorm:      y = gamma_c x / sqrt(s_c^2 + eps)
  Conditional InstanceNorm++ (NCSN): gamma, alpha, beta are rows of a learned table indexed by the
                     noise level i in {0, ..., L-1}: gamma[i, c], alpha[i, c], beta[i, c].

Every module is called as `norm(x, y)` with x: [B, H, W, C] and y: [B] int noise-level indices;
the unconditional ones ignore y, so a block can take either kind. gamma and alpha start at
N(1, 0.02), beta at 0, as in the NCSN code.
"""

import functools
from typing import Callable, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from score_sde.registry import lookup

EPS = 1e-5


def _near_one(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _standardize_means(x):
  """(mu_c - m) / sqrt(v + eps): [B, H, W, C] -> [B, C], the standardized channel means."""
  means = jnp.mean(x, axis=(1, 2))
  m = jnp.mean(means, axis=-1, keepdims=True)
  v = jnp.var(means, axis=-1, keepdims=True)
  return (means - m) / jnp.sqrt(v + EPS)


def _instance_standardize(x):
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.var(x, axis=(1, 2), keepdims=True)
  return (x - mean) / jnp.sqrt(var + EPS)


class InstanceNorm2d(nn.Module):
  bias: bool = True

  @nn.compact
  def __call__(self, x, y=None):
    c = x.shape[-1]
    h = _instance_standardize(x) * self.param("scale", nn.initializers.ones, (c,))
    if self.bias:
      h = h + self.param("bias", nn.initializers.zeros, (c,))
    return h


class InstanceNorm2dPlus(nn.Module):
  bias: bool = True

  @nn.compact
  def __call__(self, x, y=None):
    c = x.shape[-1]
    alpha = self.param("alpha", _near_one, (c,))
    gamma = self.param("gamma", _near_one, (c,))
    h = _instance_standardize(x) + _standardize_means(x)[:, None, None, :] * alpha
    h = h * gamma
    if self.bias:
      h = h + self.param("beta", nn.initializers.zeros, (c,))
    return h


class VarianceNorm2d(nn.Module):
  bias: bool = False

  @nn.compact
  def __call__(self, x, y=None):
    c = x.shape[-1]
    h = x / jnp.sqrt(jnp.var(x, axis=(1, 2), keepdims=True) + EPS)
    h = h * self.param("scale", _near_one, (c,))
    if self.bias:
      h = h + self.param("bias", nn.initializers.zeros, (c,))
    return h


class GroupNorm(nn.Module):
  """flax GroupNorm (32 groups, capped at C) behind the `norm(x, y)` signature."""

  @nn.compact
  def __call__(self, x, y=None):
    return nn.GroupNorm(num_groups=min(32, x.shape[-1]))(x)


class ConditionalInstanceNorm2dPlus(nn.Module):
  """InstanceNorm++ whose gamma, alpha (and beta) are looked up by the noise-level index y: [B] int."""

  num_classes: int
  bias: bool = True

  @nn.compact
  def __call__(self, x, y):
    c = x.shape[-1]
    n_coef = 3 if self.bias else 2

    def init(key, shape, dtype=jnp.float32):
      table = _near_one(key, shape, dtype)
      return table.at[:, 2 * c :].set(0.0) if self.bias else table  # beta columns start at 0

    table = self.param("embedding", init, (self.num_classes, n_coef * c))
    coef = jnp.take(table, y, axis=0)[:, None, None, :]  # [B, 1, 1, n_coef C]
    gamma, alpha = coef[..., :c], coef[..., c : 2 * c]
    h = _instance_standardize(x) + _standardize_means(x)[:, None, None, :] * alpha
    h = gamma * h
    if self.bias:
      h = h + coef[..., 2 * c :]
    return h


NORMALIZATIONS: Dict[str, Callable[..., nn.Module]] = {
  "InstanceNorm": InstanceNorm2d,
  "InstanceNorm++": InstanceNorm2dPlus,
  "VarianceNorm": VarianceNorm2d,
  "GroupNorm": GroupNorm,
}
CONDITIONAL_NORMALIZATIONS: Dict[str, Callable[..., nn.Module]] = {
  "InstanceNorm++": ConditionalInstanceNorm2dPlus,
}


def get_normalization(name: str, num_classes: Optional[int] = None) -> Callable[[], nn.Module]:
  """A factory of norm modules: unconditional when num_classes is None, else indexed by level."""
  if num_classes is None:
    return lookup(NORMALIZATIONS, name, "normalization")
  return functools.partial(
    lookup(CONDITIONAL_NORMALIZATIONS, name, "conditional normalization"), num_classes=num_classes
  )
