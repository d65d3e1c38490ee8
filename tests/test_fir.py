"""FIR resampling equals its definition.

upfirdn2d is checked against a direct numpy implementation of its four steps (zero insertion,
padding/cropping, true convolution, decimation) and against scipy.signal.upfirdn for separable
filters; upsample_2d / downsample_2d against their closed forms for the [1, 3, 3, 1] filter
(half-pixel bilinear interpolation / its adjoint) and for [1, 1] (nearest neighbour / average
pooling); the fused convolutions against the unfused composition on the zero-extended plane. Everything runs in float64,
so agreement is to rounding (1e-12).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from score_sde.models import up_or_down_sampling as ud

TOL = 1e-12


def upfirdn2d_numpy(x, k, up, down, pad):
  """The definition, one step at a time. x: [N, H, W, C], k: [kh, kw]."""
  n, h, w, c = x.shape
  z = np.zeros((n, h * up, w * up, c))
  z[:, ::up, ::up, :] = x
  p0, p1 = pad
  z = np.pad(z, [(0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0)), (0, 0)])
  z = z[:, max(-p0, 0) : z.shape[1] - max(-p1, 0), max(-p0, 0) : z.shape[2] - max(-p1, 0), :]
  kh, kw = k.shape
  oh, ow = z.shape[1] - kh + 1, z.shape[2] - kw + 1
  out = np.zeros((n, oh, ow, c))
  for i in range(oh):
    for j in range(ow):
      window = z[:, i : i + kh, j : j + kw, :]
      # Convolution: the filter is flipped relative to the window.
      out[:, i, j, :] = np.einsum("nabc,ab->nc", window, k[::-1, ::-1])
  return out[:, ::down, ::down, :]


def _x(shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize(
  "up,down,pad,kshape",
  [
    (1, 1, (0, 0), (3, 3)),
    (2, 1, (2, 1), (4, 4)),
    (1, 2, (1, 1), (4, 4)),
    (3, 1, (1, 2), (3, 3)),
    (2, 2, (1, 2), (3, 3)),
    (1, 1, (-1, 2), (2, 2)),
    (2, 1, (3, -1), (4, 4)),
    (1, 3, (2, 2), (5, 5)),
  ],
)
def test_upfirdn2d_equals_definition(x64, up, down, pad, kshape):
  x = _x((2, 5, 6, 3))
  k = _x(kshape, seed=1)  # not symmetric: catches a missing flip
  got = ud.upfirdn2d(jnp.asarray(x), k, up=up, down=down, pad=pad)
  want = upfirdn2d_numpy(x, k, up, down, pad)
  assert got.shape == want.shape
  np.testing.assert_allclose(np.asarray(got), want, atol=TOL, rtol=0)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (3, 2)])
def test_upfirdn2d_separable_equals_scipy(x64, up, down):
  """A full convolution (pad kh - 1 each side, minus the up - 1 trailing zeros) is scipy's upfirdn."""
  x = _x((1, 6, 7, 1))
  taps = np.array([0.3, -1.0, 2.0, 0.5])
  kh = taps.size
  got = ud.upfirdn2d(
    jnp.asarray(x), np.outer(taps, taps), up=up, down=down, pad=(kh - 1, kh - 1 - (up - 1))
  )
  rows = scipy.signal.upfirdn(taps, x[0, :, :, 0], up=up, down=down, axis=0)
  want = scipy.signal.upfirdn(taps, rows, up=up, down=down, axis=1)
  np.testing.assert_allclose(np.asarray(got)[0, :, :, 0], want, atol=TOL, rtol=0)


def _bilinear_up_1d(x, axis):
  """Half-pixel bilinear upsampling with zeros outside: y[2i] = 3/4 x[i] + 1/4 x[i-1], y[2i+1] = 3/4 x[i] + 1/4 x[i+1]."""
  x = np.moveaxis(x, axis, 0)
  xp = np.concatenate([np.zeros_like(x[:1]), x, np.zeros_like(x[:1])])
  y = np.empty((2 * x.shape[0],) + x.shape[1:])
  y[0::2] = 0.75 * x + 0.25 * xp[:-2]
  y[1::2] = 0.75 * x + 0.25 * xp[2:]
  return np.moveaxis(y, 0, axis)


def _fir_down_1d(x, axis):
  """y[i] = (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8, zeros outside."""
  x = np.moveaxis(x, axis, 0)
  xp = np.concatenate([np.zeros_like(x[:1]), x, np.zeros_like(x[:1])])
  n = x.shape[0] // 2
  i = 2 * np.arange(n)
  y = (xp[i] + 3 * xp[i + 1] + 3 * xp[i + 2] + xp[i + 3]) / 8
  return np.moveaxis(y, 0, axis)


def test_upsample_2d_1331_is_bilinear(x64):
  x = _x((2, 4, 5, 3))
  want = _bilinear_up_1d(_bilinear_up_1d(x, 1), 2)
  got = ud.upsample_2d(jnp.asarray(x), (1, 3, 3, 1), factor=2)
  np.testing.assert_allclose(np.asarray(got), want, atol=TOL, rtol=0)


def test_downsample_2d_1331_closed_form(x64):
  x = _x((2, 8, 6, 3))
  want = _fir_down_1d(_fir_down_1d(x, 1), 2)
  got = ud.downsample_2d(jnp.asarray(x), (1, 3, 3, 1), factor=2)
  np.testing.assert_allclose(np.asarray(got), want, atol=TOL, rtol=0)


@pytest.mark.parametrize("factor", [2, 3])
def test_box_filter_is_nearest_and_average_pool(x64, factor):
  x = _x((2, 6, 6, 2))
  up = ud.upsample_2d(jnp.asarray(x), None, factor=factor)
  np.testing.assert_allclose(
    np.asarray(up), np.asarray(ud.naive_upsample_2d(jnp.asarray(x), factor)), atol=TOL
  )
  np.testing.assert_allclose(np.asarray(up), x.repeat(factor, 1).repeat(factor, 2), atol=TOL)
  down = ud.downsample_2d(jnp.asarray(x), None, factor=factor)
  want = x.reshape(2, 6 // factor, factor, 6 // factor, factor, 2).mean(axis=(2, 4))
  np.testing.assert_allclose(np.asarray(down), want, atol=TOL)
  np.testing.assert_allclose(
    np.asarray(ud.naive_downsample_2d(jnp.asarray(x), factor)), want, atol=TOL
  )


def _conv_same(x, w):
  return jax.lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def _zero_extend(x, m):
  return jnp.pad(x, [(0, 0), (m, m), (m, m), (0, 0)])


@pytest.mark.parametrize("kernel", [(1, 3, 3, 1), (1, 1), (1, 2, 1)])
def test_fused_upsample_conv_equals_upsample_then_conv(x64, kernel):
  """Padding once = the unfused composition on the zero-extended plane (margin m), cropped back."""
  x, w = jnp.asarray(_x((2, 5, 4, 3))), jnp.asarray(_x((3, 3, 3, 7), seed=2))
  got = ud.upsample_conv_2d(x, w, kernel)
  m = 2
  want = _conv_same(ud.upsample_2d(_zero_extend(x, m), kernel), w)[
    :, 2 * m : -2 * m, 2 * m : -2 * m
  ]
  assert got.shape == (2, 10, 8, 7)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-11, rtol=0)
  # Away from the one-pixel border the bounded composition agrees as well.
  bounded = _conv_same(ud.upsample_2d(x, kernel), w)
  np.testing.assert_allclose(
    np.asarray(got)[:, 1:-1, 1:-1], np.asarray(bounded)[:, 1:-1, 1:-1], atol=1e-11
  )


@pytest.mark.parametrize("kernel", [(1, 3, 3, 1), (1, 1), (1, 2, 1)])
def test_fused_conv_downsample_equals_conv_then_downsample(x64, kernel):
  x, w = jnp.asarray(_x((2, 8, 6, 3))), jnp.asarray(_x((3, 3, 3, 7), seed=2))
  got = ud.conv_downsample_2d(x, w, kernel)
  m = 2  # the input margin 2m keeps the decimation grid aligned
  want = ud.downsample_2d(_conv_same(_zero_extend(x, 2 * m), w), kernel)[:, m:-m, m:-m]
  assert got.shape == (2, 4, 3, 7)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-11, rtol=0)
  bounded = ud.downsample_2d(_conv_same(x, w), kernel)
  np.testing.assert_allclose(
    np.asarray(got)[:, 1:-1, 1:-1], np.asarray(bounded)[:, 1:-1, 1:-1], atol=1e-11
  )


def test_constant_image_interior_is_preserved():
  """The filter is normalised: a constant image stays constant away from the zero-padded border."""
  x = jnp.full((1, 8, 8, 1), 3.0)
  up = np.asarray(ud.upsample_2d(x, (1, 3, 3, 1)))
  down = np.asarray(ud.downsample_2d(x, (1, 3, 3, 1)))
  np.testing.assert_allclose(up[0, 1:-1, 1:-1, 0], 3.0, rtol=1e-6)
  np.testing.assert_allclose(down[0, 1:-1, 1:-1, 0], 3.0, rtol=1e-6)


def test_bfloat16_stays_bfloat16():
  # Output dtypes are fixed when the functions are traced: abstract evaluation decides this
  # without compiling them.
  x = jax.ShapeDtypeStruct((1, 4, 4, 2), jnp.bfloat16)
  w = jax.ShapeDtypeStruct((3, 3, 2, 2), jnp.float32)
  for y in (
    jax.eval_shape(ud.upsample_2d, x),
    jax.eval_shape(ud.downsample_2d, x),
    jax.eval_shape(ud.upsample_conv_2d, x, w),
    jax.eval_shape(ud.conv_downsample_2d, x, w),
  ):
    assert y.dtype == jnp.bfloat16
