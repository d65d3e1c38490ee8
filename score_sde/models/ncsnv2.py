"""NCSNv2 (Song & Ermon 2020, "Improved techniques for training score-based generative models").

A RefineNet (`models.refinenet_layers.RefineNet`) with unconditional normalisation whose output
is divided by the noise level ("technique 3" of the paper: ||s(x, sigma)|| ~ 1 / sigma):
    s(x, sigma) = RefineNet(x) / sigma,
so the noise level enters only through that division. noise_label is sigma(t) (VE SDE, the
default of `models.utils.noise_label`); the 2021 release indexed a table of discrete sigmas
instead, which is the same number at the grid points and also defined between them.

The layout follows the input size, as the release's `get_network` did: < 96 px the 4-level
`ncsnv2_64` network (CIFAR-10, CelebA 64), 96..128 px `ncsnv2_128` (LSUN 128), 129..256 px
`ncsnv2_256`; see `refinenet_layers.ARCHITECTURES`.
"""
import flax.linen as nn
import jax.numpy as jnp

from score_sde.models.embeddings import class_channels
from score_sde.models.layers import get_activation
from score_sde.models.normalization import get_normalization
from score_sde.models.refinenet_layers import RefineNet, architecture_for
from score_sde.models.registry import register_model
from score_sde.sde import bcast


@register_model("ncsnv2")
class NCSNv2(nn.Module):
  """NCSNv2 score network. __call__(x: [B, H, W, C], noise_label: [B] = sigma, train) -> [B, H, W, C].

  H = W must be even (< 96 px), divisible by 4 (96..128) or by 8 (129..256): the dilated levels
  do not downsample.
  """
  nf: int = 128
  normalization: str = "InstanceNorm++"  # InstanceNorm | InstanceNorm++ | VarianceNorm | GroupNorm
  nonlinearity: str = "elu"
  interpolation: str = "bilinear"  # upsampling in the RefineBlocks: bilinear | nearest_neighbor
  scale_by_sigma: bool = True  # divide the output by noise_label; False for an eps / x0 target
  centered: bool = False  # False: inputs are in [0, 1] and the network maps x -> 2x - 1 first
  num_classes: int = 0  # > 0: label-conditional (see `class_channels`)

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    del train  # no dropout
    x, out_channels = class_channels(x, labels, self.num_classes), x.shape[-1]
    h = x if self.centered else 2.0 * x - 1.0
    h = RefineNet(self.nf, architecture_for(x.shape[1]), get_normalization(self.normalization),
                  get_activation(self.nonlinearity), self.interpolation)(h)
    h = h[..., :out_channels]
    if self.scale_by_sigma:
      h = h / bcast(jnp.asarray(noise_label, h.dtype), h)
    return h
