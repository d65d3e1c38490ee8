"""NCSN (Song & Ermon 2019, "Generative modeling by estimating gradients of the data distribution").

A RefineNet (`models.refinenet_layers.RefineNet`) conditioned on the noise level through
conditional InstanceNorm++ in every block: each norm has a table of (gamma, alpha, beta) rows,
one per noise level of the geometric grid
    sigma_i = sigma_max (sigma_min / sigma_max)^(i / (L - 1)),   i = 0, ..., L - 1  (L = num_scales),
largest first, as in the release's `get_sigmas`.

The label follows `models.noise_levels`, as in the release: the int32 level index i of the
SMLD-trained model (`VESDE.noise_label(t, discrete=True)`) selects the norms' row directly. A
float label is read as sigma and mapped to the nearest grid level in log-space,
    i(sigma) = clip(round((L - 1) log(sigma_max / sigma) / log(sigma_max / sigma_min)), 0, L - 1),
so the grid's own sigmas map to their exact index and any other sigma to the closest level; the
network is therefore piecewise constant in sigma (it was only ever trained at the L levels).
"""

import math

import flax.linen as nn
import jax.numpy as jnp

from score_sde.models.embeddings import class_channels
from score_sde.models.layers import get_activation
from score_sde.models.noise_levels import is_level, sigma_table
from score_sde.models.normalization import get_normalization
from score_sde.models.refinenet_layers import RefineNet, architecture_for
from score_sde.models.registry import register_model
from score_sde.sde import bcast


def sigma_grid(sigma_min: float, sigma_max: float, num_scales: int) -> jnp.ndarray:
  """[L] geometric sigmas from sigma_max down to sigma_min (`noise_levels.sigma_table`)."""
  return sigma_table(sigma_min, sigma_max, num_scales)


def sigma_to_level(sigma, sigma_min: float, sigma_max: float, num_scales: int) -> jnp.ndarray:
  """[B] float sigmas -> [B] int32 index of the nearest (in log sigma) level of `sigma_grid`."""
  if num_scales == 1:
    return jnp.zeros(jnp.shape(sigma), jnp.int32)
  frac = jnp.log(sigma_max / jnp.asarray(sigma, jnp.float32)) / math.log(sigma_max / sigma_min)
  return jnp.clip(jnp.round(frac * (num_scales - 1)), 0, num_scales - 1).astype(jnp.int32)


@register_model("ncsn")
class NCSN(nn.Module):
  """NCSN score network. __call__(x: [B, H, W, C], noise_label: [B], train) -> [B, H, W, C].

  The release's CIFAR-10 config: nf 128, L = 10 levels from sigma_max = 1 to sigma_min = 0.01, and
  the output is the score itself (scale_by_sigma False). The release defined NCSN only in the
  < 96 px layout; larger inputs use the NCSNv2 layouts with conditional norms.
  """

  nf: int = 128
  sigma_min: float = 0.01
  sigma_max: float = 1.0
  num_scales: int = 10
  normalization: str = "InstanceNorm++"  # conditional: only InstanceNorm++
  nonlinearity: str = "elu"
  interpolation: str = "bilinear"
  scale_by_sigma: bool = False  # divide the output by the grid sigma of the label's level
  centered: bool = False  # False: inputs are in [0, 1] and the network maps x -> 2x - 1 first
  num_classes: int = 0  # > 0: label-conditional (see `class_channels`)

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    del train  # no dropout
    x, out_channels = class_channels(x, labels, self.num_classes), x.shape[-1]
    if is_level(noise_label):
      level = jnp.asarray(noise_label, jnp.int32)
    else:
      level = sigma_to_level(noise_label, self.sigma_min, self.sigma_max, self.num_scales)
    norm = get_normalization(self.normalization, num_classes=self.num_scales)
    h = x if self.centered else 2.0 * x - 1.0
    h = RefineNet(
      self.nf,
      architecture_for(x.shape[1]),
      norm,
      get_activation(self.nonlinearity),
      self.interpolation,
      refine_norm=norm,
    )(h, level)
    h = h[..., :out_channels]
    if self.scale_by_sigma:
      sigmas = sigma_grid(self.sigma_min, self.sigma_max, self.num_scales)
      h = h / bcast(sigmas[level].astype(h.dtype), h)
    return h
