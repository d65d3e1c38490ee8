"""Embedded data: toy samplers, digits, and the shared image preprocessing."""

import numpy as np
import pytest

from score_sde.data import DataSpec, get_dataset
from score_sde.data.preprocess import preprocess_images
from score_sde.data.toy import TOY_SAMPLERS, sample_toy


@pytest.mark.parametrize("name", TOY_SAMPLERS)
def test_toy_batches_are_deterministic_per_step(name):
  ds = get_dataset(DataSpec(name), "train")
  a = list(zip(range(3), ds.batches(64, 0, seed=1)))
  b = next(ds.batches(64, 2, seed=1))  # resuming at step 2 gives step 2's batch
  np.testing.assert_array_equal(a[2][1], b)
  assert a[0][1].shape == (64, 2) and a[0][1].dtype == np.float32
  test = next(get_dataset(DataSpec(name), "test").batches(64, 0, seed=1))
  assert not np.allclose(test, a[0][1])


def test_eight_gaussians_moments():
  """Mean 0 and per-axis variance (4 * 1/2 + 0.01) / 1.414^2 for the ring of radius 2."""
  x = sample_toy("eight_gaussians", np.random.default_rng(0), 200000)
  var = (2.0 + 0.01) / 1.414**2
  np.testing.assert_allclose(x.mean(0), 0.0, atol=5 * np.sqrt(var / 200000))
  np.testing.assert_allclose(x.var(0), var, rtol=0.02)


def test_checkerboard_support():
  x = sample_toy("checkerboard", np.random.default_rng(0), 10000)
  assert np.all(np.abs(x) <= 2.0)
  # Dark squares only: floor(x1) + floor(x2) is even on the board.
  assert np.all((np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2 == 0)


def test_digits_scaling_dequantization_and_split():
  raw = get_dataset(DataSpec("digits", image_size=8), "train")
  x = next(raw.batches(256, 0, seed=0))
  assert x.shape == (256, 8, 8, 1) and x.min() >= 0 and x.max() <= 1
  # Without dequantization the values are k/255 with k = round(255 g / 16), g in 0..16.
  levels = np.round(np.arange(17) * 255 / 16) / 255
  assert np.all(np.min(np.abs(x.reshape(-1, 1) - levels[None].astype(np.float32)), 1) < 1e-6)
  deq = get_dataset(
    DataSpec("digits", image_size=8, centered=True, uniform_dequantization=True), "train"
  )
  y = next(deq.batches(256, 0, seed=0))
  assert y.min() >= -1 and y.max() <= 1
  assert len(np.unique(y)) > 1000  # continuous values
  n_train = get_dataset(DataSpec("digits"), "train").num_examples
  n_test = get_dataset(DataSpec("digits"), "test").num_examples
  assert n_train + n_test == 1797
  big = next(get_dataset(DataSpec("digits", image_size=32), "train").batches(4, 0, seed=0))
  assert big.shape == (4, 32, 32, 1)


def test_preprocess_dequantization_bounds_and_flips():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, size=(64, 4, 5, 3), dtype=np.uint8)
  x = preprocess_images(
    img, np.random.default_rng(1), centered=False, uniform_dequantization=True, random_flip=False
  )
  # (k + u) / 256 lies in [k / 256, (k + 1) / 256).
  assert np.all(x >= img / 256.0) and np.all(x < (img.astype(np.float64) + 1) / 256.0)
  flipped = preprocess_images(
    img, np.random.default_rng(2), centered=True, uniform_dequantization=False, random_flip=True
  )
  plain = 2 * img.astype(np.float64) / 255.0 - 1
  is_flip = np.all(np.isclose(flipped, plain[:, :, ::-1], atol=1e-6), axis=(1, 2, 3))
  is_same = np.all(np.isclose(flipped, plain, atol=1e-6), axis=(1, 2, 3))
  assert np.all(is_flip | is_same) and 10 < is_flip.sum() < 54
  with pytest.raises(TypeError, match="uint8"):
    preprocess_images(
      img.astype(np.float32), rng, centered=False, uniform_dequantization=False, random_flip=False
    )


def test_unknown_dataset_and_split():
  with pytest.raises(ValueError, match=r"unknown dataset 'no_such'; choose from \["):
    get_dataset(DataSpec("no_such"))
  with pytest.raises(ValueError, match="unknown split 'no_such'"):
    get_dataset(DataSpec("digits"), "no_such")
