"""DDPM layers (Ho et al. 2020), shared by the DDPM and NCSN++ networks.

Initialisation follows DDPM's TensorFlow code: every kernel is variance-scaling 'fan_avg' uniform
(`default_init`), biases are zero, and the last layer of each residual branch is initialised near
zero (init_scale 0 -> 1e-10) so that each block starts as the identity.

All modules keep float32 parameters and compute in `dtype` (e.g. jnp.bfloat16).
"""

import collections
from typing import Any, Callable, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from score_sde.registry import lookup

SQRT2 = float(np.sqrt(2.0))

ACTIVATIONS: Dict[str, Callable] = {
  "swish": nn.swish,
  "elu": nn.elu,
  "relu": nn.relu,
  "lrelu": lambda x: nn.leaky_relu(x, negative_slope=0.2),
}


def get_activation(name: str) -> Callable:
  return lookup(ACTIVATIONS, name, "nonlinearity")


def default_init(scale: float = 1.0):
  """DDPM's initialiser: uniform with Var = scale / fan_avg, fan_avg = (fan_in + fan_out) / 2.

  scale 0 becomes 1e-10, as in the TF original: the layer starts (numerically) at zero output
  but its kernel is not exactly zero.
  """
  return nn.initializers.variance_scaling(1e-10 if scale == 0 else scale, "fan_avg", "uniform")


def conv3x3(
  features: int,
  stride: int = 1,
  init_scale: float = 1.0,
  use_bias: bool = True,
  dtype: Any = jnp.float32,
  name: Optional[str] = None,
) -> nn.Conv:
  """3x3 'SAME' convolution with DDPM initialisation."""
  return nn.Conv(
    features,
    (3, 3),
    strides=(stride, stride),
    padding="SAME",
    use_bias=use_bias,
    kernel_init=default_init(init_scale),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    name=name,
  )


def conv1x1(
  features: int,
  init_scale: float = 1.0,
  use_bias: bool = True,
  dtype: Any = jnp.float32,
  name: Optional[str] = None,
) -> nn.Conv:
  """1x1 convolution with DDPM initialisation."""
  return nn.Conv(
    features,
    (1, 1),
    padding="SAME",
    use_bias=use_bias,
    kernel_init=default_init(init_scale),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    name=name,
  )


def group_norm(
  channels: int, dtype: Any = jnp.float32, num_groups: Optional[int] = None
) -> nn.GroupNorm:
  """GroupNorm; by default DDPM's 32 groups (capped at the channel count)."""
  return nn.GroupNorm(
    num_groups=min(32, channels) if num_groups is None else num_groups, dtype=dtype
  )


class NIN(nn.Module):
  """Per-pixel dense layer ("network in network"), y = x W + b over the last axis.

  x: [..., Cin] -> [..., num_units]. DDPM's default init_scale is 0.1.
  """

  num_units: int
  init_scale: float = 0.1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    W = self.param("W", default_init(self.init_scale), (x.shape[-1], self.num_units))
    b = self.param("b", nn.initializers.zeros, (self.num_units,))
    return jnp.tensordot(x.astype(self.dtype), W.astype(self.dtype), axes=1) + b.astype(self.dtype)


def spatial_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """Single-head attention over all H W positions. q, k, v: [B, H, W, C] -> [B, H, W, C].

  out_i = sum_j softmax_j(q_i . k_j / sqrt(C)) v_j; the softmax is taken in float32.
  """
  B, H, W, C = q.shape
  logits = jnp.einsum("bhwc,bHWc->bhwHW", q, k) * (C**-0.5)
  attn = jax.nn.softmax(logits.reshape(B, H, W, H * W).astype(jnp.float32), axis=-1)
  attn = attn.reshape(B, H, W, H, W).astype(v.dtype)
  return jnp.einsum("bhwHW,bHWc->bhwc", attn, v)


class AttnBlock(nn.Module):
  """DDPM self-attention block: x + NIN(attention(NIN_q(n), NIN_k(n), NIN_v(n))), n = GroupNorm(x).

  x: [B, H, W, C] -> [B, H, W, C]. The output projection starts at ~0 (identity block).
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    C = x.shape[-1]
    h = group_norm(C, self.dtype)(x)
    q, k, v = (NIN(C, dtype=self.dtype)(h) for _ in range(3))
    h = NIN(C, init_scale=0.0, dtype=self.dtype)(spatial_attention(q, k, v))
    return x + h


class Upsample(nn.Module):
  """Nearest-neighbour x2 upsampling, then (optionally) a 3x3 convolution. [B,H,W,C] -> [B,2H,2W,C]."""

  with_conv: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    B, H, W, C = x.shape
    h = jax.image.resize(x, (B, 2 * H, 2 * W, C), "nearest")
    if self.with_conv:
      h = conv3x3(C, dtype=self.dtype)(h)
    return h


class Downsample(nn.Module):
  """x2 downsampling: stride-2 3x3 convolution, or 2x2 average pooling. [B,H,W,C] -> [B,H/2,W/2,C]."""

  with_conv: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    C = x.shape[-1]
    if self.with_conv:
      return conv3x3(C, stride=2, dtype=self.dtype)(x)
    return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="SAME")


class ResnetBlockDDPM(nn.Module):
  """DDPM residual block.

  h = conv(act(GN(x))) + Dense(act(temb));  h = conv0(dropout(act(GN(h))));  out = skip(x) + h,
  skip = identity, or NIN / 3x3 conv when the channel count changes.
  x: [B, H, W, C], temb: [B, D] or None -> [B, H, W, out_ch].
  """

  out_ch: Optional[int] = None
  conv_shortcut: bool = False
  dropout: float = 0.1
  act: Callable = nn.swish
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, temb=None, train: bool = False):
    C = x.shape[-1]
    out_ch = self.out_ch or C
    h = conv3x3(out_ch, dtype=self.dtype)(self.act(group_norm(C, self.dtype)(x)))
    if temb is not None:
      h = (
        h
        + nn.Dense(out_ch, kernel_init=default_init(), dtype=self.dtype)(self.act(temb))[
          :, None, None, :
        ]
      )
    h = self.act(group_norm(out_ch, self.dtype)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv3x3(out_ch, init_scale=0.0, dtype=self.dtype)(h)
    if C != out_ch:
      x = (
        conv3x3(out_ch, dtype=self.dtype)(x)
        if self.conv_shortcut
        else NIN(out_ch, dtype=self.dtype)(x)
      )
    return x + h


class BlockFactory:
  """Creates named blocks so that the parameter tree is the same with and without remat."""

  def __init__(self, remat: bool):
    self.remat = remat
    self.counts = collections.Counter()

  def __call__(self, cls, prefix: str, static_argnums=(), **kwargs):
    if self.remat:
      # static_argnums count `self` as 0: the `train` flag must stay a Python bool.
      cls = nn.remat(cls, static_argnums=static_argnums)
    name = f"{prefix}_{self.counts[prefix]}"
    self.counts[prefix] += 1
    return cls(name=name, **kwargs)
