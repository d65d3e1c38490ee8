"""RefineNet blocks of NCSN (Song & Ermon 2019) and NCSNv2 (Song & Ermon 2020), NHWC.

Each block takes `normalization`, a factory of norm modules called as `norm(x, y)` (see
`models.normalization`), and is called as `block(x, y)` with y: [B] int noise-level indices or
None. NCSNv2 passes an unconditional norm (which ignores y); NCSN passes conditional
InstanceNorm++, so the same blocks build both networks. The RefineNet part (RCU, CRP, MSF) differs
between the two: NCSN normalises before every convolution there and pools with an average, NCSNv2
has no norms there and pools with a max. `refine_norm=None` selects the NCSNv2 form. (The 2021
release spelled the NCSN form as separate Cond* classes: CondRCUBlock = RCUBlock with a norm, etc.)

Convolutions use PyTorch's default initialisation, as the NCSN code did: kernel and bias
uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)].
"""

from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Norm = Callable[[], nn.Module]


class NCSNConv(nn.Module):
  """k x k 'SAME' convolution (optionally dilated) with PyTorch's default initialisation."""

  features: int
  kernel_size: int = 3
  dilation: int = 1
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    fan_in = self.kernel_size**2 * x.shape[-1]
    bound = fan_in**-0.5

    def uniform(key, shape, dtype=jnp.float32):
      return jax.random.uniform(key, shape, dtype, -bound, bound)

    return nn.Conv(
      self.features,
      (self.kernel_size,) * 2,
      padding="SAME",
      kernel_dilation=(self.dilation,) * 2,
      use_bias=self.use_bias,
      kernel_init=uniform,
      bias_init=uniform,
    )(x)


def mean_pool2x2(x):
  """[B, H, W, C] -> [B, H/2, W/2, C], the mean of each 2 x 2 patch."""
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f"mean pooling needs even height and width, got {h} x {w}")
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ConvMeanPool(nn.Module):
  """Convolution, then 2 x 2 mean pooling (the backbone's downsampling)."""

  features: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x):
    return mean_pool2x2(NCSNConv(self.features, self.kernel_size)(x))


class ResidualBlock(nn.Module):
  """Pre-activation residual block of the ResNet backbone: x + conv(act(norm(conv(act(norm(x)))))).

  resample='down' halves H and W when dilation == 1 (conv + mean pool on both branches); a dilated
  'down' block keeps the resolution and instead widens the receptive field (as in NCSNv2, whose
  deepest levels trade downsampling for dilation 2 and 4). The shortcut is the identity when
  nothing changes, else a 1x1 (or, dilated, 3x3) convolution.
  """

  features: int
  normalization: Norm
  act: Callable = nn.elu
  resample: Optional[str] = None  # None | 'down'
  dilation: int = 1

  @nn.compact
  def __call__(self, x, y=None):
    if self.resample not in (None, "down"):
      raise ValueError(f"unknown resample {self.resample!r}; choose from [None, 'down']")
    c_in, d = x.shape[-1], self.dilation
    h = self.act(self.normalization()(x, y))
    if self.resample == "down":
      h = NCSNConv(c_in, dilation=d)(h)
      h = self.act(self.normalization()(h, y))
      if d > 1:
        h = NCSNConv(self.features, dilation=d)(h)
        shortcut = NCSNConv(self.features, dilation=d)(x)
      else:
        h = ConvMeanPool(self.features)(h)
        shortcut = ConvMeanPool(self.features, kernel_size=1)(x)
    else:
      if c_in == self.features:
        shortcut = x
      elif d > 1:
        shortcut = NCSNConv(self.features, dilation=d)(x)
      else:
        shortcut = NCSNConv(self.features, kernel_size=1)(x)
      h = NCSNConv(self.features, dilation=d)(h)
      h = self.act(self.normalization()(h, y))
      h = NCSNConv(self.features, dilation=d)(h)
    return h + shortcut


class RCUBlock(nn.Module):
  """Residual conv unit: n_blocks times x <- x + (act -> conv3x3)^n_stages (x), no biases."""

  features: int
  n_blocks: int
  n_stages: int
  act: Callable = nn.elu
  refine_norm: Optional[Norm] = None

  @nn.compact
  def __call__(self, x, y=None):
    for _ in range(self.n_blocks):
      residual = x
      for _ in range(self.n_stages):
        if self.refine_norm is not None:
          x = self.refine_norm()(x, y)
        x = NCSNConv(self.features, use_bias=False)(self.act(x))
      x = x + residual
    return x


class CRPBlock(nn.Module):
  """Chained residual pooling: x <- act(x); path <- conv(pool5x5(path)); x <- x + path, n_stages times.

  Max pooling (NCSNv2) or, with refine_norm, norm + average pooling (NCSN).
  """

  features: int
  n_stages: int
  act: Callable = nn.elu
  refine_norm: Optional[Norm] = None

  @nn.compact
  def __call__(self, x, y=None):
    x = self.act(x)
    path = x
    for _ in range(self.n_stages):
      if self.refine_norm is not None:
        path = self.refine_norm()(path, y)
        path = nn.avg_pool(path, (5, 5), strides=(1, 1), padding="SAME")
      else:
        path = nn.max_pool(path, (5, 5), strides=(1, 1), padding="SAME")
      path = NCSNConv(self.features, use_bias=False)(path)
      x = path + x
    return x


class MSFBlock(nn.Module):
  """Multi-resolution fusion: sum_i resize(conv3x3(x_i), shape) to `features` channels."""

  shape: Sequence[int]
  features: int
  interpolation: str = "bilinear"  # 'bilinear' | 'nearest_neighbor'
  refine_norm: Optional[Norm] = None

  @nn.compact
  def __call__(self, xs, y=None):
    methods = {"bilinear": "bilinear", "nearest_neighbor": "nearest"}
    if self.interpolation not in methods:
      raise ValueError(
        f"unknown interpolation {self.interpolation!r}; choose from {sorted(methods)}"
      )
    total = 0.0
    for x in xs:
      if self.refine_norm is not None:
        x = self.refine_norm()(x, y)
      h = NCSNConv(self.features)(x)
      h = jax.image.resize(h, (h.shape[0], *self.shape, self.features), methods[self.interpolation])
      total = total + h
    return total


class RefineBlock(nn.Module):
  """RefineNet block: RCU (2 x 2) on each input, MSF fusion to `output_shape` (skipped at the
  deepest block, `start`), CRP, and an output RCU (3 blocks in the last block, `end`, else 1)."""

  output_shape: Sequence[int]
  features: int
  act: Callable = nn.elu
  interpolation: str = "bilinear"
  start: bool = False
  end: bool = False
  refine_norm: Optional[Norm] = None

  @nn.compact
  def __call__(self, xs, y=None):
    hs = [RCUBlock(x.shape[-1], 2, 2, self.act, self.refine_norm)(x, y) for x in xs]
    if self.start:
      if len(hs) != 1 or hs[0].shape[-1] != self.features:
        raise ValueError("the first RefineBlock takes one input with `features` channels")
      h = hs[0]
    else:
      h = MSFBlock(self.output_shape, self.features, self.interpolation, self.refine_norm)(hs, y)
    h = CRPBlock(self.features, 2, self.act, self.refine_norm)(h, y)
    return RCUBlock(self.features, 3 if self.end else 1, 2, self.act, self.refine_norm)(h, y)


# The RefineNet layouts of the 2021 release, chosen by image size. levels: (width multiple of nf,
# dilation) per resolution level, shallowest first; each level is two ResidualBlocks, the first
# one 'down' except at level 0. refine: output width multiples of the RefineBlocks, deepest first.
ARCHITECTURES = {
  # ncsnv2_64 (CIFAR-10 32 x 32, CelebA 64 x 64; also NCSN): 32 -> 32, 16, 16, 16.
  "small": dict(levels=((1, 1), (2, 1), (2, 2), (2, 4)), refine=(2, 2, 2, 1)),
  # ncsnv2_128 (LSUN 128 x 128): 128 -> 128, 64, 32, 32, 32.
  "128": dict(levels=((1, 1), (2, 1), (2, 1), (4, 2), (4, 4)), refine=(4, 2, 2, 1, 1)),
  # ncsnv2_256 (LSUN / FFHQ / CelebA-HQ 256 x 256): 256 -> 256, 128, 64, 32, 32, 32.
  "256": dict(levels=((1, 1), (2, 1), (2, 1), (2, 1), (4, 2), (4, 4)), refine=(4, 2, 2, 2, 1, 1)),
}


def architecture_for(image_size: int) -> str:
  """The release's switch: < 96 -> 'small', 96..128 -> '128', 129..256 -> '256'."""
  if image_size < 96:
    return "small"
  if image_size <= 128:
    return "128"
  if image_size <= 256:
    return "256"
  raise ValueError(f"no NCSN/NCSNv2 layout for {image_size} px images (at most 256)")


class RefineNet(nn.Module):
  """conv3x3 -> ResNet backbone -> RefineBlocks (deepest to shallowest) -> norm, act, conv3x3.

  x: [B, H, W, C] -> [B, H, W, C]; y: [B] int levels or None. Shared by NCSN and NCSNv2.
  """

  nf: int
  architecture: str
  normalization: Norm
  act: Callable = nn.elu
  interpolation: str = "bilinear"
  refine_norm: Optional[Norm] = None

  @nn.compact
  def __call__(self, x, y=None):
    arch = ARCHITECTURES[self.architecture]
    norm, act, nf = self.normalization, self.act, self.nf
    h = NCSNConv(nf)(x)
    layers = []
    for i, (mult, dilation) in enumerate(arch["levels"]):
      h = ResidualBlock(mult * nf, norm, act, None if i == 0 else "down", dilation)(h, y)
      h = ResidualBlock(mult * nf, norm, act, None, dilation)(h, y)
      layers.append(h)
    ref = None
    for j, (layer, mult) in enumerate(zip(reversed(layers), arch["refine"])):
      inputs = [layer] if ref is None else [layer, ref]
      ref = RefineBlock(
        layer.shape[1:3],
        mult * nf,
        act,
        self.interpolation,
        start=j == 0,
        end=j == len(layers) - 1,
        refine_norm=self.refine_norm,
      )(inputs, y)
    h = act(norm()(ref, y))
    return NCSNConv(x.shape[-1])(h)
