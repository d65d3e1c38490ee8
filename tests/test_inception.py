"""The FID Inception-v3: the weight-file mapping, the graph's quirks, shapes and determinism.

The weight file is written here from an independent description of pytorch-fid's state dict
(names, PyTorch shapes), filled with random values, so loading it checks that every tensor of
the real file has a place in the Flax network, with the right shape, used exactly once.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import inception


def fid_inception_layout():
  """{state-dict name: PyTorch shape} of pt_inception-2015-12-05-6726825d.pth."""
  convs = {}

  def conv(name, cin, cout, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    convs[name] = (cout, cin, kh, kw)

  for name, cin, cout, k in [
    ("Conv2d_1a_3x3", 3, 32, 3),
    ("Conv2d_2a_3x3", 32, 32, 3),
    ("Conv2d_2b_3x3", 32, 64, 3),
    ("Conv2d_3b_1x1", 64, 80, 1),
    ("Conv2d_4a_3x3", 80, 192, 3),
  ]:
    conv(name, cin, cout, k)
  for m, cin, pool in [("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)]:
    for b, i, o, k in [
      ("branch1x1", cin, 64, 1),
      ("branch5x5_1", cin, 48, 1),
      ("branch5x5_2", 48, 64, 5),
      ("branch3x3dbl_1", cin, 64, 1),
      ("branch3x3dbl_2", 64, 96, 3),
      ("branch3x3dbl_3", 96, 96, 3),
      ("branch_pool", cin, pool, 1),
    ]:
      conv(f"{m}.{b}", i, o, k)
  for b, i, o, k in [
    ("branch3x3", 288, 384, 3),
    ("branch3x3dbl_1", 288, 64, 1),
    ("branch3x3dbl_2", 64, 96, 3),
    ("branch3x3dbl_3", 96, 96, 3),
  ]:
    conv(f"Mixed_6a.{b}", i, o, k)
  for m, c7 in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]:
    for b, i, o, k in [
      ("branch1x1", 768, 192, 1),
      ("branch7x7_1", 768, c7, 1),
      ("branch7x7_2", c7, c7, (1, 7)),
      ("branch7x7_3", c7, 192, (7, 1)),
      ("branch7x7dbl_1", 768, c7, 1),
      ("branch7x7dbl_2", c7, c7, (7, 1)),
      ("branch7x7dbl_3", c7, c7, (1, 7)),
      ("branch7x7dbl_4", c7, c7, (7, 1)),
      ("branch7x7dbl_5", c7, 192, (1, 7)),
      ("branch_pool", 768, 192, 1),
    ]:
      conv(f"{m}.{b}", i, o, k)
  for b, i, o, k in [
    ("branch3x3_1", 768, 192, 1),
    ("branch3x3_2", 192, 320, 3),
    ("branch7x7x3_1", 768, 192, 1),
    ("branch7x7x3_2", 192, 192, (1, 7)),
    ("branch7x7x3_3", 192, 192, (7, 1)),
    ("branch7x7x3_4", 192, 192, 3),
  ]:
    conv(f"Mixed_7a.{b}", i, o, k)
  for m, cin in [("Mixed_7b", 1280), ("Mixed_7c", 2048)]:
    for b, i, o, k in [
      ("branch1x1", cin, 320, 1),
      ("branch3x3_1", cin, 384, 1),
      ("branch3x3_2a", 384, 384, (1, 3)),
      ("branch3x3_2b", 384, 384, (3, 1)),
      ("branch3x3dbl_1", cin, 448, 1),
      ("branch3x3dbl_2", 448, 384, 3),
      ("branch3x3dbl_3a", 384, 384, (1, 3)),
      ("branch3x3dbl_3b", 384, 384, (3, 1)),
      ("branch_pool", cin, 192, 1),
    ]:
      conv(f"{m}.{b}", i, o, k)
  layout = {}
  for name, shape in convs.items():
    layout[f"{name}.conv.weight"] = shape
    for s in ("weight", "bias", "running_mean", "running_var"):
      layout[f"{name}.bn.{s}"] = (shape[0],)
    layout[f"{name}.bn.num_batches_tracked"] = ()
  layout["fc.weight"] = (1008, 2048)
  layout["fc.bias"] = (1008,)
  return layout


def random_state_dict(seed=0):
  """Random weights in the file's layout, scaled so that activations stay O(1) through the
  94 conv layers (He-scaled kernels, BN statistics near the identity)."""
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in fid_inception_layout().items():
    if name.endswith("num_batches_tracked"):
      state[name] = np.array(0, np.int64)
    elif name.endswith("conv.weight"):
      fan_in = np.prod(shape[1:])
      state[name] = rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    elif name.endswith(("running_var", "bn.weight")):
      state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif name == "fc.weight":
      state[name] = rng.normal(0, 1 / np.sqrt(shape[1]), shape).astype(np.float32)
    else:
      state[name] = rng.normal(0, 0.1, shape).astype(np.float32)
  return state


@pytest.fixture(scope="module")
def weight_file(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("inception") / "inception_fid.npz")
  state = random_state_dict()
  np.savez(path, **state)
  return path, state


def _flax_leaf(variables, name):
  """The Flax array that holds state-dict entry `name`, in PyTorch layout."""
  *modules, leaf = name.split(".")
  if leaf in ("running_mean", "running_var"):
    tree, leaf = variables["batch_stats"], {"running_mean": "mean", "running_var": "var"}[leaf]
  else:
    tree = variables["params"]
    if leaf == "weight":
      leaf = "scale" if modules[-1] == "bn" else "kernel"
  for m in modules:
    tree = tree[m]
  value = np.asarray(tree[leaf])
  if value.ndim == 4:
    value = np.transpose(value, (3, 2, 0, 1))  # HWIO -> OIHW
  elif value.ndim == 2:
    value = value.T
  return value


def test_weight_file_maps_every_tensor_once(weight_file):
  path, state = weight_file
  variables = inception.load_inception_variables(path)
  leaves = jax.tree.leaves(variables)
  used = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
  assert len(leaves) == len(used) == 472
  assert sum(x.size for x in leaves) == sum(v.size for v in used.values())
  for name, value in used.items():
    np.testing.assert_array_equal(_flax_leaf(variables, name), value, err_msg=name)


def test_weight_file_missing_or_extra_tensor_is_refused(weight_file):
  _, state = weight_file
  missing = dict(state)
  del missing["Mixed_6c.branch7x7dbl_3.bn.running_var"]
  with pytest.raises(ValueError, match="lacks 'Mixed_6c.branch7x7dbl_3.bn.running_var'"):
    inception.variables_from_state_dict(missing)
  extra = dict(state, **{"AuxLogits.fc.weight": np.zeros((1008, 768), np.float32)})
  with pytest.raises(ValueError, match="unused"):
    inception.variables_from_state_dict(extra)
  wrong = dict(state, **{"fc.weight": np.zeros((1000, 2048), np.float32)})
  with pytest.raises(ValueError, match="shape"):
    inception.variables_from_state_dict(wrong)


def test_conv_bn_matches_pytorch_semantics():
  """A (1, 7) conv + BN + ReLU with PyTorch-layout weights equals the direct sum
  y[o, i, j] = relu(g (sum_{c, u, v} w[o, c, u, v] xpad[c, i + u, j + v] - m) / sqrt(s + 1e-3) + b).
  """
  rng = np.random.default_rng(1)
  cin, cout = 3, 4
  x = rng.normal(size=(2, 5, 6, cin)).astype(np.float32)
  w = rng.normal(size=(cout, cin, 1, 7)).astype(np.float32)
  g, b, m = (rng.normal(size=cout).astype(np.float32) for _ in range(3))
  s = rng.uniform(0.5, 2, cout).astype(np.float32)
  torch_state = {
    "conv.weight": w,
    "bn.weight": g,
    "bn.bias": b,
    "bn.running_mean": m,
    "bn.running_var": s,
  }
  module = inception.ConvBN(cout, (1, 7), padding=(0, 3))
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)
  leaves = []
  for path, spec in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    name, fn = inception.torch_name(tuple(p.key for p in path), len(spec.shape))
    leaves.append(jnp.asarray(fn(torch_state[name])))
  variables = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), leaves)
  got = np.asarray(module.apply(variables, x))

  xpad = np.pad(x, ((0, 0), (0, 0), (3, 3), (0, 0)))
  want = np.zeros((2, 5, 6, cout))
  for i in range(5):
    for j in range(6):
      patch = xpad[:, i, j : j + 7, :]  # [B, 7, C]
      want[:, i, j] = np.einsum("bvc,ocv->bo", patch, w[:, :, 0, :])
  want = np.maximum(g * (want - m) / np.sqrt(s + 1e-3) + b, 0)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_average_pool_excludes_padding():
  """TF 'SAME' 3x3 average: each output is the mean of the in-image pixels of its window."""
  x = np.random.default_rng(2).normal(size=(1, 4, 5, 2)).astype(np.float32)
  got = np.asarray(inception._avg_pool_same(jnp.asarray(x)))
  want = np.zeros_like(x)
  for i in range(4):
    for j in range(5):
      want[0, i, j] = x[0, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].mean(axis=(0, 1))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_resize_is_half_pixel_bilinear():
  """Upsampling [a, b] by 2 with align_corners=False gives [a, (3a + b)/4, (a + 3b)/4, b];
  greyscale is repeated over channels and [0, 1] maps to [-1, 1]."""
  a, b = 0.2, 0.6
  img = jnp.asarray(np.array([[a, b], [a, b]], np.float32)[None, :, :, None])
  got = np.asarray(inception.preprocess_for_inception(img, size=4))
  row = 2 * np.array([a, (3 * a + b) / 4, (a + 3 * b) / 4, b]) - 1
  assert got.shape == (1, 4, 4, 3)
  np.testing.assert_allclose(got[0, :, :, 1], np.tile(row, (4, 1)), atol=1e-6)


def test_forward_shapes_and_determinism_over_devices(weight_file):
  """One sharded 299 x 299 forward over the 8 host devices of 7 images (padded to 8): pool3
  [7, 2048], logits [7, 1008], finite; the same image gives the same features on two devices."""
  path, _ = weight_file
  variables = inception.load_inception_variables(path)
  rng = np.random.default_rng(3)
  images = rng.uniform(size=(7, 16, 16, 1)).astype(np.float32)
  images[5] = images[1]
  out = inception.inception_outputs(variables, [images])
  assert out["pool3"].shape == (7, 2048) and out["logits"].shape == (7, 1008)
  assert np.all(np.isfinite(out["pool3"])) and np.all(np.isfinite(out["logits"]))
  assert np.all(out["pool3"] >= 0)  # the mean of ReLU outputs
  np.testing.assert_allclose(out["pool3"][5], out["pool3"][1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["logits"][5], out["logits"][1], rtol=1e-5, atol=1e-5)
  assert not np.allclose(out["pool3"][0], out["pool3"][1], rtol=1e-3)


def test_converter_refuses_a_file_with_the_wrong_checksum(tmp_path):
  """The .pth is checked against pytorch-fid's SHA-256 before PyTorch is even needed."""
  from score_sde import inception_convert

  fake = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
  fake.write_bytes(b"not the weights")
  with pytest.raises(ValueError, match=inception.WEIGHTS_SHA256):
    inception_convert.convert(str(fake), str(tmp_path / "out.npz"))
  with pytest.raises(ValueError, match="inception_convert"):
    inception.load_inception_variables(str(fake))
