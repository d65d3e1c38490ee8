"""scikit-learn's handwritten digits (1,797 images of 8x8, 17 grey levels: num_levels) as an image data set.

Grey levels 0..16 become uint8 via round(255 k / 16); images are optionally resized (bilinear) to
`image_size` and then go through the same preprocessing as every image set. Split: a fixed
shuffled 90% / 10% train / test partition. `digits_color`: the same digits, each drawn in one of
six colours (RGB), for colorization.
"""

import dataclasses
from typing import Tuple

import numpy as np

from score_sde.data.base import DATASETS, DataSpec, per_host_batch, step_rng
from score_sde.data.preprocess import preprocess_images


def load_digits_uint8(image_size: int = 8) -> np.ndarray:
  """All digits as uint8 [1797, image_size, image_size, 1]."""
  from sklearn.datasets import load_digits

  images = load_digits().images.astype(np.float32) * (255.0 / 16.0)  # [N, 8, 8], 0..255
  if image_size != 8:
    import jax

    images = np.asarray(
      jax.image.resize(images, (images.shape[0], image_size, image_size), "bilinear")
    )
  return np.clip(np.round(images), 0, 255).astype(np.uint8)[..., None]


# digits_color: each digit drawn in one of these colours (RGB in [0, 1]), fixed per image, so
# that a grey digit has several plausible colourings (the colorization example).
PALETTE = np.array(
  [
    [1.0, 0.2, 0.2],
    [0.2, 1.0, 0.2],
    [0.3, 0.4, 1.0],
    [1.0, 0.9, 0.2],
    [0.2, 0.9, 1.0],
    [1.0, 0.3, 1.0],
  ],
  np.float32,
)


def colorize_digits(images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W, 1] -> uint8 [N, H, W, 3]: image i in colour PALETTE[c_i], c_i fixed by i."""
  idx = np.random.default_rng(1).integers(0, len(PALETTE), size=len(images))
  return np.round(images.astype(np.float32) * PALETTE[idx][:, None, None, :]).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class DigitsDataset:
  spec: DataSpec
  split: str

  @property
  def channels(self) -> int:
    return 3 if self.spec.name == "digits_color" else 1

  @property
  def shape(self) -> Tuple[int, int, int]:
    return (self.spec.image_size, self.spec.image_size, self.channels)

  is_image = True

  num_classes = 10

  def _split(self, arrays):
    order = np.random.default_rng(0).permutation(len(arrays))
    n_train = int(0.9 * len(arrays))
    return arrays[order[:n_train] if self.split == "train" else order[n_train:]]

  @property
  def num_levels(self) -> int:
    """17 grey levels (0..16) at the native 8 x 8; resizing interpolates between them, so a
    resized set holds any of the 256 uint8 values."""
    return 17 if self.spec.image_size == 8 else 256

  def images(self) -> np.ndarray:
    images = load_digits_uint8(self.spec.image_size)
    if self.channels == 3:
      images = colorize_digits(images)
    return self._split(images)

  def labels(self) -> np.ndarray:
    """The digit (0..9) of each image of `images()`, int32."""
    from sklearn.datasets import load_digits

    return self._split(load_digits().target.astype(np.int32))

  @property
  def num_examples(self) -> int:
    return len(self.images())

  def batches(self, batch_size, start_step, seed, process_index=0, process_count=1):
    for x, _ in self.labelled_batches(batch_size, start_step, seed, process_index, process_count):
      yield x

  def labelled_batches(self, batch_size, start_step, seed, process_index=0, process_count=1):
    """As `batches`, yielding (images, digits [n] int32); the images are those of `batches`."""
    if self.spec.num_channels != self.channels:
      raise ValueError(
        f"{self.spec.name} has {self.channels} channel(s): set "
        f"data.num_channels={self.channels}, not {self.spec.num_channels}"
      )
    n = per_host_batch(batch_size, process_count)
    images, labels = self.images(), self.labels()
    step = start_step
    while True:
      rng = step_rng(seed, step, process_index)
      idx = rng.integers(0, len(images), size=n)
      yield (
        preprocess_images(
          images[idx],
          rng,
          centered=self.spec.centered,
          uniform_dequantization=self.spec.uniform_dequantization,
          random_flip=self.spec.random_flip,
        ),
        labels[idx],
      )
      step += 1

  def epoch(self, batch_size: int):
    """One pass in order over the split (for evaluation, e.g. bits/dim), no flips; last batch may be short."""
    images = self.images()
    rng = np.random.default_rng(0)
    for i in range(0, len(images), batch_size):
      yield preprocess_images(
        images[i : i + batch_size],
        rng,
        centered=self.spec.centered,
        uniform_dequantization=self.spec.uniform_dequantization,
        random_flip=False,
      )


DATASETS["digits"] = DigitsDataset
DATASETS["digits_color"] = DigitsDataset
