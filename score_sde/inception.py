"""The Inception-v3 network of the standard FID implementations, in Flax, and its weights.

FID, KID and the Inception score are only comparable across papers when computed with one fixed
network: the TensorFlow graph `inception-2015-12-05` (pool_3 features of 2048 dimensions, a
1008-way softmax). pytorch-fid ports it as `pt_inception-2015-12-05-6726825d.pth`
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/...; SHA-256
6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2); this module is a Flax version
of that network. Nothing is downloaded: convert the .pth once, on a machine with PyTorch, with

    python -m score_sde.inception_convert pt_inception-2015-12-05-6726825d.pth inception_fid.npz

which stores the state dict unchanged (PyTorch names and layouts) in a .npz that
`load_inception_variables` maps onto the Flax parameters, using every tensor exactly once.

The graph differs from torchvision's Inception-v3 (and from the paper) in ways that change the
numbers, reproduced here:
  * the 3x3 average pools inside the Mixed_5* (A), Mixed_6b-e (C) and Mixed_7b (E) blocks divide
    by the number of non-padding pixels (TF 'SAME' pooling; PyTorch count_include_pad=False);
  * the pool branch of the last block, Mixed_7c, is a 3x3 *max* pool (stride 1, padding 1);
  * batch norm uses eps = 1e-3, convolutions have no bias;
  * the classifier has 1008 outputs (1000 ImageNet classes and 8 unused ones).
Inputs in [0, 1] are resized bilinearly (half-pixel centres, no antialiasing, as PyTorch's
F.interpolate(align_corners=False)) to 299 x 299 and scaled to [-1, 1]. Greyscale images are
repeated over the three channels.

Layer names are those of the PyTorch state dict (`Mixed_6b.branch7x7_2.conv.weight` is the
parameter `['Mixed_6b']['branch7x7_2']['conv']['kernel']`).
"""

import functools
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

INPUT_SIZE = 299
POOL3_DIM = 2048
NUM_LOGITS = 1008
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"

IntPair = Union[int, Tuple[int, int]]


def _pair(v: IntPair) -> Tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class ConvBN(nn.Module):
  """Convolution without bias, batch norm (running statistics, eps 1e-3), ReLU. x: [B, H, W, C]."""

  features: int
  kernel_size: IntPair
  strides: int = 1
  padding: IntPair = 0

  @nn.compact
  def __call__(self, x):
    ph, pw = _pair(self.padding)
    x = nn.Conv(
      self.features,
      _pair(self.kernel_size),
      strides=self.strides,
      padding=((ph, ph), (pw, pw)),
      use_bias=False,
      name="conv",
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_same(x):
  # TF 'SAME' average pooling: border windows average only the pixels inside the image.
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_valid(x):
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
  """35 x 35 block (Mixed_5b-d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1; C -> 224 + pool."""

  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = ConvBN(64, 1, name="branch1x1")(x)
    b5 = ConvBN(48, 1, name="branch5x5_1")(x)
    b5 = ConvBN(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = ConvBN(64, 1, name="branch3x3dbl_1")(x)
    b3 = ConvBN(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = ConvBN(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = ConvBN(self.pool_features, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Grid reduction 35 -> 17 (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2; 288 -> 768."""

  @nn.compact
  def __call__(self, x):
    b3 = ConvBN(384, 3, strides=2, name="branch3x3")(x)
    bd = ConvBN(64, 1, name="branch3x3dbl_1")(x)
    bd = ConvBN(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = ConvBN(96, 3, strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_valid(x)], axis=-1)


class InceptionC(nn.Module):
  """17 x 17 block (Mixed_6b-e) with factorised 7x7 convolutions; 768 -> 768."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = ConvBN(192, 1, name="branch1x1")(x)
    b7 = ConvBN(c7, 1, name="branch7x7_1")(x)
    b7 = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = ConvBN(c7, 1, name="branch7x7dbl_1")(x)
    bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = ConvBN(192, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Grid reduction 17 -> 8 (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2; 768 -> 1280."""

  @nn.compact
  def __call__(self, x):
    b3 = ConvBN(192, 1, name="branch3x3_1")(x)
    b3 = ConvBN(320, 3, strides=2, name="branch3x3_2")(b3)
    b7 = ConvBN(192, 1, name="branch7x7x3_1")(x)
    b7 = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = ConvBN(192, 3, strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_valid(x)], axis=-1)


class InceptionE(nn.Module):
  """8 x 8 block (Mixed_7b, Mixed_7c) with split 1x3 / 3x1 outputs; -> 2048 channels.

  `max_pool`: the FID graph's Mixed_7c pools its last branch with a max, Mixed_7b with a
  padding-excluding average.
  """

  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = ConvBN(320, 1, name="branch1x1")(x)
    b3 = ConvBN(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate(
      [
        ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
      ],
      -1,
    )
    bd = ConvBN(448, 1, name="branch3x3dbl_1")(x)
    bd = ConvBN(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
      [
        ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
      ],
      -1,
    )
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_same(x)
    bp = ConvBN(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def preprocess_for_inception(images: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
  """images: [B, H, W, 1 or 3] in [0, 1] -> [B, size, size, 3] in [-1, 1].

  Bilinear resize with half-pixel centres and no antialiasing (PyTorch F.interpolate with
  align_corners=False, as pytorch-fid), then x -> 2 x - 1.
  """
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  if images.shape[-1] != 3:
    raise ValueError(f"Inception takes 1 or 3 channels, got images {images.shape}")
  b = images.shape[0]
  if images.shape[1:3] != (size, size):
    images = jax.image.resize(images, (b, size, size, 3), "bilinear", antialias=False)
  return 2.0 * images - 1.0


class InceptionV3(nn.Module):
  """The FID Inception-v3: images [B, H, W, C] in [0, 1] -> {'pool3': [B, 2048],
  'logits': [B, 1008]} (pool3 = global average of Mixed_7c, the FID / KID features;
  logits = fc(pool3), whose softmax the Inception score uses)."""

  input_size: int = INPUT_SIZE

  @nn.compact
  def __call__(self, images) -> Dict[str, jax.Array]:
    x = preprocess_for_inception(images, self.input_size)
    x = ConvBN(32, 3, strides=2, name="Conv2d_1a_3x3")(x)  # 149
    x = ConvBN(32, 3, name="Conv2d_2a_3x3")(x)  # 147
    x = ConvBN(64, 3, padding=1, name="Conv2d_2b_3x3")(x)  # 147
    x = _max_pool_valid(x)  # 73
    x = ConvBN(80, 1, name="Conv2d_3b_1x1")(x)
    x = ConvBN(192, 3, name="Conv2d_4a_3x3")(x)  # 71
    x = _max_pool_valid(x)  # 35
    x = InceptionA(32, name="Mixed_5b")(x)  # 256
    x = InceptionA(64, name="Mixed_5c")(x)  # 288
    x = InceptionA(64, name="Mixed_5d")(x)  # 288
    x = InceptionB(name="Mixed_6a")(x)  # 17 x 17 x 768
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)  # 8 x 8 x 1280
    x = InceptionE(name="Mixed_7b")(x)  # 2048
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)  # 2048
    pool3 = jnp.mean(x, axis=(1, 2))
    logits = nn.Dense(NUM_LOGITS, name="fc")(pool3)
    return {"pool3": pool3, "logits": logits}


# Weights: PyTorch state dict (as .npz) <-> Flax variables ------------------------------------

# Flax (collection, leaf name) -> (PyTorch suffix, layout change from PyTorch to Flax).
_LEAF_MAP = {
  ("params", "kernel", 4): ("weight", lambda w: np.transpose(w, (2, 3, 1, 0))),  # OIHW -> HWIO
  ("params", "kernel", 2): ("weight", lambda w: np.transpose(w)),  # [out, in]
  ("params", "bias", 1): ("bias", lambda w: w),
  ("params", "scale", 1): ("weight", lambda w: w),
  ("batch_stats", "mean", 1): ("running_mean", lambda w: w),
  ("batch_stats", "var", 1): ("running_var", lambda w: w),
}
# State-dict entries that carry no value used by inference.
_IGNORED_SUFFIXES = ("num_batches_tracked",)


def variable_shapes(input_size: int = INPUT_SIZE):
  """The Flax variables' shapes ({'params', 'batch_stats'} of ShapeDtypeStruct), without
  computing anything."""
  x = jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32)
  return jax.eval_shape(InceptionV3(input_size).init, jax.random.key(0), x)


def torch_name(path: Sequence[str], ndim: int) -> Tuple[str, callable]:
  """(PyTorch state-dict key, PyTorch -> Flax layout function) of the Flax variable at
  `path` = (collection, module, ..., leaf) with `ndim` dimensions."""
  collection, *modules, leaf = path
  key = (collection, leaf, ndim)
  if key not in _LEAF_MAP:
    raise ValueError(f"no PyTorch counterpart for Flax variable {'/'.join(path)} ({ndim}-d)")
  suffix, fn = _LEAF_MAP[key]
  return ".".join(modules + [suffix]), fn


def variables_from_state_dict(state: Dict[str, np.ndarray], input_size: int = INPUT_SIZE):
  """Flax variables from a PyTorch-layout state dict {name: array}; every tensor must be used
  exactly once (apart from num_batches_tracked counters) and have the expected shape."""
  shapes = variable_shapes(input_size)
  flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
  used, leaves = set(), []
  for path, spec in flat:
    names = tuple(p.key for p in path)
    name, fn = torch_name(names, len(spec.shape))
    if name not in state:
      raise ValueError(f"Inception weight file lacks {name!r} (for {'/'.join(names)})")
    if name in used:
      raise ValueError(f"Inception weight {name!r} would be used twice")
    used.add(name)
    value = np.asarray(fn(np.asarray(state[name])), np.float32)
    if value.shape != spec.shape:
      raise ValueError(
        f"Inception weight {name!r}: shape {value.shape} after layout change, expected {spec.shape}"
      )
    leaves.append(value)
  unused = sorted(k for k in state if k not in used and not k.endswith(_IGNORED_SUFFIXES))
  if unused:
    raise ValueError(f"Inception weight file has {len(unused)} unused tensors, e.g. {unused[:5]}")
  treedef = jax.tree_util.tree_structure(shapes)
  return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(v) for v in leaves])


def load_inception_variables(path: str, input_size: int = INPUT_SIZE):
  """Flax variables of the FID Inception from a .npz holding pytorch-fid's state dict (see the
  module docstring for the conversion)."""
  if path.endswith((".pth", ".pt")):
    raise ValueError(
      f"{path} is a PyTorch file: convert it once with "
      f"`python -m score_sde.inception_convert {path} inception_fid.npz`"
    )
  with np.load(path) as f:
    state = {k: f[k] for k in f.files}
  return variables_from_state_dict(state, input_size)


# Sharded feature extraction ------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=0)
def _apply(input_size, variables, images):
  return InceptionV3(input_size).apply(variables, images)


def inception_outputs(
  variables,
  batches: Iterable[np.ndarray],
  mesh: Optional[Mesh] = None,
  input_size: int = INPUT_SIZE,
) -> Dict[str, np.ndarray]:
  """pool3 features [n, 2048] and logits [n, 1008] of images in [0, 1], given as batches
  [b, H, W, C] (C = 1 or 3; e.g. a data set's epoch).

  Each batch is split over the devices of `mesh` (default: all devices, one axis 'batch'),
  padded (repeating its last image) to a multiple of the device count and to the first batch's
  size, so the network is compiled once.
  """
  if mesh is None:
    mesh = Mesh(np.array(jax.devices()), ("batch",))
  data = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
  variables = jax.device_put(variables, NamedSharding(mesh, PartitionSpec()))
  n_dev = mesh.devices.size
  out = {"pool3": [], "logits": []}
  padded_size = 0
  for batch in batches:
    batch = np.asarray(batch, np.float32)
    n = len(batch)
    # A short last batch is padded to the first one's size, so nothing is compiled twice.
    padded_size = max(padded_size, n + (-n % n_dev))
    pad = padded_size - n
    if pad:
      batch = np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
    res = _apply(input_size, variables, jax.device_put(batch, data))
    for k in out:
      out[k].append(np.asarray(res[k])[:n])
  if not out["pool3"]:
    raise ValueError("inception_outputs got no images")
  return {k: np.concatenate(v) for k, v in out.items()}


def batched(images: np.ndarray, batch_size: int) -> Iterable[np.ndarray]:
  """images [n, ...] as consecutive batches of batch_size (the last may be short)."""
  for i in range(0, len(images), batch_size):
    yield images[i : i + batch_size]
