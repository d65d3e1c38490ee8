"""NCSN++ / DDPM++ layers (Song et al. 2021, appendix H): DDPM blocks with GroupNorm groups
min(C/4, 32), optional 1/sqrt(2) skip rescaling, BigGAN-style resampling residual blocks and
FIR (StyleGAN2) up/down-sampling.

Shapes: images [B, H, W, C]; time embedding temb [B, D] or None. float32 parameters; compute
in `dtype`.
"""

from typing import Any, Callable, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from score_sde.models import up_or_down_sampling as updown
from score_sde.models.layers import NIN, SQRT2, conv1x1, conv3x3, default_init, spatial_attention


def group_norm_pp(channels: int, dtype: Any = jnp.float32) -> nn.GroupNorm:
  """NCSN++'s GroupNorm: min(C // 4, 32) groups (so narrow layers still get 4 channels a group)."""
  return nn.GroupNorm(num_groups=max(1, min(channels // 4, 32)), dtype=dtype)


def _skip_add(x, h, skip_rescale: bool):
  """x + h, or (x + h) / sqrt(2) which keeps unit variance for independent unit-variance terms."""
  return (x + h) / SQRT2 if skip_rescale else x + h


class Combine(nn.Module):
  """Merges a pyramid input x into features y: conv1x1(x) + y ('sum') or concat (conv1x1(x), y) ('cat')."""

  method: str = "cat"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, y):
    h = conv1x1(y.shape[-1], dtype=self.dtype)(x)
    if self.method == "cat":
      return jnp.concatenate([h, y], axis=-1)
    if self.method == "sum":
      return h + y
    raise ValueError(f"unknown progressive_combine {self.method!r}; choose from ['cat', 'sum']")


class AttnBlockpp(nn.Module):
  """Self-attention block: skip_add(x, NIN(attention(q, k, v))), q, k, v = NIN(GroupNorm(x)).

  x: [B, H, W, C] -> [B, H, W, C].
  """

  skip_rescale: bool = False
  init_scale: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    C = x.shape[-1]
    h = group_norm_pp(C, self.dtype)(x)
    q, k, v = (NIN(C, dtype=self.dtype)(h) for _ in range(3))
    h = NIN(C, init_scale=self.init_scale, dtype=self.dtype)(spatial_attention(q, k, v))
    return _skip_add(x, h, self.skip_rescale)


class Upsample(nn.Module):
  """x2 upsampling to out_ch channels (default C). [B, H, W, C] -> [B, 2H, 2W, out_ch].

  fir=False: nearest neighbour (+ 3x3 conv). fir=True: FIR upsample_2d, or the fused FIR
  transposed convolution when with_conv.
  """

  out_ch: Optional[int] = None
  with_conv: bool = False
  fir: bool = False
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    B, H, W, C = x.shape
    out_ch = self.out_ch or C
    if not self.with_conv and out_ch != C:
      raise ValueError("Upsample without conv cannot change the channel count")
    if not self.fir:
      h = jax.image.resize(x, (B, 2 * H, 2 * W, C), "nearest")
      if self.with_conv:
        h = conv3x3(out_ch, dtype=self.dtype)(h)
    elif not self.with_conv:
      h = updown.upsample_2d(x, self.fir_kernel, factor=2)
    else:
      h = updown.FIRConv2d(
        out_ch,
        3,
        up=True,
        resample_kernel=tuple(self.fir_kernel),
        kernel_init=default_init(),
        dtype=self.dtype,
      )(x)
    return h


class Downsample(nn.Module):
  """x2 downsampling to out_ch channels (default C). [B, H, W, C] -> [B, H/2, W/2, out_ch].

  fir=False: stride-2 3x3 conv, or 2x2 average pooling. fir=True: the fused FIR convolution,
  or FIR downsample_2d.
  """

  out_ch: Optional[int] = None
  with_conv: bool = False
  fir: bool = False
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    C = x.shape[-1]
    out_ch = self.out_ch or C
    if not self.with_conv and out_ch != C:
      raise ValueError("Downsample without conv cannot change the channel count")
    if not self.fir:
      if self.with_conv:
        return conv3x3(out_ch, stride=2, dtype=self.dtype)(x)
      return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="SAME")
    if not self.with_conv:
      return updown.downsample_2d(x, self.fir_kernel, factor=2)
    return updown.FIRConv2d(
      out_ch,
      3,
      down=True,
      resample_kernel=tuple(self.fir_kernel),
      kernel_init=default_init(),
      dtype=self.dtype,
    )(x)


class ResnetBlockDDPMpp(nn.Module):
  """DDPM residual block with NCSN++ GroupNorm, skip rescaling and init_scale on the last conv.

  out = skip_add(skip(x), conv0(dropout(act(GN(conv(act(GN(x))) + Dense(act(temb))))))).
  x: [B, H, W, C] -> [B, H, W, out_ch].
  """

  out_ch: Optional[int] = None
  conv_shortcut: bool = False
  dropout: float = 0.1
  skip_rescale: bool = False
  init_scale: float = 0.0
  act: Callable = nn.swish
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, temb=None, train: bool = False):
    C = x.shape[-1]
    out_ch = self.out_ch or C
    h = conv3x3(out_ch, dtype=self.dtype)(self.act(group_norm_pp(C, self.dtype)(x)))
    if temb is not None:
      h = (
        h
        + nn.Dense(out_ch, kernel_init=default_init(), dtype=self.dtype)(self.act(temb))[
          :, None, None, :
        ]
      )
    h = self.act(group_norm_pp(out_ch, self.dtype)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv3x3(out_ch, init_scale=self.init_scale, dtype=self.dtype)(h)
    if C != out_ch:
      x = (
        conv3x3(out_ch, dtype=self.dtype)(x)
        if self.conv_shortcut
        else NIN(out_ch, dtype=self.dtype)(x)
      )
    return _skip_add(x, h, self.skip_rescale)


class ResnetBlockBigGANpp(nn.Module):
  """BigGAN-style residual block that may resample (Brock et al. 2019; NCSN++ appendix H).

  Both the residual branch (after its first GroupNorm + act) and the skip are resampled by 2
  (FIR or naive), then: h = conv(h) + Dense(act(temb)); h = conv0(dropout(act(GN(h))));
  out = skip_add(conv1x1(x) if the shape changes else x, h).
  x: [B, H, W, C] -> [B, H', W', out_ch], H' = 2H (up), H/2 (down) or H.
  """

  out_ch: Optional[int] = None
  up: bool = False
  down: bool = False
  dropout: float = 0.1
  fir: bool = False
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  skip_rescale: bool = True
  init_scale: float = 0.0
  act: Callable = nn.swish
  dtype: Any = jnp.float32

  def _resample(self, x):
    if self.up:
      return (
        updown.upsample_2d(x, self.fir_kernel, 2) if self.fir else updown.naive_upsample_2d(x, 2)
      )
    if self.down:
      return (
        updown.downsample_2d(x, self.fir_kernel, 2)
        if self.fir
        else updown.naive_downsample_2d(x, 2)
      )
    return x

  @nn.compact
  def __call__(self, x, temb=None, train: bool = False):
    C = x.shape[-1]
    out_ch = self.out_ch or C
    h = self.act(group_norm_pp(C, self.dtype)(x))
    h, x = self._resample(h), self._resample(x)
    h = conv3x3(out_ch, dtype=self.dtype)(h)
    if temb is not None:
      h = (
        h
        + nn.Dense(out_ch, kernel_init=default_init(), dtype=self.dtype)(self.act(temb))[
          :, None, None, :
        ]
      )
    h = self.act(group_norm_pp(out_ch, self.dtype)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv3x3(out_ch, init_scale=self.init_scale, dtype=self.dtype)(h)
    if C != out_ch or self.up or self.down:
      x = conv1x1(out_ch, dtype=self.dtype)(x)
    return _skip_add(x, h, self.skip_rescale)
