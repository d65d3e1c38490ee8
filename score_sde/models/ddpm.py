"""The DDPM U-Net (Ho et al. 2020; the TF original's models/unet.py), registered as 'ddpm'.

Layout (num_resolutions = len(ch_mult)): conv3x3(nf); per level num_res_blocks ResnetBlockDDPM
(+ attention at attn_resolutions) and a Downsample except at the last level; middle ResnetBlock,
attention, ResnetBlock; per level in reverse num_res_blocks + 1 ResnetBlocks on [h, skip]
concatenations (+ attention) and an Upsample except at level 0; GroupNorm, act, conv3x3 (init 0).
"""

from typing import Any, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from score_sde.models import layers
from score_sde.models.embeddings import add_class_embedding, timestep_embedding
from score_sde.models.noise_levels import label_sigma
from score_sde.models.registry import register_model
from score_sde.sde import bcast


@register_model("ddpm")
class DDPM(nn.Module):
  """DDPM score / noise-prediction network.

  __call__(x: [B, H, W, C], noise_label: [B], train: bool) -> [B, H, W, C]; the label (999 t for
  VP, the int32 level index k for discrete VE: `models.noise_levels`) gets DDPM's sinusoidal
  embedding. scale_by_sigma divides the output by sigma (sigma_k of the table sigma_min,
  sigma_max, num_scales for a level label). H, W divisible by 2^(len(ch_mult) - 1).
  """

  nf: int = 128
  ch_mult: Tuple[int, ...] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Tuple[int, ...] = (16,)
  dropout: float = 0.1
  resamp_with_conv: bool = True
  conditional: bool = True
  scale_by_sigma: bool = False
  centered: bool = True  # False: inputs are in [0, 1] and the network maps x -> 2x - 1 first
  nonlinearity: str = "swish"
  remat: bool = False
  dtype: Any = jnp.float32
  num_classes: int = 0  # > 0: label-conditional (class embedding added to the time embedding)
  # The SMLD sigma table that integer level labels index (discrete VE; set by the runner).
  sigma_min: Optional[float] = None
  sigma_max: Optional[float] = None
  num_scales: Optional[int] = None

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    act = layers.get_activation(self.nonlinearity)
    nf, dt = self.nf, self.dtype
    num_resolutions = len(self.ch_mult)
    in_dtype, out_channels = x.dtype, x.shape[-1]
    make = layers.BlockFactory(self.remat)

    def resnet_block(**kw):
      return make(
        layers.ResnetBlockDDPM,
        "ResnetBlock",
        static_argnums=(3,),
        act=act,
        dropout=self.dropout,
        dtype=dt,
        **kw,
      )

    def attn_block():
      return make(layers.AttnBlock, "AttnBlock", dtype=dt)

    if self.conditional:
      temb = timestep_embedding(noise_label.astype(jnp.float32), nf)
      temb = nn.Dense(nf * 4, kernel_init=layers.default_init(), dtype=dt)(temb)
      temb = nn.Dense(nf * 4, kernel_init=layers.default_init(), dtype=dt)(act(temb))
      temb = add_class_embedding(temb, labels, self.num_classes, dt)
    else:
      if self.num_classes:
        raise ValueError("a class embedding needs conditional=True (it joins the time embedding)")
      temb = None

    h = x.astype(dt)
    if not self.centered:
      h = 2 * h - 1.0

    hs = [layers.conv3x3(nf, dtype=dt)(h)]
    for i_level in range(num_resolutions):
      for _ in range(self.num_res_blocks):
        h = resnet_block(out_ch=nf * self.ch_mult[i_level])(hs[-1], temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = attn_block()(h)
        hs.append(h)
      if i_level != num_resolutions - 1:
        hs.append(layers.Downsample(with_conv=self.resamp_with_conv, dtype=dt)(hs[-1]))

    h = hs[-1]
    h = resnet_block()(h, temb, train)
    h = attn_block()(h)
    h = resnet_block()(h, temb, train)

    for i_level in reversed(range(num_resolutions)):
      for _ in range(self.num_res_blocks + 1):
        h = resnet_block(out_ch=nf * self.ch_mult[i_level])(
          jnp.concatenate([h, hs.pop()], axis=-1), temb, train
        )
      if h.shape[1] in self.attn_resolutions:
        h = attn_block()(h)
      if i_level != 0:
        h = layers.Upsample(with_conv=self.resamp_with_conv, dtype=dt)(h)
    assert not hs

    h = act(layers.group_norm(h.shape[-1], dt)(h))
    h = layers.conv3x3(out_channels, init_scale=0.0, dtype=dt)(h)
    h = h.astype(in_dtype)
    if self.scale_by_sigma:
      sigma = label_sigma(noise_label, self.sigma_min, self.sigma_max, self.num_scales)
      h = h / bcast(sigma, h).astype(in_dtype)
    return h
