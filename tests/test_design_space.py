"""experiments/design_space.py: every (formulation, sampler) pair of its table is a valid run, and
its reference set holds each held-out digit once (no compilation, no training)."""

import os

import jax
import numpy as np
import pytest
from conftest import load_experiment

from score_sde import digits_metric, runner_utils as ru
from score_sde.sampling import dispatch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("setup", ["vp_dsm", "edm", "cosine_v", "linear_v"])
def test_every_setup_and_sampler_is_a_valid_run(setup):
  ds = load_experiment("design_space")
  config = ds.make_config(setup, n_iters=100, seed=0)
  ru.validate_config(config, jax.device_count())
  sde = ru.build_sde(config)
  for sampler in ds.SAMPLERS:
    s = ds.sampler_config(sampler, nfe=10, sde=sde)
    entry = dispatch.get_sampler(s.method)
    opts = dispatch.options_from_config(entry, s)
    assert dispatch.nfe_of(entry, **opts) == 10  # the table's NFE columns line up
    # Every sampler ends at the same noise level sigma = s / a.
    np.testing.assert_allclose(float(sde.sigma(opts["eps"])), ds.SIGMA_MIN, rtol=1e-4)
    dispatch.sampler_from_config(s, sde)  # all checks, before any compute


def test_held_out_set_is_the_test_split_once():
  # The reference set is the 180 test digits, each once and in order (the training stream would
  # draw with replacement): dequantized pixels x = (k + u) / 256, u in [0, 1), with k = 255 p the
  # integer level of the test pixel p in [0, 1]; 1e-4 absorbs float32 centring round-off.
  ds = load_experiment("design_space")
  config = ds.make_config("vp_dsm", 100, 0)
  held_out = ds._held_out(config, 180)
  levels = np.round(digits_metric.digits_splits(8)["test_x"] * 255.0)
  assert held_out.shape == levels.shape == (180, 8, 8, 1)
  np.testing.assert_array_less(np.abs((held_out + 1.0) / 2.0 * 256.0 - levels - 0.5), 0.5 + 1e-4)
  with pytest.raises(ValueError, match="exceeds"):
    ds._held_out(config, 181)
