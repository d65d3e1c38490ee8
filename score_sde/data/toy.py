"""2-D toy distributions generated on the fly: exact samplers for training and for evaluation."""

import dataclasses
from typing import Callable, Dict

import numpy as np

from score_sde.data.base import DATASETS, per_host_batch, step_rng
from score_sde.registry import lookup


def eight_gaussians_labelled(rng: np.random.Generator, n: int):
  """(x [n, 2], k [n]): `eight_gaussians` with each sample's component k as its class."""
  k = rng.integers(0, 8, size=n)
  centers = 2.0 * np.stack([np.cos(k * np.pi / 4), np.sin(k * np.pi / 4)], axis=1)
  return ((centers + 0.1 * rng.standard_normal((n, 2))) / 1.414).astype(np.float32), k.astype(
    np.int32
  )


def eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
  """Equal mixture of N(2 (cos k pi/4, sin k pi/4), 0.1^2 I), k = 0..7; scaled by 1/1.414 to unit-ish spread."""
  return eight_gaussians_labelled(rng, n)[0]


def checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
  """Uniform on the dark squares of a 4x4 board over [-2, 2]^2."""
  x1 = rng.uniform(-2, 2, size=n)
  x2 = rng.uniform(0, 1, size=n) + rng.integers(0, 2, size=n) * 2 - 2
  x2 = x2 + (np.floor(x1) % 2)
  return np.stack([x1, x2], axis=1).astype(np.float32)


def swiss_roll(rng: np.random.Generator, n: int) -> np.ndarray:
  """Spiral r = theta, theta ~ U(1.5 pi, 4.5 pi), scaled to about [-2, 2]^2, plus N(0, 0.05^2) noise."""
  theta = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
  x = np.stack([theta * np.cos(theta), theta * np.sin(theta)], axis=1) / 7.0
  return (x + 0.05 * rng.standard_normal((n, 2))).astype(np.float32)


def two_moons_labelled(rng: np.random.Generator, n: int):
  """(x [n, 2], moon [n]): `two_moons` with the moon (0 upper, 1 lower) as the class."""
  upper = rng.uniform(size=n) < 0.5
  a = np.pi * rng.uniform(size=n)
  x = np.where(
    upper[:, None],
    np.stack([np.cos(a), np.sin(a)], 1),
    np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1),
  )
  x = (x - np.array([0.5, 0.25])) * 1.5
  return (x + 0.05 * rng.standard_normal((n, 2))).astype(np.float32), (~upper).astype(np.int32)


def two_moons(rng: np.random.Generator, n: int) -> np.ndarray:
  """Two interleaved half circles (as sklearn's make_moons), centred, plus N(0, 0.05^2) noise."""
  return two_moons_labelled(rng, n)[0]


TOY_SAMPLERS: Dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
  "eight_gaussians": eight_gaussians,
  "checkerboard": checkerboard,
  "swiss_roll": swiss_roll,
  "two_moons": two_moons,
}


# Toy sets with classes: name -> (labelled sampler, number of classes).
TOY_LABELLED = {
  "eight_gaussians": (eight_gaussians_labelled, 8),
  "two_moons": (two_moons_labelled, 2),
}


def sample_toy(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
  """n exact samples [n, 2] of toy distribution `name`."""
  return lookup(TOY_SAMPLERS, name, "toy distribution")(rng, n)


@dataclasses.dataclass(frozen=True)
class ToyDataset:
  """Infinite stream of exact samples; the test split uses a disjoint RNG stream."""

  name: str
  split: str
  shape = (2,)
  is_image = False
  num_examples = None

  def batches(self, batch_size, start_step, seed, process_index=0, process_count=1):
    n = per_host_batch(batch_size, process_count)
    offset = 0 if self.split == "train" else 1 << 30
    step = start_step
    while True:
      yield sample_toy(self.name, step_rng(seed, offset + step, process_index), n)
      step += 1

  @property
  def num_classes(self) -> int:
    """Classes of `labelled_batches` (0: the set has none)."""
    return TOY_LABELLED.get(self.name, (None, 0))[1]

  def labelled_batches(self, batch_size, start_step, seed, process_index=0, process_count=1):
    """As `batches`, yielding (x [n, 2], labels [n] int32): the mixture component or the moon."""
    sampler = lookup({k: v[0] for k, v in TOY_LABELLED.items()}, self.name, "toy set with labels")
    n = per_host_batch(batch_size, process_count)
    offset = 0 if self.split == "train" else 1 << 30
    step = start_step
    while True:
      yield sampler(step_rng(seed, offset + step, process_index), n)
      step += 1

  def epoch(self, batch_size, num_examples: int = 10_000):
    """A fixed set of `num_examples` samples (seeded by the split), in batches."""
    x = sample_toy(
      self.name, np.random.default_rng(0 if self.split == "train" else 1), num_examples
    )
    for i in range(0, num_examples, batch_size):
      yield x[i : i + batch_size]


for _name in TOY_SAMPLERS:
  DATASETS[_name] = lambda spec, split, _n=_name: ToyDataset(_n, split)
