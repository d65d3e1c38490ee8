"""The paper's image data sets through tf.data: TFDS sets and CelebA-HQ / FFHQ TFRecords.

| name                | source                               | train / test split      | to image_size                  |
| cifar10             | TFDS `cifar10`                       | train / test            | resize (if not 32)             |
| svhn                | TFDS `svhn_cropped`                  | train / test            | resize (if not 32)             |
| celeba              | TFDS `celeb_a`                       | train / validation      | central 140 x 140 crop, resize |
| lsun_bedroom        | TFDS `lsun/bedroom`                  | train / validation      | see `lsun_resize`              |
| lsun_church_outdoor | TFDS `lsun/church_outdoor`           | train / validation      | see `lsun_resize`              |
| celebahq, ffhq      | TFRecords at data_dir (file or glob) | all records for both    | resize (if not the file's)     |

tf.data only decodes, crops and resizes, and yields uint8 batches; the float preprocessing
(scaling, uniform dequantization, flips) is `data.preprocess.preprocess_images`, shared with every
image set and driven by the host RNG `step_rng(seed, step, process)`. Resizing happens in float
and is rounded back to uint8, so dequantization keeps its meaning (one 8-bit level = 1/256).

Each host reads its own disjoint part of the split: `tfds.split_for_jax_process` for TFDS sets,
`Dataset.shard` for TFRecords. Training streams repeat, shuffle (buffer 10,000 as in the release,
seeded by (seed, start_step, process)), batch and prefetch. A resumed run therefore draws a fresh
shuffle order rather than replaying the interrupted one (replaying would mean re-reading every
earlier batch); the per-batch flips and dequantization noise are still a pure function of the step.

TensorFlow is optional (`pip install 'score_sde[tf]'`): it is imported only when a batch is made.
"""

import dataclasses
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from score_sde.data.base import DATASETS, DataSpec, per_host_batch, step_rng
from score_sde.data.preprocess import preprocess_images

SHUFFLE_BUFFER = 10_000


def import_tf():
  """(tensorflow, tensorflow_datasets), or an ImportError that says how to install them."""
  try:
    import tensorflow as tf
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError(
      "the TFDS / TFRecord image data sets need TensorFlow and tensorflow-datasets: "
      "pip install 'score_sde[tf]'"
    ) from e
  # tf.data runs on the host; keep TensorFlow off the accelerators that JAX uses.
  try:
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU")
  except (RuntimeError, ValueError):
    pass  # already initialised, or no such device type
  return tf, tfds


# Per-example image transforms: uint8 [h, w, c] -> uint8 [S, S, c] ---------------------------------


def _to_uint8(tf, image):
  return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def resize(tf, image, size: int, method: str = "bilinear"):
  """Antialiased resize of an image to size x size (a no-op, bit for bit, when it already is)."""
  h, w = image.shape[0], image.shape[1]
  if h == size and w == size:
    return image

  def resized():
    return _to_uint8(
      tf, tf.image.resize(tf.cast(image, tf.float32), (size, size), method=method, antialias=True)
    )

  if h is None or w is None:  # TFRecords: the size is known only when the record is read
    shape = tf.shape(image)
    out = tf.cond((shape[0] == size) & (shape[1] == size), lambda: image, resized)
  else:
    out = resized()
  out.set_shape((size, size, image.shape[-1]))
  return out


def central_crop(tf, image, size: int):
  """The central size x size window (top / left offsets rounded down, as the release did)."""
  shape = tf.shape(image)
  top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
  return image[top : top + size, left : left + size]


def celeba_resize(tf, image, size: int):
  """CelebA as in NCSN / the release: central 140 x 140 crop of the 218 x 178 image, then resize."""
  crop = central_crop(tf, image, 140)
  crop.set_shape((140, 140, image.shape[-1]))
  return resize(tf, crop, size)


def lsun_resize(tf, image, size: int):
  """LSUN as the release did: at 128 px, shorter side -> 128 (bilinear) then the central crop;
  otherwise the largest central square, resized with antialiased bicubic."""
  if size == 128:
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    ratio = size / tf.minimum(shape[0], shape[1])
    hw = tf.cast(tf.round(shape * ratio), tf.int32)
    small = tf.image.resize(tf.cast(image, tf.float32), hw, antialias=True)
    out = central_crop(tf, small, size)
  else:
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    square = central_crop(tf, image, side)
    out = tf.image.resize(
      tf.cast(square, tf.float32), (size, size), method="bicubic", antialias=True
    )
  out = _to_uint8(tf, out)
  out.set_shape((size, size, image.shape[-1]))
  return out


@dataclasses.dataclass(frozen=True)
class TFDSSource:
  """A TFDS data set: builder name, split names, and the per-image transform to image_size."""

  tfds_name: str
  train_split: str
  test_split: str
  transform: Callable = resize


@dataclasses.dataclass(frozen=True)
class TFRecordSource:
  """TFRecords of {'shape': int64 [3] = (C, H, W), 'data': raw uint8 bytes in CHW order}: the
  progressive-GAN `dataset_tool.py` format of the CelebA-HQ and FFHQ releases."""

  what: str


# Data sets whose TFDS examples carry a class 'label', and their number of classes.
LABELLED: Dict[str, int] = {"cifar10": 10, "svhn": 10}

SOURCES: Dict[str, object] = {
  "cifar10": TFDSSource("cifar10", "train", "test"),
  "svhn": TFDSSource("svhn_cropped", "train", "test"),
  "celeba": TFDSSource("celeb_a", "train", "validation", celeba_resize),
  "lsun_bedroom": TFDSSource("lsun/bedroom", "train", "validation", lsun_resize),
  "lsun_church_outdoor": TFDSSource("lsun/church_outdoor", "train", "validation", lsun_resize),
  "celebahq": TFRecordSource("CelebA-HQ"),
  "ffhq": TFRecordSource("FFHQ"),
}


def parse_tfrecord_image(tf, record):
  """One serialized record -> uint8 [H, W, C]."""
  ex = tf.io.parse_single_example(
    record,
    {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)},
  )
  chw = tf.reshape(tf.io.decode_raw(ex["data"], tf.uint8), ex["shape"])
  return tf.transpose(chw, (1, 2, 0))


@dataclasses.dataclass(frozen=True)
class TFImageDataset:
  """A TFDS / TFRecord image set behind the `data.Dataset` interface."""

  spec: DataSpec
  split: str
  source: object

  is_image = True
  num_levels = 256  # 8-bit images

  @property
  def shape(self) -> Tuple[int, int, int]:
    return (self.spec.image_size, self.spec.image_size, self.spec.num_channels)

  @property
  def num_examples(self) -> Optional[int]:
    """Examples in the split (all hosts), when TFDS knows it; None for TFRecords or unprepared sets."""
    if not isinstance(self.source, TFDSSource):
      return None
    try:
      n = self._builder().info.splits[self._split_name()].num_examples
    except Exception:  # noqa: BLE001  (no TF, or not downloaded yet: unknown)
      return None
    return int(n) or None

  def _split_name(self) -> str:
    src = self.source
    return src.train_split if self.split == "train" else src.test_split

  def _builder(self):
    _, tfds = import_tf()
    return tfds.builder(self.source.tfds_name, data_dir=self.spec.data_dir or None)

  def _require_prepared(self):
    """The TFDS builder, or a FileNotFoundError with the command that prepares the set: TFDS
    downloads are never started from a training run (a missing network meant minutes of
    retries, and several hosts would download at once)."""
    builder = self._builder()
    if not builder.is_prepared():
      where = self.spec.data_dir or "~/tensorflow_datasets"
      data_dir = f" --data_dir={self.spec.data_dir}" if self.spec.data_dir else ""
      raise FileNotFoundError(
        f"data set {self.spec.name!r} (TFDS {self.source.tfds_name!r}) is not prepared in "
        f"{where}: run `tfds build {self.source.tfds_name}{data_dir}` once (see the README's "
        "data table), or set data.data_dir to where it was built"
      )
    return builder

  def check(self) -> None:
    """Before compute: TensorFlow is installed, the channels fit, the TFDS set is prepared or
    the TFRecord files exist."""
    tf, _ = import_tf()
    if self.spec.num_channels != 3:
      raise ValueError(
        f"{self.spec.name} images are RGB: set data.num_channels=3, not {self.spec.num_channels}"
      )
    if isinstance(self.source, TFDSSource):
      self._require_prepared()
    elif not self.spec.data_dir:
      raise ValueError(
        f"{self.spec.name}: set data.data_dir to the {self.source.what} TFRecord "
        "file (or a glob such as /data/celebahq/celebahq-r08.tfrecords)"
      )
    elif not tf.io.gfile.glob(self.spec.data_dir):
      raise FileNotFoundError(f"{self.spec.name}: no TFRecord files match {self.spec.data_dir!r}")

  @property
  def num_classes(self) -> int:
    """Classes of `labelled_batches` (0: the set has no 'label' feature here)."""
    return LABELLED.get(self.spec.name, 0)

  def _records(
    self,
    process_index: int,
    process_count: int,
    shuffle_files: bool,
    seed: int,
    with_labels: bool = False,
  ):
    """This host's part of the split as a tf.data.Dataset of uint8 [S, S, C] images (with
    `with_labels`, of (image, label) pairs)."""
    tf, tfds = import_tf()
    if self.spec.num_channels != 3:
      raise ValueError(
        f"{self.spec.name} images are RGB: set data.num_channels=3, not {self.spec.num_channels}"
      )
    size = self.spec.image_size
    if isinstance(self.source, TFDSSource):
      builder = self._require_prepared()
      split = tfds.split_for_jax_process(
        self._split_name(), process_index=process_index, process_count=process_count
      )
      read_config = tfds.ReadConfig(shuffle_seed=seed)
      ds = builder.as_dataset(split=split, shuffle_files=shuffle_files, read_config=read_config)
      transform = self.source.transform
      if with_labels:
        return ds.map(
          lambda ex: (transform(tf, ex["image"], size), ex["label"]),
          num_parallel_calls=tf.data.AUTOTUNE,
        )
      return ds.map(
        lambda ex: transform(tf, ex["image"], size), num_parallel_calls=tf.data.AUTOTUNE
      )
    if not self.spec.data_dir:
      raise ValueError(
        f"{self.spec.name}: set data.data_dir to the {self.source.what} TFRecord "
        "file (or a glob such as /data/celebahq/celebahq-r08.tfrecords)"
      )
    files = sorted(tf.io.gfile.glob(self.spec.data_dir))
    if not files:
      raise FileNotFoundError(f"{self.spec.name}: no TFRecord files match {self.spec.data_dir!r}")
    ds = tf.data.TFRecordDataset(files).shard(process_count, process_index)
    return ds.map(
      lambda r: resize(tf, parse_tfrecord_image(tf, r), size), num_parallel_calls=tf.data.AUTOTUNE
    )

  def _preprocess(
    self, images: np.ndarray, rng: np.random.Generator, random_flip: bool
  ) -> np.ndarray:
    return preprocess_images(
      images,
      rng,
      centered=self.spec.centered,
      uniform_dequantization=self.spec.uniform_dequantization,
      random_flip=random_flip,
    )

  def batches(
    self,
    batch_size: int,
    start_step: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
  ) -> Iterator[np.ndarray]:
    """Endless preprocessed float32 batches [batch_size // process_count, S, S, C] for this host."""
    tf, tfds = import_tf()
    n = per_host_batch(batch_size, process_count)
    # A 31-bit seed per (seed, start, host): tf.data takes int64, numpy mixes the three.
    tf_seed = int(np.random.default_rng([seed, start_step, process_index]).integers(2**31))
    ds = self._records(process_index, process_count, shuffle_files=True, seed=tf_seed)
    ds = ds.repeat().shuffle(SHUFFLE_BUFFER, seed=tf_seed).batch(n, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    step = start_step
    for images in tfds.as_numpy(ds):
      yield self._preprocess(images, step_rng(seed, step, process_index), self.spec.random_flip)
      step += 1

  def labelled_batches(
    self,
    batch_size: int,
    start_step: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
  ):
    """As `batches`, yielding (images, labels [n] int32)."""
    if not self.num_classes:
      raise ValueError(f"{self.spec.name} has no class labels here; labelled: {sorted(LABELLED)}")
    tf, tfds = import_tf()
    n = per_host_batch(batch_size, process_count)
    tf_seed = int(np.random.default_rng([seed, start_step, process_index]).integers(2**31))
    ds = self._records(
      process_index, process_count, shuffle_files=True, seed=tf_seed, with_labels=True
    )
    ds = ds.repeat().shuffle(SHUFFLE_BUFFER, seed=tf_seed).batch(n, drop_remainder=True)
    step = start_step
    for images, labels in tfds.as_numpy(ds.prefetch(tf.data.AUTOTUNE)):
      yield (
        self._preprocess(images, step_rng(seed, step, process_index), self.spec.random_flip),
        labels.astype(np.int32),
      )
      step += 1

  def epoch(self, batch_size: int) -> Iterator[np.ndarray]:
    """One ordered pass over the whole split, no flips; the last batch may be short."""
    tf, tfds = import_tf()
    ds = (
      self._records(0, 1, shuffle_files=False, seed=0).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    )
    rng = np.random.default_rng(0)
    for images in tfds.as_numpy(ds):
      yield self._preprocess(images, rng, random_flip=False)


def _builder_for(name: str):
  source = SOURCES[name]
  return lambda spec, split: TFImageDataset(spec, split, source)


for _name in SOURCES:
  DATASETS[_name] = _builder_for(_name)
