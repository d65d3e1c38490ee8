"""FIR up- and down-sampling of NHWC images (StyleGAN2's upfirdn2d), in plain XLA convolutions.

upfirdn2d(x, k, up, down, pad) is, per channel and per axis:
  1. insert `up - 1` zeros after every sample            (length H -> H up),
  2. pad with pad[0] zeros before and pad[1] after      (negative values crop),
  3. convolve with the 2-D FIR filter k ('valid': output length L - kh + 1),
  4. keep every `down`-th sample, starting with the first.
Step 1 is the lhs dilation of `lax.conv_general_dilated`, step 4 its window stride, so the whole
operation is one depthwise convolution; no custom kernel is needed.

With the filter k normalised to sum 1, `upsample_2d` (gain factor^2) and `downsample_2d` keep a
constant image constant. The fused `upsample_conv_2d` / `conv_downsample_2d` pad only once:
they equal `conv_same(upsample_2d(x), w)` / `downsample_2d(conv_same(x, w))` computed on the
zero-extended plane (x padded with zeros far enough, the result cropped back), which differs
from the bounded composition only at the border, where the latter crops its intermediate.
"""

from typing import Any, Callable, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_DN = ("NHWC", "HWIO", "NHWC")


def setup_kernel(k: Sequence) -> np.ndarray:
  """1-D taps -> separable 2-D filter outer(k, k); 2-D stays. Normalised to sum 1. [kh, kw]."""
  k = np.asarray(k, dtype=np.float64)
  if k.ndim == 1:
    k = np.outer(k, k)
  if k.ndim != 2 or k.shape[0] != k.shape[1]:
    raise ValueError(f"FIR filter must be 1-D or square 2-D, got shape {k.shape}")
  return k / k.sum()


def upfirdn2d(
  x: jax.Array, k, up: int = 1, down: int = 1, pad: Tuple[int, int] = (0, 0)
) -> jax.Array:
  """Zero-insert by `up`, pad, convolve with k [kh, kw] (a true convolution), decimate by `down`.

  x: [N, H, W, C] -> [N, (H up + p0 + p1 - kh) // down + 1, (same for W), C].
  """
  k = np.asarray(k, dtype=np.float64)
  kh, kw = k.shape
  c = x.shape[-1]
  # A convolution is a correlation with the flipped filter; one filter copy per channel.
  w = jnp.asarray(np.tile(k[::-1, ::-1, None, None], (1, 1, 1, c)), dtype=x.dtype)
  p0, p1 = pad
  # lhs_dilation yields H up - (up - 1) samples (no zeros after the last one); the missing
  # up - 1 trailing zeros of step 1 are added to the high-side padding.
  padding = [(p0, p1 + up - 1), (p0, p1 + up - 1)]
  return jax.lax.conv_general_dilated(
    x,
    w,
    window_strides=(down, down),
    padding=padding,
    lhs_dilation=(up, up),
    dimension_numbers=_DN,
    feature_group_count=c,
  )


def upsample_2d(
  x: jax.Array, k: Optional[Sequence] = None, factor: int = 2, gain: float = 1.0
) -> jax.Array:
  """[N, H, W, C] -> [N, H f, W f, C]: zero-insertion then FIR k (default [1]*f: nearest neighbour)."""
  k = setup_kernel([1] * factor if k is None else k) * (gain * factor**2)
  p = k.shape[0] - factor
  return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(
  x: jax.Array, k: Optional[Sequence] = None, factor: int = 2, gain: float = 1.0
) -> jax.Array:
  """[N, H, W, C] -> [N, H / f, W / f, C]: FIR k then decimation (default [1]*f: average pooling)."""
  k = setup_kernel([1] * factor if k is None else k) * gain
  p = k.shape[0] - factor
  return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv_2d(
  x: jax.Array, w: jax.Array, k: Optional[Sequence] = None, factor: int = 2, gain: float = 1.0
) -> jax.Array:
  """Fused upsample_2d then 'SAME' convolution with w [kc, kc, Cin, Cout] (on the zero-extended plane).

  x: [N, H, W, Cin] -> [N, H f, W f, Cout]. The strided transposed convolution (zero insertion,
  full padding, correlation with w) comes first, then one FIR pass with the padding that makes
  the composite equal to the unfused one.
  """
  kc = w.shape[0]
  if w.shape[1] != kc:
    raise ValueError(f"square convolution kernels only, got {w.shape}")
  k = setup_kernel([1] * factor if k is None else k) * (gain * factor**2)
  p = (k.shape[0] - factor) - (kc - 1)
  y = jax.lax.conv_general_dilated(
    x,
    w.astype(x.dtype),
    window_strides=(1, 1),
    padding=[(kc - 1, kc - 1)] * 2,
    lhs_dilation=(factor, factor),
    dimension_numbers=_DN,
  )
  return upfirdn2d(y, k, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def conv_downsample_2d(
  x: jax.Array, w: jax.Array, k: Optional[Sequence] = None, factor: int = 2, gain: float = 1.0
) -> jax.Array:
  """Fused 'SAME' convolution with w [kc, kc, Cin, Cout] then downsample_2d (on the zero-extended plane).

  x: [N, H, W, Cin] -> [N, H / f, W / f, Cout]: one FIR pass with the combined padding, then the
  convolution strided by f.
  """
  kc = w.shape[0]
  if w.shape[1] != kc:
    raise ValueError(f"square convolution kernels only, got {w.shape}")
  k = setup_kernel([1] * factor if k is None else k) * gain
  p = (k.shape[0] - factor) + (kc - 1)
  y = upfirdn2d(x, k, pad=((p + 1) // 2, p // 2))
  return jax.lax.conv_general_dilated(
    y, w.astype(x.dtype), window_strides=(factor, factor), padding="VALID", dimension_numbers=_DN
  )


def naive_upsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling, [N, H, W, C] -> [N, H f, W f, C]."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def naive_downsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
  """Average pooling over f x f blocks, [N, H, W, C] -> [N, H / f, W / f, C]."""
  n, h, w, c = x.shape
  return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


class FIRConv2d(nn.Module):
  """Convolution fused with FIR up- or down-sampling by 2 (StyleGAN2's Conv2d with up/down).

  x: [N, H, W, Cin] -> [N, H', W', features]; H' = 2H (up), H/2 (down) or H.
  """

  features: int
  kernel_size: int = 3
  up: bool = False
  down: bool = False
  resample_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.up and self.down:
      raise ValueError("FIRConv2d: up and down are exclusive")
    ks = self.kernel_size
    w = self.param("kernel", self.kernel_init, (ks, ks, x.shape[-1], self.features))
    x = x.astype(self.dtype)
    if self.up:
      y = upsample_conv_2d(x, w, self.resample_kernel)
    elif self.down:
      y = conv_downsample_2d(x, w, self.resample_kernel)
    else:
      y = jax.lax.conv_general_dilated(
        x, w.astype(self.dtype), (1, 1), "SAME", dimension_numbers=_DN
      )
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y
