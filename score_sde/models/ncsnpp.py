"""NCSN++ and DDPM++ (Song et al. 2021, appendix H): one U-Net family, registered as 'ncsnpp'.

DDPM++ is this network with resblock_type='biggan', fir=False, progressive_input='none' and a
positional embedding (configs vp/cifar10_ddpmpp_continuous); NCSN++ adds FIR resampling and an
input pyramid ('residual'), and for VE a Gaussian Fourier embedding of log sigma.

Layout (num_resolutions = len(ch_mult)):
  x -> conv3x3(nf) -> for each level: num_res_blocks ResnetBlocks (+ attention at the
  attn_resolutions) and, except at the last level, a downsampling (Downsample or a down
  ResnetBlock), optionally merged with a downsampled copy of the input (progressive_input);
  middle: ResnetBlock, attention, ResnetBlock;
  up: for each level in reverse, num_res_blocks + 1 ResnetBlocks on [h, skip] concatenations,
  attention, the output pyramid (progressive) and an upsampling; GroupNorm, act, conv3x3.
"""

from typing import Any, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from score_sde.models import layerspp
from score_sde.models.embeddings import add_class_embedding, embed_noise_label
from score_sde.models.layers import BlockFactory, default_init, get_activation
from score_sde.models.noise_levels import is_level, label_sigma
from score_sde.models.registry import register_model
from score_sde.sde import bcast

_PROGRESSIVE = ("none", "output_skip", "residual")
_PROGRESSIVE_INPUT = ("none", "input_skip", "residual")
_RESBLOCKS = ("ddpm", "biggan")
_EMBEDDINGS = ("fourier", "positional")
_COMBINE = ("sum", "cat")


def _check(name, value, valid):
  if value not in valid:
    raise ValueError(f"unknown {name} {value!r}; choose from {sorted(valid)}")


@register_model("ncsnpp")
class NCSNpp(nn.Module):
  """NCSN++ / DDPM++ score network.

  __call__(x: [B, H, W, C], noise_label: [B], train: bool) -> [B, H, W, C]. H and W must be
  divisible by 2^(len(ch_mult) - 1). The label follows `models.noise_levels`: the int32 level
  index k of a discrete VE model (sigma_k from the table sigma_min, sigma_max, num_scales),
  sigma for continuous VE, 999 t for VP. 'positional' embeds the label itself, 'fourier' log
  sigma; with scale_by_sigma the output is divided by sigma, s(x, sigma) = net(x, label) / sigma.
  """

  nf: int = 128
  ch_mult: Tuple[int, ...] = (1, 2, 2, 2)
  num_res_blocks: int = 4
  attn_resolutions: Tuple[int, ...] = (16,)
  dropout: float = 0.1
  resamp_with_conv: bool = True
  conditional: bool = True
  fir: bool = True
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  skip_rescale: bool = True
  resblock_type: str = "biggan"  # 'ddpm' | 'biggan'
  progressive: str = "none"  # output pyramid: 'none' | 'output_skip' | 'residual'
  progressive_input: str = "residual"  # input pyramid: 'none' | 'input_skip' | 'residual'
  progressive_combine: str = "sum"  # how 'input_skip' merges: 'sum' | 'cat'
  init_scale: float = 0.0
  embedding_type: str = "positional"  # 'fourier' (of log label) | 'positional'
  fourier_scale: float = 16.0
  scale_by_sigma: bool = False
  centered: bool = True  # False: inputs are in [0, 1] and the network maps x -> 2x - 1 first
  nonlinearity: str = "swish"
  remat: bool = False  # recompute each block in the backward pass (memory for compute)
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  num_classes: int = 0  # > 0: label-conditional (class embedding added to the time embedding)
  # The SMLD sigma table that integer level labels index (discrete VE; set by the runner).
  sigma_min: Optional[float] = None
  sigma_max: Optional[float] = None
  num_scales: Optional[int] = None

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    _check("resblock_type", self.resblock_type, _RESBLOCKS)
    _check("progressive", self.progressive, _PROGRESSIVE)
    _check("progressive_input", self.progressive_input, _PROGRESSIVE_INPUT)
    _check("progressive_combine", self.progressive_combine, _COMBINE)
    _check("embedding_type", self.embedding_type, _EMBEDDINGS)
    act = get_activation(self.nonlinearity)
    nf, dt = self.nf, self.dtype
    num_resolutions = len(self.ch_mult)
    fir_kernel = tuple(self.fir_kernel)
    in_dtype, out_channels = x.dtype, x.shape[-1]
    make = BlockFactory(self.remat)

    # The embedding is computed in float32: sin(999 t w) in bfloat16 would be noise.
    emb_dim = 2 * nf if self.embedding_type == "fourier" else nf
    table = (self.sigma_min, self.sigma_max, self.num_scales)
    if not is_level(noise_label):
      noise_label = noise_label.astype(jnp.float32)
    temb = embed_noise_label(noise_label, self.embedding_type, emb_dim, self.fourier_scale, *table)
    if self.conditional:
      temb = nn.Dense(nf * 4, kernel_init=default_init(), dtype=dt)(temb)
      temb = nn.Dense(nf * 4, kernel_init=default_init(), dtype=dt)(act(temb))
      temb = add_class_embedding(temb, labels, self.num_classes, dt)
    else:
      if self.num_classes:
        raise ValueError("a class embedding needs conditional=True (it joins the time embedding)")
      temb = None

    def resnet_block(**kw):
      common = dict(
        dropout=self.dropout,
        init_scale=self.init_scale,
        skip_rescale=self.skip_rescale,
        act=act,
        dtype=dt,
      )
      if self.resblock_type == "ddpm":
        return make(layerspp.ResnetBlockDDPMpp, "ResnetBlock", static_argnums=(3,), **common, **kw)
      return make(
        layerspp.ResnetBlockBigGANpp,
        "ResnetBlock",
        static_argnums=(3,),
        fir=self.fir,
        fir_kernel=fir_kernel,
        **common,
        **kw,
      )

    def attn_block():
      return make(
        layerspp.AttnBlockpp,
        "AttnBlock",
        init_scale=self.init_scale,
        skip_rescale=self.skip_rescale,
        dtype=dt,
      )

    def norm_act(h):
      return act(layerspp.group_norm_pp(h.shape[-1], dt)(h))

    def add(a, b):
      return (a + b) / layerspp.SQRT2 if self.skip_rescale else a + b

    x = x.astype(dt)
    if not self.centered:
      x = 2 * x - 1.0

    # Downsampling path.
    input_pyramid = x if self.progressive_input != "none" else None
    hs = [layerspp.conv3x3(nf, dtype=dt)(x)]
    for i_level in range(num_resolutions):
      for _ in range(self.num_res_blocks):
        h = resnet_block(out_ch=nf * self.ch_mult[i_level])(hs[-1], temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = attn_block()(h)
        hs.append(h)
      if i_level != num_resolutions - 1:
        if self.resblock_type == "ddpm":
          h = layerspp.Downsample(
            with_conv=self.resamp_with_conv, fir=self.fir, fir_kernel=fir_kernel, dtype=dt
          )(hs[-1])
        else:
          h = resnet_block(down=True)(hs[-1], temb, train)
        if self.progressive_input == "input_skip":
          input_pyramid = layerspp.Downsample(
            with_conv=False, fir=self.fir, fir_kernel=fir_kernel, dtype=dt
          )(input_pyramid)
          h = layerspp.Combine(method=self.progressive_combine, dtype=dt)(input_pyramid, h)
        elif self.progressive_input == "residual":
          input_pyramid = layerspp.Downsample(
            out_ch=h.shape[-1], with_conv=True, fir=self.fir, fir_kernel=fir_kernel, dtype=dt
          )(input_pyramid)
          h = input_pyramid = add(input_pyramid, h)
        hs.append(h)

    # Middle.
    h = hs[-1]
    h = resnet_block()(h, temb, train)
    h = attn_block()(h)
    h = resnet_block()(h, temb, train)

    # Upsampling path.
    pyramid = None
    for i_level in reversed(range(num_resolutions)):
      for _ in range(self.num_res_blocks + 1):
        h = resnet_block(out_ch=nf * self.ch_mult[i_level])(
          jnp.concatenate([h, hs.pop()], axis=-1), temb, train
        )
      if h.shape[1] in self.attn_resolutions:
        h = attn_block()(h)

      if self.progressive == "output_skip":
        # The output is a sum of per-resolution predictions, each FIR-upsampled to full size.
        out_here = layerspp.conv3x3(out_channels, init_scale=self.init_scale, dtype=dt)(norm_act(h))
        if i_level == num_resolutions - 1:
          pyramid = out_here
        else:
          pyramid = layerspp.Upsample(
            with_conv=False, fir=self.fir, fir_kernel=fir_kernel, dtype=dt
          )(pyramid)
          pyramid = pyramid + out_here
      elif self.progressive == "residual":
        if i_level == num_resolutions - 1:
          pyramid = layerspp.conv3x3(h.shape[-1], dtype=dt)(norm_act(h))
        else:
          pyramid = layerspp.Upsample(
            out_ch=h.shape[-1], with_conv=True, fir=self.fir, fir_kernel=fir_kernel, dtype=dt
          )(pyramid)
          h = pyramid = add(pyramid, h)

      if i_level != 0:
        if self.resblock_type == "ddpm":
          h = layerspp.Upsample(
            with_conv=self.resamp_with_conv, fir=self.fir, fir_kernel=fir_kernel, dtype=dt
          )(h)
        else:
          h = resnet_block(up=True)(h, temb, train)
    assert not hs

    if self.progressive == "output_skip":
      h = pyramid
    else:
      h = layerspp.conv3x3(out_channels, init_scale=self.init_scale, dtype=dt)(norm_act(h))

    h = h.astype(in_dtype)
    if self.scale_by_sigma:
      h = h / bcast(label_sigma(noise_label, *table), h).astype(in_dtype)
    return h
