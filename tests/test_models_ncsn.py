"""NCSN (v1) and NCSNv2 RefineNets.

- Parameter counts equal a count derived by hand from the 2021 release's layer definitions
  (`_reference_count` below walks the release's blocks: a k x k conv a -> b has k^2 a b (+ b)
  parameters, an InstanceNorm++ over c channels 3c, a conditional one 3cL; the RefineNet
  convolutions have no biases, the MSF ones do), for the CIFAR-10 configs and the 128 / 256 layouts.
- Output shape = input shape for every layout; centered=False is x -> 2x - 1.
- NCSNv2's noise conditioning is exactly s(x, sigma) = net(x) / sigma; NCSN's is piecewise
  constant over the nearest level of the geometric sigma grid and changes between levels.
- The norms: InstanceNorm++ standardizes each channel; the conditional one is the plain one with
  the parameters of row i of its table. Every convolution is an NCSNConv, which starts with
  PyTorch's uniform initialisation.

The conditioning tests use random parameters drawn in numpy on the init's tree (`_random_params`):
eager flax init of these nets takes seconds, and the properties hold for any parameters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde.models import build_model, normalization as norms
from score_sde.models.ncsn import sigma_grid, sigma_to_level
from score_sde.models.refinenet_layers import (
  ARCHITECTURES,
  NCSNConv,
  ResidualBlock,
  architecture_for,
)


def _n_params(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _abstract_params(model, size, channels=3):
  x, label = jnp.zeros((1, size, size, channels)), jnp.ones((1,))
  return jax.eval_shape(lambda: model.init(jax.random.key(0), x, label))["params"]


def _reference_count(nf, channels, arch, num_classes=None):
  """Parameters of the release's NCSNv2 (num_classes None) or NCSN (conditional norms, L levels)."""
  cond = num_classes is not None

  def conv(k, a, b, bias=True):
    return k * k * a * b + (b if bias else 0)

  def norm(c):
    return 3 * c * (num_classes if cond else 1)

  def refine_norm(c):
    return norm(c) if cond else 0  # NCSNv2's RefineNet blocks have no norms

  def resblock(c_in, c_out, down, dil):
    p = norm(c_in)
    if down:
      p += conv(3, c_in, c_in) + norm(c_in)
      p += conv(3, c_in, c_out) + (conv(3, c_in, c_out) if dil > 1 else conv(1, c_in, c_out))
    else:
      if c_in != c_out:
        p += conv(3 if dil > 1 else 1, c_in, c_out)
      p += conv(3, c_in, c_out) + norm(c_out) + conv(3, c_out, c_out)
    return p

  def rcu(f, n_blocks):
    return n_blocks * 2 * (conv(3, f, f, bias=False) + refine_norm(f))

  def refine(cs, f, start, end):
    p = sum(rcu(c, 2) for c in cs)
    if not start:
      p += sum(conv(3, c, f) + refine_norm(c) for c in cs)  # MSF
    p += 2 * (conv(3, f, f, bias=False) + refine_norm(f))  # CRP
    return p + rcu(f, 3 if end else 1)

  levels, outs = ARCHITECTURES[arch]["levels"], ARCHITECTURES[arch]["refine"]
  total, c = conv(3, channels, nf), nf
  widths = []
  for i, (mult, dil) in enumerate(levels):
    total += resblock(c, mult * nf, i > 0, dil) + resblock(mult * nf, mult * nf, False, dil)
    c = mult * nf
    widths.append(c)
  prev = None
  for j, (w, mult) in enumerate(zip(reversed(widths), outs)):
    cs = [w] if prev is None else [w, prev]
    total += refine(cs, mult * nf, j == 0, j == len(widths) - 1)
    prev = mult * nf
  return total + norm(nf) + conv(3, nf, channels)


# The release's layouts, transcribed from its models/ncsnv2.py (NCSNv2, NCSNv2_128, NCSNv2_256).
def test_layouts_are_the_releases():
  assert ARCHITECTURES["small"] == dict(
    levels=((1, 1), (2, 1), (2, 2), (2, 4)), refine=(2, 2, 2, 1)
  )
  assert ARCHITECTURES["128"] == dict(
    levels=((1, 1), (2, 1), (2, 1), (4, 2), (4, 4)), refine=(4, 2, 2, 1, 1)
  )
  assert ARCHITECTURES["256"] == dict(
    levels=((1, 1), (2, 1), (2, 1), (2, 1), (4, 2), (4, 4)), refine=(4, 2, 2, 2, 1, 1)
  )
  assert [architecture_for(s) for s in (28, 32, 64, 95, 96, 128, 129, 256)] == ["small"] * 4 + [
    "128"
  ] * 2 + ["256"] * 2
  with pytest.raises(ValueError, match="256"):
    architecture_for(512)


@pytest.mark.parametrize(
  "name,kwargs,size,expected",
  [
    # configs/ve/ncsnv2/cifar10.py (and celeba.py at 64 x 64: the same 'small' layout, see
    # test_layouts_are_the_releases, so the same network and count).
    ("ncsnv2", dict(nf=128), 32, 33_970_563),
    # configs/ve/ncsn/cifar10.py: L = 10 conditional InstanceNorm++ tables.
    ("ncsn", dict(nf=128, num_scales=10), 32, 34_428_675),
    # configs/ve/ncsnv2/bedroom.py (128 x 128) and the 256 layout at nf = 128.
    ("ncsnv2", dict(nf=128), 128, 83_445_379),
    ("ncsnv2", dict(nf=128), 256, 94_132_611),
  ],
)
def test_parameter_count_matches_the_release(name, kwargs, size, expected):
  model = build_model(name, kwargs)
  arch = architecture_for(size)
  derived = _reference_count(128, 3, arch, kwargs.get("num_scales") if name == "ncsn" else None)
  assert derived == expected
  assert _n_params(_abstract_params(model, size)) == expected


@pytest.mark.parametrize(
  "arch,size,nf,channels,num_scales",
  [("small", 8, 8, 1, 3), ("128", 96, 4, 3, 7), ("256", 160, 4, 2, 5)],
)
def test_tiny_parameter_counts_match_the_formula_and_output_shape_is_input_shape(
  arch, size, nf, channels, num_scales
):
  """Each layout at tiny widths (abstract evaluation of init, which runs the forward pass): the
  parameter count is the formula's at that (nf, channels, L), and the output has the input's
  shape. Widths, channels and L differ between the layouts, so each enters the formula twice."""
  x = jax.ShapeDtypeStruct((2, size, size, channels), jnp.float32)
  label = jax.ShapeDtypeStruct((2,), jnp.float32)
  for name, kw in (("ncsnv2", dict(nf=nf)), ("ncsn", dict(nf=nf, num_scales=num_scales))):
    model = build_model(name, kw)
    out, variables = jax.eval_shape(
      lambda x, label: model.init_with_output(jax.random.key(1), x, label), x, label
    )
    assert out.shape == x.shape and out.dtype == jnp.float32
    want = _reference_count(nf, channels, arch, num_scales if name == "ncsn" else None)
    assert _n_params(variables["params"]) == want


def _random_params(model, x, seed=0):
  """Parameters with the init's tree and shapes but random values, drawn in numpy.

  (Eager flax init compiles every initializer separately and costs seconds; the properties
  tested here hold for any parameters.) Kernels ~ N(0, 1 / fan_in), norm scales ~ 1 + N(0, 0.1^2),
  biases and shifts ~ N(0, 0.1^2).
  """
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, jnp.ones(x.shape[:1])))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path)
    z = rng.standard_normal(leaf.shape).astype(np.float32)
    if leaf.ndim == 4:
      return jnp.asarray(z / np.sqrt(np.prod(leaf.shape[:3])))
    if any(k in name for k in ("gamma", "alpha", "scale", "embedding")):
      return jnp.asarray(1.0 + 0.1 * z)
    return jnp.asarray(0.1 * z)

  return jax.tree_util.tree_map_with_path(draw, shapes)


_TINY = {}


def _tiny(name, **kw):
  """(model, random parameters, x: [3, 8, 8, 2]) at nf = 8; the parameters are drawn once per
  configuration and module (tracing the initialiser costs a second)."""
  key = (name, tuple(sorted(kw.items())))
  if key not in _TINY:
    model = build_model(name, dict(nf=8, **kw))
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 2))
    _TINY[key] = (model, _random_params(model, x), x)
  return _TINY[key]


def _apply(model, params, x, label):
  # Eager: compiling these nets costs minutes, running them seconds. Every call here has the same
  # shapes ([3, 8, 8, 2]), so the per-operation kernels compiled by the first are reused.
  return model.apply(params, x, label)


def test_ncsnv2_output_is_network_over_sigma():
  model, params, x = _tiny("ncsnv2")
  sigmas = jnp.array([0.01, 1.0, 50.0])
  out, out_one = _apply(model, params, x, sigmas), _apply(model, params, x, jnp.ones(3))
  np.testing.assert_allclose(out * sigmas[:, None, None, None], out_one, rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(out[0] - out_one[0]))) > 1.0  # the label changes the output
  # Without the division the label is unused.
  plain = build_model("ncsnv2", dict(nf=8, scale_by_sigma=False))
  np.testing.assert_allclose(_apply(plain, params, x, sigmas), out_one, rtol=1e-6, atol=1e-6)


def test_sigma_to_level_is_the_nearest_grid_level():
  grid = sigma_grid(0.01, 1.0, 10)
  np.testing.assert_allclose(grid[0], 1.0, rtol=1e-6)
  np.testing.assert_allclose(grid[-1], 0.01, rtol=1e-6)
  np.testing.assert_array_equal(sigma_to_level(grid, 0.01, 1.0, 10), np.arange(10))
  # Geometric midpoints (in log sigma) just above / below, and out-of-range sigmas.
  mid = jnp.sqrt(grid[3] * grid[4])
  assert int(sigma_to_level(mid * 1.001, 0.01, 1.0, 10)) == 3
  assert int(sigma_to_level(mid / 1.001, 0.01, 1.0, 10)) == 4
  np.testing.assert_array_equal(sigma_to_level(jnp.array([50.0, 1e-4]), 0.01, 1.0, 10), [0, 9])
  # Brute force (in numpy): the index minimises |log sigma - log sigma_i|.
  s = np.exp(np.random.default_rng(0).uniform(np.log(0.005), np.log(2.0), 500)).astype(np.float32)
  brute = np.argmin(np.abs(np.log(s)[:, None] - np.log(np.asarray(grid))[None, :]), axis=1)
  np.testing.assert_array_equal(sigma_to_level(jnp.asarray(s), 0.01, 1.0, 10), brute)


def test_ncsn_is_conditioned_on_the_level():
  model, params, x = _tiny("ncsn", num_scales=10)  # random tables: the levels' rows differ
  grid = sigma_grid(0.01, 1.0, 10)
  same = jnp.full((3,), grid[4])
  near = same * 1.05  # still level 4
  other = jnp.full((3,), grid[6])
  mixed = jnp.array([grid[4], grid[6], grid[4]])
  out, out_near, out_other, out_mixed = (
    _apply(model, params, x, y) for y in (same, near, other, mixed)
  )
  np.testing.assert_array_equal(out_near, out)
  assert float(jnp.max(jnp.abs(out_other - out))) > 1e-2
  # Per-example conditioning: example b only sees its own label.
  np.testing.assert_array_equal(out_mixed[::2], out[::2])
  np.testing.assert_array_equal(out_mixed[1], out_other[1])
  # scale_by_sigma divides by the grid sigma of the level, not by the label itself.
  scaled = build_model("ncsn", dict(nf=8, num_scales=10, scale_by_sigma=True))
  np.testing.assert_allclose(_apply(scaled, params, x, near) * grid[4], out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["ncsnv2", "ncsn"])
def test_uncentered_input_is_mapped_to_minus_one_one(name):
  model, params, x = _tiny(name)
  centered = build_model(name, dict(nf=8, centered=True))
  label = jnp.array([0.1, 0.3, 0.9])
  np.testing.assert_allclose(
    _apply(model, params, x, label),
    _apply(centered, params, 2 * x - 1, label),
    rtol=1e-5,
    atol=1e-5,
  )


def test_instance_norm_plus_standardizes_each_channel():
  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (2, 6, 6, 5))
  layer = norms.InstanceNorm2dPlus()
  params = layer.init(jax.random.key(1), x)
  zeroed = {"params": {"alpha": jnp.zeros(5), "gamma": jnp.ones(5), "beta": jnp.zeros(5)}}
  h = layer.apply(zeroed, x)
  np.testing.assert_allclose(h.mean(axis=(1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(h.var(axis=(1, 2)), 1.0, rtol=1e-3)  # eps = 1e-5 against var ~ 4
  # alpha puts back the standardized channel means: mean_hw(h)_c = alpha_c (mu_c - m) / sqrt(v + eps).
  mu = x.mean(axis=(1, 2))
  expect = (mu - mu.mean(-1, keepdims=True)) / jnp.sqrt(mu.var(-1, keepdims=True) + 1e-5)
  with_alpha = layer.apply(params, x)
  p = params["params"]
  np.testing.assert_allclose(
    with_alpha.mean(axis=(1, 2)), p["gamma"] * p["alpha"] * expect + p["beta"], rtol=1e-4, atol=1e-5
  )


def test_conditional_norm_uses_row_y_of_its_table():
  x = jax.random.normal(jax.random.key(0), (3, 4, 4, 6))
  y = jnp.array([2, 0, 2])
  cond = norms.ConditionalInstanceNorm2dPlus(num_classes=4)
  table = jax.random.normal(jax.random.key(1), (4, 18))
  # Jitted: one small program each instead of every operation compiled on its own.
  out = jax.jit(cond.apply)({"params": {"embedding": table}}, x, y)
  plain = jax.jit(norms.InstanceNorm2dPlus().apply)
  for b in range(3):
    row = table[y[b]]
    p = {"params": {"gamma": row[:6], "alpha": row[6:12], "beta": row[12:]}}
    np.testing.assert_allclose(out[b], plain(p, x[b : b + 1])[0], rtol=1e-5, atol=1e-5)
  # Initialisation: gamma, alpha ~ N(1, 0.02), beta = 0.
  init = jax.jit(cond.init)(jax.random.key(2), x, y)["params"]["embedding"]
  assert init.shape == (4, 18)
  np.testing.assert_array_equal(init[:, 12:], 0.0)
  assert abs(float(init[:, :12].mean()) - 1.0) < 0.02  # 48 draws of sd 0.02: 5 sigma = 0.015


def test_residual_block_downsamples_only_without_dilation():
  x = jnp.ones((1, 8, 8, 4))
  norm = norms.InstanceNorm2dPlus
  for dilation, size in ((1, 4), (2, 8)):
    block = ResidualBlock(6, norm, resample="down", dilation=dilation)
    out = jax.eval_shape(lambda: block.init_with_output(jax.random.key(0), x)[0])
    assert out.shape == (1, size, size, 6)


def test_bad_hyperparameters_fail_with_the_valid_names():
  with pytest.raises(ValueError, match="InstanceNorm"):
    _abstract_params(build_model("ncsnv2", dict(normalization="LayerNorm")), 8, 1)
  with pytest.raises(ValueError, match="InstanceNorm\\+\\+"):
    _abstract_params(build_model("ncsn", dict(normalization="GroupNorm")), 8, 1)
  with pytest.raises(ValueError, match="nearest_neighbor"):
    _abstract_params(build_model("ncsnv2", dict(interpolation="cubic")), 8, 1)


@pytest.mark.parametrize("normalization", sorted(norms.NORMALIZATIONS))
def test_every_unconditional_norm_builds(normalization):
  model, params, x = _tiny("ncsnv2", normalization=normalization)
  out = _apply(model, params, x, jnp.ones((3,)))
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize(
  "kernel_size,c_in,dilation,use_bias", [(3, 3, 1, True), (1, 8, 1, True), (3, 8, 2, False)]
)
def test_convolutions_start_pytorch_uniform(kernel_size, c_in, dilation, use_bias):
  """NCSNConv starts uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in = k^2 c_in (PyTorch's
  default, as the NCSN code), kernel and bias."""
  conv = NCSNConv(16, kernel_size, dilation, use_bias)
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, c_in))
  # The rbg generator draws its bits in one XLA operation: the initialiser compiles several times
  # faster than with threefry's hash, and the bounds below hold for any uniform draws.
  params = jax.jit(conv.init)(jax.random.key(1, impl="rbg"), x)["params"]["Conv_0"]
  bound = (kernel_size**2 * c_in) ** -0.5
  kernel = np.asarray(params["kernel"])
  assert kernel.shape == (kernel_size, kernel_size, c_in, 16)
  assert np.abs(kernel).max() <= bound
  # >= 144 draws fill the interval (not a narrower initialiser) and are centred.
  assert np.abs(kernel).max() > 0.9 * bound and abs(kernel.mean()) < 0.2 * bound
  assert ("bias" in params) == use_bias
  if use_bias:
    assert np.abs(np.asarray(params["bias"])).max() <= bound


@pytest.mark.parametrize("name", ["ncsnv2", "ncsn"])
def test_every_convolution_is_an_ncsn_conv(name):
  """Every kernel of the network belongs to an NCSNConv, so the whole network starts with the
  initialisation tested above (abstract init: compiling or eagerly running the whole network's
  initialiser costs minutes on CPU)."""
  params = _abstract_params(build_model(name, dict(nf=4)), 8)
  kernels = [
    [getattr(k, "key", None) for k in path]
    for path, leaf in jax.tree_util.tree_leaves_with_path(params)
    if leaf.ndim == 4
  ]
  assert len(kernels) > 20
  for keys in kernels:
    assert keys[-2].startswith("Conv_") and keys[-3].startswith("NCSNConv_"), keys


def test_level_labels_index_the_sigma_table():
  """Issue 11, deviation 1 (`models.noise_levels`): an int32 level k means sigma_k of the table,
  as the release's sigmas[labels]: NCSNv2 divides by it and NCSN selects row k of its norms, so
  both give what the float label sigma_k gives."""
  grid = sigma_grid(0.01, 1.0, 10)
  k = jnp.array([0, 4, 9], jnp.int32)
  # The table adds no parameters: the tiny networks' parameters serve.
  _, params, x = _tiny("ncsnv2")
  v2 = build_model("ncsnv2", dict(nf=8, sigma_min=0.01, sigma_max=1.0, num_scales=10))
  np.testing.assert_allclose(_apply(v2, params, x, k), _apply(v2, params, x, grid[k]), rtol=1e-6)
  _, params, x = _tiny("ncsn", num_scales=10)
  v1 = build_model("ncsn", dict(nf=8, num_scales=10, scale_by_sigma=True))
  np.testing.assert_allclose(_apply(v1, params, x, k), _apply(v1, params, x, grid[k]), rtol=1e-6)
