"""A user's own images as a data set: a folder (searched recursively) or a .zip of PNG / JPEG files.

data.name = 'image_folder', data.data_dir = the folder or the .zip. Each image is decoded with PIL,
converted to RGB (num_channels 3) or greyscale (1), cropped to its largest central square and
resized to image_size x image_size (bicubic, as the release did for LSUN), then goes through the
shared preprocessing (`data.preprocess`). No TensorFlow and no conversion step.

Splits: when the folder (or zip) has `train/` and `test/` subfolders they are the splits;
otherwise both splits are every image (the test split then only serves held-out-free evaluation
losses / bits per dim). Files are sorted by path, so the order is the same on every host.

The decoded split is held in memory as uint8 (N x S x S x C bytes: 70,000 images of 64 x 64 x 3
take 860 MB); host p of P keeps images p, p + P, p + 2P, ... Training batches walk through
per-epoch permutations of the host's images, without replacement within an epoch; batch k is a
pure function of (seed, k, host), so a resumed run sees exactly the batches an uninterrupted one
would.
"""

import dataclasses
import functools
import io
import os
import zipfile
from typing import Iterator, List, Tuple

import numpy as np

from score_sde.data.base import DATASETS, DataSpec, per_host_batch, step_rng
from score_sde.data.preprocess import preprocess_images

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _is_image(path: str) -> bool:
  base = os.path.basename(path)
  return path.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def _split_paths(paths: List[str], split: str) -> List[str]:
  """Paths of one split: those under a top-level `split/` folder if both splits have one, else all."""

  def top(p):
    return p.replace("\\", "/").split("/", 1)[0]

  tops = {top(p) for p in paths}
  if {"train", "test"} <= tops:
    return [p for p in paths if top(p) == split]
  return paths


def list_images(root: str, split: str) -> List[str]:
  """Sorted relative paths (inside the folder or zip) of the split's image files."""
  if not os.path.exists(root):
    raise FileNotFoundError(f"image folder {root!r} does not exist (set data.data_dir)")
  if zipfile.is_zipfile(root):
    with zipfile.ZipFile(root) as zf:
      paths = [n for n in zf.namelist() if not n.endswith("/") and _is_image(n)]
  else:
    paths = [
      os.path.relpath(os.path.join(d, f), root)
      for d, _, files in os.walk(root)
      for f in files
      if _is_image(f)
    ]
  paths = _split_paths(sorted(paths), split)
  if not paths:
    raise FileNotFoundError(f"no {'/'.join(IMAGE_EXTENSIONS)} images in {root!r}")
  return paths


def load_image(data: bytes, size: int, channels: int) -> np.ndarray:
  """Encoded image -> uint8 [size, size, channels]: central square crop, bicubic resize."""
  from PIL import Image

  with Image.open(io.BytesIO(data)) as img:
    img = img.convert("RGB" if channels == 3 else "L")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
      img = img.resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.uint8)
  return arr.reshape(size, size, channels)


def _read_all(root: str, paths: List[str]) -> Iterator[Tuple[str, bytes]]:
  """(path, encoded bytes) of each file, in order, from the folder or the zip."""
  if zipfile.is_zipfile(root):
    with zipfile.ZipFile(root) as zf:
      for p in paths:
        yield p, zf.read(p)
  else:
    for p in paths:
      with open(os.path.join(root, p), "rb") as f:
        yield p, f.read()


def _bad_image(root: str, path: str, error: Exception) -> ValueError:
  if type(error).__name__ == "UnidentifiedImageError":  # its message shows a BytesIO repr
    reason = "not an image format PIL can identify"
  else:
    reason = " ".join(str(error).split()) or type(error).__name__
  return ValueError(
    f"image folder {root!r}: {path!r} is not a readable image ({reason}); remove or replace it"
  )


def load_images(root: str, paths: List[str], size: int, channels: int) -> np.ndarray:
  """uint8 [len(paths), size, size, channels]; a file that does not decode is named."""
  out = np.empty((len(paths), size, size, channels), np.uint8)
  for i, (p, data) in enumerate(_read_all(root, paths)):
    try:
      out[i] = load_image(data, size, channels)
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for bad files
      raise _bad_image(root, p, e) from e
  return out


def verify_images(root: str, paths: List[str]) -> None:
  """Raises ValueError naming the first file PIL cannot identify or whose data is damaged
  (PIL's `verify`: headers and, for PNG, chunk checksums; no decoding, so fast)."""
  from PIL import Image

  for p, data in _read_all(root, paths):
    try:
      with Image.open(io.BytesIO(data)) as img:
        img.verify()
    except Exception as e:  # noqa: BLE001  (PIL raises many types for damaged files)
      raise _bad_image(root, p, e) from e


@dataclasses.dataclass(frozen=True)
class ImageFolderDataset:
  spec: DataSpec
  split: str

  is_image = True
  num_levels = 256  # 8-bit images

  @property
  def shape(self) -> Tuple[int, int, int]:
    return (self.spec.image_size, self.spec.image_size, self.spec.num_channels)

  def _check(self):
    if self.spec.num_channels not in (1, 3):
      raise ValueError(
        f"image folders give 1 (grey) or 3 (RGB) channels, not {self.spec.num_channels}"
      )
    if not self.spec.data_dir:
      raise ValueError("image_folder: set data.data_dir to a folder or a .zip of images")

  def check(self) -> None:
    """Before compute: the folder exists, holds images, and every one of them opens."""
    verify_images(self.spec.data_dir, self.paths())

  def paths(self) -> List[str]:
    self._check()
    return list_images(self.spec.data_dir, self.split)

  @property
  def num_examples(self) -> int:
    return len(self.paths())

  @functools.lru_cache(maxsize=None)
  def images(self, process_index: int = 0, process_count: int = 1) -> np.ndarray:
    """This host's decoded images, uint8 [n, S, S, C] (images p, p + P, ...), cached."""
    paths = self.paths()[process_index::process_count]
    if not paths:
      raise ValueError(
        f"host {process_index} of {process_count} gets no images from {self.spec.data_dir!r}"
      )
    return load_images(self.spec.data_dir, paths, self.spec.image_size, self.spec.num_channels)

  def _preprocess(self, images, rng, random_flip):
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
    """Batch k holds positions k b, ..., k b + b - 1 of the stream that concatenates the
    permutations perm_e = rng(seed, e, host).permutation(n), e = 0, 1, ... (b = per-host batch)."""
    b = per_host_batch(batch_size, process_count)
    images = self.images(process_index, process_count)
    n = len(images)
    step = start_step
    while True:
      pos = step * b + np.arange(b)
      epochs, within = pos // n, pos % n
      perms = {
        e: np.random.default_rng([seed, e, process_index, 1]).permutation(n)
        for e in np.unique(epochs).tolist()
      }
      idx = np.array([perms[e][i] for e, i in zip(epochs.tolist(), within.tolist())])
      yield self._preprocess(
        images[idx], step_rng(seed, step, process_index), self.spec.random_flip
      )
      step += 1

  def epoch(self, batch_size: int) -> Iterator[np.ndarray]:
    """One pass in file order over the whole split, no flips; the last batch may be short."""
    images = self.images()
    rng = np.random.default_rng(0)
    for i in range(0, len(images), batch_size):
      yield self._preprocess(images[i : i + batch_size], rng, random_flip=False)


DATASETS["image_folder"] = ImageFolderDataset
