"""The statistics command's input: a data set's images in [0, 1], in order, without noise."""

import numpy as np

from score_sde import fid_stats
from score_sde.data.base import DataSpec
from score_sde.data.digits import load_digits_uint8


def test_data_set_images_reach_the_network_in_unit_range_without_noise():
  """Centred, dequantized digits config: the batches are exactly k / 255 of the test split."""
  spec = DataSpec(
    name="digits", image_size=8, centered=True, uniform_dequantization=True, random_flip=True
  )
  batches = list(fid_stats.unit_interval_batches(spec, "test", batch_size=64, max_images=150))
  assert [len(b) for b in batches] == [64, 64, 22]
  got = np.concatenate(batches)
  order = np.random.default_rng(0).permutation(1797)
  want = load_digits_uint8(8)[order[int(0.9 * 1797) :]][:150] / 255.0
  np.testing.assert_allclose(got, want, atol=1e-6)
