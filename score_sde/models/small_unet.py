"""A small time-conditioned U-Net for low-resolution images (the digits data)."""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from score_sde.models.embeddings import add_class_embedding, embed_noise_label
from score_sde.models.noise_levels import label_sigma
from score_sde.models.registry import register_model
from score_sde.sde import bcast


def _groups(channels: int) -> int:
  return min(8, channels)


class ResBlock(nn.Module):
  """GroupNorm -> swish -> conv3x3 (+ Dense(temb)) -> GroupNorm -> swish -> dropout -> conv3x3, + skip."""

  out_ch: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, temb, train):
    h = nn.Conv(self.out_ch, (3, 3))(nn.swish(nn.GroupNorm(_groups(x.shape[-1]))(x)))
    h = h + nn.Dense(self.out_ch)(nn.swish(temb))[:, None, None, :]
    h = nn.swish(nn.GroupNorm(_groups(self.out_ch))(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.Conv(self.out_ch, (3, 3), kernel_init=jax.nn.initializers.zeros)(h)
    if x.shape[-1] != self.out_ch:
      x = nn.Conv(self.out_ch, (1, 1))(x)
    return x + h


@register_model("small_unet")
class SmallUNet(nn.Module):
  """x: [B, H, W, C], noise_label: [B] -> [B, H, W, C]. H and W divisible by 2^(len(ch_mult)-1)."""

  nf: int = 32
  ch_mult: Sequence[int] = (1, 2)
  num_res_blocks: int = 1
  dropout: float = 0.0
  embedding_type: str = "positional"
  fourier_scale: float = 16.0
  scale_by_sigma: bool = False
  num_classes: int = 0  # > 0: label-conditional (class embedding added to the time embedding)
  # The SMLD sigma table that integer level labels index (`models.noise_levels`).
  sigma_min: Optional[float] = None
  sigma_max: Optional[float] = None
  num_scales: Optional[int] = None

  @property
  def _table(self):
    return self.sigma_min, self.sigma_max, self.num_scales

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    temb = embed_noise_label(
      noise_label, self.embedding_type, self.nf * 4, self.fourier_scale, *self._table
    )
    temb = nn.Dense(self.nf * 4)(nn.swish(nn.Dense(self.nf * 4)(temb)))
    temb = add_class_embedding(temb, labels, self.num_classes)
    h = nn.Conv(self.nf, (3, 3))(x)
    skips = [h]
    for level, mult in enumerate(self.ch_mult):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.nf * mult, self.dropout)(h, temb, train)
        skips.append(h)
      if level != len(self.ch_mult) - 1:
        h = nn.Conv(h.shape[-1], (3, 3), strides=(2, 2))(h)
        skips.append(h)
    h = ResBlock(h.shape[-1], self.dropout)(h, temb, train)
    for level, mult in reversed(list(enumerate(self.ch_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = ResBlock(self.nf * mult, self.dropout)(
          jnp.concatenate([h, skips.pop()], -1), temb, train
        )
      if level != 0:
        b, hh, ww, c = h.shape
        h = nn.Conv(c, (3, 3))(jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest"))
    assert not skips
    h = nn.swish(nn.GroupNorm(_groups(h.shape[-1]))(h))
    out = nn.Conv(x.shape[-1], (3, 3), kernel_init=jax.nn.initializers.zeros)(h)
    if self.scale_by_sigma:
      out = out / bcast(label_sigma(noise_label, *self._table), out)
    return out
