"""The data interface shared by every data set: DataSpec, Dataset and the registry."""

import dataclasses
from typing import Callable, Dict, Iterator, Optional, Protocol, Tuple

import numpy as np

from score_sde.registry import lookup


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Typed mirror of `config.data`."""

  name: str
  image_size: int = 8
  num_channels: int = 1
  centered: bool = False
  uniform_dequantization: bool = False
  random_flip: bool = False
  data_dir: str = ""

  @classmethod
  def from_config(cls, cfg) -> "DataSpec":
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in dict(cfg).items() if k in fields})


class Dataset(Protocol):
  shape: Tuple[int, ...]  # one example, e.g. (2,) or (H, W, C)
  is_image: bool
  num_examples: Optional[int]  # None when generated on the fly
  # Images: grey levels per channel value (256 for 8-bit images); the batches hold the level k of
  # the 8-bit pixel round(255 k / (L - 1)) as round(255 k / (L - 1)) / 255. Used by bits/dim.
  num_levels: int

  def batches(
    self,
    batch_size: int,
    start_step: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
  ) -> Iterator[np.ndarray]:
    """Preprocessed float32 batches [batch_size // process_count, *shape], from step `start_step` on."""

  def epoch(self, batch_size: int) -> Iterator[np.ndarray]:
    """One deterministic pass over the split (no flips), for evaluation such as bits/dim."""


DATASETS: Dict[str, Callable[[DataSpec, str], Dataset]] = {}


def get_dataset(spec: DataSpec, split: str = "train") -> Dataset:
  """Builds data set `spec.name` for `split` ('train' or 'test'); unknown names list the valid ones."""
  if split not in ("train", "test"):
    raise ValueError(f"unknown split {split!r}; choose from ['test', 'train']")
  return lookup(DATASETS, spec.name, "dataset")(spec, split)


def labelled_batches(
  dataset,
  batch_size: int,
  start_step: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
):
  """(x, labels [n] int32) batches of a data set with classes; one line naming the sets that
  have them otherwise. Sets with classes expose `labelled_batches` and `num_classes`."""
  if not hasattr(dataset, "labelled_batches") or not getattr(dataset, "num_classes", 0):
    raise ValueError(
      f"data set {getattr(dataset, 'spec', dataset)!r} has no class labels; "
      "labelled sets: digits, eight_gaussians, two_moons and the TFDS sets with a "
      "'label' feature (cifar10, svhn_cropped, ...)"
    )
  return dataset.labelled_batches(batch_size, start_step, seed, process_index, process_count)


def per_host_batch(batch_size: int, process_count: int) -> int:
  if batch_size % process_count:
    raise ValueError(
      f"batch size {batch_size} is not divisible by the process count {process_count}"
    )
  return batch_size // process_count


def step_rng(seed: int, step: int, process_index: int = 0) -> np.random.Generator:
  """The host RNG for one batch: a pure function of (seed, step, process), so resuming is exact."""
  return np.random.default_rng([seed, step, process_index])
