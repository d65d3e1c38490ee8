"""NCSNv2 (Song & Ermon 2020, "Improved techniques for training score-based generative models").

A RefineNet (`models.refinenet_layers.RefineNet`) with unconditional normalisation whose output
is divided by the noise level ("technique 3" of the paper: ||s(x, sigma)|| ~ 1 / sigma):
    s(x, sigma) = RefineNet(x) / sigma,
so the noise level enters only through that division. The label follows `models.noise_levels`
(as the 2021 release): the int32 level index k of the SMLD-trained model, whose sigma_k is read
from the table (sigma_min, sigma_max, num_scales), or a float sigma(t) for continuous training.

The layout follows the input size, as the release's `get_network` did: < 96 px the 4-level
`ncsnv2_64` network (CIFAR-10, CelebA 64), 96..128 px `ncsnv2_128` (LSUN 128), 129..256 px
`ncsnv2_256`; see `refinenet_layers.ARCHITECTURES`.
"""

from typing import Optional

import flax.linen as nn

from score_sde.models.embeddings import class_channels
from score_sde.models.layers import get_activation
from score_sde.models.noise_levels import label_sigma
from score_sde.models.normalization import get_normalization
from score_sde.models.refinenet_layers import RefineNet, architecture_for
from score_sde.models.registry import register_model
from score_sde.sde import bcast


@register_model("ncsnv2")
class NCSNv2(nn.Module):
  """NCSNv2 score network. __call__(x: [B, H, W, C], noise_label: [B], train) -> [B, H, W, C].

  H = W must be even (< 96 px), divisible by 4 (96..128) or by 8 (129..256): the dilated levels
  do not downsample.
  """

  nf: int = 128
  normalization: str = "InstanceNorm++"  # InstanceNorm | InstanceNorm++ | VarianceNorm | GroupNorm
  nonlinearity: str = "elu"
  interpolation: str = "bilinear"  # upsampling in the RefineBlocks: bilinear | nearest_neighbor
  scale_by_sigma: bool = True  # divide the output by sigma; False for an eps / x0 target
  centered: bool = False  # False: inputs are in [0, 1] and the network maps x -> 2x - 1 first
  num_classes: int = 0  # > 0: label-conditional (see `class_channels`)
  # The SMLD sigma table that integer level labels index (discrete VE; set by the runner).
  sigma_min: Optional[float] = None
  sigma_max: Optional[float] = None
  num_scales: Optional[int] = None

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    del train  # no dropout
    x, out_channels = class_channels(x, labels, self.num_classes), x.shape[-1]
    h = x if self.centered else 2.0 * x - 1.0
    h = RefineNet(
      self.nf,
      architecture_for(x.shape[1]),
      get_normalization(self.normalization),
      get_activation(self.nonlinearity),
      self.interpolation,
    )(h)
    h = h[..., :out_channels]
    if self.scale_by_sigma:
      sigma = label_sigma(noise_label, self.sigma_min, self.sigma_max, self.num_scales)
      h = h / bcast(sigma.astype(h.dtype), h)
    return h
