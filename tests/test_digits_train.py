"""A digits config with a real paper network (NCSN++ / DDPM++ at small width) trains on CPU and
its loss decreases."""

import json
import os

import jax
import numpy as np
import pytest

from score_sde import runner_utils as ru
from score_sde.train import train
from score_sde.train_step import data_mesh

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Slow: test_notebooks.py's digits test trains this same config (400 steps, the loss logged every
# 10) and checks that its loss decreases from 1, so the not-slow suite compiles this network's
# train step once, there.
@pytest.mark.slow
def test_digits_ddpmpp_loss_decreases(tmp_path):
  config = ru.load_config(os.path.join(REPO, "configs", "digits", "vp_ddpmpp.py"))
  assert config.model.name == "ncsnpp"
  tr = config.training
  tr.batch_size = 32
  tr.n_iters = 24
  tr.n_jitted_steps = 2  # small unrolled programs compile fast on CPU
  tr.log_freq = 2
  tr.snapshot_freq = 24
  tr.sample_at_end = False
  config.optim.warmup = 5
  config.optim.decay_steps = 0  # the config's decay is sized for its full length
  config.seed = 0
  # On one device: sharding is tested on the MLP (test_train.py), and partitioning the network
  # over the 8 forced host devices only lengthens the compile.
  train(config, str(tmp_path), mesh=data_mesh(jax.devices()[:1]))
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  losses = np.array([r["loss"] for r in rows])
  assert len(losses) == 12 and np.all(np.isfinite(losses))
  # The last layer starts at zero (init_scale 0), so eps_theta = 0 and the per-dimension loss
  # starts at E z^2 = 1; averages over 3 logged steps damp the DSM loss's per-batch noise.
  first, last = losses[:3].mean(), losses[-3:].mean()
  assert first > 0.7
  assert last < 0.75 * first, (first, last)
